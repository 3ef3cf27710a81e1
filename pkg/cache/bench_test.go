package cache

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/hnsw"
)

// request2KiB is a realistic ~2 KiB chat request: system prompt, a short
// history and a question.
func request2KiB() []byte {
	sys := strings.Repeat("You are a helpful assistant for an online store. Answer briefly and cite the policy. ", 12)
	return []byte(fmt.Sprintf(`{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":256,"stream":true,`+
		`"stream_options":{"include_usage":true},"messages":[{"role":"system","content":%q},`+
		`{"role":"user","content":"Hi, I bought a jacket last week."},{"role":"assistant","content":"Thanks! How can I help with your jacket?"},`+
		`{"role":"user","content":"Can I return it if I already removed the tags? It does not fit and I would like a refund to my card."}]}`, sys))
}

func BenchmarkNewRequest2KiB(b *testing.B) {
	body := request2KiB()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRequest("acme", "gpt", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExactLookup is the request-path cost of a hit: key derivation on
// a 2 KiB body plus the exact lookup.
func BenchmarkExactLookup(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Semantic.Enabled = false
	c, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := request2KiB()
	ctx := context.Background()
	r, _ := c.NewRequest("acme", "gpt", body)
	if err := c.Store(ctx, r, completionJSON("Yes, within 30 days.")); err != nil {
		b.Fatal(err)
	}
	b.Run("lookup-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := c.Lookup(ctx, r); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("derive+lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := c.NewRequest("acme", "gpt", body)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := c.Lookup(ctx, r); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// syntheticPrompts returns n distinct question-like prompts over a large
// made-up vocabulary (deterministic).
func syntheticPrompts(n int, seed int64) []string {
	rng := rand.New(rand.NewSource(seed))
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fe", "gu", "hi", "ja"}
	vocab := make([]string, 20000)
	for i := range vocab {
		var sb strings.Builder
		for j := 0; j < 2+rng.Intn(3); j++ {
			sb.WriteString(syll[rng.Intn(len(syll))])
		}
		vocab[i] = sb.String()
	}
	starts := []string{"how do i", "what is the best way to", "why does", "can i", "what is"}
	out := make([]string, n)
	for i := range out {
		words := make([]string, 4+rng.Intn(6))
		for j := range words {
			words[j] = vocab[rng.Intn(len(vocab))]
		}
		out[i] = starts[rng.Intn(len(starts))] + " " + strings.Join(words, " ") + "?"
	}
	return out
}

// semanticCache builds a cache whose one partition holds n entries.
func semanticCache(b *testing.B, n int) (*Cache, []string) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Exact.MaxBytes = 256 << 20
	cfg.Semantic.MaxEntriesPerPartition = n
	c, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	prompts := syntheticPrompts(n, 1)
	ctx := context.Background()
	start := time.Now()
	for _, p := range prompts {
		r, err := c.NewRequest("acme", "gpt", []byte(chatBody(p)))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Store(ctx, r, completionJSON("answer")); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built %d entries in %s", n, time.Since(start))
	return c, prompts
}

// benchSizes are the index sizes measured; 100k entries take minutes to
// build, so they run only with TOLLGATE_BENCH_LARGE=1 (CI runs every
// benchmark once with -benchtime=1x).
func benchSizes() []int {
	if os.Getenv("TOLLGATE_BENCH_LARGE") == "1" {
		return []int{10_000, 100_000}
	}
	return []int{10_000}
}

// BenchmarkSemanticLookup is the request-path cost of the semantic tier
// (embed, search, difference guard, verifier, body fetch) for queries that
// miss the exact tier. "variant" queries differ from a stored prompt only in
// case and punctuation (the verifier accepts: hits); "appended" queries add a
// word (the verifier rejects all four candidates: the worst case, misses).
func BenchmarkSemanticLookup(b *testing.B) {
	for _, n := range benchSizes() {
		c, prompts := semanticCache(b, n)
		for _, q := range []struct {
			name string
			make func(string) string
		}{
			{"variant", func(p string) string { return strings.ToUpper(p[:1]) + strings.TrimSuffix(p[1:], "?") + "!" }},
			{"appended", func(p string) string { return strings.TrimSuffix(p, "?") + " please" }},
		} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, q.name), func(b *testing.B) {
				ctx := context.Background()
				reqs := make([]*Request, 256)
				for i := range reqs {
					reqs[i], _ = c.NewRequest("acme", "gpt", []byte(chatBody(q.make(prompts[(i*7919)%len(prompts)]))))
				}
				hits := 0
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				cpu0 := cpuTime()
				for b.Loop() {
					if _, ok := c.Lookup(ctx, reqs[i%len(reqs)]); ok {
						hits++
					}
					i++
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
				b.ReportMetric(float64(hits)/float64(i), "hit-ratio")
			})
		}
		c.Close()
	}
}

func BenchmarkEmbedBuiltin2KiB(b *testing.B) {
	e := NewBuiltinEmbedder(DefaultIDF())
	text := strings.Repeat("Can I return a jacket if I already removed the tags and it does not fit? ", 30)[:2048]
	ctx := context.Background()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Embed(ctx, text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexSearch compares this package's graph with github.com/coder/hnsw
// on the same vectors (built-in embeddings of synthetic prompts), search only.
// Set CACHE_BENCH_CODER=1 to include coder/hnsw (its build is slow).
func BenchmarkIndexSearch(b *testing.B) {
	for _, n := range benchSizes() {
		e := NewBuiltinEmbedder(DefaultIDF())
		prompts := syntheticPrompts(n, 1)
		vecs := make([][]float32, n)
		for i, p := range prompts {
			vecs[i], _ = e.Embed(context.Background(), p)
		}
		queries := make([][]float32, 256)
		for i := range queries {
			queries[i], _ = e.Embed(context.Background(), strings.TrimSuffix(prompts[(i*7919)%n], "?")+" please")
		}
		b.Run(fmt.Sprintf("tollgate/entries=%d", n), func(b *testing.B) {
			g := newGraph(builtinDims)
			for _, v := range vecs {
				g.add(v)
			}
			recall := recallAt1(vecs, queries, func(q []float32) int {
				r := g.search(q, 1)
				if len(r) == 0 {
					return -1
				}
				return int(r[0].id)
			})
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				g.search(queries[i%len(queries)], semanticCandidates)
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(i), "cpu-ns/op")
			b.ReportMetric(recall, "recall@1")
		})
		if !benchCoder() {
			continue
		}
		b.Run(fmt.Sprintf("coder-hnsw/entries=%d", n), func(b *testing.B) {
			g := hnsw.NewGraph[int]()
			for i, v := range vecs {
				g.Add(hnsw.MakeNode(i, v))
			}
			recall := recallAt1(vecs, queries, func(q []float32) int {
				r := g.Search(q, 1)
				if len(r) == 0 {
					return -1
				}
				return r[0].Key
			})
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				g.Search(queries[i%len(queries)], semanticCandidates)
				i++
			}
			b.ReportMetric(recall, "recall@1")
		})
	}
}

// cpuTime is this process's user+system CPU time; benchmarks report it per
// op next to wall time because the shared CI machines are oversubscribed.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func recallAt1(vecs, queries [][]float32, search func([]float32) int) float64 {
	found := 0
	for _, q := range queries {
		if search(q) == bruteForce(vecs, nil, q) {
			found++
		}
	}
	return float64(found) / float64(len(queries))
}

func benchCoder() bool { return os.Getenv("CACHE_BENCH_CODER") == "1" }
