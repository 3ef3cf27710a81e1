package route

import (
	"strings"
	"testing"
)

func BenchmarkRoute2KiB(b *testing.B) {
	r, err := New(baseConfig())
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("Please explain step by step how to refactor func Put(k string) { m[k] = 3+4 } safely. ", 24)[:2048]
	req := chat(b, userMsg(text))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Route("acme", "auto", req); !ok {
			b.Fatal("not routed")
		}
	}
}
