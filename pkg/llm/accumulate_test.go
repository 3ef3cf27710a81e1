package llm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStreamAccumulator(t *testing.T) {
	var a StreamAccumulator
	for _, ev := range []string{
		`{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}`,
		`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hel"}}]}`,
		`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}`,
	} {
		c, err := ParseChunk([]byte(ev))
		require.NoError(t, err)
		a.Add([]byte(ev), c)
	}
	assert.False(t, a.Complete(), "no usage yet")
	u := `{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`
	c, _ := ParseChunk([]byte(u))
	a.Add([]byte(u), c)
	assert.True(t, a.Complete())
	assert.Equal(t, "Hello", a.Text())
	b, err := a.Completion()
	require.NoError(t, err)
	r, err := ParseResponse(b)
	require.NoError(t, err)
	assert.Equal(t, "Hello", r.Texts[0].Text)
	assert.Equal(t, Usage{InputTokens: 3, OutputTokens: 2}, r.Usage)
	assert.Equal(t, []string{"stop"}, r.FinishReasons)
}
