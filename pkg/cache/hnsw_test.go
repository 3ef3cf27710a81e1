package cache

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clusteredVectors returns unit vectors around a few hundred centres, which
// is closer to real prompt embeddings than uniform noise.
func clusteredVectors(n, dims int, seed int64) [][]float32 {
	rng := rand.New(rand.NewSource(seed))
	centres := make([][]float32, 200)
	for i := range centres {
		centres[i] = make([]float32, dims)
		for j := range centres[i] {
			centres[i][j] = float32(rng.NormFloat64())
		}
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[rng.Intn(len(centres))]
		v := make([]float32, dims)
		for j := range v {
			v[j] = c[j] + 0.6*float32(rng.NormFloat64())
		}
		normalize(v)
		out[i] = v
	}
	return out
}

func bruteForce(vecs [][]float32, dead map[int]bool, q []float32) int {
	best, bestSim := -1, float32(-2)
	for i, v := range vecs {
		if dead[i] {
			continue
		}
		if s := dot(q, v); s > bestSim {
			best, bestSim = i, s
		}
	}
	return best
}

func TestGraphRecall(t *testing.T) {
	const n, dims = 5000, 64
	vecs := clusteredVectors(n, dims, 1)
	g := newGraph(dims)
	for _, v := range vecs {
		g.add(v)
	}
	queries := clusteredVectors(300, dims, 2)
	found := 0
	for _, q := range queries {
		res := g.search(q, 1)
		require.Len(t, res, 1)
		if int(res[0].id) == bruteForce(vecs, nil, q) {
			found++
		}
	}
	recall := float64(found) / float64(len(queries))
	// Missing the true nearest neighbour only costs a cache miss (never a
	// wrong answer: threshold and guard still apply to what is returned).
	assert.GreaterOrEqual(t, recall, 0.9, "recall@1")
}

func TestGraphRemove(t *testing.T) {
	const n, dims = 2000, 32
	vecs := clusteredVectors(n, dims, 3)
	g := newGraph(dims)
	for _, v := range vecs {
		g.add(v)
	}
	dead := map[int]bool{}
	for i := 0; i < n; i += 2 {
		g.remove(int32(i))
		dead[i] = true
	}
	assert.Equal(t, n/2, g.live)
	found := 0
	for _, q := range clusteredVectors(200, dims, 4) {
		res := g.search(q, 3)
		require.NotEmpty(t, res)
		for _, r := range res {
			assert.False(t, dead[int(r.id)], "removed node returned")
		}
		sims := []float32{}
		for _, r := range res {
			sims = append(sims, r.sim)
		}
		assert.True(t, sort.SliceIsSorted(sims, func(i, j int) bool { return sims[i] > sims[j] }))
		if int(res[0].id) == bruteForce(vecs, dead, q) {
			found++
		}
	}
	assert.GreaterOrEqual(t, float64(found)/200, 0.9)
	// Removing everything leaves an empty but usable graph.
	for i := 1; i < n; i += 2 {
		g.remove(int32(i))
	}
	assert.Empty(t, g.search(vecs[0], 1))
	assert.Empty(t, g.search(make([]float32, dims+1), 1), "wrong dimension")
}

func TestIndexCapsAndRebuild(t *testing.T) {
	now := fixedNow()
	x := newSemIndex(indexLimits{perPartition: 1500}, now)
	vecs := clusteredVectors(4000, 16, 5)
	var part [32]byte
	keys := make([][32]byte, len(vecs))
	for i, v := range vecs {
		keys[i][0], keys[i][1] = byte(i), byte(i>>8)
		x.add(part, semEntry{key: keys[i], prompt: "p", expires: now().Add(time.Hour)}, v)
	}
	x.wait()
	p := x.parts[part]
	assert.Len(t, p.entries, 1500)
	assert.Less(t, p.graph.size(), 4000, "tombstones were compacted by a rebuild")
	assert.False(t, x.has(part, keys[0]), "oldest evicted")
	assert.True(t, x.has(part, keys[3999]))
	res := x.search(part, vecs[3999], 1)
	require.Len(t, res, 1)
	assert.Equal(t, keys[3999], res[0].entry.key)
}

// TestGraphSparseStorage checks the packed sparse layout: a built-in
// embedding is stored sparse, scored within quantisation error of the exact
// dot product, and densified back to the same vector.
func TestGraphSparseStorage(t *testing.T) {
	e := NewBuiltinEmbedder(DefaultIDF())
	prompts := syntheticPrompts(300, 3)
	vecs := make([][]float32, len(prompts))
	g := newGraph(builtinDims)
	for i, p := range prompts {
		vecs[i], _ = e.Embed(t.Context(), p)
		g.add(vecs[i])
	}
	require.Empty(t, g.dense, "built-in embeddings are stored sparse")
	buf := make([]float32, builtinDims)
	for i, v := range vecs {
		assert.InDelta(t, dot(vecs[0], v), g.sim(vecs[0], int32(i)), 1e-3, "node %d", i)
		got := g.vec(int32(i), buf)
		for j := range v {
			require.InDelta(t, v[j], got[j], 1e-4, "node %d dim %d", i, j)
		}
	}
	// A dense vector (more than a quarter non-zero) goes to the dense arena.
	dense := clusteredVectors(1, builtinDims, 4)[0]
	id := g.add(dense)
	assert.Len(t, g.dense, builtinDims)
	assert.InDelta(t, float32(1), g.sim(dense, id), 1e-5)
	res := g.search(vecs[7], 1)
	require.Len(t, res, 1)
	assert.Equal(t, int32(7), res[0].id)
}
