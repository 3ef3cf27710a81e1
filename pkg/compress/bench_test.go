package compress

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkApply compresses a 12-turn conversation of about 6 KB with
// padded prose, a pretty-printed JSON tool result and a code block.
func BenchmarkApply(b *testing.B) {
	var msgs []msg
	msgs = append(msgs, msg{Role: "system", Content: "You are a careful  assistant.\n\n\n\nAnswer   briefly."})
	for i := 0; i < 12; i++ {
		msgs = append(msgs,
			msg{Role: "user", Content: fmt.Sprintf("Question %d:   what does   this do?\n\n```go\nfunc  f(x int)  int {\n\treturn  x * %d\n}\n```\n", i, i)},
			msg{Role: "assistant", Content: "", ToolCalls: toolCall(fmt.Sprintf("c%d", i))},
			msg{Role: "tool", ToolCallID: fmt.Sprintf("c%d", i), Content: "{\n  \"result\": \"ok\",\n  \"items\": [\n    1,\n    2,\n    3\n  ]\n}"},
			msg{Role: "assistant", Content: strings.Repeat("It multiplies   x by a constant.  ", 4)},
		)
	}
	msgs = append(msgs, msg{Role: "user", Content: "Thanks. And   now?"})
	r := chat(b, msgs...)
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"whitespace+json", Options{Whitespace: true, JSON: true}},
		{"all", Options{Whitespace: true, JSON: true, Dedupe: true}},
		{"all+budget", Options{Whitespace: true, JSON: true, Dedupe: true, MaxPromptTokens: 400}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportMetric(float64(len(r.Body)), "body-bytes")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Apply(r, bc.opts, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
