// Command bench measures the semantic cache's accuracy on the paraphrase
// corpora: for every pair it stores a's answer and looks up b through the
// real Cache API (each pair in its own tenant, so pairs cannot hit each
// other), and reports the hit rate on duplicates and the false-hit rate on
// non-duplicates, with and without the difference guard, for the shipped
// mode (verifier on) and for the cosine-only mode (verifier off).
//
// The tables shipped in pkg/cache (idf.bin, entity.bin) are fitted on the
// training split of cache-qqp (its first 70% of lines) by -write-tables; cache-qqp numbers are
// reported on the held-out 30%, the other corpora are entirely held out.
//
//	go run ./pkg/cache/cmd/bench                     # accuracy table
//	go run ./pkg/cache/cmd/bench -sweep              # plus a threshold sweep
//	go run ./pkg/cache/cmd/bench -write-tables pkg/cache
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/cache/internal/pairs"
)

type record = pairs.Pair

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	corpora := fs.String("corpora", "../shared/corpora", "directory holding cache-*/data.jsonl")
	threshold := fs.Float64("threshold", 0, "cosine threshold of the cosine-only mode (0 = cache.DefaultThreshold)")
	writeTables := fs.String("write-tables", "", "fit the IDF and entity tables on the cache-qqp training split, write idf.bin and entity.bin into this directory and exit")
	sweep := fs.Bool("sweep", false, "also print a threshold sweep (pairwise, same embedder and guard)")
	split := fs.String("split", "heldout", "cache-qqp split to report: heldout or train")
	embedURL := fs.String("embedder-url", "", "also measure the cosine-only mode with an OpenAI-compatible embeddings endpoint at this base URL (e.g. a fakeprovider's http://127.0.0.1:8081/v1)")
	embedModel := fs.String("embedder-model", "text-embedding-3-small", "model sent to -embedder-url")
	if err := fs.Parse(args); err != nil {
		return err
	}
	qqp, err := pairs.Load(filepath.Join(*corpora, "cache-qqp", "data.jsonl"))
	if err != nil {
		return err
	}
	cut := pairs.TrainCut(len(qqp))
	if *writeTables != "" {
		docs := make([]string, 0, 2*cut)
		for _, r := range qqp[:cut] {
			docs = append(docs, r.A, r.B)
		}
		idf := cache.NewIDF(docs)
		if err := os.WriteFile(filepath.Join(*writeTables, "idf.bin"), idf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write idf: %w", err)
		}
		if err := os.WriteFile(filepath.Join(*writeTables, "entity.bin"), idf.EntityBytes(), 0o644); err != nil {
			return fmt.Errorf("write entity table: %w", err)
		}
		fmt.Fprintf(out, "wrote idf.bin and entity.bin to %s from %d documents (cache-qqp lines 1-%d)\n", *writeTables, len(docs), cut)
		return nil
	}
	sets := []struct {
		name string
		recs []record
	}{}
	switch *split {
	case "heldout":
		sets = append(sets, struct {
			name string
			recs []record
		}{fmt.Sprintf("cache-qqp (held-out, lines %d-%d)", cut+1, len(qqp)), qqp[cut:]})
	case "train":
		sets = append(sets, struct {
			name string
			recs []record
		}{fmt.Sprintf("cache-qqp (train, lines 1-%d)", cut), qqp[:cut]})
	default:
		return fmt.Errorf("unknown -split %q", *split)
	}
	for _, name := range []string{"cache-mrpc", "cache-stsb", "cache-gptcache-mock"} {
		recs, err := pairs.Load(filepath.Join(*corpora, name, "data.jsonl"))
		if err != nil {
			return err
		}
		sets = append(sets, struct {
			name string
			recs []record
		}{name, recs})
	}

	if *threshold == 0 {
		*threshold = cache.DefaultThreshold
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(out, "built-in embedder; shipped = verifier (cosine floor %.2f) + difference guard; cosine-only = threshold %.2f\n", cache.VerifierFloor, *threshold)
	fmt.Fprintln(tw, "corpus\tmode\tdup pairs\thit rate (no guard)\thit rate (guard)\tnon-dup pairs\tfalse hits (no guard)\tfalse hits (guard)\t")
	for _, s := range sets {
		modes := []struct {
			name      string
			verifier  bool
			threshold float64
			embedder  cache.EmbedderConfig
		}{{"shipped (verifier)", true, 0, cache.EmbedderConfig{}}, {"cosine-only", false, *threshold, cache.EmbedderConfig{}}}
		if *embedURL != "" {
			modes = append(modes, struct {
				name      string
				verifier  bool
				threshold float64
				embedder  cache.EmbedderConfig
			}{"openai " + *embedModel, false, *threshold, cache.EmbedderConfig{Kind: cache.EmbedderOpenAI, URL: *embedURL, Model: *embedModel}})
		}
		for _, m := range modes {
			res, err := evaluate(s.recs, m.verifier, m.threshold, m.embedder)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t\n", s.name, m.name,
				res.dup, pct(res.hitNoGuard, res.dup), pct(res.hitGuard, res.dup),
				res.nondup, pct(res.falseNoGuard, res.nondup), pct(res.falseGuard, res.nondup))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if *sweep {
		for _, s := range sets[:1] {
			fmt.Fprintf(out, "\nsweep on %s (guard on)\n", s.name)
			sweepTable(out, s.recs)
		}
	}
	return nil
}

func pct(n, d int) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%d)", 100*float64(n)/float64(d), n)
}

