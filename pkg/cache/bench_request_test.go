package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// The request-path benchmarks of the semantic tier on 2 KiB chat requests:
// a system prompt and a long last user turn (a question with pasted
// context, ~1.5 KiB), the shape whose features cost the most.

// benchWords is a vocabulary of common English words (low IDF) mixed with
// made-up rare ones (unknown-word IDF) in the generated prompts.
var benchWords = strings.Fields(`the a to of and in is for on with how what why can i my it this that
be do does should would could will not from by at as or if when where which who return refund order
jacket size fit card payment shipping delivery account password login error code server database
query table index memory cache request response timeout retry network client service price cost
plan monthly annual invoice tax address email phone support ticket update install version release
build test deploy config file folder path user admin permission role team project issue bug fix
feature python java golang rust docker kubernetes cluster node pod container image registry secret`)

// longPrompt returns a deterministic ~1.5 KiB question over benchWords and
// made-up words.
func longPrompt(rng *rand.Rand) string {
	var sb strings.Builder
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po"}
	for sb.Len() < 1500 {
		if rng.Intn(5) == 0 {
			for j := 0; j < 2+rng.Intn(3); j++ {
				sb.WriteString(syll[rng.Intn(len(syll))])
			}
		} else {
			sb.WriteString(benchWords[rng.Intn(len(benchWords))])
		}
		if rng.Intn(12) == 0 {
			sb.WriteString(". ")
		} else {
			sb.WriteByte(' ')
		}
	}
	sb.WriteString("how do I fix it?")
	return sb.String()
}

var benchSystem = strings.Repeat("You are a helpful support assistant. Answer briefly. ", 9)

// body2KiB is a ~2 KiB chat request whose last user turn is prompt.
func body2KiB(prompt string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "gpt-4o-mini", "temperature": 0,
		"messages": []any{
			map[string]any{"role": "system", "content": benchSystem},
			map[string]any{"role": "user", "content": prompt},
		},
	})
	return b
}

// requestCache is a cache whose one partition holds n 2 KiB requests'
// prompts, with a per-partition cap of n (Store evicts at the bound).
func requestCache(b *testing.B, n int) (*Cache, []string) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Exact.MaxBytes = 256 << 20
	cfg.Semantic.MaxEntriesPerPartition = n
	c, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	prompts := make([]string, n)
	ctx := context.Background()
	for i := range prompts {
		prompts[i] = longPrompt(rng)
		r, err := c.NewRequest("acme", "gpt", body2KiB(prompts[i]))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Store(ctx, r, completionJSON("answer")); err != nil {
			b.Fatal(err)
		}
	}
	return c, prompts
}

// freshRequests derives n requests (each op gets its own: a Request keeps
// what its lookup computed for its store).
func freshRequests(b *testing.B, c *Cache, n int, prompt func(i int) string) []*Request {
	b.Helper()
	reqs := make([]*Request, n)
	for i := range reqs {
		r, err := c.NewRequest("acme", "gpt", body2KiB(prompt(i)))
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = r
	}
	return reqs
}

// benchRequestEntries is the partition size of the 2 KiB request benchmarks.
const benchRequestEntries = 2000

// BenchmarkLookup2KiB measures Lookup of a hit (the stored prompt with
// other case and punctuation) and of a miss (a changed detail: the verifier
// rejects) in a partition of 2,000 prompts. The key derivation is not
// included (see BenchmarkNewRequest2KiB).
func BenchmarkLookup2KiB(b *testing.B) { benchRequest2KiB(b, "lookup") }

// BenchmarkStore2KiB measures Store of a new prompt (embed, index at the
// partition's bound) and miss+store, the path of a request that goes
// upstream.
func BenchmarkStore2KiB(b *testing.B) { benchRequest2KiB(b, "store") }

func benchRequest2KiB(b *testing.B, which string) {
	c, prompts := requestCache(b, benchRequestEntries)
	defer c.Close()
	ctx := context.Background()
	variant := func(i int) string {
		p := prompts[(i*7919)%len(prompts)]
		return strings.ToUpper(p[:1]) + strings.TrimSuffix(p[1:], "?") + "!"
	}
	changed := func(i int) string {
		p := prompts[(i*7919)%len(prompts)]
		return strings.TrimSuffix(p, "how do I fix it?") + fmt.Sprintf("why does kubernetes %d fail?", i)
	}
	rng := rand.New(rand.NewSource(2))
	fresh := func(int) string { return longPrompt(rng) }
	run := func(b *testing.B, prompt func(int) string, op func(r *Request) bool) {
		reqs := freshRequests(b, c, b.N, prompt)
		ok := 0
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := 0; i < b.N; i++ {
			if op(reqs[i]) {
				ok++
			}
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(ok)/float64(b.N), "hit-ratio")
	}
	lookup := func(r *Request) bool { _, ok := c.Lookup(ctx, r); return ok }
	store := func(r *Request) bool {
		if err := c.Store(ctx, r, completionJSON("answer")); err != nil {
			b.Fatal(err)
		}
		return false
	}
	if which == "lookup" {
		b.Run("hit", func(b *testing.B) { run(b, variant, lookup) })
		b.Run("miss", func(b *testing.B) { run(b, changed, lookup) })
		return
	}
	b.Run("new", func(b *testing.B) { run(b, fresh, store) })
	b.Run("miss+store", func(b *testing.B) {
		run(b, fresh, func(r *Request) bool { hit := lookup(r); store(r); return hit })
	})
}
