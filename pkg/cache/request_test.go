package cache

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const baseBody = `{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`

func mustRequest(t *testing.T, tenant, alias, body string) *Request {
	t.Helper()
	r, err := NewRequest(tenant, alias, []byte(body))
	require.NoError(t, err)
	return r
}

func TestRequestKeys(t *testing.T) {
	base := mustRequest(t, "acme", "gpt", baseBody)
	tests := []struct {
		name          string
		tenant, alias string
		body          string
		sameExact     bool
		samePartition bool
	}{
		{"identical", "acme", "gpt", baseBody, true, true},
		{"key order and whitespace", "acme", "gpt",
			`{ "messages" : [ {"content":"You are terse.","role":"system"}, {"role":"user","content":"What is the capital of France?"} ], "temperature" : 0.0, "model":"gpt" }`, true, true},
		{"message whitespace folded", "acme", "gpt",
			`{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You  are\n terse. "},{"role":"user","content":"  What is the\tcapital of France?"}]}`, true, true},
		{"escaped text equals plain", "acme", "gpt",
			`{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of Fr\u0061nce?"}]}`, true, true},
		{"stream does not change key", "acme", "gpt",
			`{"model":"gpt","temperature":0,"stream":true,"stream_options":{"include_usage":true},"user":"u1","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, true, true},
		{"other tenant", "globex", "gpt", baseBody, false, false},
		{"other alias", "acme", "claude", baseBody, false, false},
		{"tenant/alias boundary", "acmeg", "pt", baseBody, false, false},
		{"other system prompt", "acme", "gpt",
			`{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You are verbose."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"tools", "acme", "gpt",
			`{"model":"gpt","temperature":0,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"temperature", "acme", "gpt",
			`{"model":"gpt","temperature":0.2,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"top_p", "acme", "gpt",
			`{"model":"gpt","temperature":0,"top_p":0.5,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"max_tokens", "acme", "gpt",
			`{"model":"gpt","temperature":0,"max_tokens":5,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"response_format", "acme", "gpt",
			`{"model":"gpt","temperature":0,"response_format":{"type":"json_object"},"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"seed", "acme", "gpt",
			`{"model":"gpt","temperature":0,"seed":12345678901234567,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
		{"other last turn", "acme", "gpt",
			`{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of Germany?"}]}`, false, true},
		{"earlier turns", "acme", "gpt",
			`{"model":"gpt","temperature":0,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"What is the capital of France?"}]}`, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRequest(t, tc.tenant, tc.alias, tc.body)
			assert.Equal(t, tc.sameExact, r.Key() == base.Key(), "exact key")
			assert.Equal(t, tc.samePartition, r.Partition() == base.Partition(), "partition")
		})
	}
}

func TestRequestSeedPrecision(t *testing.T) {
	a := mustRequest(t, "t", "m", `{"seed":12345678901234567,"messages":[{"role":"user","content":"x"}]}`)
	b := mustRequest(t, "t", "m", `{"seed":12345678901234568,"messages":[{"role":"user","content":"x"}]}`)
	assert.NotEqual(t, a.Key(), b.Key())
}

func TestRequestCacheable(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		ok     bool
		reason string
	}{
		{"plain", `{"messages":[{"role":"user","content":"x"}],"temperature":0.3}`, true, ""},
		{"no temperature counts as 1", `{"messages":[{"role":"user","content":"x"}]}`, true, ""},
		{"n=1", `{"n":1,"messages":[{"role":"user","content":"x"}]}`, true, ""},
		{"n=2", `{"n":2,"messages":[{"role":"user","content":"x"}]}`, false, ReasonMultipleChoices},
		{"hot", `{"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`, false, ReasonTemperature},
		{"no messages", `{"prompt":"x"}`, false, ReasonUnsupportedShape},
		{"empty messages", `{"messages":[]}`, false, ReasonUnsupportedShape},
		{"messages not array", `{"messages":"x"}`, false, ReasonUnsupportedShape},
		{"temperature string", `{"temperature":"0","messages":[{"role":"user","content":"x"}]}`, false, ReasonUnsupportedShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRequest(t, "t", "m", tc.body)
			ok, reason := r.Cacheable()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.reason, reason)
		})
	}
	r := mustRequest(t, "t", "m", `{"messages":[{"role":"user","content":"x"}]}`)
	r.Bypass("no_store")
	ok, reason := r.Cacheable()
	assert.False(t, ok)
	assert.Equal(t, "no_store", reason)
}

func TestRequestInvalid(t *testing.T) {
	for _, body := range []string{``, `[]`, `"x"`, `{"messages":[}`, `{"a":1} x`, `{"a":"\x01"}`} {
		_, err := NewRequest("t", "m", []byte(body))
		assert.Error(t, err, "body %q", body)
	}
}

func TestRequestStreamFlagsAndPrompt(t *testing.T) {
	tests := []struct {
		body         string
		stream       bool
		includeUsage bool
		prompt       string
	}{
		{`{"messages":[{"role":"user","content":" Hello \n world "}]}`, false, false, "Hello world"},
		{`{"stream":true,"messages":[{"role":"user","content":"hi"}]}`, true, false, "hi"},
		{`{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`, true, true, "a b"},
		{`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, false, false, ""},
		{`{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}`, false, false, ""},
	}
	for _, tc := range tests {
		r := mustRequest(t, "t", "m", tc.body)
		assert.Equal(t, tc.stream, r.Stream(), tc.body)
		assert.Equal(t, tc.includeUsage, r.IncludeUsage(), tc.body)
		assert.Equal(t, tc.prompt, r.Prompt(), tc.body)
	}
}

// FuzzCanonical checks the parser against encoding/json and that the
// canonical form is valid, idempotent and equal in value to the input.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		baseBody, `{}`, `[]`, `{"a":[1,2.50,-0,1e3,{"b":null,"a":true}]}`, `"\ud83d\ude00 \u00e9"`,
		`{"b":1,"a":2,"a ":3}`, `{"x":"\ud800"}`, `[1,[2,[3,[4]]]]`, ` {"k" : "v\n"} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr jtree
		err := parseJSON(data, &tr)
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("parse error %v but encoding/json valid=%v for %q", err, valid, data)
		}
		if err != nil {
			return
		}
		w := canonWriter{t: &tr}
		out := w.write(nil, 0, false)
		var a, b any
		require.NoError(t, json.Unmarshal(out, &b), "canonical form %q", out)
		require.NoError(t, json.Unmarshal(data, &a))
		if !containsLoneSurrogate(data) {
			assert.Equal(t, a, b, "value changed: %q -> %q", data, out)
		}
		var tr2 jtree
		require.NoError(t, parseJSON(out, &tr2))
		w2 := canonWriter{t: &tr2}
		assert.Equal(t, string(out), string(w2.write(nil, 0, false)), "not idempotent")
	})
}

