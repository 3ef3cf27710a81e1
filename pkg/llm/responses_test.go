package llm

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestResponsesOperation(t *testing.T) {
	assert.Equal(t, OpResponses, OperationForPath("/v1/responses"))
	assert.Equal(t, OpResponses, OperationForPath("/v1/responses?x=1"))
	assert.Equal(t, OpUnknown, OperationForPath("/v1/responses/resp_1"))
	assert.Equal(t, "responses", OpResponses.String())
}

func TestParseResponsesRequest(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r *Request)
		err   string
	}{
		{name: "string input", body: `{"model":"m","input":"hello there","instructions":"be brief","max_output_tokens":50,"stream":true}`,
			check: func(t *testing.T, r *Request) {
				assert.Equal(t, "m", r.Model)
				assert.True(t, r.Stream)
				assert.Equal(t, int64(50), r.MaxTokens)
				assert.False(t, r.Opaque)
				assert.Equal(t, []Text{{Role: "user", Path: "input", Text: "hello there"}, {Role: "system", Path: "instructions", Text: "be brief"}}, r.Texts)
				assert.Equal(t, "hello there\nbe brief\n", r.PromptText())
			}},
		{name: "message items", body: `{"model":"m","input":[{"role":"user","content":"a"},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"b"}]},{"role":"user","content":[{"type":"input_text","text":"c"},{"type":"input_image","image_url":"x"}]},{"type":"function_call_output","call_id":"c1","output":"d"}]}`,
			check: func(t *testing.T, r *Request) {
				assert.Equal(t, []Text{
					{Role: "user", Path: "input.0.content", Text: "a"},
					{Role: "assistant", Path: "input.1.content.0.text", Text: "b"},
					{Role: "user", Path: "input.2.content.0.text", Text: "c"},
					{Role: "tool", Path: "input.3.output", Text: "d"},
				}, r.Texts)
				assert.True(t, r.Opaque, "the image is not read")
			}},
		{name: "other item", body: `{"model":"m","input":[{"type":"reasoning","id":"r1","summary":[]},{"role":"user","content":"q"}]}`,
			check: func(t *testing.T, r *Request) {
				assert.True(t, r.Opaque)
				assert.Equal(t, "input.1.content", r.Texts[0].Path)
			}},
		{name: "chat fields ignored", body: `{"model":"m","input":"x","max_tokens":7,"n":3,"messages":5}`,
			check: func(t *testing.T, r *Request) {
				assert.Zero(t, r.MaxTokens)
				assert.Equal(t, int64(1), r.N)
			}},
		{name: "null max_output_tokens", body: `{"model":"m","input":"x","max_output_tokens":null,"instructions":null}`,
			check: func(t *testing.T, r *Request) { assert.Zero(t, r.MaxTokens); assert.Len(t, r.Texts, 1) }},
		{name: "max_output_tokens zero", body: `{"model":"m","input":"x","max_output_tokens":0}`, err: "invalid 'max_output_tokens'"},
		{name: "max_output_tokens overflow", body: `{"model":"m","input":"x","max_output_tokens":99999999999999999999}`, err: "invalid 'max_output_tokens'"},
		{name: "max_output_tokens too large", body: `{"model":"m","input":"x","max_output_tokens":2147483649}`, err: "invalid 'max_output_tokens'"},
		{name: "max_output_tokens float", body: `{"model":"m","input":"x","max_output_tokens":1.5}`, err: "invalid 'max_output_tokens'"},
		{name: "input number", body: `{"model":"m","input":5}`, err: "invalid 'input'"},
		{name: "input item not object", body: `{"model":"m","input":["x"]}`, err: "invalid 'input[0]'"},
		{name: "content number", body: `{"model":"m","input":[{"role":"user","content":5}]}`, err: "invalid 'input.0.content'"},
		{name: "instructions number", body: `{"model":"m","input":"x","instructions":5}`, err: "invalid 'instructions'"},
		{name: "duplicate input", body: `{"model":"m","input":"a","input":"b"}`, err: "duplicate"},
		{name: "duplicate nested", body: `{"model":"m","input":[{"role":"user","content":"a","content":"b"}]}`, err: "duplicate"},
		{name: "no model", body: `{"input":"x"}`, err: "'model'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(OpResponses, []byte(tc.body))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, r)
		})
	}
}

