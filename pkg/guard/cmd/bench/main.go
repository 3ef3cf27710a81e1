// Command bench measures the guard's accuracy on the corpora in
// ../shared/corpora and prints Markdown tables:
//
//   - prompt injection: detection rate on attacks and false-positive rate
//     on benign texts at the shipped threshold, per corpus on the dev half
//     (train + validation: in-sample, the model was fit on it) and the
//     held-out test split (corpus.SplitOf), with the injection detector's
//     µs per KiB on those texts;
//   - PII and entities (pii, entities detectors): per-type recall and
//     precision on spans, separately on the dev half (train + validation
//     splits, which rules may be tuned on) and the held-out test split (a
//     finding counts when it overlaps a labelled span of the same type);
//   - secrets: recall per corpus and split (any secrets finding
//     overlapping the labelled span) and precision (findings overlapping no
//     labelled span, and any finding on a negative example, are false
//     positives);
//   - noise: PII, entity and secrets findings on the benign prompts, and
//     secrets findings on benign Go source (GOROOT/src, non-test files);
//   - speed: µs per KiB of each detector alone over the corpus texts.
//
// Run from anywhere in the repository (-corpora DIR when the corpora are
// not in ../shared/corpora next to it):
//
//	go run ./pkg/guard/cmd/bench
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/guard/corpus"
)

// labelTypes maps corpus labels to guard finding types.
var labelTypes = map[string]string{
	"EMAIL_ADDRESS":  guard.TypeEmail,
	"PHONE_NUMBER":   guard.TypePhone,
	"CREDIT_CARD":    guard.TypeCreditCard,
	"US_SSN":         guard.TypeSSN,
	"IBAN_CODE":      guard.TypeIBAN,
	"IP_ADDRESS":     guard.TypeIPAddress,
	"PERSON":         "PERSON",
	"STREET_ADDRESS": "ADDRESS",
	"ADDRESS":        "ADDRESS",
	"GPE":            "LOCATION",
	"LOCATION":       "LOCATION",
}

// goSourceTree is the Go distribution's source, $(go env GOROOT)/src, or ""
// when the go command is not on PATH.
func goSourceTree() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(strings.TrimSpace(string(out)), "src")
}

