package main

import (
	"os"
	"testing"

	"github.com/tollgate-dev/tollgate/pkg/compress"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
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
	tok := meter.NewTokenizer()
	if err := tok.Preload(); err != nil {
		b.Fatal(err)
	}
	bpe := func(text string) int64 {
		n, _ := tok.CountTokens("gpt-4o", text)
		return n
	}
	all := compress.Options{Whitespace: true, JSON: true, Dedupe: true}
	budget := all
	budget.MaxPromptTokens = 1024
	for _, bc := range []struct {
		name  string
		opts  compress.Options
		count compress.Counter
	}{
		{"whitespace+json", compress.Options{Whitespace: true, JSON: true}, nil},
		{"all", all, nil},
		{"all+budget1024", budget, nil},
		// As the ext_proc server runs it: counting with the BPE tokenizer.
		{"all/tokenizer", all, bpe},
		{"all+budget1024/tokenizer", budget, bpe},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := compress.Apply(reqs[i%len(reqs)], bc.opts, bc.count); err != nil {
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
