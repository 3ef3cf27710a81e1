package llm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// completionJSON is a complete chat.completion answering content.
func completionJSON(content string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content},
		}},
		"usage": map[string]any{"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
	})
	return b
}

// streamWithSDK serves body as an SSE response and reads it with the real
// OpenAI Go SDK, returning the accumulated completion.
func streamWithSDK(t *testing.T, body []byte) openai.ChatCompletionAccumulator {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	client := openai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0))
	stream := client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		require.True(t, acc.AddChunk(stream.Current()), "chunk %d rejected by the accumulator", chunks)
		chunks++
	}
	require.NoError(t, stream.Err())
	require.Positive(t, chunks)
	return acc
}

func TestReplaySSEWithSDK(t *testing.T) {
	content := strings.Repeat("Paris is the capital of France. ", 8) + "Ünïcödé ✓ 😀"
	tests := []struct {
		name         string
		includeUsage bool
	}{
		{"without usage", false},
		{"with usage", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sse, err := ReplaySSE(completionJSON(content), tc.includeUsage)
			require.NoError(t, err)
			assert.True(t, bytes.HasSuffix(sse, []byte("data: [DONE]\n\n")))
			assert.Equal(t, tc.includeUsage, bytes.Contains(sse, []byte(`"usage"`)))

			acc := streamWithSDK(t, sse)
			require.Len(t, acc.Choices, 1)
			assert.Equal(t, content, acc.Choices[0].Message.Content)
			assert.Equal(t, "stop", acc.Choices[0].FinishReason)
			assert.Equal(t, "chatcmpl-1", acc.ID)
			assert.Equal(t, "gpt-test", acc.Model)
			if tc.includeUsage {
				assert.Equal(t, int64(12), acc.Usage.TotalTokens)
				assert.Equal(t, int64(9), acc.Usage.PromptTokens)
			} else {
				assert.Zero(t, acc.Usage.TotalTokens)
			}
		})
	}
}

func TestReplaySSEToolCalls(t *testing.T) {
	body := []byte(`{"id":"c2","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","type":"function","function":{"name":"time","arguments":"{}"}}]}}]}`)
	sse, err := ReplaySSE(body, false)
	require.NoError(t, err)
	acc := streamWithSDK(t, sse)
	require.Len(t, acc.Choices, 1)
	calls := acc.Choices[0].Message.ToolCalls
	require.Len(t, calls, 2)
	assert.Equal(t, "call_1", calls[0].ID)
	assert.Equal(t, "weather", calls[0].Function.Name)
	assert.JSONEq(t, `{"city":"Paris"}`, calls[0].Function.Arguments)
	assert.Equal(t, "time", calls[1].Function.Name)
	assert.Equal(t, "tool_calls", acc.Choices[0].FinishReason)
}

func TestReplaySSEShape(t *testing.T) {
	sse, err := ReplaySSE(completionJSON("hello world"), true)
	require.NoError(t, err)
	events := strings.Split(strings.TrimSuffix(string(sse), "\n\n"), "\n\n")
	require.Len(t, events, 5) // role, content, finish, usage, [DONE]
	assert.Contains(t, events[0], `"delta":{"role":"assistant","content":""}`)
	assert.Contains(t, events[1], `"delta":{"content":"hello world"}`)
	assert.Contains(t, events[2], `"finish_reason":"stop"`)
	assert.Contains(t, events[3], `"choices":[]`)
	assert.Contains(t, events[3], `"total_tokens":12`)
	assert.Equal(t, "data: [DONE]", events[4])
	for _, e := range events[:4] {
		assert.Contains(t, e, `"object":"chat.completion.chunk"`)
	}
}

func TestReplaySSEInvalid(t *testing.T) {
	for _, body := range []string{`{`, `{"object":"chat.completion","choices":[]}`, `{"error":{"message":"x"}}`} {
		_, err := ReplaySSE([]byte(body), false)
		assert.ErrorIs(t, err, ErrIncompleteCompletion, body)
	}
}

func TestSplitText(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("ab ", 100), strings.Repeat("é", 100), strings.Repeat("😀", 50)} {
		pieces := splitText(s, replayPiece)
		assert.Equal(t, s, strings.Join(pieces, ""))
		for _, p := range pieces {
			assert.LessOrEqual(t, len(p), replayPiece)
			assert.True(t, strings.ToValidUTF8(p, "?") == p, "piece cut inside a rune: %q", p)
		}
	}
}

func FuzzReplaySSE(f *testing.F) {
	f.Add(completionJSON("hello"), true)
	f.Add([]byte(`{"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{"content":"a\u0000b"}}]}`), false)
	f.Fuzz(func(t *testing.T, body []byte, usage bool) {
		sse, err := ReplaySSE(body, usage)
		if err != nil {
			return
		}
		require.True(t, bytes.HasSuffix(sse, []byte("data: [DONE]\n\n")))
		for _, ev := range strings.Split(strings.TrimSuffix(string(sse), "\n\n"), "\n\n") {
			require.True(t, strings.HasPrefix(ev, "data: "), "event %q", ev)
			require.NotContains(t, ev, "\n", "an event spans lines")
		}
	})
}

func BenchmarkReplaySSE(b *testing.B) {
	body := completionJSON(strings.Repeat("Yes, you can return it within 30 days. ", 25))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReplaySSE(body, true); err != nil {
			b.Fatal(err)
		}
	}
}
