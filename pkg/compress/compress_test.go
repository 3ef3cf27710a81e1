package compress

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

type msg struct {
	Role       string `json:"role"`
	Content    any    `json:"content"`
	ToolCalls  []call `json:"tool_calls,omitempty"`
	ToolCallID string `json:"tool_call_id,omitempty"`
}

type call struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

func toolCall(id string) []call {
	c := call{ID: id, Type: "function"}
	c.Function.Name, c.Function.Arguments = "lookup", `{"q":"x"}`
	return []call{c}
}

func chat(t testing.TB, msgs ...msg) *llm.Request {
	t.Helper()
	body, err := json.Marshal(map[string]any{"model": "m", "max_tokens": 50, "messages": msgs})
	if err != nil {
		t.Fatal(err)
	}
	r, err := llm.ParseRequest(llm.OpChat, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// words counts whitespace-separated words: a simple, exact counter for
// budget tests.
func words(s string) int64 { return int64(len(strings.Fields(s))) }

func contents(t testing.TB, r *llm.Request) []string {
	t.Helper()
	var out []string
	gjson.GetBytes(r.Body, "messages").ForEach(func(_, m gjson.Result) bool {
		out = append(out, m.Get("role").Str+": "+m.Get("content").String())
		return true
	})
	return out
}

func TestRewriteRules(t *testing.T) {
	ws := Options{Whitespace: true}
	js := Options{JSON: true}
	both := Options{Whitespace: true, JSON: true}
	cases := []struct {
		name string
		opts Options
		in   string
		want string
	}{
		{"spaces and tabs fold", ws, "Hello   world\t\tagain  ", "Hello world again"},
		{"blank line runs collapse", ws, "\n\nfirst para\n\n\n\n\nsecond para\n\n", "first para\n\nsecond para"},
		{"single newlines stay", ws, "line one\nline two", "line one\nline two"},
		{"list indentation stays", ws, "items:\n  - a   b\n  - c", "items:\n  - a b\n  - c"},
		{"indented code line untouched", ws, "see:\n\n    x  =  1   \n\nend", "see:\n\n    x  =  1   \n\nend"},
		{"inline code untouched", ws, "run `ls   -la`   now", "run `ls   -la` now"},
		{"fenced code untouched", ws,
			"Fix  this:\n```go\nfunc  main() {\n\tx  :=  1   \n\n\n}\n```\nthanks   a lot",
			"Fix this:\n```go\nfunc  main() {\n\tx  :=  1   \n\n\n}\n```\nthanks a lot"},
		{"tilde fence untouched", ws, "a  b\n~~~\n  x   y\n~~~", "a b\n~~~\n  x   y\n~~~"},
		{"unclosed fence runs to the end", ws, "a  b\n```\n  x   y\n\n\n  z", "a b\n```\n  x   y\n\n\n  z"},
		{"whole-text JSON minified", js, "{\n  \"a\": 1,\n  \"b\": [1, 2.50, \"x  y\"]\n}\n", `{"a":1,"b":[1,2.50,"x  y"]}`},
		{"JSON array minified", js, "[ 1, 2 ]", "[1,2]"},
		{"invalid JSON kept", js, "{ not json }", "{ not json }"},
		{"fenced json minified", js, "Data:\n```json\n{\n  \"k\": \"v\"\n}\n```\ndone", "Data:\n```json\n{\"k\":\"v\"}\n```\ndone"},
		{"fenced json without whitespace rule keeps prose", js, "Data  :\n\n\n```json\n[ 1 ]\n```", "Data  :\n\n\n```json\n[1]\n```"},
		{"fenced non-json kept", both, "```python\nx = { 'a' : 1 }\n```", "```python\nx = { 'a' : 1 }\n```"},
		{"invalid fenced json kept", both, "```json\n{ \"a\": }\n```", "```json\n{ \"a\": }\n```"},
		{"whitespace-only text kept", ws, "   ", "   "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := rewrite(c.in, c.opts); got != c.want {
				t.Errorf("rewrite(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestApplyRewritesBodyOnce(t *testing.T) {
	r := chat(t,
		msg{Role: "system", Content: "You   are   helpful."},
		msg{Role: "user", Content: []map[string]string{{"type": "text", "text": "part   one"}, {"type": "image_url", "text": ""}}},
	)
	res, err := applyChecked(t, r, Options{Whitespace: true}, words)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Texts != 2 {
		t.Fatalf("Changed=%v Texts=%d, want true 2", res.Changed, res.Texts)
	}
	got := res.Request
	if s := gjson.GetBytes(got.Body, "messages.0.content").Str; s != "You are helpful." {
		t.Errorf("system = %q", s)
	}
	if s := gjson.GetBytes(got.Body, "messages.1.content.0.text").Str; s != "part one" {
		t.Errorf("part = %q", s)
	}
	if gjson.GetBytes(got.Body, "max_tokens").Int() != 50 || got.Model != "m" {
		t.Errorf("other fields changed: %s", got.Body)
	}
	if got.PromptText() != "You are helpful.\npart one\n\n" {
		t.Errorf("Texts not refreshed: %q", got.PromptText())
	}
	if string(r.Body) == string(got.Body) {
		t.Error("input body was modified in place or nothing changed")
	}
}

func TestToolResultsKeepWhitespace(t *testing.T) {
	table := "name   size\nfoo    10\nbarbaz  2"
	r := chat(t,
		msg{Role: "user", Content: "list   files"},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("c1")},
		msg{Role: "tool", ToolCallID: "c1", Content: table},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("c2")},
		msg{Role: "tool", ToolCallID: "c2", Content: "{\n  \"files\": 2\n}"},
	)
	res, err := applyChecked(t, r, Options{Whitespace: true, JSON: true}, words)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, res.Request)
	if got[0] != "user: list files" || got[2] != "tool: "+table || got[4] != `tool: {"files":2}` {
		t.Fatalf("got %q", got)
	}
}

func TestApplyNoChange(t *testing.T) {
	r := chat(t, msg{Role: "user", Content: "already tight"})
	res, err := applyChecked(t, r, Options{Whitespace: true, JSON: true, Dedupe: true, MaxPromptTokens: 100}, words)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Request != r || res.Saved() != 0 {
		t.Fatalf("unchanged request was rewritten: %+v", res)
	}
	// Not a chat request: untouched.
	c, err := llm.ParseRequest(llm.OpCompletion, []byte(`{"model":"m","prompt":"a    b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := applyChecked(t, c, Options{Whitespace: true}, nil); res.Changed {
		t.Fatal("completion prompt was rewritten")
	}
}

var para = "The quarterly report covers revenue, churn and the hiring plan for the next two quarters in detail."

func TestDedupe(t *testing.T) {
	r := chat(t,
		msg{Role: "system", Content: "Context:\n\n" + para},
		msg{Role: "user", Content: para + "\n\nSummarise it."},
		msg{Role: "assistant", Content: "Summary: fine."},
		msg{Role: "user", Content: para},                              // a whole repeated message
		msg{Role: "assistant", Content: "Same as before.\n\n" + para}, // a repeated paragraph
		msg{Role: "user", Content: para + "\n\nAnd now?"},             // the last user turn: never shortened
	)
	res, err := applyChecked(t, r, Options{Dedupe: true}, words)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"system: Context:\n\n" + para,
		"user: Summarise it.",
		"assistant: Summary: fine.",
		"user: " + Omitted,
		"assistant: Same as before.",
		"user: " + para + "\n\nAnd now?",
	}
	got := contents(t, res.Request)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if res.Duplicates != 3 {
		t.Errorf("Duplicates = %d, want 3", res.Duplicates)
	}
	// Short repeats stay.
	r = chat(t, msg{Role: "user", Content: "Thanks!"}, msg{Role: "assistant", Content: "ok"},
		msg{Role: "user", Content: "Thanks!"}, msg{Role: "assistant", Content: "ok"}, msg{Role: "user", Content: "q"})
	if res, _ := applyChecked(t, r, Options{Dedupe: true}, words); res.Changed {
		t.Errorf("short repeats dropped: %q", contents(t, res.Request))
	}
	// Repeated code blocks are blocks too.
	code := "```go\nfunc add(a, b int) int {\n\treturn a + b // the sum of both\n}\n```"
	r = chat(t, msg{Role: "user", Content: "Review:\n" + code}, msg{Role: "assistant", Content: "Looks right."},
		msg{Role: "tool", Content: code, ToolCallID: "x"}, msg{Role: "user", Content: "ok?"})
	res, _ = applyChecked(t, r, Options{Dedupe: true}, words)
	if got := contents(t, res.Request)[2]; got != "tool: "+Omitted {
		t.Errorf("repeated code block kept: %q", got)
	}
}

func TestTrimBudget(t *testing.T) {
	long := strings.Repeat("word ", 10)
	r := chat(t,
		msg{Role: "system", Content: "sys prompt"}, // 2
		msg{Role: "user", Content: "u1 " + long},   // 11
		msg{Role: "assistant", Content: "a1 " + long},
		msg{Role: "user", Content: "u2 " + long},
		msg{Role: "assistant", Content: "a2 " + long},
		msg{Role: "user", Content: "u3 " + long},
		msg{Role: "assistant", Content: "a3 " + long},
		msg{Role: "user", Content: "last question"}, // 2
	)
	// Fixed: sys 2 + last 2 = 4. Turns of 22 each: two fit in 50.
	res, err := applyChecked(t, r, Options{MaxPromptTokens: 50}, words)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, res.Request)
	roles := make([]string, len(got))
	for i, g := range got {
		roles[i] = strings.Fields(g)[0] + strings.Fields(g)[1]
	}
	if want := "system:sys|user:u2|assistant:a2|user:u3|assistant:a3|user:last"; strings.Join(roles, "|") != want {
		t.Fatalf("kept %s, want %s", strings.Join(roles, "|"), want)
	}
	if res.Trimmed != 2 || res.TokensAfter >= res.TokensBefore {
		t.Errorf("Trimmed=%d before=%d after=%d", res.Trimmed, res.TokensBefore, res.TokensAfter)
	}

	// A budget smaller than the kept minimum keeps exactly the minimum.
	res, _ = applyChecked(t, r, Options{MaxPromptTokens: 1}, words)
	if got := contents(t, res.Request); len(got) != 2 || got[1] != "user: last question" || !strings.HasPrefix(got[0], "system:") {
		t.Fatalf("minimum: %q", got)
	}
	// A budget that fits everything changes nothing.
	if res, _ := applyChecked(t, r, Options{MaxPromptTokens: 1000}, words); res.Changed {
		t.Fatal("fitting conversation trimmed")
	}
}

func TestTrimKeepsToolPairs(t *testing.T) {
	long := strings.Repeat("word ", 10)
	r := chat(t,
		msg{Role: "user", Content: "u1 " + long},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("call_a")},
		msg{Role: "tool", Content: "r1 " + long, ToolCallID: "call_a"},
		msg{Role: "assistant", Content: "a1 " + long},
		msg{Role: "user", Content: "u2 " + long},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("call_b")},
		msg{Role: "tool", Content: "r2 " + long, ToolCallID: "call_b"},
		msg{Role: "assistant", Content: "a2"},
		msg{Role: "user", Content: "last"},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("call_c")},
		msg{Role: "tool", Content: "r3", ToolCallID: "call_c"},
	)
	for _, budget := range []int64{0, 1, 10, 20, 30, 40, 50, 60, 80, 100} {
		if budget == 0 {
			continue
		}
		res, err := applyChecked(t, r, Options{MaxPromptTokens: budget}, words)
		if err != nil {
			t.Fatal(err)
		}
		calls := map[string]bool{}
		var roles []string
		gjson.GetBytes(res.Request.Body, "messages").ForEach(func(_, m gjson.Result) bool {
			roles = append(roles, m.Get("role").Str)
			m.Get("tool_calls.#.id").ForEach(func(_, id gjson.Result) bool { calls[id.Str] = true; return true })
			if id := m.Get("tool_call_id").Str; id != "" && !calls[id] {
				t.Errorf("budget %d: tool result %s without its call: %v", budget, id, roles)
			}
			return true
		})
		for id := range calls {
			if !strings.Contains(string(res.Request.Body), `"tool_call_id":"`+id+`"`) {
				t.Errorf("budget %d: call %s without its result", budget, id)
			}
		}
		n := len(roles)
		if n < 3 || roles[n-3] != "user" || roles[n-1] != "tool" || roles[0] != "user" {
			t.Errorf("budget %d: kept %v (the current turn must stay, history must start at a user turn)", budget, roles)
		}
	}
}

func TestTrimToolResultAcrossUserMessage(t *testing.T) {
	// A (malformed but seen) history where a user message sits between a
	// call and its result: the call's turn must stay with the result.
	long := strings.Repeat("word ", 10)
	r := chat(t,
		msg{Role: "user", Content: "u0 " + long},
		msg{Role: "assistant", Content: "", ToolCalls: toolCall("call_x")},
		msg{Role: "user", Content: "last " + long},
		msg{Role: "tool", Content: "rx", ToolCallID: "call_x"},
	)
	res, err := applyChecked(t, r, Options{MaxPromptTokens: 5}, words)
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(t, res.Request); len(got) != 4 {
		t.Fatalf("call separated from its result: %q", got)
	}
}

func TestDedupeAfterTrim(t *testing.T) {
	// The first copy of a paragraph sits in a trimmed turn: the later copy
	// must stay.
	r := chat(t,
		msg{Role: "user", Content: para},
		msg{Role: "assistant", Content: "noted"},
		msg{Role: "user", Content: "again:\n\n" + para},
		msg{Role: "assistant", Content: "noted again"},
		msg{Role: "user", Content: "q"},
	)
	res, err := applyChecked(t, r, Options{Dedupe: true, MaxPromptTokens: 25}, words)
	if err != nil {
		t.Fatal(err)
	}
	got := contents(t, res.Request)
	if len(got) != 3 || got[0] != "user: again:\n\n"+para {
		t.Fatalf("got %q", got)
	}
}

// applyChecked runs Apply and checks that the request it returns is exactly
// what llm.ParseRequest makes of the new body.
func applyChecked(t *testing.T, r *llm.Request, opts Options, count Counter) (Result, error) {
	t.Helper()
	res, err := Apply(r, opts, count)
	if err != nil || !res.Changed {
		return res, err
	}
	want, err := llm.ParseRequest(r.Op, res.Request.Body)
	if err != nil {
		t.Fatalf("rewritten body does not parse: %v\n%s", err, res.Request.Body)
	}
	if !reflect.DeepEqual(want, res.Request) {
		t.Fatalf("rebuilt request differs from a parse of its body:\n got %+v\nwant %+v", res.Request, want)
	}
	return res, nil
}
