package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/tollgate-dev/tollgate/pkg/cache"
)

// sharedCandidates is how many nearest stored prompts a lookup checks, as
// the cache does with the verifier (verifierCandidates in pkg/cache; 4 in
// cosine-only mode, which gives the same baseline numbers here: above 0.94
// there is rarely a second candidate). With 4 for the verifier too, cache-qqp
// held-out non-duplicates got 1.3% hits instead of 0.8%.
const sharedCandidates = 1

// sharedResult counts lookups against one shared partition.
type sharedResult struct {
	dup, correct, wrong int // duplicate lookups: served own a / served another prompt's answer
	nondup, falseHit    int // non-duplicate lookups served anything
	identical           int // lookups whose text is stored verbatim (exact tier; always right, not counted above)
}

func (r sharedResult) String() string {
	return fmt.Sprintf("dup %s correct, %s another entry; non-dup %s false (%d identical-text lookups excluded)",
		pct(r.correct, r.dup), pct(r.wrong, r.dup), pct(r.falseHit, r.nondup), r.identical)
}

// accepter decides whether a candidate may be served.
type accepter func(query, cand string, cosine float64) bool

// evalShared stores every a of recs in one partition and looks up every b:
// exact match first, then the sharedCandidates nearest stored prompts (exact
// search) at or above floor, in order, the first one accept lets through is
// served. A duplicate lookup is correct when the served prompt is its own a
// (or the same text); anything served for a non-duplicate is a false hit.
// Lookups whose text is stored verbatim (the corpora repeat sentences across
// pairs) are served by the exact tier, are right by construction and are
// counted apart.
func evalShared(recs []record, floor float64, accept accepter) sharedResult {
	emb := cache.NewBuiltinEmbedder(cache.DefaultIDF())
	ctx := context.Background()
	texts := make([]string, len(recs))
	vecs := make([][]float32, len(recs))
	exact := map[string]int{}
	for i, r := range recs {
		texts[i] = fold(r.A)
		vecs[i], _ = emb.Embed(ctx, texts[i])
		if _, ok := exact[texts[i]]; !ok {
			exact[texts[i]] = i
		}
	}
	var res sharedResult
	type scored struct {
		i   int
		cos float64
	}
	var top []scored
	for _, r := range recs {
		q := fold(r.B)
		served := -1
		if _, ok := exact[q]; ok {
			res.identical++
			continue
		}
		qv, _ := emb.Embed(ctx, q)
		top = top[:0]
		for i, v := range vecs {
			var s float32
			for k := range v {
				s += v[k] * qv[k]
			}
			if float64(s) >= floor {
				top = append(top, scored{i, float64(s)})
			}
		}
		sort.Slice(top, func(a, b int) bool {
			if top[a].cos != top[b].cos {
				return top[a].cos > top[b].cos
			}
			return top[a].i < top[b].i
		})
		for _, c := range top[:min(sharedCandidates, len(top))] {
			if accept(q, texts[c.i], c.cos) {
				served = c.i
				break
			}
		}
		if r.Duplicate {
			res.dup++
			switch {
			case served < 0:
			case texts[served] == fold(r.A):
				res.correct++
			default:
				res.wrong++
			}
		} else {
			res.nondup++
			if served >= 0 {
				res.falseHit++
			}
		}
	}
	return res
}

func printShared(out io.Writer, name string, recs []record, v *cache.Verifier, floor float64) {
	idf := cache.DefaultIDF()
	base := evalShared(recs, cache.DefaultThreshold, func(q, c string, cos float64) bool {
		return cache.GuardVeto(q, c, idf) == ""
	})
	ver := evalShared(recs, floor, v.Accept)
	fmt.Fprintf(out, "shared partition, %s (%d entries): baseline %v\n", name, len(recs), base)
	fmt.Fprintf(out, "shared partition, %s (%d entries): verifier %v\n", name, len(recs), ver)
}
