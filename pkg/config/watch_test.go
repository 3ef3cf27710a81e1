package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

func configWithListener(port int) []byte {
	return fmt.Appendf(nil, `providers:
  p: {base_url: "http://127.0.0.1:1"}
models:
  m:
    targets: [{provider: p, model: x}]
xds:
  listener: 0.0.0.0:%d
`, port)
}

const invalidConfig = `providers:
  p: {base_url: "ftp://nowhere"}
models:
  m:
    targets: [{provider: nope, model: x}]
`

type watchRecorder struct {
	changes chan *config.Config
	errs    chan error
}

func startWatch(t *testing.T, path string) *watchRecorder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r := &watchRecorder{changes: make(chan *config.Config, 16), errs: make(chan error, 16)}
	done := make(chan error, 1)
	go func() {
		done <- config.Watch(ctx, path, func(c *config.Config) { r.changes <- c }, func(err error) { r.errs <- err })
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return r
}

// nextListener waits for the next config change. A heavily loaded machine
// can stall a writer between truncate and write for longer than the
// debounce; the resulting error is legitimate, so it is skipped here.
func (r *watchRecorder) nextListener(t *testing.T) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c := <-r.changes:
			return c.XDS.Listener
		case err := <-r.errs:
			t.Logf("skipping error while waiting for a change: %v", err)
		case <-timeout:
			t.Fatal("no config change within 5s")
			return ""
		}
	}
}

func (r *watchRecorder) nextError(t *testing.T) error {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("unexpected change to %s", c.XDS.Listener)
	case err := <-r.errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no error within 5s")
	}
	return nil
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, data, 0o644))
}

func TestWatchInPlaceAndRenameReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	writeFile(t, path, configWithListener(1001))
	r := startWatch(t, path)
	assert.Equal(t, "0.0.0.0:1001", r.nextListener(t), "initial config is delivered")

	writeFile(t, path, configWithListener(1002))
	assert.Equal(t, "0.0.0.0:1002", r.nextListener(t), "in-place write")

	// An editor's save: write a temp file, rename it over the config.
	tmp := filepath.Join(dir, ".tollgate.yaml.swp")
	writeFile(t, tmp, configWithListener(1003))
	require.NoError(t, os.Rename(tmp, path))
	assert.Equal(t, "0.0.0.0:1003", r.nextListener(t), "rename-replace")

	// Identical content and unrelated files cause no call: the next call
	// seen is the following real change.
	writeFile(t, path, configWithListener(1003))
	writeFile(t, filepath.Join(dir, "tollgate-ledger.jsonl"), []byte("{}\n"))
	writeFile(t, path, configWithListener(1004))
	assert.Equal(t, "0.0.0.0:1004", r.nextListener(t))
}

func TestWatchKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	// The layout kubelet writes for a mounted ConfigMap.
	v1 := filepath.Join(dir, "..2026_11_27_06_00_00.000000001")
	require.NoError(t, os.Mkdir(v1, 0o755))
	writeFile(t, filepath.Join(v1, "tollgate.yaml"), configWithListener(2001))
	require.NoError(t, os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "tollgate.yaml")
	require.NoError(t, os.Symlink(filepath.Join("..data", "tollgate.yaml"), path))

	r := startWatch(t, path)
	assert.Equal(t, "0.0.0.0:2001", r.nextListener(t))

	// Update: new timestamped dir, new ..data_tmp symlink renamed over ..data, old dir removed.
	v2 := filepath.Join(dir, "..2026_11_27_06_01_00.000000002")
	require.NoError(t, os.Mkdir(v2, 0o755))
	writeFile(t, filepath.Join(v2, "tollgate.yaml"), configWithListener(2002))
	require.NoError(t, os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(v1))
	assert.Equal(t, "0.0.0.0:2002", r.nextListener(t))
}

func TestWatchInvalidKeepsReporting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	writeFile(t, path, configWithListener(3001))
	r := startWatch(t, path)
	assert.Equal(t, "0.0.0.0:3001", r.nextListener(t))

	writeFile(t, path, []byte(invalidConfig))
	err := r.nextError(t)
	var ps config.Problems
	require.True(t, errors.As(err, &ps), "got %T: %v", err, err)
	require.Len(t, ps, 2)
	for _, p := range ps {
		assert.Equal(t, path, p.File)
		assert.Positive(t, p.Line, "every problem has a line: %s", p)
	}
	assert.ErrorIs(t, err, config.ErrInvalid)

	writeFile(t, path, configWithListener(3002))
	assert.Equal(t, "0.0.0.0:3002", r.nextListener(t), "recovers after a fix")
}

func TestWatchInitialInvalid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	writeFile(t, path, []byte("providers: [\n"))
	r := startWatch(t, path)
	err := r.nextError(t)
	assert.ErrorIs(t, err, config.ErrInvalid)
	writeFile(t, path, configWithListener(4001))
	assert.Equal(t, "0.0.0.0:4001", r.nextListener(t))
}

func TestWatchMissingDirectory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := config.Watch(ctx, filepath.Join(t.TempDir(), "nope", "tollgate.yaml"), func(*config.Config) {}, func(error) {})
	require.Error(t, err)
}
