// Command bench measures the guard's accuracy on the corpora in
// ../shared/corpora and prints Markdown tables:
//
//   - prompt injection: detection rate on attacks and false-positive rate
//     on benign texts at the shipped threshold, on the held-out test split
//     only (corpus.SplitOf; the model was trained on the train split);
//   - PII: per-type recall and precision on spans (a finding counts when it
//     overlaps a labelled span of the same type; exact-span matches are
//     shown too);
//   - secrets: recall per corpus (any secrets finding overlapping the
//     labelled span) and precision (findings overlapping no labelled span,
//     and any finding on a negative example, are false positives);
//   - noise: PII and secrets findings on the benign prompts.
//
// Run from anywhere in the repository (-corpora DIR when the corpora are
// not in ../shared/corpora next to it):
//
//	go run ./pkg/guard/cmd/bench
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/guard/corpus"
)

// piiTypes maps corpus labels to guard finding types.
var piiTypes = map[string]string{
	"EMAIL_ADDRESS": guard.TypeEmail,
	"PHONE_NUMBER":  guard.TypePhone,
	"CREDIT_CARD":   guard.TypeCreditCard,
	"US_SSN":        guard.TypeSSN,
	"IBAN_CODE":     guard.TypeIBAN,
	"IP_ADDRESS":    guard.TypeIPAddress,
}

func main() {
	corpora := flag.String("corpora", "", "folder holding the corpora (default: "+corpus.DefaultRoot+" relative to the repository root)")
	verbose := flag.Bool("v", false, "list misses and false positives")
	threshold := flag.Float64("threshold", 0, "injection threshold (0 = shipped)")
	flag.Parse()
	dir, err := corpus.Root(*corpora)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	root := &dir
	g, err := guard.New(guard.Config{
		Rules:              map[string]guard.Action{guard.DetectorPII: guard.ActionLog, guard.DetectorSecrets: guard.ActionLog, guard.DetectorInjection: guard.ActionLog},
		InjectionThreshold: *threshold,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := injection(g, *root, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := pii(g, *root, *verbose); err != nil {
		log.Fatal(err)
	}
	if err := secrets(g, *root, *verbose); err != nil {
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

func injection(g *guard.Guard, root string, verbose bool) error {
	dirs, err := corpus.Dirs(root, "injection-")
	if err != nil {
		return err
	}
	fmt.Printf("## Prompt injection (held-out test split, threshold %.2f)\n\n", g.InjectionThreshold())
	fmt.Println("| corpus | attacks | detected | benign | false positives |")
	fmt.Println("|---|---:|---:|---:|---:|")
	var ta, td, tb, tf int
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		var a, det, b, fp int
		for _, r := range recs {
			if corpus.SplitOf(r.Text) != corpus.Test {
				continue
			}
			hit := has(g.Scan(r.Text), guard.DetectorInjection)
			if r.Attack() {
				a++
				if hit {
					det++
				} else if verbose {
					fmt.Printf("MISS %s: %.120q\n", d, r.Text)
				}
			} else {
				b++
				if hit {
					fp++
					if verbose {
						fmt.Printf("FP %s: %.120q\n", d, r.Text)
					}
				}
			}
		}
		ta, td, tb, tf = ta+a, td+det, tb+b, tf+fp
		fmt.Printf("| %s | %d | %s | %d | %s |\n", d, a, pct(det, a), b, pct(fp, b))
	}
	fmt.Printf("| **all** | %d | %s | %d | %s |\n\n", ta, pct(td, ta), tb, pct(tf, tb))
	return nil
}

func overlaps(s1, e1, s2, e2 int) bool { return s1 < e2 && s2 < e1 }

type counts struct{ labelled, found, exact, findings, tp int }

func pii(g *guard.Guard, root string, verbose bool) error {
	dirs, err := corpus.Dirs(root, "pii-")
	if err != nil {
		return err
	}
	byType := map[string]*counts{}
	for _, t := range piiTypes {
		byType[t] = &counts{}
	}
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		for _, r := range recs {
			fs := g.Scan(r.Text)
			for _, e := range r.Entities {
				t, ok := piiTypes[e.Type]
				if !ok {
					continue
				}
				c := byType[t]
				c.labelled++
				found, exact := false, false
				for _, f := range fs {
					if f.Type == t && overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd) {
						found = true
						exact = exact || (f.Start == e.ByteStart && f.End == e.ByteEnd)
					}
				}
				if found {
					c.found++
				} else if verbose {
					fmt.Printf("MISS %s %q in %.100q\n", t, e.Value, r.Text)
				}
				if exact {
					c.exact++
				}
			}
			for _, f := range fs {
				c, ok := byType[f.Type]
				if !ok {
					continue
				}
				c.findings++
				tp := false
				for _, e := range r.Entities {
					if piiTypes[e.Type] == f.Type && overlaps(f.Start, f.End, e.ByteStart, e.ByteEnd) {
						tp = true
					}
				}
				if tp {
					c.tp++
				} else if verbose {
					fmt.Printf("FP %s %q in %.100q\n", f.Type, r.Text[f.Start:f.End], r.Text)
				}
			}
		}
	}
	fmt.Printf("## PII (%s; span overlap with a labelled span of the same type)\n\n", strings.Join(dirs, " + "))
	fmt.Println("| type | labelled | recall | exact-span recall | findings | precision |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		c := byType[t]
		fmt.Printf("| %s | %d | %s | %s | %d | %s |\n", t, c.labelled, pct(c.found, c.labelled), pct(c.exact, c.labelled), c.findings, pct(c.tp, c.findings))
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
	fmt.Println("| corpus | labelled | recall | findings | precision | negative examples with a finding |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		var c counts
		var neg, negHit int
		for _, r := range recs {
			var fs []guard.Finding
			for _, f := range g.Scan(r.Text) {
				if f.Detector == guard.DetectorSecrets {
					fs = append(fs, f)
				}
			}
			if len(r.Entities) == 0 {
				neg++
				if len(fs) > 0 {
					negHit++
					if verbose {
						fmt.Printf("NEGHIT %s %s %q\n", d, fs[0].Type, r.Text[fs[0].Start:fs[0].End])
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
				} else if verbose {
					fmt.Printf("MISS %s [%s] %.80q\n", d, e.Type, e.Value)
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
				} else if verbose && len(r.Entities) > 0 {
					fmt.Printf("FP %s %s %q\n", d, f.Type, r.Text[f.Start:f.End])
				}
			}
		}
		fmt.Printf("| %s | %d | %s | %d | %s | %d of %d |\n", d, c.labelled, pct(c.found, c.labelled), c.findings, pct(c.tp, c.findings), negHit, neg)
	}
	fmt.Println()
	// Noise on ordinary prompts.
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
					fmt.Printf("BENIGN %s %q\n", f.Type, r.Text[f.Start:f.End])
				}
			}
		}
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	fmt.Printf("PII/secrets findings on the %d prompts of injection-benign-mix (no labels; review by hand): %s\n", len(recs), strings.Join(parts, ", "))
	return nil
}
