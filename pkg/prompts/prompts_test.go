package prompts

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
)

// repoPrompts is the example prompt directory at the repository root.
const repoPrompts = "../../prompts"

func loadRepo(t testing.TB) *Registry {
	t.Helper()
	r, err := LoadDir(repoPrompts)
	require.NoError(t, err)
	return r
}

func TestResolve(t *testing.T) {
	r := loadRepo(t)
	tests := []struct {
		ref     string
		version int
		err     error
	}{
		{"support-answer", 2, nil},
		{"support-answer@1", 1, nil},
		{"support-answer@v2", 2, nil},
		{" code-review ", 1, nil},
		{"support-answer@9", 0, ErrUnknownPrompt},
		{"support-answer@x", 0, ErrUnknownPrompt},
		{"nope", 0, ErrUnknownPrompt},
		{"", 0, ErrUnknownPrompt},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			p, err := r.Resolve(tc.ref)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.version, p.Version)
		})
	}
	assert.Equal(t, []string{"code-review", "support-answer"}, r.Names())
	assert.Equal(t, []int{1, 2}, r.Versions("support-answer"))
}

func TestApply(t *testing.T) {
	r := loadRepo(t)
	v2, err := r.Resolve("support-answer@2")
	require.NoError(t, err)
	tests := []struct {
		name      string
		body      string
		vars      map[string]string
		err       error
		wantRoles []string
		system    string
		maxTokens int64
		field     string
	}{
		{
			name:      "defaults and injection order",
			body:      `{"model":"small","messages":[{"role":"user","content":"hi"}]}`,
			vars:      map[string]string{"product": "Acme Cloud"},
			wantRoles: []string{"system", "user", "assistant", "user"},
			system:    "You are the support assistant of Acme Cloud.\nAnswer in English, briefly, and link to the documentation when you can.\nNever promise refunds or credits; offer to open a ticket instead.\n",
			maxTokens: 512, field: "max_tokens",
		},
		{
			name:      "variable values are JSON-escaped",
			body:      `{"model":"auto","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`,
			vars:      map[string]string{"product": `"Q"\n`, "language": "Français"},
			wantRoles: []string{"system", "user", "assistant", "user"},
			system:    "You are the support assistant of \"Q\"\\n.\nAnswer in Français, briefly, and link to the documentation when you can.\nNever promise refunds or credits; offer to open a ticket instead.\n",
			maxTokens: 100, field: "max_tokens",
		},
		{
			name:      "max_completion_tokens capped",
			body:      `{"model":"small","max_completion_tokens":4000,"messages":[{"role":"user","content":"hi"}]}`,
			vars:      map[string]string{"product": "A"},
			wantRoles: []string{"system", "user", "assistant", "user"},
			maxTokens: 512, field: "max_completion_tokens",
		},
		{
			name:      "max_tokens after messages replaced",
			body:      `{"model":"small","messages":[{"role":"user","content":"hi"}],"max_tokens":9000,"n":1}`,
			vars:      map[string]string{"product": "A"},
			wantRoles: []string{"system", "user", "assistant", "user"},
			maxTokens: 512, field: "max_tokens",
		},
		{
			name:      "max_tokens null replaced",
			body:      ` {"max_tokens":null,"model":"small","messages":[{"role":"user","content":"hi"}]}`,
			vars:      map[string]string{"product": "A"},
			wantRoles: []string{"system", "user", "assistant", "user"},
			maxTokens: 512, field: "max_tokens",
		},
		{
			name:      "empty client messages",
			body:      `{"model":"small","messages":[ ]}`,
			vars:      map[string]string{"product": "A"},
			wantRoles: []string{"system", "user", "assistant"},
			maxTokens: 512, field: "max_tokens",
		},
		{name: "missing variable", body: `{"model":"small","messages":[]}`, err: ErrMissingVariable},
		{name: "unknown variable", body: `{"model":"small","messages":[]}`, vars: map[string]string{"product": "A", "tone": "x"}, err: ErrUnknownVariable},
		{name: "model not allowed", body: `{"model":"large","messages":[]}`, vars: map[string]string{"product": "A"}, err: ErrModelNotAllowed},
		{name: "not chat", body: `{"model":"small","prompt":"hi"}`, err: ErrNotChat},
		{name: "not json object", body: `[1]`, err: ErrNotChat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v2.Apply([]byte(tc.body), tc.vars)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.True(t, gjson.ValidBytes(out), string(out))
			var roles []string
			for _, m := range gjson.GetBytes(out, "messages").Array() {
				roles = append(roles, m.Get("role").Str)
			}
			assert.Equal(t, tc.wantRoles, roles)
			if tc.system != "" {
				assert.Equal(t, tc.system, gjson.GetBytes(out, "messages.0.content").Str)
			}
			assert.Equal(t, "Open Billing > Invoices; each invoice can be downloaded as PDF.", gjson.GetBytes(out, "messages.2.content").Str)
			assert.Contains(t, string(out), `Billing > Invoices`, "no HTML escaping")
			assert.Equal(t, tc.maxTokens, gjson.GetBytes(out, tc.field).Int())
			if len(tc.wantRoles) == 4 {
				assert.Equal(t, "hi", gjson.GetBytes(out, "messages.3.content").Str)
			}
		})
	}
}