func TestResponsesDuplicateKeyIsErrDuplicateKey(t *testing.T) {
	_, err := ParseRequest(OpResponses, []byte(`{"model":"m","input":"a","max_output_tokens":1,"max_output_tokens":9}`))
	assert.True(t, errors.Is(err, ErrDuplicateKey), "got %v", err)
}

func TestResponsesRewrites(t *testing.T) {
	r, err := ParseRequest(OpResponses, []byte(`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"mail a@b.c"}]}],"stream":true,"max_output_tokens":500}`))
	require.NoError(t, err)
	require.NoError(t, r.SetText(0, "mail [EMAIL_1]"))
	assert.Equal(t, "mail [EMAIL_1]", gjson.GetBytes(r.Body, "input.0.content.0.text").Str)

	added, err := r.EnsureUsageInStream()
	require.NoError(t, err)
	assert.False(t, added, "a Responses stream always ends with its usage")
	assert.False(t, gjson.GetBytes(r.Body, "stream_options").Exists())

	require.NoError(t, r.CapMaxTokens(100))
	assert.Equal(t, int64(100), gjson.GetBytes(r.Body, "max_output_tokens").Int())
	assert.False(t, gjson.GetBytes(r.Body, "max_tokens").Exists())
	assert.Equal(t, int64(100), r.MaxTokens)

	r, err = ParseRequest(OpResponses, []byte(`{"model":"m","input":"x"}`))
	require.NoError(t, err)
	require.NoError(t, r.CapMaxTokens(64))
	assert.Equal(t, int64(64), gjson.GetBytes(r.Body, "max_output_tokens").Int(), "added when absent")
	assert.False(t, gjson.GetBytes(r.Body, "max_tokens").Exists())
}

const responseJSON = `{"id":"resp_1","object":"response","created_at":1,"status":"completed","error":null,"incomplete_details":null,"model":"gpt-x-2025","output":[{"type":"reasoning","id":"rs_1","summary":[]},{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"Hello there","annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":6},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":40},"total_tokens":123}}`

func TestParseResponsesJSON(t *testing.T) {
	want := Usage{InputTokens: 36, OutputTokens: 87, CachedInputTokens: 6, ReasoningTokens: 40}
	r, err := ParseResponse([]byte(responseJSON))
	require.NoError(t, err)
	assert.False(t, r.IsError, `"error": null is a success`)
	assert.True(t, r.HasUsage)
	assert.Equal(t, want, r.Usage)
	assert.Equal(t, "gpt-x-2025", r.Model)
	assert.Equal(t, []Text{{Role: "assistant", Path: "output.1.content.0.text", Text: "Hello there"}}, r.Texts)

	u, err := ParseUsage([]byte(responseJSON))
	require.NoError(t, err)
	assert.False(t, u.IsError)
	assert.Equal(t, want, u.Usage)

	failed, err := ParseUsage([]byte(`{"object":"response","status":"failed","error":{"code":"server_error","message":"x"}}`))
	require.NoError(t, err)
	assert.True(t, failed.IsError)

	// Chat usage still reads the chat fields.
	chat, err := ParseUsage([]byte(`{"usage":{"prompt_tokens":3,"completion_tokens":4}}`))
	require.NoError(t, err)
	assert.Equal(t, Usage{InputTokens: 3, OutputTokens: 4}, chat.Usage)
}

