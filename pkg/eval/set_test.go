package eval_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/eval"
)

func TestCheckEval(t *testing.T) {
	schemaCheck := eval.Check{Type: eval.CheckJSONSchema, Schema: map[string]any{"type": "object", "required": []any{"a"}}}
	tests := []struct {
		name  string
		check eval.Check
		reply string
		ok    bool
	}{
		{"exact trims space", eval.Check{Type: eval.CheckExact, Value: "OK"}, " OK\n", true},
		{"exact is case sensitive", eval.Check{Type: eval.CheckExact, Value: "OK"}, "ok", false},
		{"exact ignore case", eval.Check{Type: eval.CheckExact, Value: "OK", IgnoreCase: true}, "ok", true},
		{"contains", eval.Check{Type: eval.CheckContains, Value: "Paris"}, "It is Paris.", true},
		{"contains missing", eval.Check{Type: eval.CheckContains, Value: "Paris"}, "It is paris.", false},
		{"contains ignore case", eval.Check{Type: eval.CheckContains, Value: "Paris", IgnoreCase: true}, "PARIS", true},
		{"regex", eval.Check{Type: eval.CheckRegex, Value: `^\d{3}$`}, "123", true},
		{"regex miss", eval.Check{Type: eval.CheckRegex, Value: `^\d{3}$`}, "1234", false},
		{"json schema", schemaCheck, `{"a": 1}`, true},
		{"json in a code fence", schemaCheck, "```json\n{\"a\": 1}\n```", true},
		{"json schema violation", schemaCheck, `{"b": 1}`, false},
		{"not json", schemaCheck, `a: 1`, false},
		{"trailing data", schemaCheck, `{"a": 1} {"a": 2}`, false},
		{"unknown type", eval.Check{Type: "semantic"}, "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check.Eval(tt.reply)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}

func TestParseSetValidation(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the joined error; nil = valid
	}{
		{name: "valid list form", yaml: "- {id: a, prompt: hi, checks: [{type: contains, value: hi}]}"},
		{name: "valid mapping form", yaml: "name: x\ncases:\n- {id: a, messages: [{role: user, content: hi}], expected: hi}"},
		{name: "empty", yaml: "name: x", want: []string{"no cases"}},
		{name: "every problem reported", yaml: `
cases:
- {prompt: hi, checks: [{type: contains, value: x}]}
- {id: b, checks: [{type: contains, value: x}]}
- {id: b, prompt: p, messages: [{role: user, content: x}], checks: [{type: contains, value: x}]}
- {id: c, prompt: p}
- {id: d, messages: [{role: robot, content: x}], checks: [{type: regex, value: "("}]}
- {id: e, prompt: p, checks: [{type: fuzzy}, {type: contains}, {type: json_schema}]}`,
			want: []string{"missing id", "duplicate id", "exactly one of prompt and messages", "nothing to score", `unknown role "robot"`, "regex", `unknown check type "fuzzy"`, "contains needs a value", "json_schema needs a schema"}},
		{name: "not yaml", yaml: "cases: [", want: []string{"invalid golden set"}},
		{name: "unknown field type", yaml: "cases: {id: 1}", want: []string{"invalid golden set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := eval.ParseSet([]byte(tt.yaml))
			if tt.want == nil {
				require.NoError(t, err)
				assert.Len(t, s.Cases, 1)
				return
			}
			require.ErrorIs(t, err, eval.ErrInvalidSet)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestLoadSet(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}
	tests := []struct {
		name    string
		path    string
		setName string
		cases   int
		wantErr string
	}{
		{name: "example yaml", path: "../../evals/smoke.yaml", setName: "smoke", cases: 4},
		{name: "example jsonl", path: "../../evals/support.jsonl", setName: "support", cases: 3},
		{name: "jsonl comments and blanks", path: write("s.jsonl", "# c\n\n{\"id\":\"a\",\"prompt\":\"p\",\"expected\":\"e\"}\n"), setName: "s", cases: 1},
		{name: "jsonl unknown field", path: write("u.jsonl", `{"id":"a","prompt":"p","expect":"e"}`), wantErr: "line 1"},
		{name: "missing file", path: filepath.Join(dir, "none.yaml"), wantErr: "read golden set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := eval.LoadSet(tt.path)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.setName, s.Name)
			assert.Len(t, s.Cases, tt.cases)
		})
	}
}

func TestParseVerdict(t *testing.T) {
	tests := []struct {
		reply   string
		score   float64
		wantErr bool
	}{
		{reply: `{"score": 0.75, "reason": "ok"}`, score: 0.75},
		{reply: "```json\n{\"score\": 1, \"reason\": \"x\"}\n```", score: 1},
		{reply: `Verdict: {"score": 0}`, score: 0},
		{reply: `{"reason": "no score"}`, wantErr: true},
		{reply: `{"score": 1.5}`, wantErr: true},
		{reply: `{"score": -0.1}`, wantErr: true},
		{reply: `{"score": "high"}`, wantErr: true},
		{reply: `fine`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.reply, func(t *testing.T) {
			v, err := eval.ParseVerdict(tt.reply)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.score, v.Score)
		})
	}
}

func FuzzParseSet(f *testing.F) {
	for _, p := range []string{"../../evals/smoke.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("- {id: a, prompt: p, checks: [{type: json_schema, schema: {type: object, properties: {a: {items: {}}}}}]}"))
	f.Add([]byte("cases: [{id: a, prompt: p, checks: [{type: regex, value: '(a+)+'}]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := eval.ParseSet(data)
		if err != nil {
			return
		}
		// A valid set's checks must evaluate without panicking.
		for _, c := range s.Cases {
			for _, ch := range c.Checks {
				_ = ch.Eval(string(data))
				_ = ch.Eval(`{"a": [1, "x", null]}`)
			}
		}
	})
}

func FuzzParseVerdict(f *testing.F) {
	f.Add(`{"score": 0.5, "reason": "x"}`)
	f.Add("```{\"score\": 1}```")
	f.Add(`}{`)
	f.Fuzz(func(t *testing.T, reply string) {
		v, err := eval.ParseVerdict(reply)
		if err == nil && (v.Score < 0 || v.Score > 1) {
			t.Fatalf("score %v accepted", v.Score)
		}
	})
}
