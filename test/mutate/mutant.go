package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Mutant is one planted bug: Find must occur exactly once in File (relative
// to the repository root) and is replaced by Replace; the tests of Packages
// (go package patterns relative to the repository root, e.g. ./pkg/meter)
// must then fail.
type Mutant struct {
	ID       string   `yaml:"id"`
	File     string   `yaml:"file"`
	Find     string   `yaml:"find"`
	Replace  string   `yaml:"replace"`
	Packages []string `yaml:"packages"`
	// Run optionally narrows the tests (go test -run) to keep the run short.
	Run  string `yaml:"run"`
	Desc string `yaml:"desc"`
}

// Status is the outcome for one mutant.
type Status string

// Outcomes.
const (
	Killed   Status = "killed"   // a test failed (or timed out)
	Survived Status = "SURVIVED" // every test passed
	Stale    Status = "STALE"    // the snippet is not in the file exactly once
	Broken   Status = "BROKEN"   // the mutated code does not compile
)

// Result is what testing one mutant gave.
type Result struct {
	Mutant Mutant
	Status Status
	Detail string
	Output string
	Took   time.Duration
}

func loadMutants(path string) ([]Mutant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc struct {
		Mutants []Mutant `yaml:"mutants"`
	}
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var errs []error
	ids := map[string]bool{}
	for i, m := range doc.Mutants {
		where := fmt.Sprintf("%s: mutants[%d] %q", path, i, m.ID)
		switch {
		case m.ID == "" || m.File == "" || m.Find == "" || m.Desc == "":
			errs = append(errs, fmt.Errorf("%s: id, file, find and desc are required", where))
		case len(m.Packages) == 0:
			errs = append(errs, fmt.Errorf("%s: packages is required", where))
		case m.Find == m.Replace:
			errs = append(errs, fmt.Errorf("%s: replace equals find", where))
		case ids[m.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		for _, p := range m.Packages {
			if !strings.HasPrefix(p, "./") {
				errs = append(errs, fmt.Errorf("%s: package %q must start with ./ (relative to the repository root)", where, p))
			}
		}
		ids[m.ID] = true
	}
	if len(doc.Mutants) == 0 {
		errs = append(errs, fmt.Errorf("%s: no mutants", path))
	}
	return doc.Mutants, errors.Join(errs...)
}

// apply returns the mutated source, or an error saying why the mutant is
// stale.
func apply(src []byte, m Mutant) ([]byte, error) {
	switch n := bytes.Count(src, []byte(m.Find)); n {
	case 1:
		return bytes.Replace(src, []byte(m.Find), []byte(m.Replace), 1), nil
	case 0:
		return nil, errors.New("snippet not found")
	default:
		return nil, fmt.Errorf("snippet found %d times", n)
	}
}

// moduleDir is the directory of the go.mod that owns file (both absolute),
// searching up to root.
func moduleDir(root, file string) (string, error) {
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == root || dir == filepath.Dir(dir) {
			return "", fmt.Errorf("no go.mod above %s", file)
		}
	}
}

// packagesIn rewrites patterns relative to the repository root to patterns
// relative to the module directory.
func packagesIn(root, modDir string, pkgs []string) ([]string, error) {
	out := make([]string, 0, len(pkgs))
	for _, p := range pkgs {
		rel, err := filepath.Rel(modDir, filepath.Join(root, p))
		if err != nil || strings.HasPrefix(rel, "..") {
			return nil, fmt.Errorf("package %s is outside the module at %s", p, modDir)
		}
		if strings.HasSuffix(p, "/...") {
			rel = strings.TrimSuffix(rel, "...")
			rel = filepath.Join(rel, "...")
		}
		out = append(out, "./"+filepath.ToSlash(rel))
	}
	return out, nil
}

type runner struct {
	root, tmp string
	timeout   time.Duration
}

// goTest runs go test in dir; overlay may be empty.
func (r *runner) goTest(ctx context.Context, dir, overlay, run string, pkgs []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout+time.Minute)
	defer cancel()
	args := []string{"test", "-count=1", "-timeout", r.timeout.String()}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	if run != "" {
		args = append(args, "-run", run)
	}
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("go test did not end within %s: %w", r.timeout+time.Minute, ctx.Err())
	}
	return out.String(), err
}

// baseline runs every listed package's tests unmutated: a mutant can only be
// judged against tests that pass.
func (r *runner) baseline(ctx context.Context, ms []Mutant) error {
	byModule := map[string][]string{}
	seen := map[string]bool{}
	for _, m := range ms {
		dir, err := moduleDir(r.root, filepath.Join(r.root, m.File))
		if err != nil {
			return err
		}
		pkgs, err := packagesIn(r.root, dir, m.Packages)
		if err != nil {
			return fmt.Errorf("%s: %w", m.ID, err)
		}
		for _, p := range pkgs {
			if !seen[dir+"\x00"+p] {
				seen[dir+"\x00"+p] = true
				byModule[dir] = append(byModule[dir], p)
			}
		}
	}
	for dir, pkgs := range byModule {
		if out, err := r.goTest(ctx, dir, "", "", pkgs); err != nil {
			return fmt.Errorf("baseline: the tests fail without any mutant (%s in %s): %w\n%s", strings.Join(pkgs, " "), dir, err, tail(out, 30))
		}
	}
	return nil
}

// test plants mutant i and runs its packages' tests.
func (r *runner) test(ctx context.Context, i int, m Mutant) Result {
	start := time.Now()
	res := r.plant(ctx, i, m)
	res.Took = time.Since(start)
	return res
}

func (r *runner) plant(ctx context.Context, i int, m Mutant) Result {
	res := Result{Mutant: m}
	file := filepath.Join(r.root, m.File)
	src, err := os.ReadFile(file)
	if err != nil {
		res.Status, res.Detail = Stale, err.Error()
		return res
	}
	mutated, err := apply(src, m)
	if err != nil {
		res.Status, res.Detail = Stale, err.Error()
		return res
	}
	dir, err := moduleDir(r.root, file)
	if err != nil {
		res.Status, res.Detail = Broken, err.Error()
		return res
	}
	pkgs, err := packagesIn(r.root, dir, m.Packages)
	if err != nil {
		res.Status, res.Detail = Broken, err.Error()
		return res
	}
	name := strconv.Itoa(i)
	mutFile := filepath.Join(r.tmp, name+"-"+filepath.Base(file))
	if err := os.WriteFile(mutFile, mutated, 0o644); err != nil {
		res.Status, res.Detail = Broken, err.Error()
		return res
	}
	ovl, err := json.Marshal(map[string]map[string]string{"Replace": {file: mutFile}})
	if err != nil {
		res.Status, res.Detail = Broken, err.Error()
		return res
	}
	overlay := filepath.Join(r.tmp, name+"-overlay.json")
	if err := os.WriteFile(overlay, ovl, 0o644); err != nil {
		res.Status, res.Detail = Broken, err.Error()
		return res
	}
	out, err := r.goTest(ctx, dir, overlay, m.Run, pkgs)
	res.Output = out
	switch {
	case err == nil:
		res.Status = Survived
	case compileFailed(out):
		res.Status, res.Detail = Broken, "does not compile"
	default:
		res.Status = Killed
	}
	return res
}

// compileFailed tells a build failure from a test failure in go test output.
func compileFailed(out string) bool {
	return strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]")
}
