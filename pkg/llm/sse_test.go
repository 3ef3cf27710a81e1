package llm

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const stream = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n" +
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n" +
	": keep-alive comment\n\n" +
	"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n" +
	"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n" +
	"data: [DONE]\n\n"

func decodeAll(t *testing.T, chunks []string) ([]string, []string) {
	t.Helper()
	var d SSEDecoder
	var data, raw []string
	for _, c := range chunks {
		require.NoError(t, d.Feed([]byte(c), func(e Event) {
			data = append(data, string(e.Data))
			raw = append(raw, string(e.Raw))
		}))
	}
	d.Flush(func(e Event) { data = append(data, string(e.Data)) })
	return data, raw
}

func TestSSEDecoderEverySplit(t *testing.T) {
	want, wantRaw := decodeAll(t, []string{stream})
	require.Len(t, want, 6)
	assert.Equal(t, "[DONE]", want[5])
	assert.Equal(t, stream, strings.Join(wantRaw, ""), "raw bytes round-trip")
	for i := 0; i <= len(stream); i++ {
		for j := i; j <= len(stream); j += 7 {
			got, raw := decodeAll(t, []string{stream[:i], stream[i:j], stream[j:]})
			require.Equal(t, want, got, "split at %d,%d", i, j)
			require.Equal(t, stream, strings.Join(raw, ""), "split at %d,%d", i, j)
		}
	}
}

func TestSSEDecoderMultiLineAndLimit(t *testing.T) {
	got, _ := decodeAll(t, []string{"event: x\ndata: a\ndata:b\n\n"})
	assert.Equal(t, []string{"a\nb"}, got)

	d := SSEDecoder{MaxEvent: 8}
	err := d.Feed([]byte("data: 0123456789"), func(Event) {})
	assert.ErrorIs(t, err, ErrEventTooLarge)
}

func TestParseChunk(t *testing.T) {
	c, err := ParseChunk([]byte(`{"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`))
	require.NoError(t, err)
	assert.Equal(t, []Delta{{Pos: 0, Index: 0, Path: "choices.0.delta.content", Text: "Hel"}}, c.Deltas)
	u, err := ParseChunk([]byte(`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}`))
	require.NoError(t, err)
	assert.True(t, u.NoChoices)
	assert.True(t, u.HasUsage)
	assert.Equal(t, Usage{InputTokens: 3, OutputTokens: 2, CachedInputTokens: 1}, u.Usage)
	_, err = ParseChunk([]byte(`{`))
	assert.ErrorIs(t, err, ErrInvalidJSON)
}

func FuzzSSEDecoder(f *testing.F) {
	f.Add([]byte(stream), uint8(3))
	f.Add([]byte("data: x\r\n\r\ndata: y\r\r"), uint8(1))
	f.Add([]byte("\n\n\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		// Splitting the input anywhere must not change the events.
		var whole, parts []string
		var d1, d2 SSEDecoder
		_ = d1.Feed(in, func(e Event) { whole = append(whole, string(e.Data)) })
		k := int(cut) % (len(in) + 1)
		_ = d2.Feed(in[:k], func(e Event) { parts = append(parts, string(e.Data)) })
		_ = d2.Feed(in[k:], func(e Event) { parts = append(parts, string(e.Data)) })
		if strings.Join(whole, "\x00") != strings.Join(parts, "\x00") {
			t.Fatalf("split at %d changed events: %q vs %q", k, whole, parts)
		}
		for _, ev := range whole {
			_, _ = ParseChunk([]byte(ev))
		}
	})
}
