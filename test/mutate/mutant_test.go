package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApply(t *testing.T) {
	src := []byte("if a > b {\n\treturn a\n}\nif a > c {\n")
	out, err := apply(src, Mutant{Find: "if a > b {", Replace: "if a >= b {"})
	require.NoError(t, err)
	assert.Equal(t, "if a >= b {\n\treturn a\n}\nif a > c {\n", string(out))

	_, err = apply(src, Mutant{Find: "if x > b {", Replace: "y"})
	assert.ErrorContains(t, err, "not found")
	_, err = apply(src, Mutant{Find: "if a > ", Replace: "y"})
	assert.ErrorContains(t, err, "found 2 times")
}

func TestModuleDirAndPackages(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "pkg", "x"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "wasm", "router"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "wasm", "go.mod"), []byte("module a/wasm\n"), 0o644))

	dir, err := moduleDir(root, filepath.Join(root, "pkg", "x", "x.go"))
	require.NoError(t, err)
	assert.Equal(t, root, dir)
	pkgs, err := packagesIn(root, dir, []string{"./pkg/x", "./pkg/..."})
	require.NoError(t, err)
	assert.Equal(t, []string{"./pkg/x", "./pkg/..."}, pkgs)

	dir, err = moduleDir(root, filepath.Join(root, "wasm", "router", "router.go"))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, "wasm"), dir)
	pkgs, err = packagesIn(root, dir, []string{"./wasm/router"})
	require.NoError(t, err)
	assert.Equal(t, []string{"./router"}, pkgs)
	_, err = packagesIn(root, dir, []string{"./pkg/x"})
	assert.ErrorContains(t, err, "outside the module")
}

func TestLoadMutantsRejectsBadEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`mutants:
- {id: a, file: f.go, find: x, replace: y, packages: [./p], desc: d}
- {id: a, file: f.go, find: x, replace: z, packages: [./p], desc: d}
- {id: b, file: f.go, find: x, replace: x, packages: [./p], desc: d}
- {id: c, file: f.go, find: x, replace: y, desc: d}
- {id: d, file: f.go, find: x, replace: y, packages: [pkg/p], desc: d}
- {id: e, file: f.go, replace: y, packages: [./p], desc: d}
`), 0o644))
	_, err := loadMutants(path)
	require.Error(t, err)
	for _, want := range []string{`"a": duplicate id`, `"b": replace equals find`, `"c": packages is required`, `"d": package "pkg/p" must start with ./`, `"e": id, file, find and desc are required`} {
		assert.ErrorContains(t, err, want)
	}

	require.NoError(t, os.WriteFile(path, []byte("mutants:\n- {id: a, file: f.go, find: x, replace: y, packages: [./p], desc: d, typo: 1}\n"), 0o644))
	_, err = loadMutants(path)
	assert.ErrorContains(t, err, "typo")
}

// TestShippedMutantsParse keeps the shipped list loadable (whether each
// snippet still matches is what `make mutate` reports as stale).
func TestShippedMutantsParse(t *testing.T) {
	ms, err := loadMutants("mutants.yaml")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(ms), 30)
}

func TestReport(t *testing.T) {
	m := func(id string) Mutant { return Mutant{ID: id, File: "f.go", Desc: "d " + id} }
	results := []Result{
		{Mutant: m("k1"), Status: Killed}, {Mutant: m("k2"), Status: Killed}, {Mutant: m("k3"), Status: Killed},
		{Mutant: m("s1"), Status: Survived},
	}
	var out bytes.Buffer
	err := report(&out, results, 75, time.Second)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "score: 75.0% (3 killed of 4; 0 stale, 0 broken)")
	assert.Contains(t, out.String(), "SURVIVED: s1 (f.go): d s1")

	out.Reset()
	err = report(&out, results, 80, time.Second)
	assert.ErrorContains(t, err, "below the threshold")

	out.Reset()
	err = report(&out, append(results, Result{Mutant: m("x"), Status: Stale, Detail: "snippet not found"}), 50, time.Second)
	assert.ErrorContains(t, err, "1 STALE mutant(s): x")
	assert.True(t, strings.Contains(out.String(), "STALE: x (f.go): d x [snippet not found]"))
}

// TestRunnerPlantsThroughOverlay runs the whole loop on a throwaway module:
// one mutant the test catches, one it misses, one that does not compile and
// one stale; the work tree is never modified.
func TestRunnerPlantsThroughOverlay(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test on a throwaway module")
	}
	root := t.TempDir()
	src := "package calc\n\n// Cap limits n to max.\nfunc Cap(n, max int) int {\n\tif n > max {\n\t\treturn max\n\t}\n\treturn n\n}\n"
	files := map[string]string{
		"go.mod":       "module calc\n\ngo 1.22\n",
		"calc.go":      src,
		"calc_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestCap(t *testing.T) {\n\tif Cap(5, 3) != 3 || Cap(2, 3) != 2 {\n\t\tt.Fatal(\"wrong\")\n\t}\n}\n",
	}
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(body), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "mutants.yaml"), []byte(`mutants:
- {id: flip, file: calc.go, find: "if n > max {", replace: "if n < max {", packages: [./], desc: flipped}
- {id: edge, file: calc.go, find: "if n > max {", replace: "if n >= max {", packages: [./], desc: equivalent at the edge}
- {id: broken, file: calc.go, find: "return n\n", replace: "return n +\n", packages: [./], desc: syntax}
- {id: gone, file: calc.go, find: "if n >= max {", replace: "x", packages: [./], desc: stale}
`), 0o644))

	var out bytes.Buffer
	err := run(&out, options{root: root, file: "mutants.yaml", threshold: 50, timeout: time.Minute, jobs: 2})
	require.Error(t, err, out.String())
	assert.ErrorContains(t, err, "1 STALE mutant(s): gone")
	assert.ErrorContains(t, err, "1 BROKEN mutant(s): broken")
	assert.NotContains(t, err.Error(), "threshold", "1 of 2 killed is 50 %")
	assert.Contains(t, out.String(), "score: 50.0% (1 killed of 2; 1 stale, 1 broken)")
	assert.Contains(t, out.String(), "SURVIVED: edge (calc.go): equivalent at the edge")
	after, err := os.ReadFile(filepath.Join(root, "calc.go"))
	require.NoError(t, err)
	assert.Equal(t, src, string(after), "the source file is untouched")
}
