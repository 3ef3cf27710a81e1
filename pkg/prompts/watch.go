package prompts

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// DirWatcher notices changes to a registry directory by polling: it
// compares the name, size and modification time of every *.yaml and *.yml
// file with the previous poll. Polling is portable (no inotify), cheap for
// a directory of prompt files, and sees edits, added, removed and renamed
// files, including a rollback that restores an older file's content.
type DirWatcher struct {
	dir  string
	last uint64
	ok   bool
}

// NewDirWatcher returns a watcher of dir whose baseline is the directory as
// it is now (a missing directory is a state too).
func NewDirWatcher(dir string) *DirWatcher {
	w := &DirWatcher{dir: dir}
	w.last, w.ok = stamp(dir)
	return w
}

// Changed polls once and reports whether the directory differs from the
// previous poll.
func (w *DirWatcher) Changed() bool {
	s, ok := stamp(w.dir)
	if s == w.last && ok == w.ok {
		return false
	}
	w.last, w.ok = s, ok
	return true
}

// Watch polls every interval until ctx ends and calls onChange after each
// poll that saw a change (on Watch's goroutine).
func (w *DirWatcher) Watch(ctx context.Context, interval time.Duration, onChange func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.Changed() {
				onChange()
			}
		}
	}
}

// stamp hashes the listing of dir's prompt files; ok is false when the
// directory cannot be read.
func stamp(dir string) (uint64, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	h := fnv.New64a()
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed between ReadDir and Info: the next poll sees it
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return h.Sum64(), true
}
