// Command mutate checks that the tests catch realistic bugs in the code that
// handles money, keys, tenants and streams. It plants each mutant listed in
// mutants.yaml (one exact snippet replaced, through a `go test -overlay`
// file, so the work tree is never modified), runs the tests of the packages
// that must catch it, and reports the mutants that survived.
//
//	go run ./test/mutate                      # every mutant, fail below 95 %
//	go run ./test/mutate -only 'meter/'       # a subset, by id (regexp)
//	go run ./test/mutate -list                # the list and whether each snippet is found
//
// A mutant whose snippet no longer occurs exactly once is reported as stale
// and fails the run, as does one that does not compile: the list must be
// kept in step with the code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	var (
		root      = flag.String("root", ".", "repository root")
		file      = flag.String("mutants", "test/mutate/mutants.yaml", "mutant list, relative to -root")
		only      = flag.String("only", "", "run only mutants whose id matches this regexp")
		threshold = flag.Float64("threshold", 95, "minimum score in percent (killed / (killed + survived))")
		timeout   = flag.Duration("timeout", 3*time.Minute, "go test -timeout for one mutant")
		jobs      = flag.Int("j", max(1, runtime.NumCPU()/2), "mutants tested at once")
		list      = flag.Bool("list", false, "print the mutants and exit")
		verbose   = flag.Bool("v", false, "print the test output of killed mutants too")
	)
	flag.Parse()
	if err := run(os.Stdout, options{
		root: *root, file: *file, only: *only, threshold: *threshold,
		timeout: *timeout, jobs: *jobs, list: *list, verbose: *verbose,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

type options struct {
	root, file, only string
	threshold        float64
	timeout          time.Duration
	jobs             int
	list, verbose    bool
}

func run(w io.Writer, o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	ms, err := loadMutants(filepath.Join(root, o.file))
	if err != nil {
		return err
	}
	if o.only != "" {
		re, err := regexp.Compile(o.only)
		if err != nil {
			return fmt.Errorf("-only: %w", err)
		}
		ms = filter(ms, func(m Mutant) bool { return re.MatchString(m.ID) })
		if len(ms) == 0 {
			return fmt.Errorf("no mutant id matches %q", o.only)
		}
	}
	if o.list {
		var stale []string
		for _, m := range ms {
			state := "ok"
			src, err := os.ReadFile(filepath.Join(root, m.File))
			if err == nil {
				_, err = apply(src, m)
			}
			if err != nil {
				state = "STALE (" + err.Error() + ")"
				stale = append(stale, m.ID)
			}
			fmt.Fprintf(w, "%-36s %-28s %s  %s\n", m.ID, m.File, state, m.Desc)
		}
		if len(stale) > 0 {
			return fmt.Errorf("%d stale mutant(s): %s", len(stale), strings.Join(stale, ", "))
		}
		return nil
	}
	tmp, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	r := &runner{root: root, tmp: tmp, timeout: o.timeout}
	if err := r.baseline(context.Background(), ms); err != nil {
		return err
	}
	fmt.Fprintf(w, "baseline: the tests pass unmutated (%s)\n", time.Since(start).Round(time.Second))

	results := make([]Result, len(ms))
	var mu sync.Mutex
	sem := make(chan struct{}, max(1, o.jobs))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res := r.test(context.Background(), i, m)
			results[i] = res
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, "%-8s %-36s %6s  %s\n", res.Status, m.ID, res.Took.Round(100*time.Millisecond), m.Desc)
			if res.Status == Broken || (o.verbose && res.Status == Killed) {
				fmt.Fprintln(w, indent(tail(res.Output, 15)))
			}
		})
	}
	wg.Wait()
	return report(w, results, o.threshold, time.Since(start))
}

func filter(ms []Mutant, keep func(Mutant) bool) []Mutant {
	var out []Mutant
	for _, m := range ms {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// report prints the score and the survivors; it returns an error when the
// score is below threshold or a mutant is stale or broken.
func report(w io.Writer, results []Result, threshold float64, took time.Duration) error {
	count := map[Status]int{}
	for _, r := range results {
		count[r.Status]++
	}
	tested := count[Killed] + count[Survived]
	score := 100.0
	if tested > 0 {
		score = 100 * float64(count[Killed]) / float64(tested)
	}
	fmt.Fprintf(w, "\nscore: %.1f%% (%d killed of %d; %d stale, %d broken) in %s\n",
		score, count[Killed], tested, count[Stale], count[Broken], took.Round(time.Second))
	var problems []error
	for _, st := range []Status{Survived, Stale, Broken} {
		var ids []string
		for _, r := range results {
			if r.Status == st {
				ids = append(ids, r.Mutant.ID)
				fmt.Fprintf(w, "%s: %s (%s): %s", st, r.Mutant.ID, r.Mutant.File, r.Mutant.Desc)
				if r.Detail != "" {
					fmt.Fprintf(w, " [%s]", r.Detail)
				}
				fmt.Fprintln(w)
			}
		}
		sort.Strings(ids)
		if len(ids) > 0 && st != Survived {
			problems = append(problems, fmt.Errorf("%d %s mutant(s): %s", len(ids), st, strings.Join(ids, ", ")))
		}
	}
	if score < threshold {
		problems = append(problems, fmt.Errorf("score %.1f%% is below the threshold %.1f%%", score, threshold))
	}
	return errors.Join(problems...)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
