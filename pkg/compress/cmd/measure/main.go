// Command measure reports what prompt compression saves on conversations
// assembled from public corpora, and how long it takes per request.
//
//	go run ./pkg/compress/cmd/measure [-corpora DIR] [-conversations N] [-model gpt-4o]
//
// No multi-turn chat corpus is available offline, so the conversations are
// assembled from single-text corpora (see pkg/compress/README.md): a
// role-play persona prompt as the system message, ordinary prompts as user
// turns, news sentences as assistant turns, and configuration files as tool
// results. Every text is third-party; only the arrangement is ours. The
// single-turn set sends each ordinary prompt alone. Tokens are counted with
// the model's tokenizer (pkg/meter) over the request's prompt text.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/compress"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

// sets are the request sets measured.
type sets struct {
	single, multi [][]byte
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	dir := fs.String("corpora", "/work/shared/corpora", "directory of the corpora (one folder per corpus, data.jsonl each)")
	n := fs.Int("conversations", 200, "number of multi-turn conversations to assemble")
	model := fs.String("model", "gpt-4o", "model whose tokenizer counts tokens")
	budget := fs.Int64("budget", 1024, "max_prompt_tokens of the trimming run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := assemble(*dir, *n)
	if err != nil {
		return err
	}
	tok := meter.NewTokenizer()
	if err := tok.Preload(); err != nil {
		return err
	}
	count := func(text string) int64 {
		n, err := tok.CountTokens(*model, text)
		if err != nil {
			return meter.EstimateTokens(text)
		}
		return n
	}
	all := compress.Options{Whitespace: true, JSON: true, Dedupe: true}
	trim := all
	trim.MaxPromptTokens = *budget
	runs := []struct {
		set  string
		reqs [][]byte
		name string
		opts compress.Options
	}{
		{"single-turn", s.single, "whitespace+json", compress.Options{Whitespace: true, JSON: true}},
		{"multi-turn", s.multi, "whitespace+json", compress.Options{Whitespace: true, JSON: true}},
		{"multi-turn", s.multi, "+dedupe", all},
		{"multi-turn", s.multi, fmt.Sprintf("+dedupe, budget %d", *budget), trim},
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "set\trules\trequests\tchanged\ttokens before\ttokens after\tsaved\tsaved %\tsaved (estimate)\tµs/request (estimate counter)\t")
	for _, r := range runs {
		var before, after, estSaved int64
		changed := 0
		for _, body := range r.reqs {
			req, err := llm.ParseRequest(llm.OpChat, body)
			if err != nil {
				return err
			}
			res, err := compress.Apply(req, r.opts, count)
			if err != nil {
				return err
			}
			before += res.TokensBefore
			after += res.TokensAfter
			// What the ext_proc server reports: the same run counted with
			// meter.EstimateTokens.
			est, err := compress.Apply(req, r.opts, nil)
			if err != nil {
				return err
			}
			estSaved += est.Saved()
			if res.Changed {
				changed++
			}
		}
		us := timePerRequest(r.reqs, r.opts)
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%d\t%.1f\t\n", r.set, r.name, len(r.reqs), changed,
			before, after, before-after, 100*float64(before-after)/float64(max(before, 1)), estSaved, us)
	}
	return w.Flush()
}

// timePerRequest is the mean wall time of Apply (with the estimate counter,
// as without a tokenizer) over reqs, parse excluded.
func timePerRequest(reqs [][]byte, opts compress.Options) float64 {
	parsed := make([]*llm.Request, len(reqs))
	for i, b := range reqs {
		parsed[i], _ = llm.ParseRequest(llm.OpChat, b)
	}
	start := time.Now()
	rounds := 0
	for time.Since(start) < 500*time.Millisecond {
		for _, r := range parsed {
			_, _ = compress.Apply(r, opts, nil)
		}
		rounds++
	}
	return float64(time.Since(start).Microseconds()) / float64(rounds*len(parsed))
}

// assemble builds the single-turn and multi-turn request sets.
func assemble(dir string, conversations int) (sets, error) {
	var s sets
	prompts, err := texts(filepath.Join(dir, "injection-benign-mix", "data.jsonl"), "text", nil)
	if err != nil {
		return s, err
	}
	personas, err := texts(filepath.Join(dir, "injection-jackhhao", "data.jsonl"), "text", func(rec map[string]any) bool {
		t, _ := rec["text"].(string)
		return rec["label"] == "benign" && (strings.HasPrefix(t, "You are") || strings.HasPrefix(t, "Roleplay as") ||
			strings.HasPrefix(t, "Pretend to be") || strings.HasPrefix(t, "Act as"))
	})
	if err != nil {
		return s, err
	}
	news, err := texts(filepath.Join(dir, "cache-mrpc", "data.jsonl"), "a", nil)
	if err != nil {
		return s, err
	}
	var files []string
	for _, c := range []string{"secrets-secretlint", "secrets-noseyparker"} {
		f, err := texts(filepath.Join(dir, c, "data.jsonl"), "text", func(rec map[string]any) bool {
			t, _ := rec["text"].(string)
			return len(t) >= 200 // whole files and snippets, not bare tokens
		})
		if err != nil {
			return s, err
		}
		files = append(files, f...)
	}
	for _, p := range prompts {
		s.single = append(s.single, body([]map[string]any{{"role": "user", "content": p}}))
	}
	pi, ni, fi := 0, 0, 0
	next := func(list []string, i *int) string {
		t := list[*i%len(list)]
		*i++
		return t
	}
	for c := 0; c < conversations; c++ {
		msgs := []map[string]any{{"role": "system", "content": personas[c%len(personas)]}}
		turns := 2 + c%11
		for t := 0; t < turns; t++ {
			msgs = append(msgs, map[string]any{"role": "user", "content": next(prompts, &pi)})
			if t == turns-1 {
				break // the request ends on the user turn
			}
			if (c+t)%4 == 0 {
				id := fmt.Sprintf("call_%d_%d", c, t)
				msgs = append(msgs,
					map[string]any{"role": "assistant", "content": nil, "tool_calls": []map[string]any{{
						"id": id, "type": "function", "function": map[string]any{"name": "read_file", "arguments": `{"path":"config"}`}}}},
					map[string]any{"role": "tool", "tool_call_id": id, "content": next(files, &fi)})
			}
			reply := next(news, &ni) + " " + next(news, &ni) + " " + next(news, &ni)
			msgs = append(msgs, map[string]any{"role": "assistant", "content": reply})
		}
		s.multi = append(s.multi, body(msgs))
	}
	return s, nil
}

func body(msgs []map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": msgs}) // plain values: cannot fail
	return b
}

// texts reads field from every JSONL record of path that keep accepts.
func texts(path, field string, keep func(map[string]any) bool) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if keep != nil && !keep(rec) {
			continue
		}
		if t, ok := rec[field].(string); ok && t != "" {
			out = append(out, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no %q texts", path, field)
	}
	return out, nil
}
