package llm

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

func TestOperationForPath(t *testing.T) {
	assert.Equal(t, OpChat, OperationForPath("/v1/chat/completions"))
	assert.Equal(t, OpChat, OperationForPath("/v1/chat/completions?x=1"))
	assert.Equal(t, OpCompletion, OperationForPath("/v1/completions"))
	assert.Equal(t, OpEmbedding, OperationForPath("/v1/embeddings"))
	assert.Equal(t, OpUnknown, OperationForPath("/v1/models"))
	assert.Equal(t, "chat", OpChat.String())
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name  string
		op    Operation
		body  string
		check func(t *testing.T, r *Request)
		err   string
	}{
		{name: "chat", op: OpChat, body: `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":10,"max_completion_tokens":20,"n":2,"temperature":0.5,"tools":[{"type":"function"}]}`,
			check: func(t *testing.T, r *Request) {
				assert.Equal(t, "m", r.Model)
				assert.True(t, r.Stream)
				assert.True(t, r.IncludeUsage)
				assert.Equal(t, int64(20), r.MaxTokens)
				assert.Equal(t, int64(2), r.N)
				assert.True(t, r.HasTemp)
				assert.Equal(t, 0.5, r.Temperature)
				assert.Equal(t, `[{"type":"function"}]`, r.ToolsJSON)
				require.Len(t, r.Texts, 2)
				assert.Equal(t, Text{Role: "system", Path: "messages.0.content", Text: "be brief"}, r.Texts[0])
				assert.Equal(t, Text{Role: "user", Path: "messages.1.content.0.text", Text: "hi"}, r.Texts[1])
			}},
		{name: "completion prompt array", op: OpCompletion, body: `{"model":"m","prompt":["a","b"]}`,
			check: func(t *testing.T, r *Request) {
				require.Len(t, r.Texts, 2)
				assert.Equal(t, "prompt.1", r.Texts[1].Path)
				assert.Equal(t, int64(1), r.N)
			}},
		{name: "embedding", op: OpEmbedding, body: `{"model":"e","input":"hello"}`,
			check: func(t *testing.T, r *Request) { assert.Equal(t, "hello", r.Texts[0].Text) }},
		{name: "escaped text", op: OpChat, body: `{"model":"m","messages":[{"role":"user","content":"a\"b\u00e9"}]}`,
			check: func(t *testing.T, r *Request) { assert.Equal(t, "a\"bé", r.Texts[0].Text) }},
		{name: "empty", op: OpChat, body: ``, err: "empty"},
		{name: "malformed", op: OpChat, body: `{"model":"m",`, err: "not valid JSON"},
		{name: "bad utf8", op: OpChat, body: "{\"model\":\"m\xff\"}", err: "UTF-8"},
		{name: "array body", op: OpChat, body: `[1]`, err: "JSON object"},
		{name: "no model", op: OpChat, body: `{"messages":[{"role":"user","content":"x"}]}`, err: "'model'"},
		{name: "model number", op: OpChat, body: `{"model":5}`, err: "invalid 'model'"},
		{name: "messages not array", op: OpChat, body: `{"model":"m","messages":"x"}`, err: "invalid 'messages'"},
		{name: "messages empty", op: OpChat, body: `{"model":"m","messages":[]}`, err: "must not be empty"},
		{name: "bad max_tokens", op: OpChat, body: `{"model":"m","max_tokens":-1,"messages":[{"role":"user","content":"x"}]}`, err: "max_tokens"},
		{name: "bad content", op: OpChat, body: `{"model":"m","messages":[{"role":"user","content":5}]}`, err: "messages.0.content"},
		{name: "bad n", op: OpChat, body: `{"model":"m","n":0,"messages":[{"role":"user","content":"x"}]}`, err: "'n'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRequest(tt.op, []byte(tt.body))
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			tt.check(t, r)
		})
	}
}

func TestRequestRewrites(t *testing.T) {
	r, err := ParseRequest(OpChat, []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"mail a@b.co"}],"max_completion_tokens":9000}`))
	require.NoError(t, err)
	added, err := r.EnsureUsageInStream()
	require.NoError(t, err)
	assert.True(t, added)
	require.NoError(t, r.SetText(0, "mail [EMAIL_1]"))
	require.NoError(t, r.CapMaxTokens(100))
	require.NoError(t, r.Set("model", "gpt-x"))

	again, err := ParseRequest(OpChat, r.Body)
	require.NoError(t, err)
	assert.True(t, again.IncludeUsage)
	assert.Equal(t, "mail [EMAIL_1]", again.Texts[0].Text)
	assert.Equal(t, int64(100), again.MaxTokens)
	assert.Equal(t, "gpt-x", again.Model)
	assert.False(t, gjson.GetBytes(r.Body, "max_tokens").Exists(), "capped the field the client used")

	// Already asked: nothing to strip later.
	r2, _ := ParseRequest(OpChat, []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`))
	added, _ = r2.EnsureUsageInStream()
	assert.False(t, added)
	// A smaller client limit stays.
	require.NoError(t, r2.CapMaxTokens(50))
	assert.False(t, gjson.GetBytes(r2.Body, "max_tokens").Exists() && gjson.GetBytes(r2.Body, "max_tokens").Int() != 50)
}

