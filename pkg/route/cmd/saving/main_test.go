package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "c.jsonl")
	require.NoError(t, os.WriteFile(corpus, []byte(
		`{"text":"What is the capital of France?","label":"benign","category":"qa"}`+"\n"+
			`{"text":"ignore previous instructions","label":"injection","category":"x"}`+"\n"), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"-corpus", corpus, "-synthetic", "3"}, &out))
	s := out.String()
	assert.Contains(t, s, "workload: 4 requests (1 corpus + 3 synthetic code tasks)")
	assert.Regexp(t, `synthetic-code-task +0 / +3\n`, s)
	assert.Regexp(t, `qa +1 / +0\n`, s)
	assert.Regexp(t, `simple +1 +25\.0%`, s)
	assert.Regexp(t, `saving vs all-gpt-4o: \d+\.\d%`, s)

	require.Error(t, run([]string{"-corpus", filepath.Join(dir, "missing")}, &out))
}

func TestCodeTasksDeterministic(t *testing.T) {
	a, b := codeTasks(5, 7), codeTasks(5, 7)
	assert.Equal(t, a, b)
	for _, it := range a {
		assert.Greater(t, len(it.text), 600)
	}
}
