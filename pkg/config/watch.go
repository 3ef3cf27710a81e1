package config

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDebounce is how long Watch waits after the last file event before it
// reads the file: editors and Kubernetes produce bursts of events per save.
const WatchDebounce = 100 * time.Millisecond

// Watch loads the config at path, hands it to onChange (or the problems to
// onError), then does the same for every later change until ctx ends.
//
// It watches the directory, not the file, so the usual ways of replacing a
// file are seen: in-place writes, an editor's write-to-temp-and-rename, and a
// Kubernetes ConfigMap's atomic swap of the "..data" symlink. Events are
// debounced by WatchDebounce; content that is byte-identical to the last
// content seen produces no call. An invalid file (still invalid one more
// debounce later, so a half-written file is not reported) calls onError with
// the config.Problems (file:line for each) and the caller keeps its last good
// config. onChange and onError are called from one goroutine, never
// concurrently. Watch returns nil when ctx ends, or an error if the
// directory cannot be watched.
func Watch(ctx context.Context, path string, onChange func(*Config), onError func(error)) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()
	cw := &configWatch{name: path, path: abs, fs: w, watched: map[string]bool{}, onChange: onChange, onError: onError}
	if err := cw.watchDir(filepath.Dir(abs)); err != nil {
		return err
	}
	cw.followSymlink()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	if cw.reload() {
		timer.Reset(WatchDebounce)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if cw.relevant(ev) {
				timer.Reset(WatchDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			onError(fmt.Errorf("watch %s: %w", abs, err))
		case <-timer.C:
			cw.followSymlink()
			if cw.reload() {
				timer.Reset(WatchDebounce)
			}
		}
	}
}

type configWatch struct {
	name    string // as given, for messages
	path    string
	fs      *fsnotify.Watcher
	watched map[string]bool
	target  string // the file path resolves to, when path is a symlink
	lastSum [32]byte
	seen    bool
	// confirmSum is unparsable content waiting for a second read.
	confirmSum [32]byte
	confirming bool
	onChange   func(*Config)
	onError    func(error)
}

func (cw *configWatch) watchDir(dir string) error {
	if cw.watched[dir] {
		return nil
	}
	if err := cw.fs.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	cw.watched[dir] = true
	return nil
}

// followSymlink also watches the directory of the file path points to, so
// a symlink into another directory is followed when its target changes.
func (cw *configWatch) followSymlink() {
	t, err := filepath.EvalSymlinks(cw.path)
	if err != nil {
		return
	}
	cw.target = t
	if err := cw.watchDir(filepath.Dir(t)); err != nil {
		cw.onError(err)
	}
}

// relevant keeps unrelated files in the same directory (a ledger, logs)
// from triggering reloads.
func (cw *configWatch) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	base := filepath.Base(name)
	switch {
	case name == cw.path, name == cw.target:
		return true
	case filepath.Dir(name) == filepath.Dir(cw.path) && strings.HasPrefix(base, ".."):
		return true // Kubernetes ..data / ..2025_... swaps
	case cw.target != "" && filepath.Dir(name) == filepath.Dir(cw.target) && filepath.Base(cw.target) == base:
		return true
	}
	return false
}

// reload reads and parses the file and reports the outcome. It returns true
// when the file should be read again after another debounce: content that
// fails to parse is reported only if it is still the same one debounce later,
// so a writer caught between truncate and write (an empty or partial file)
// does not produce a spurious error.
func (cw *configWatch) reload() (recheck bool) {
	data, err := os.ReadFile(cw.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			cw.onError(fmt.Errorf("config %s disappeared; keeping the last good config: %w", cw.path, err))
			return false
		}
		cw.onError(fmt.Errorf("read config: %w", err))
		return false
	}
	sum := sha256.Sum256(data)
	if cw.seen && bytes.Equal(sum[:], cw.lastSum[:]) {
		cw.confirming = false
		return false
	}
	cfg, err := Parse(cw.name, data)
	if err != nil {
		if !cw.confirming || !bytes.Equal(sum[:], cw.confirmSum[:]) {
			cw.confirming, cw.confirmSum = true, sum
			return true
		}
		cw.confirming = false
		cw.seen, cw.lastSum = true, sum
		cw.onError(err)
		return false
	}
	cw.confirming = false
	cw.seen, cw.lastSum = true, sum
	cw.onChange(cfg)
	return false
}