func TestParseVars(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  bool
	}{
		{``, nil, false},
		{`{"product":"Acme","n":3,"b":true}`, map[string]string{"product": "Acme", "n": "3", "b": "true"}, false},
		{`{"a":{"b":1}}`, nil, true},
		{`{"a":null}`, nil, true},
		{`[1]`, nil, true},
		{`{"a":`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVars(tc.in)
			if tc.err {
				assert.ErrorIs(t, err, ErrInvalidVariables)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, each must appear
	}{
		{"syntax", "name: x\ncurrent: 1\nversions: [\n", []string{"bad.yaml:3:"}},
		{"unknown field", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    sytem: hi\n", []string{"bad.yaml:5:", "sytem"}},
		{"unknown nested field", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: hi\n    model:\n      max_token: 5\n", []string{"bad.yaml:7:", "max_token"}},
		{"undeclared placeholder", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: hi {{who}}\n", []string{"bad.yaml:4:", "{{who}}", "not a declared variable"}},
		{"unclosed placeholder", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: hi {{who\n", []string{"bad.yaml:4:", "unclosed"}},
		{"no current", "name: x\nversions:\n  - version: 1\n    system: hi\n", []string{"bad.yaml:1:", "current"}},
		{"current missing", "name: x\ncurrent: 3\nversions:\n  - version: 1\n    system: hi\n", []string{"bad.yaml:1:", "version 3 does not exist"}},
		{"duplicate version", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: a\n  - version: 1\n    system: b\n", []string{"bad.yaml:6:", "defined twice"}},
		{"bad role and empty", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    few_shot: [{role: bot, content: hi}]\n  - version: 2\n", []string{"bad.yaml:4:", "role \"bot\"", "bad.yaml:6:", "needs a system prompt"}},
		{"bad name", "name: 'a b'\ncurrent: 1\nversions:\n  - version: 1\n    system: hi\n", []string{"bad.yaml:1:", "name"}},
		{"required with default", "name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: hi {{a}}\n    variables: [{name: a, required: true, default: z}]\n", []string{"bad.yaml:4:", "required and has a default"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(tc.yaml), 0o600))
			_, err := LoadDir(dir)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadDuplicateName(t *testing.T) {
	dir := t.TempDir()
	y := []byte("name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: hi\n")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), y, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yml"), y, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("ignored"), 0o600))
	_, err := LoadDir(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already defined")
}

func TestDiff(t *testing.T) {
	r := loadRepo(t)
	v1, _ := r.Resolve("support-answer@1")
	v2, _ := r.Resolve("support-answer@2")
	want := `--- support-answer@1
+++ support-answer@2
-current: false
+current: true
-model.max_tokens: 256
+model.max_tokens: 512
-variables: [product (required)]
+variables: [product (required), language="English"]
-changelog: Initial support prompt.
+changelog: Answer in the customer's language; never promise refunds.
@@ system @@
 You are the support assistant of {{product}}.
-Answer briefly and link to the documentation when you can.
+Answer in {{language}}, briefly, and link to the documentation when you can.
+Never promise refunds or credits; offer to open a ticket instead.
`
	assert.Equal(t, want, Diff(v1, v2))
	assert.Equal(t, "--- support-answer@2\n+++ support-answer@2\n", Diff(v2, v2))

	var out bytes.Buffer
	require.NoError(t, RunDiff(repoPrompts, []string{"diff", "support-answer@1", "support-answer@2"}, &out))
	assert.Equal(t, want, out.String())
	assert.ErrorIs(t, RunDiff(repoPrompts, []string{"support-answer@1"}, &out), ErrUsage)
	assert.ErrorIs(t, RunDiff(repoPrompts, []string{"support-answer@1", "nope@1"}, &out), ErrUnknownPrompt)
}

func TestLineDiff(t *testing.T) {
	tests := []struct {
		a, b []string
		want string
	}{
		{nil, []string{"x"}, "+x"},
		{[]string{"x"}, nil, "-x"},
		{[]string{"a", "b", "c"}, []string{"a", "c", "d"}, " a-b c+d"},
	}
	for _, tc := range tests {
		var got string
		for _, op := range lineDiff(tc.a, tc.b) {
			got += string(op.kind) + op.text
		}
		assert.Equal(t, tc.want, got)
	}
}

func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(repoPrompts, "*.yaml"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: x\ncurrent: 1\nversions:\n  - version: 1\n    system: '{{a}} {{ b }}'\n    variables: [{name: a}, {name: b, default: ''}]\n"))
	f.Add([]byte("name: x\ncurrent: 1\nversions: [{version: 1, system: '{{'}]"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		fam, name, err := parseFile("f.yaml", data)
		if err != nil {
			if !bytes.Contains([]byte(err.Error()), []byte("f.yaml:")) {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		p := fam.versions[fam.current]
		if p == nil || p.Name != name {
			t.Fatalf("current %d not resolvable", fam.current)
		}
		// A loaded prompt must apply to a valid chat body and keep it valid
		// JSON, given every variable.
		vars := map[string]string{}
		for _, v := range p.Variables {
			vars[v.Name] = "v\"\n"
		}
		model := "m"
		if len(p.Allowed) > 0 {
			model = p.Allowed[0]
		}
		body, _ := jsonBody(model)
		out, err := p.Apply(body, vars)
		if err != nil {
			if errors.Is(err, ErrModelNotAllowed) {
				return // allowed alias with characters sjson escapes differently
			}
			t.Fatalf("apply: %v", err)
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
	})
}

func jsonBody(model string) ([]byte, error) {
	return []byte(`{"model":` + string(jsonQuote(model)) + `,"messages":[{"role":"user","content":"hi"}]}`), nil
}

func jsonQuote(s string) []byte { return append(append([]byte{'"'}, jsonEscape(s)...), '"') }

func TestApplyExactBody(t *testing.T) {
	r := loadRepo(t)
	p, err := r.Resolve("code-review")
	require.NoError(t, err)
	out, err := p.Apply([]byte(`{"model":"auto","messages":[{"role":"user","content":"diff"}],"stream":true}`), nil)
	require.NoError(t, err)
	assert.Equal(t, `{"max_tokens":2048,"model":"auto","messages":[{"role":"system","content":"You review Go code changes. List bugs first, then risky\nchanges, then style. Quote the line you comment on. Say \"LGTM\" when\nyou find nothing.\n"},{"role":"user","content":"diff"}],"stream":true}`, string(out))
}