func containsLoneSurrogate(b []byte) bool {
	// Both decoders replace lone surrogates, but may differ in how many
	// replacement characters they produce; skip value comparison then.
	for i := 0; i+5 < len(b); i++ {
		if b[i] == '\\' && b[i+1] == 'u' && (b[i+2] == 'd' || b[i+2] == 'D') {
			return true
		}
	}
	return false
}

func FuzzNewRequest(f *testing.F) {
	f.Add([]byte(baseBody))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}],"n":2}`))
	// The Cache derives keys with pooled scratch memory: after any other
	// body, it must give what a fresh derivation gives.
	c, err := New(DefaultConfig(), nil)
	require.NoError(f, err)
	f.Cleanup(func() { _ = c.Close() })
	prev := []byte(baseBody)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = c.NewRequest("t", "m", prev)
		prev = append(prev[:0], data...)
		r, err := NewRequest("t", "m", data)
		pooled, perr := c.NewRequest("t", "m", data)
		require.Equal(t, err == nil, perr == nil, "pooled and fresh derivations disagree on validity")
		if err != nil {
			return
		}
		_, _ = r.Cacheable()
		assert.Len(t, r.Key(), 64)
		assert.Equal(t, r.Key(), pooled.Key())
		assert.Equal(t, r.Partition(), pooled.Partition())
		assert.Equal(t, r.Prompt(), pooled.Prompt())
	})
}
