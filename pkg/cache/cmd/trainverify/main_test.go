package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/cache"
)

func TestSolve(t *testing.T) {
	// 2x + y = 5, x + 3y = 10 -> x = 1, y = 3.
	x := solve([]float64{2, 1, 1, 3}, []float64{5, 10}, 2)
	assert.InDelta(t, 1, x[0], 1e-12)
	assert.InDelta(t, 3, x[1], 1e-12)
}

func TestFitTreesSeparable(t *testing.T) {
	// Label = x0 > 0.5; x1 is noise. A stump must find it.
	var xs [][]float64
	var ys []float64
	for i := 0; i < 400; i++ {
		a := float64(i%100) / 100
		b := float64((i*37)%100) / 100
		xs = append(xs, []float64{a, b})
		ys = append(ys, b2f(a > 0.5))
	}
	models := fitTrees(xs, ys, []int{50}, 1)
	require.Len(t, models, 1)
	m := models[0]
	require.NotEmpty(t, m.trees)
	assert.Equal(t, 0, m.trees[0].F, "first split on the informative feature")
	assert.InDelta(t, 0.5, m.trees[0].T, 0.02)
	score := func(x []float64) float64 {
		z := m.bias
		for i := range m.trees {
			z += m.trees[i].Value(x)
		}
		return sigmoid(z)
	}
	assert.Greater(t, score([]float64{0.9, 0.1}), 0.9)
	assert.Less(t, score([]float64{0.1, 0.9}), 0.1)
}

func TestFitLogistic(t *testing.T) {
	var xs [][]float64
	var ys []float64
	for i := 0; i < 200; i++ {
		a := float64(i%50)/25 - 1
		xs = append(xs, []float64{a, 1})
		ys = append(ys, b2f(a+0.1*math.Sin(float64(i)) > 0))
	}
	l := fitLogistic(xs, ys, 1)
	assert.Greater(t, l.score([]float64{0.8, 1}), 0.9)
	assert.Less(t, l.score([]float64{-0.8, 1}), 0.1)
	assert.Equal(t, 1.0, l.scale[1], "constant feature keeps unit scale")
}

func TestThresholdOf(t *testing.T) {
	ps := []pair{
		{dup: true}, {dup: true},
		{dup: false}, {dup: false}, {dup: false}, {dup: false},
	}
	sc := []float64{0.9, 0.4, 0.8, 0.6, 0.3, -1}
	// No false hit allowed: just above the best non-duplicate (0.8).
	th := thresholdOf(ps, sc, 0)
	assert.InDelta(t, 0.8001, th, 1e-9)
	r := hitsOf(ps, sc, th)
	assert.Equal(t, rates{dup: 2, hit: 1, nondup: 4, falseHit: 0}, r)
	// One of four allowed (25%): above the second best (0.6).
	assert.InDelta(t, 0.6001, thresholdOf(ps, sc, 0.25), 1e-9)
	// Exact-tier pairs always hit.
	ps[1].exact = true
	assert.Equal(t, 2, hitsOf(ps, sc, th).hit)
}

// writeCorpus writes a synthetic cache-qqp corpus: duplicates are light
// rewordings, non-duplicates change the subject.
func writeCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	subjects := []string{"Python", "Java", "France", "Germany", "guitar", "piano", "chess", "tennis", "Rust", "Spain",
		"cooking", "running", "Paris", "Berlin", "physics", "biology", "painting", "swimming", "Linux", "Windows"}
	frames := [][2]string{
		{"How do I learn %s?", "How can I learn %s?"},
		{"What is the best way to get better at %s?", "What is the best way to improve at %s?"},
		{"Why is %s so popular?", "Why is %s popular?"},
		{"What are good books about %s?", "What are the best books about %s?"},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := 0; i < 600; i++ {
		f := frames[i%len(frames)]
		s := subjects[(i/len(frames))%len(subjects)]
		r := record{A: fmt.Sprintf(f[0], s), B: fmt.Sprintf(f[1], s), Duplicate: true}
		if i%3 == 0 {
			r.B = fmt.Sprintf(f[1], subjects[(i/len(frames)+7)%len(subjects)])
			r.Duplicate = false
		}
		require.NoError(t, enc.Encode(r))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "cache-qqp"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cache-qqp", "data.jsonl"), buf.Bytes(), 0o644))
	return dir
}

func TestTrainDeterministicAndLoadable(t *testing.T) {
	dir := writeCorpus(t)
	outA, outB := filepath.Join(t.TempDir(), "a.json"), filepath.Join(t.TempDir(), "b.json")
	args := []string{"-corpora", dir, "-rounds", "20", "-odds-min", "2"}
	var log bytes.Buffer
	require.NoError(t, run(append(args, "-out", outA), &log))
	require.NoError(t, run(append(args, "-out", outB), &log))
	a, err := os.ReadFile(outA)
	require.NoError(t, err)
	b, err := os.ReadFile(outB)
	require.NoError(t, err)
	assert.Equal(t, a, b, "retraining is byte-identical")
	v, err := cache.ParseVerifier(a, cache.DefaultIDF())
	require.NoError(t, err)
	m := v.Model()
	assert.Equal(t, cache.VerifierTrees, m.Kind)
	assert.Equal(t, cache.VerifierFloor, m.Floor)
	assert.NotEmpty(t, m.Trees)
	// The synthetic task is easy: a reworded duplicate outscores a changed subject.
	same := v.Score("How do I learn chess?", "How can I learn chess?", 0.9)
	other := v.Score("How do I learn chess?", "How can I learn tennis?", 0.6)
	assert.Greater(t, same, other)
}

func TestRunRejectsBadFlags(t *testing.T) {
	dir := writeCorpus(t)
	for _, args := range [][]string{
		{"-corpora", dir, "-rounds", "x"},
		{"-corpora", dir, "-depths", "9"},
		{"-corpora", dir, "-kind", "svm"},
		{"-corpora", filepath.Join(dir, "missing")},
	} {
		assert.Error(t, run(args, &bytes.Buffer{}), "%v", args)
	}
}
