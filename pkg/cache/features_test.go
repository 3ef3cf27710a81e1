package cache

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSortByHash: the radix sort orders packed keys by their hash (upper 32
// bits) for short (insertion sort) and long (radix) lists.
func TestSortByHash(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 5, 48, 49, 300, 5000} {
		keys := make([]uint64, n)
		for i := range keys {
			keys[i] = uint64(rng.Uint32())<<32 | uint64(rng.Uint32())
			if i > 0 && rng.Intn(4) == 0 {
				keys[i] = keys[i-1]&^0xffffffff | uint64(rng.Uint32()) // same hash, other weight
			}
		}
		want := slices.Clone(keys)
		slices.SortStableFunc(want, func(a, b uint64) int { return int(a>>32) - int(b>>32) })
		got := slices.Clone(keys)
		sortByHash(got, make([]uint64, n))
		hashes := func(ks []uint64) []uint32 {
			out := make([]uint32, len(ks))
			for i, k := range ks {
				out[i] = uint32(k >> 32)
			}
			return out
		}
		require.Equal(t, hashes(want), hashes(got), "n=%d", n)
		slices.Sort(got)
		slices.Sort(keys)
		require.Equal(t, keys, got, "n=%d: same keys", n)
	}
}

// TestSparseCosine: the sort-merge cosine of two hashed vectors equals the
// cosine computed over maps.
func TestSparseCosine(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	mk := func() ([]uint64, map[uint32]float64) {
		n := 20 + rng.Intn(200)
		keys := make([]uint64, n)
		m := map[uint32]float64{}
		for i := range keys {
			h := uint64(rng.Intn(300))
			w := float64(1 + rng.Intn(16))
			keys[i] = packHW(h, w)
			m[uint32(h)] += w
		}
		return keys, m
	}
	for range 20 {
		ka, ma := mk()
		kb, mb := mk()
		a := sortedSparse(ka, make([]uint64, len(ka)), make([]hw32, 0, len(ka)))
		b := sortedSparse(kb, make([]uint64, len(kb)), make([]hw32, 0, len(kb)))
		var d, na, nb float64
		for h, w := range ma {
			d += w * mb[h]
			na += w * w
		}
		for _, w := range mb {
			nb += w * w
		}
		assert.InDelta(t, d/math.Sqrt(na*nb), a.cosine(b), 1e-9)
	}
}

// TestGraphLinkSimilarities: every layer-0 link keeps the similarity that
// pruning would otherwise recompute.
func TestGraphLinkSimilarities(t *testing.T) {
	g := newGraph(32)
	for _, v := range clusteredVectors(600, 32, 7) {
		g.add(v)
	}
	buf := make([]float32, g.dims)
	for i := int32(0); int(i) < g.size(); i++ {
		nv := g.vec(i, buf)
		for k, o := range g.neighbours(i, 0) {
			require.Equal(t, g.sim(nv, o), g.sims0[int(i)*g.m0+k], "node %d link %d", i, k)
		}
	}
}

// TestStoredSideMatchesQuerySide: the side a Cache computes from one
// analysis (and keeps with an entry) equals a side computed from the text.
func TestStoredSideMatchesQuerySide(t *testing.T) {
	c, _ := newTestCache(t, nil)
	for _, p := range append(syntheticPrompts(20, 3), "What is the capital of France?", "Convert 1,000 USD to EUR, not GBP", "") {
		f, err := c.featurise(t.Context(), p, nil)
		require.NoError(t, err)
		want := newVerifierSide(p, c.idf)
		assert.Equal(t, want, f.side, "%q", p)
		vec, _ := NewBuiltinEmbedder(c.idf).Embed(t.Context(), p)
		assert.Equal(t, vec, f.vec, "%q", p)
	}
}

// TestHashIndexGrows: more keys than the index was sized for (distinct
// words of one stem: "walk", "walks", "walked", ...) still finish.
func TestHashIndexGrows(t *testing.T) {
	x := (*featureScratch)(nil).hashIndex(1)
	key := func(i int) uint64 { return fnv64('k', string(rune('a'+i%26))+string(rune(i))) }
	for i := range 1000 {
		j, added := x.index(key(i))
		require.True(t, added)
		require.Equal(t, int32(i), j)
	}
	j, added := x.index(key(7))
	assert.False(t, added)
	assert.Equal(t, int32(7), j)

	s := newVerifierSide("walk walks walked walking walker walkers walkings walkly walk's walkation "+
		"talk talks talked talking talker talkers talkings talkly talk's talkation", DefaultIDF())
	assert.Len(t, s.stems, 4) // walk, talk and the two "'s" forms
}
