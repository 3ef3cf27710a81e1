package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRootFromAnyFolderOfTheRepo(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "checkout")
	sub := filepath.Join(repo, "pkg", "guard")
	corpora := filepath.Join(base, "shared", "corpora")
	require.NoError(t, os.MkdirAll(sub, 0o755))
	require.NoError(t, os.MkdirAll(corpora, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644))

	t.Chdir(sub)
	t.Setenv(EnvRoot, "")
	got, err := Root("")
	require.NoError(t, err)
	assert.Equal(t, corpora, filepath.Clean(got))

	got, err = Root(corpora)
	require.NoError(t, err)
	assert.Equal(t, corpora, got)

	t.Setenv(EnvRoot, corpora)
	t.Chdir(base) // no go.mod above: the variable is enough
	got, err = Root("")
	require.NoError(t, err)
	assert.Equal(t, corpora, got)

	_, err = Root(filepath.Join(base, "nope"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "pass -corpora DIR")
}

func TestRootMissingDefault(t *testing.T) {
	repo := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644))
	t.Chdir(repo)
	t.Setenv(EnvRoot, "")
	_, err := Root("")
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(filepath.Dir(repo), "shared", "corpora")+" not found")
}