func TestParseResponsesEvent(t *testing.T) {
	e, err := ParseResponsesEvent([]byte(`{"type":"response.output_text.delta","item_id":"msg_1","output_index":2,"content_index":0,"delta":"Hel","sequence_number":4}`))
	require.NoError(t, err)
	assert.Equal(t, "Hel", e.Delta)
	assert.Equal(t, "delta", e.DeltaPath)
	assert.Equal(t, int64(2), e.OutputIndex)
	assert.False(t, e.HasUsage)

	e, err = ParseResponsesEvent([]byte(`{"type":"response.created","response":{"model":"gpt-x","usage":null,"output":[]}}`))
	require.NoError(t, err)
	assert.False(t, e.HasUsage)
	assert.False(t, e.Final)
	assert.Equal(t, "gpt-x", e.Model)

	e, err = ParseResponsesEvent([]byte(`{"type":"response.completed","response":` + responseJSON + `}`))
	require.NoError(t, err)
	assert.True(t, e.Final)
	assert.True(t, e.HasUsage)
	assert.Equal(t, Usage{InputTokens: 36, OutputTokens: 87, CachedInputTokens: 6, ReasoningTokens: 40}, e.Usage)
	assert.Equal(t, []Text{{Role: "assistant", Path: "response.output.1.content.0.text", Text: "Hello there"}}, e.Texts)

	e, err = ParseResponsesEvent([]byte(`{"type":"response.output_text.done","output_index":0,"text":"Hello there"}`))
	require.NoError(t, err)
	assert.Equal(t, []Text{{Role: "assistant", Path: "text", Text: "Hello there"}}, e.Texts)

	e, err = ParseResponsesEvent([]byte(`{"type":"response.output_item.done","item":{"type":"message","content":[{"type":"output_text","text":"x"}]}}`))
	require.NoError(t, err)
	assert.Equal(t, "item.content.0.text", e.Texts[0].Path)

	e, err = ParseResponsesEvent([]byte(`{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error"},"usage":null}}`))
	require.NoError(t, err)
	assert.True(t, e.Final)
	assert.True(t, e.IsError)

	e, err = ParseResponsesEvent([]byte(`{"type":"error","code":"x","message":"y"}`))
	require.NoError(t, err)
	assert.True(t, e.IsError)

	_, err = ParseResponsesEvent([]byte(`{"type":"response.completed","response":{"usage":{"input_tokens":1,"input_tokens":9}}}`))
	assert.ErrorIs(t, err, ErrDuplicateKey, "a sender cannot choose which count is billed")
	_, err = ParseResponsesEvent([]byte(`{"type":"response.output_text.delta","delta":"trunc`))
	assert.Error(t, err)
}

func TestResponsesDelta(t *testing.T) {
	e, err := ParseResponsesEvent(ResponsesDelta(3, `a"b`))
	require.NoError(t, err)
	assert.Equal(t, `a"b`, e.Delta)
	assert.Equal(t, int64(3), e.OutputIndex)
}

func FuzzParseResponsesEvent(f *testing.F) {
	f.Add([]byte(`{"type":"response.completed","response":` + responseJSON + `}`))
	f.Add([]byte(`{"type":"response.output_text.delta","output_index":0,"delta":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseResponsesEvent(data)
		if err != nil {
			return
		}
		for _, tx := range e.Texts {
			if got := gjson.GetBytes(data, tx.Path); got.Str != tx.Text {
				t.Fatalf("text path %q reads %q, want %q", tx.Path, got.Str, tx.Text)
			}
		}
	})
}

var responsesBody = []byte(`{"model":"small","instructions":"You are a helpful assistant.","max_output_tokens":256,"stream":true,"input":[` +
	strings.Repeat(`{"role":"user","content":[{"type":"input_text","text":"Tell me about the weather in Paris and Lyon today."}]},{"role":"assistant","content":"It is sunny in both cities, around twenty degrees."},`, 8) +
	`{"role":"user","content":"And tomorrow?"}]}`)

func BenchmarkParseResponsesRequest(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(responsesBody)))
	for b.Loop() {
		if _, err := ParseRequest(OpResponses, responsesBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponsesEventDelta(b *testing.B) {
	data := []byte(`{"type":"response.output_text.delta","item_id":"msg_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","output_index":0,"content_index":0,"delta":" weather","sequence_number":12}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponsesEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponsesEventCompleted(b *testing.B) {
	data := []byte(`{"type":"response.completed","sequence_number":40,"response":` + responseJSON + `}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponsesEvent(data); err != nil {
			b.Fatal(err)
		}
	}
}
