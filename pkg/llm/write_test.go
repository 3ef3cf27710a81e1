package llm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetModel(t *testing.T) {
	body := []byte(`{"model":"alias","messages":[{"role":"user","content":"model"}]}`)
	out, changed, err := SetModel(body, "gpt-4o-mini")
	require.NoError(t, err)
	assert.True(t, changed)
	assert.JSONEq(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"model"}]}`, string(out))

	same, changed, err := SetModel(out, "gpt-4o-mini")
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Equal(t, out, same)
}

func TestDeltaChunkIsAChunk(t *testing.T) {
	c, err := ParseChunk(DeltaChunk(2, `held "back" text`))
	require.NoError(t, err)
	require.Len(t, c.Deltas, 1)
	assert.Equal(t, 2, int(c.Deltas[0].Index))
	assert.Equal(t, `held "back" text`, c.Deltas[0].Text)
}

func TestModelList(t *testing.T) {
	assert.JSONEq(t, `{"object":"list","data":[{"id":"a","object":"model","created":0,"owned_by":"tollgate"},{"id":"b","object":"model","created":0,"owned_by":"tollgate"}]}`,
		string(ModelList([]string{"a", "b"}, "tollgate")))
	assert.JSONEq(t, `{"object":"list","data":[]}`, string(ModelList(nil, "tollgate")))
}

func TestSetString(t *testing.T) {
	out, err := SetString([]byte(`{"choices":[{"message":{"content":"a@b.c"}}]}`), "choices.0.message.content", "[EMAIL_1]")
	require.NoError(t, err)
	assert.JSONEq(t, `{"choices":[{"message":{"content":"[EMAIL_1]"}}]}`, string(out))
}