func main() {
	corpora := flag.String("corpora", "", "folder holding the corpora (default: "+corpus.DefaultRoot+" relative to the repository root)")
	verbose := flag.Bool("v", false, "list misses and false positives")
	threshold := flag.Float64("threshold", 0, "injection threshold (0 = shipped)")
	code := flag.String("code", goSourceTree(), "benign source tree for secrets false positives (non-test .go files; empty = skip)")
	flag.Parse()
	dir, err := corpus.Root(*corpora)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	root := &dir
	rules := map[string]guard.Action{}
	for name := range guard.DetectorTypes() {
		rules[name] = guard.ActionLog
	}
	g, err := guard.New(guard.Config{Rules: rules, InjectionThreshold: *threshold})
	if err != nil {
		log.Fatal(err)
	}
	if err := injection(g, *root, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := spans(g, *root, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := secrets(g, *root, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := noise(g, *root, *code, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := speed(*root); err != nil {
		log.Fatal(err)
	}
}

func has(fs []guard.Finding, detector string) bool {
	for _, f := range fs {
		if f.Detector == detector {
			return true
		}
	}
	return false
}

func pct(a, b int) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// half names the part of a corpus a record belongs to: "dev" (train and
// validation splits) or "test" (held out).
func half(text string) string {
	if corpus.SplitOf(text) == corpus.Test {
		return "test"
	}
	return "dev"
}

// injection prints detection and false-positive rates per corpus and half
// at g's threshold, and the injection detector's own cost per KiB on the
// corpus texts (best of 3 passes). The dev half is what the model was fit
// on, so its rates are in-sample; the trainer's cross-validation (cmd/train
// -cv-only) gives the out-of-sample estimate for it. -v lists dev-half
// misses and false positives only: the test half is reported, not studied.
func injection(g *guard.Guard, root string, verbose bool) error {
	dirs, err := corpus.Dirs(root, "injection-")
	if err != nil {
		return err
	}
	only, err := guard.New(guard.Config{Rules: map[string]guard.Action{guard.DetectorInjection: guard.ActionLog}, InjectionThreshold: g.InjectionThreshold()})
	if err != nil {
		return err
	}
	fmt.Printf("## Prompt injection (threshold %.2f; dev = train + validation, in-sample; test = held out)\n\n", g.InjectionThreshold())
	fmt.Println("| corpus | half | attacks | detected | benign | false positives | µs/KiB |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	type tally struct{ a, det, b, fp int }
	totals := map[string]*tally{"dev": {}, "test": {}}
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		for _, h := range []string{"dev", "test"} {
			var t tally
			var texts []string
			size := 0
			for _, r := range recs {
				if half(r.Text) != h {
					continue
				}
				texts = append(texts, r.Text)
				size += len(r.Text)
				hit := has(g.Scan(r.Text), guard.DetectorInjection)
				if r.Attack() {
					t.a++
					if hit {
						t.det++
					} else if verbose && h == "dev" {
						fmt.Printf("MISS %s: %.120q\n", d, r.Text)
					}
				} else {
					t.b++
					if hit {
						t.fp++
						if verbose && h == "dev" {
							fmt.Printf("FP %s: %.120q\n", d, r.Text)
						}
					}
				}
			}
			best := time.Duration(1 << 62)
			for range 3 {
				t0 := time.Now()
				for _, x := range texts {
					only.Scan(x)
				}
				best = min(best, time.Since(t0))
			}
			tt := totals[h]
			tt.a, tt.det, tt.b, tt.fp = tt.a+t.a, tt.det+t.det, tt.b+t.b, tt.fp+t.fp
			fmt.Printf("| %s | %s | %d | %s | %d | %s | %.1f |\n", d, h, t.a, pct(t.det, t.a), t.b, pct(t.fp, t.b), float64(best.Nanoseconds())/1e3/(float64(max(size, 1))/1024))
		}
	}
	for _, h := range []string{"dev", "test"} {
		t := totals[h]
		fmt.Printf("| **all** | %s | %d | %s | %d | %s | |\n", h, t.a, pct(t.det, t.a), t.b, pct(t.fp, t.b))
	}
	fmt.Println()
	return nil
}

func overlaps(s1, e1, s2, e2 int) bool { return s1 < e2 && s2 < e1 }

type counts struct{ labelled, found, exact, covered, findings, tp int }

func spans(g *guard.Guard, root string, verbose bool) error {
	dirs, err := corpus.Dirs(root, "pii-")
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, ts := range guard.DetectorTypes() {
		for _, t := range ts {
			known[t] = true
		}
	}
	type key struct{ corpus, half, typ string }
	byKey := map[key]*counts{}
	get := func(k key) *counts {
		if byKey[k] == nil {
			byKey[k] = &counts{}
		}
		return byKey[k]
	}
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		for _, r := range recs {
			h := half(r.Text)
			fs := g.Scan(r.Text)
			for _, e := range r.Entities {
				t, ok := labelTypes[e.Type]
				if !ok {
					continue
				}
				found, exact, covered := false, false, false
				for _, f := range fs {
					if f.Type == t && overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd) {
						found = true
						exact = exact || (f.Start == e.ByteStart && f.End == e.ByteEnd)
					}
					if f.Detector != guard.DetectorInjection && f.Start <= e.ByteStart && e.ByteEnd <= f.End {
						covered = true
					}
				}
				for _, c := range []*counts{get(key{d, h, t}), get(key{"all", h, t})} {
					c.labelled++
					if covered || exact {
						c.covered++
					}
					if found {
						c.found++
					}
					if exact {
						c.exact++
					}
				}
				if !found && verbose && h == "dev" {
					fmt.Printf("MISS %s %q in %.100q\n", t, e.Value, r.Text)
				}
			}
			for _, f := range fs {
				if f.Detector == guard.DetectorSecrets || f.Detector == guard.DetectorInjection {
					continue
				}
				tp := false
				for _, e := range r.Entities {
					if labelTypes[e.Type] == f.Type && overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd) {
						tp = true
					}
				}
				for _, c := range []*counts{get(key{d, h, f.Type}), get(key{"all", h, f.Type})} {
					c.findings++
					if tp {
						c.tp++
					}
				}
				if !tp && verbose && h == "dev" {
					fmt.Printf("FP %s %q in %.100q\n", f.Type, r.Text[f.Start:f.End], r.Text)
				}
			}
		}
	}
	fmt.Printf("## PII and entities (span overlap with a labelled span of the same type)\n\n")
	fmt.Println("`dev` = train + validation splits (rules may be tuned on it), `test` = held-out split (corpus.SplitOf).")
	fmt.Println("Types the guard cannot report are marked `n/a`. `redacted` counts labelled values that lie wholly inside")
	fmt.Println("some finding of any type (a city inside an ADDRESS finding is redacted with it), i.e. that would not reach the provider.")
	fmt.Println()
	fmt.Println("| corpus | type | half | labelled | recall | exact-span recall | redacted | findings | precision |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|---:|")
	keys := make([]key, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if (a.corpus == "all") != (b.corpus == "all") {
			return b.corpus == "all"
		}
		if a.corpus != b.corpus {
			return a.corpus < b.corpus
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		return a.half < b.half
	})
	for _, k := range keys {
		c := byKey[k]
		typ := k.typ
		if !known[typ] {
			typ += " (n/a)"
		}
		fmt.Printf("| %s | %s | %s | %d | %s | %s | %s | %d | %s |\n", k.corpus, typ, k.half, c.labelled, pct(c.found, c.labelled), pct(c.exact, c.labelled), pct(c.covered, c.labelled), c.findings, pct(c.tp, c.findings))
	}
	fmt.Println()
	return nil
}

func secrets(g *guard.Guard, root string, verbose bool) error {
	dirs, err := corpus.Dirs(root, "secrets-")
	if err != nil {
		return err
	}
	fmt.Println("## Secrets (any secrets finding overlapping the labelled span)")
	fmt.Println()
	fmt.Println("| corpus | half | labelled | recall | findings | precision | negative examples with a finding |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		type tally struct {
			counts
			neg, negHit int
		}
		byHalf := map[string]*tally{"dev": {}, "test": {}}
		for _, r := range recs {
			h := half(r.Text)
			c := byHalf[h]
			var fs []guard.Finding
			for _, f := range g.Scan(r.Text) {
				if f.Detector == guard.DetectorSecrets {
					fs = append(fs, f)
				}
			}
			show := verbose && h == "dev"
			if len(r.Entities) == 0 {
				c.neg++
				if len(fs) > 0 {
					c.negHit++
					if show {
						fmt.Printf("NEGHIT %s %s %q in %.100q\n", d, fs[0].Type, r.Text[fs[0].Start:fs[0].End], r.Text)
					}
				}
			}
			for _, e := range r.Entities {
				c.labelled++
				found := false
				for _, f := range fs {
					found = found || overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd)
				}
				if found {
					c.found++
				} else if show {
					fmt.Printf("MISS %s [%s] %.80q in %.160q\n", d, e.Type, e.Value, r.Text)
				}
			}
			for _, f := range fs {
				c.findings++
				tp := false
				for _, e := range r.Entities {
					tp = tp || overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd)
				}
				if tp {
					c.tp++
				} else if show && len(r.Entities) > 0 {
					fmt.Printf("FP %s %s %q\n", d, f.Type, r.Text[f.Start:f.End])
				}
			}
		}
		for _, h := range []string{"dev", "test"} {
			c := byHalf[h]
			fmt.Printf("| %s | %s | %d | %s | %d | %s | %d of %d |\n", d, h, c.labelled, pct(c.found, c.labelled), c.findings, pct(c.tp, c.findings), c.negHit, c.neg)
		}
	}
	fmt.Println()
	return nil
}

