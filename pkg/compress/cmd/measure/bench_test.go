package main

import (
	"os"
	"testing"

	"github.com/tollgate-dev/tollgate/pkg/compress"
	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// BenchmarkAssembled runs Apply over the assembled multi-turn set (one op =
// one request); it needs the corpora (TOLLGATE_CORPORA, default
// /work/shared/corpora) and is skipped without them.
func BenchmarkAssembled(b *testing.B) {
	dir := os.Getenv("TOLLGATE_CORPORA")
	if dir == "" {
		dir = "/work/shared/corpora"
	}
	s, err := assemble(dir, 200)
	if err != nil {
		b.Skip("corpora not available:", err)
	}
	reqs := make([]*llm.Request, len(s.multi))
	for i, body := range s.multi {
		if reqs[i], err = llm.ParseRequest(llm.OpChat, body); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		opts compress.Options
	}{
		{"whitespace+json", compress.Options{Whitespace: true, JSON: true}},
		{"all", compress.Options{Whitespace: true, JSON: true, Dedupe: true}},
		{"all+budget1024", compress.Options{Whitespace: true, JSON: true, Dedupe: true, MaxPromptTokens: 1024}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := compress.Apply(reqs[i%len(reqs)], bc.opts, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseBaseline parses the same requests: the cost every request
// already pays, for scale.
func BenchmarkParseBaseline(b *testing.B) {
	dir := os.Getenv("TOLLGATE_CORPORA")
	if dir == "" {
		dir = "/work/shared/corpora"
	}
	s, err := assemble(dir, 200)
	if err != nil {
		b.Skip("corpora not available:", err)
	}
	n := 0
	for _, body := range s.multi {
		n += len(body)
	}
	b.ReportMetric(float64(n)/float64(len(s.multi)), "body-bytes/op")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := llm.ParseRequest(llm.OpChat, s.multi[i%len(s.multi)]); err != nil {
			b.Fatal(err)
		}
	}
}