type result struct {
	dup, nondup              int
	hitNoGuard, hitGuard     int
	falseNoGuard, falseGuard int
}

func requestBody(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model":       "m",
		"temperature": 0,
		"messages":    []map[string]string{{"role": "user", "content": text}},
	})
	return b
}

const answer = `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}`

// evaluate stores a and looks up b for every pair, in two caches that differ
// only in the difference guard. Each pair gets its own tenant. threshold 0
// is the shipped one for the mode; a zero embedder is the built-in one.
func evaluate(recs []record, verifier bool, threshold float64, embedder cache.EmbedderConfig) (result, error) {
	var res result
	mk := func(guard bool) (*cache.Cache, error) {
		cfg := cache.DefaultConfig()
		if embedder.Kind != "" {
			embedder.Timeout = 10 * time.Second
			cfg.Semantic.Embedder = embedder
		}
		cfg.Exact.Enabled = true
		cfg.Semantic.Verifier = verifier
		cfg.Semantic.Threshold = threshold
		cfg.Semantic.DifferenceGuard = guard
		return cache.New(cfg, nil)
	}
	withGuard, err := mk(true)
	if err != nil {
		return res, err
	}
	defer withGuard.Close()
	noGuard, err := mk(false)
	if err != nil {
		return res, err
	}
	defer noGuard.Close()
	ctx := context.Background()
	for i, r := range recs {
		tenant := fmt.Sprintf("pair-%d", i)
		hits := [2]bool{}
		for j, c := range []*cache.Cache{noGuard, withGuard} {
			ra, err := c.NewRequest(tenant, "m", requestBody(r.A))
			if err != nil {
				return res, err
			}
			if err := c.Store(ctx, ra, []byte(answer)); err != nil {
				return res, err
			}
			rb, err := c.NewRequest(tenant, "m", requestBody(r.B))
			if err != nil {
				return res, err
			}
			_, hits[j] = c.Lookup(ctx, rb)
		}
		if r.Duplicate {
			res.dup++
			res.hitNoGuard += b2i(hits[0])
			res.hitGuard += b2i(hits[1])
		} else {
			res.nondup++
			res.falseNoGuard += b2i(hits[0])
			res.falseGuard += b2i(hits[1])
		}
	}
	return res, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sweepTable(out io.Writer, recs []record) {
	emb := cache.NewBuiltinEmbedder(cache.DefaultIDF())
	idf := cache.DefaultIDF()
	type pair struct {
		sim   float64
		dup   bool
		veto  string
		exact bool
	}
	pairs := make([]pair, 0, len(recs))
	ctx := context.Background()
	vetoes := map[string][2]int{}
	for _, r := range recs {
		va, _ := emb.Embed(ctx, r.A)
		vb, _ := emb.Embed(ctx, r.B)
		var s float64
		for i := range va {
			s += float64(va[i]) * float64(vb[i])
		}
		p := pair{sim: s, dup: r.Duplicate, veto: cache.GuardVeto(r.A, r.B, idf), exact: strings.TrimSpace(r.A) == strings.TrimSpace(r.B)}
		pairs = append(pairs, p)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "threshold\thit rate (no guard)\tfalse hits (no guard)\thit rate (guard)\tfalse hits (guard)\t")
	for _, t := range []float64{0.5, 0.6, 0.7, 0.75, 0.8, 0.84, 0.86, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96} {
		var dup, nondup, h0, f0, h1, f1 int
		for _, p := range pairs {
			above := p.sim >= t
			pass := above && p.veto == ""
			if p.dup {
				dup++
				h0 += b2i(above)
				h1 += b2i(pass)
			} else {
				nondup++
				f0 += b2i(above)
				f1 += b2i(pass)
			}
		}
		fmt.Fprintf(tw, "%.2f\t%s\t%s\t%s\t%s\t\n", t, pct(h0, dup), pct(f0, nondup), pct(h1, dup), pct(f1, nondup))
	}
	_ = tw.Flush()
	for _, p := range pairs {
		if p.sim >= 0.5 && p.veto != "" {
			v := vetoes[p.veto]
			if p.dup {
				v[0]++
			} else {
				v[1]++
			}
			vetoes[p.veto] = v
		}
	}
	keys := make([]string, 0, len(vetoes))
	for k := range vetoes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(out, "\nvetoes among pairs with similarity >= 0.50 (duplicates vetoed / non-duplicates vetoed):")
	for _, k := range keys {
		fmt.Fprintf(out, "  %-14s %d / %d\n", k, vetoes[k][0], vetoes[k][1])
	}
}