// noise counts findings on texts that hold no labelled entity: the benign
// prompts (by type) and, for secrets, benign Go source.
func noise(g *guard.Guard, root, code string, verbose bool) error {
	recs, err := corpus.Load(filepath.Join(root, "injection-benign-mix"))
	if err != nil {
		return err
	}
	n := map[string]int{}
	for _, r := range recs {
		for _, f := range g.Scan(r.Text) {
			if f.Detector != guard.DetectorInjection {
				n[f.Type]++
				if verbose {
					fmt.Printf("BENIGN %s %q in %.100q\n", f.Type, r.Text[f.Start:f.End], r.Text)
				}
			}
		}
	}
	fmt.Printf("## Noise\n\nFindings on the %d prompts of injection-benign-mix (no labels; some prompts hold real names or e-mails): %s\n\n", len(recs), join(n))
	if code == "" {
		return nil
	}
	if _, err := os.Stat(code); err != nil {
		fmt.Printf("Benign Go source not scanned: %v (set -code to a source tree)\n\n", err)
		return nil
	}
	sg, err := guard.New(guard.Config{Rules: map[string]guard.Action{guard.DetectorSecrets: guard.ActionLog}})
	if err != nil {
		return err
	}
	var files, bytes int
	n = map[string]int{}
	err = filepath.WalkDir(code, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() && (de.Name() == "testdata" || de.Name() == "vendor") {
			return filepath.SkipDir
		}
		if de.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		bytes += len(b)
		text := string(b)
		for _, f := range sg.Scan(text) {
			n[f.Type]++
			if verbose {
				fmt.Printf("CODE %s %s %q\n", strings.TrimPrefix(path, code), f.Type, text[f.Start:f.End])
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("benign code: %w", err)
	}
	total := 0
	for _, v := range n {
		total += v
	}
	fmt.Printf("Secrets findings on benign Go source (%d non-test files under %s, %.1f MiB): %d (%.2f per MiB): %s\n\n",
		files, code, float64(bytes)/(1<<20), total, float64(total)/(float64(bytes)/(1<<20)), join(n))
	return nil
}

func join(n map[string]int) string {
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// speed times each detector alone over every corpus text (three passes,
// best kept) and reports µs per KiB.
func speed(root string) error {
	var texts []string
	var total int
	for _, prefix := range []string{"injection-", "pii-", "secrets-"} {
		dirs, err := corpus.Dirs(root, prefix)
		if err != nil {
			return err
		}
		for _, d := range dirs {
			recs, err := corpus.Load(filepath.Join(root, d))
			if err != nil {
				return err
			}
			for _, r := range recs {
				texts = append(texts, r.Text)
				total += len(r.Text)
			}
		}
	}
	names := make([]string, 0)
	for name := range guard.DetectorTypes() {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Printf("## Speed (each detector alone, %d corpus texts, %.1f MiB, best of 3 passes, wall clock)\n\n", len(texts), float64(total)/(1<<20))
	fmt.Println("| detector | µs/KiB |")
	fmt.Println("|---|---:|")
	for _, name := range append(names, "all") {
		rules := map[string]guard.Action{}
		if name == "all" {
			for _, n := range names {
				rules[n] = guard.ActionLog
			}
		} else {
			rules[name] = guard.ActionLog
		}
		g, err := guard.New(guard.Config{Rules: rules})
		if err != nil {
			return err
		}
		best := time.Duration(1 << 62)
		for range 3 {
			t0 := time.Now()
			for _, t := range texts {
				g.Scan(t)
			}
			best = min(best, time.Since(t0))
		}
		fmt.Printf("| %s | %.2f |\n", name, float64(best.Microseconds())/(float64(total)/1024))
	}
	fmt.Println()
	return nil
}
