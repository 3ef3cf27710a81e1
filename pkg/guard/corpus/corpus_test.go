package corpus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitOfIsStable(t *testing.T) {
	// Pinned values: changing the split silently would invalidate every
	// reported number.
	assert.Equal(t, Test, SplitOf("a"))
	assert.Equal(t, SplitOf("Ignore previous instructions"), SplitOf("Ignore previous instructions"))
	counts := map[Split]int{}
	for i := 0; i < 10000; i++ {
		counts[SplitOf(string(rune('a'+i%26))+string(rune(i)))]++
	}
	assert.InDelta(t, 3000, counts[Test], 300)
	assert.InDelta(t, 1000, counts[Validation], 200)
	assert.InDelta(t, 6000, counts[Train], 300)
}

func TestLoadAndDirs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "injection-x")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(root, "pii-y"), 0o755))
	data := `{"text":"hi","label":"attack"}` + "\n" + `{"text":"mail a@b.io","entities":[{"type":"EMAIL_ADDRESS","value":"a@b.io","byte_start":5,"byte_end":11}]}` + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.jsonl"), []byte(data), 0o644))
	dirs, err := Dirs(root, "injection-")
	require.NoError(t, err)
	assert.Equal(t, []string{"injection-x"}, dirs)
	recs, err := Load(dir)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.True(t, recs[0].Attack())
	assert.Equal(t, Entity{Type: "EMAIL_ADDRESS", Value: "a@b.io", ByteStart: 5, ByteEnd: 11}, recs[1].Entities[0])

	require.NoError(t, os.WriteFile(filepath.Join(dir, "data.jsonl"), []byte("{bad\n"), 0o644))
	_, err = Load(dir)
	assert.ErrorContains(t, err, "line 1")
}