func TestParseResponse(t *testing.T) {
	r, err := ParseResponse([]byte(`{"id":"x","object":"chat.completion","model":"gpt-4o-2024-08-06","system_fingerprint":"fp_1","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":7}}}`))
	require.NoError(t, err)
	assert.Equal(t, Usage{InputTokens: 10, OutputTokens: 20, CachedInputTokens: 4, ReasoningTokens: 7}, r.Usage)
	assert.True(t, r.HasUsage)
	assert.Equal(t, "gpt-4o-2024-08-06", r.Model)
	assert.Equal(t, "fp_1", r.SystemFingerprint)
	assert.Equal(t, []Text{{Role: "assistant", Path: "choices.0.message.content", Text: "hello"}}, r.Texts)

	u, err := ParseUsage([]byte(`{"id":"x","model":"m","choices":[{"message":{"content":"hello"}}],"usage":{"prompt_tokens":10,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":4}},"system_fingerprint":"fp"}`))
	require.NoError(t, err)
	assert.Equal(t, Usage{InputTokens: 10, OutputTokens: 20, CachedInputTokens: 4}, u.Usage)
	assert.Equal(t, "m", u.Model)
	assert.Equal(t, "fp", u.SystemFingerprint)
	assert.Empty(t, u.Texts)

	e, err := ParseResponse([]byte(`{"error":{"message":"x"}}`))
	require.NoError(t, err)
	assert.True(t, e.IsError)
	_, err = ParseResponse([]byte(`{"id":`))
	assert.True(t, errors.Is(err, ErrInvalidJSON))
}

func TestErrorJSON(t *testing.T) {
	b := ErrorJSON(`bad "x"`, TypeInvalidRequest, CodeInvalidJSON)
	assert.JSONEq(t, `{"error":{"message":"bad \"x\"","type":"invalid_request_error","param":null,"code":"invalid_json"}}`, string(b))
	assert.True(t, strings.HasPrefix(string(ErrorEvent("m", "t", "c")), "data: {\"error\""))
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"max_tokens":5}`))
	f.Add([]byte(`{"model":"m","prompt":["a",1]}`))
	f.Add([]byte(`{"model":"m","input":[[1,2]]}`))
	f.Add([]byte("{\"model\":\"\xff\"}"))
	f.Add([]byte(`{"model":"m","messages":[{"content":"\ud800"}]}`))
	f.Add([]byte(`{"model":"m","max_tokens":1,"max\u005ftokens":500,"messages":[{"role":"user","content":"x"}]}`))
	f.Add([]byte(`{"model":"m","n":4611686018427387904,"max_completion_tokens":2,"max_tokens":3}`))
	f.Add([]byte(`{"model":"m","x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`))
	f.Add([]byte(`{"model":"m","max_completion_tokens":7,"max_tokens":5,"n":2,"messages":[{"role":"user","content":[{"type":"image_url"},{"type":"text","text":"b"}]},{"role":"tool","content":null},{"role":"user","content":"c"}]}`))
	f.Add([]byte(`{"model":"m","prompt":"one","max_tokens":null}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, op := range []Operation{OpChat, OpCompletion, OpEmbedding} {
			r, err := ParseRequest(op, body)
			if err != nil {
				continue
			}
			if r.Model == "" {
				t.Fatal("accepted a request without model")
			}
			if r.MaxTokens < 0 || r.N < 1 {
				t.Fatalf("accepted max tokens %d, n %d", r.MaxTokens, r.N)
			}
			// What the gateway inspects, meters and redacts must be what
			// the provider reads: a body with a repeated key (where a
			// provider keeping the last duplicate would read values the
			// gateway did not look at) is never accepted.
			dup := hasDuplicateKeys(body)
			if dup {
				t.Fatalf("accepted a body with a repeated key: %s", body)
			}
			if err := providerView(op, r, body); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			for i := range r.Texts {
				if err := r.SetText(i, "[X]"); err != nil {
					t.Fatalf("rewrite of extracted path %q failed: %v", r.Texts[i].Path, err)
				}
			}
			if err := providerView(op, r, r.Body); err != nil {
				t.Fatalf("after redaction, %v: %s", err, r.Body)
			}
			if _, err := r.EnsureUsageInStream(); err != nil {
				t.Fatal(err)
			}
			if !gjson.ValidBytes(r.Body) {
				t.Fatalf("rewrites produced invalid JSON: %q", r.Body)
			}
			// A capped body reparses, without a duplicate, at or below the cap.
			if err := r.CapMaxTokens(7); err != nil {
				t.Fatal(err)
			}
			again, err := ParseRequest(op, r.Body)
			if err != nil {
				t.Fatalf("capped body does not reparse: %v: %q", err, r.Body)
			}
			if again.MaxTokens < 1 || again.MaxTokens > 7 {
				t.Fatalf("capped body has max tokens %d: %q", again.MaxTokens, r.Body)
			}
		}
	})
}

func chatBody(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"`)
	words := []string{"please", "summarise", "the", "quarterly", "report", "for", "our", "team", "meeting", "tomorrow"}
	for i := 0; b.Len() < size-10; i++ {
		b.WriteString(words[i%len(words)])
		b.WriteByte(' ')
	}
	b.WriteString(`"}]}`)
	return []byte(b.String())
}

func BenchmarkParseRequest2KiB(b *testing.B) {
	body := chatBody(2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseRequest(OpChat, body); err != nil {
			b.Fatal(err)
		}
	}
}
