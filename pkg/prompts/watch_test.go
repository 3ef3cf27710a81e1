package prompts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

func TestDirWatcherSeesEditsAddsRemovals(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.yaml")
	require.NoError(t, os.WriteFile(f, []byte("x: 1\n"), 0o644))
	w := prompts.NewDirWatcher(dir)
	assert.False(t, w.Changed(), "no change since the watcher was made")

	// Same size, new mtime: an edit or a rollback of the same length.
	require.NoError(t, os.WriteFile(f, []byte("x: 2\n"), 0o644))
	future := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(f, future, future))
	assert.True(t, w.Changed())
	assert.False(t, w.Changed(), "a change is reported once")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644))
	assert.False(t, w.Changed(), "only prompt files count")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yml"), []byte("y: 1\n"), 0o644))
	assert.True(t, w.Changed())
	require.NoError(t, os.Remove(f))
	assert.True(t, w.Changed())
	require.NoError(t, os.RemoveAll(dir))
	assert.True(t, w.Changed(), "a vanished directory is a change")
}

func TestDirWatcherWatchCallsOnChange(t *testing.T) {
	dir := t.TempDir()
	w := prompts.NewDirWatcher(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	changed := make(chan struct{}, 4)
	go w.Watch(ctx, 5*time.Millisecond, func() { changed <- struct{}{} })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("z: 1\n"), 0o644))
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no change reported")
	}
}
