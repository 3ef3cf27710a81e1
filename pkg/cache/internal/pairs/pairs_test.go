package pairs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.jsonl")
	require.NoError(t, os.WriteFile(good, []byte(`{"a":"x","b":"y","duplicate":true}`+"\n"+`{"a":"p","b":"q","duplicate":false}`+"\n"), 0o644))
	got, err := Load(good)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"x", "y", true}, {"p", "q", false}}, got)

	bad := filepath.Join(dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte(`{"a":"x"}`+"\n"+"not json\n"), 0o644))
	_, err = Load(bad)
	assert.ErrorContains(t, err, "bad.jsonl:2")

	empty := filepath.Join(dir, "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = Load(empty)
	assert.Error(t, err)

	assert.Equal(t, 13395, TrainCut(19137))
}
