package compress

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// FuzzApply checks on arbitrary message texts that Apply never fails on a
// valid request, that the request it returns is what a parse of its body
// gives, that it is idempotent, and that fenced code survives byte for byte.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"plain text", "a  b\t\tc  \n\n\n\nd", "```go\nx  :=  1\n```", "{\n \"a\" : [1, 2]\n}",
		"run `a  b`  now", "~~~\n  x\n~~~~", "```json\n{ \"k\" : 1 }\n```\n\n```json\n[ ]\n", "    code  line\ntext  line",
		"``` ```", "\r\n\r\n", "\u00a0 \u3000", "[1,\n2]trailing", "`` a ` b ``  c",
	} {
		f.Add(s, s+" again")
	}
	opts := Options{Whitespace: true, JSON: true, Dedupe: true, MaxPromptTokens: 60}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return // JSON encoding would replace the bytes: not a text a client can send
		}
		r := chat(t, msg{Role: "system", Content: a}, msg{Role: "user", Content: b}, msg{Role: "assistant", Content: a},
			msg{Role: "user", Content: b + "\n\n" + a})
		res, err := Apply(r, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Request
		want, err := llm.ParseRequest(llm.OpChat, got.Body)
		if err != nil {
			t.Fatalf("output does not parse: %v", err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("rebuilt request differs from a parse of its body")
		}
		again, err := Apply(got, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(again.Request.Body) != string(got.Body) {
			t.Fatalf("not idempotent:\n1: %s\n2: %s", got.Body, again.Request.Body)
		}
		for _, bl := range splitBlocks(a) {
			if bl.fence && !strings.Contains(strings.ToLower(strings.SplitN(bl.text, "\n", 2)[0]), "json") &&
				!strings.Contains(got.Texts[0].Text, bl.text) {
				t.Fatalf("fenced block changed in the system message: %q", bl.text)
			}
		}
	})
}
