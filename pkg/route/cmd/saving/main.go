// Command saving measures what complexity routing would save on a mixed
// workload: the benign prompts of a JSONL corpus (one {"text","label",
// "category"} object per line; only label "benign" is used) plus synthetic
// long code tasks, each sent as a one-message chat request to the virtual
// alias "auto" (simple -> -small model, complex -> -large model). It prints
// the share of each tier and the cost of the workload with routing versus
// sending everything to the large model, at the built-in catalog prices.
//
//	go run ./pkg/route/cmd/saving
//
// Input tokens are counted with the model's tokenizer; output tokens are
// assumed per tier (-out-simple, -out-complex) and equal for both models, so
// the saving reflects price only, not answer length or quality.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/route"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "saving:", err)
		os.Exit(1)
	}
}

type item struct {
	text, source string
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("saving", flag.ContinueOnError)
	corpus := fs.String("corpus", "/work/shared/corpora/injection-benign-mix/data.jsonl", "JSONL corpus of benign prompts")
	synthetic := fs.Int("synthetic", 200, "number of synthetic long code tasks")
	small := fs.String("small", "gpt-4o-mini", "OpenAI model behind the small alias")
	large := fs.String("large", "gpt-4o", "OpenAI model behind the large alias")
	outSimple := fs.Int64("out-simple", 150, "assumed output tokens of a simple request")
	outComplex := fs.Int64("out-complex", 600, "assumed output tokens of a complex request")
	threshold := fs.Float64("threshold", route.DefaultTiers()[1].MinScore, "score from which a request is complex")
	seed := fs.Uint64("seed", 1, "seed of the synthetic tasks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	items, err := readCorpus(*corpus)
	if err != nil {
		return err
	}
	items = append(items, codeTasks(*synthetic, *seed)...)

	r, err := route.New(route.Config{
		Tiers: []route.Tier{{Name: "simple"}, {Name: "complex", MinScore: *threshold}},
		Virtual: map[string]route.Virtual{"auto": {Tiers: map[string]route.Target{
			"simple": {Alias: "small"}, "complex": {Alias: "large"},
		}}},
	})
	if err != nil {
		return err
	}
	cat, err := meter.BuiltinCatalog()
	if err != nil {
		return err
	}
	now := time.Now()
	pSmall, ok1 := cat.Lookup("openai", *small, now)
	pLarge, ok2 := cat.Lookup("openai", *large, now)
	if !ok1 || !ok2 {
		return fmt.Errorf("no catalog price for openai/%s or openai/%s", *small, *large)
	}
	tok := meter.NewTokenizer()

	type agg struct {
		n                int
		in, out          int64
		routed, allLarge meter.Money
	}
	byTier := map[string]*agg{}
	bySource := map[string]map[string]int{}
	var total agg
	for _, it := range items {
		body, err := sjson.SetBytes([]byte(`{"model":"auto","messages":[{"role":"user","content":""}]}`), "messages.0.content", it.text)
		if err != nil {
			return err
		}
		req, err := llm.ParseRequest(llm.OpChat, body)
		if err != nil {
			return err
		}
		d, _ := r.Route("bench", "auto", req)
		in, err := tok.CountTokens(*large, it.text)
		if err != nil {
			in = meter.EstimateTokens(it.text)
		}
		in += 7 // chat framing of one message
		out := *outSimple
		price := pSmall
		if d.Tier == "complex" {
			out, price = *outComplex, pLarge
		}
		u := meter.Usage{InputTokens: in, OutputTokens: out}
		a := byTier[d.Tier]
		if a == nil {
			a = &agg{}
			byTier[d.Tier] = a
		}
		for _, x := range []*agg{a, &total} {
			x.n++
			x.in += in
			x.out += out
			x.routed += meter.Cost(price, u)
			x.allLarge += meter.Cost(pLarge, u)
		}
		if bySource[it.source] == nil {
			bySource[it.source] = map[string]int{}
		}
		bySource[it.source][d.Tier]++
	}

	w := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "workload: %d requests (%d corpus + %d synthetic code tasks); small=%s large=%s; complex from score %.2f\n\n",
		total.n, total.n-*synthetic, *synthetic, *small, *large, *threshold)
	fmt.Fprintln(w, "tier\trequests\tshare\tinput tok\toutput tok\tcost routed $\tcost all-large $\t")
	for _, tier := range []string{"simple", "complex"} {
		a := byTier[tier]
		if a == nil {
			a = &agg{}
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f%%\t%d\t%d\t%.4f\t%.4f\t\n", tier, a.n, 100*float64(a.n)/float64(total.n), a.in, a.out, a.routed.USD(), a.allLarge.USD())
	}
	fmt.Fprintf(w, "total\t%d\t100.0%%\t%d\t%d\t%.4f\t%.4f\t\n", total.n, total.in, total.out, total.routed.USD(), total.allLarge.USD())
	if err := w.Flush(); err != nil {
		return err
	}
	saving := 1 - total.routed.USD()/total.allLarge.USD()
	fmt.Fprintf(stdout, "\nsaving vs all-%s: %.1f%%\n\nby source (simple/complex):\n", *large, 100*saving)
	sources := make([]string, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		fmt.Fprintf(stdout, "  %-40s %4d / %4d\n", s, bySource[s]["simple"], bySource[s]["complex"])
	}
	return nil
}

func readCorpus(path string) ([]item, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open corpus: %w", err)
	}
	defer f.Close()
	var out []item
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Text     string `json:"text"`
			Label    string `json:"label"`
			Category string `json:"category"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if rec.Label == "benign" && rec.Text != "" {
			cat, _, _ := strings.Cut(rec.Category, "/")
			out = append(out, item{text: rec.Text, source: cat})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read corpus: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("corpus has no benign texts")
	}
	return out, nil
}

// codeTasks builds n deterministic long code tasks: an instruction, then a
// fenced snippet of 5-40 functions (about 0.7-6 KiB).
func codeTasks(n int, seed uint64) []item {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	asks := []string{
		"Find the race condition in this code, explain why it happens and rewrite it to be safe for concurrent use:",
		"Refactor the following module to remove duplication, keep the public API, and add table-driven tests:",
		"Review this code: list every bug, then propose a design that handles errors and retries properly:",
		"Port this code to Rust and explain the ownership decisions step by step:",
		"This function is slow on large inputs. Analyze its complexity and implement a faster version:",
	}
	funcs := []string{
		"func (s *Store) Put(k string, v []byte) error {\n\tif s.m == nil {\n\t\ts.m = map[string][]byte{}\n\t}\n\ts.m[k] = v\n\treturn nil\n}\n",
		"def load(path):\n    with open(path) as f:\n        data = json.load(f)\n    return [x for x in data if x.get('id') is not None]\n",
		"function debounce(fn, ms) {\n  let t;\n  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };\n}\n",
		"SELECT u.id, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE o.created_at > now() - interval '30 days' GROUP BY u.id;\n",
		"public static int sum(int[] xs) {\n    int s = 0;\n    for (int i = 0; i <= xs.length; i++) { s += xs[i]; }\n    return s;\n}\n",
	}
	out := make([]item, n)
	for i := range out {
		var b strings.Builder
		b.WriteString(asks[rng.IntN(len(asks))])
		b.WriteString("\n```\n")
		for range 5 + rng.IntN(36) {
			b.WriteString(funcs[rng.IntN(len(funcs))])
		}
		b.WriteString("```\n")
		out[i] = item{text: b.String(), source: "synthetic-code-task"}
	}
	return out
}
