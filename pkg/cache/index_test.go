package cache

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKey(i int) [32]byte {
	var k [32]byte
	binary.LittleEndian.PutUint64(k[:], uint64(i)+1)
	return k
}

func testPart(i int) [32]byte {
	var k [32]byte
	k[31] = byte(i + 1)
	return k
}

// fillIndex adds n entries with distinct keys, spread round-robin over
// parts partitions; entry i expires at now+ttl.
func fillIndex(x *semIndex, n, parts int, now func() time.Time, ttl time.Duration) [][]float32 {
	vecs := clusteredVectors(n, 16, 7)
	for i, v := range vecs {
		x.add(testPart(i%parts), semEntry{key: testKey(i), prompt: "prompt", expires: now().Add(ttl)}, v)
	}
	return vecs
}

func evictions(x *semIndex) map[string]int {
	got := map[string]int{}
	x.evicted = func(r string) { got[r]++ }
	return got
}

// partitionLen counts what a partition really holds (not the counters).
func partitionLen(x *semIndex, part [32]byte) int {
	x.mu.RLock()
	p := x.parts[part]
	x.mu.RUnlock()
	if p == nil {
		return 0
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.entries)
}

func TestIndexBounds(t *testing.T) {
	now := fixedNow()
	cost := entryCost("prompt", clusteredVectors(1, 16, 7)[0])
	tests := []struct {
		name       string
		limits     indexLimits
		parts      int
		wantTotal  int
		wantReason string
		wantEvict  int
	}{
		{"per partition", indexLimits{perPartition: 100}, 3, 300, evictPartitionCap, 1000 - 300},
		{"entries", indexLimits{entries: 250}, 4, 250, evictEntriesCap, 1000 - 250},
		{"bytes", indexLimits{bytes: 120 * cost}, 2, 120, evictBytesCap, 1000 - 120},
		{"all, the tightest wins", indexLimits{perPartition: 400, entries: 500, bytes: 450 * cost}, 1, 400, evictPartitionCap, 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newSemIndex(tc.limits, now)
			ev := evictions(x)
			fillIndex(x, 1000, tc.parts, now, time.Hour)
			x.wait()
			assert.Equal(t, tc.wantTotal, x.len())
			assert.Equal(t, int64(tc.wantTotal)*cost, x.size())
			held := 0
			for p := range tc.parts {
				held += partitionLen(x, testPart(p))
			}
			assert.Equal(t, tc.wantTotal, held, "the counters match what the partitions hold")
			assert.Equal(t, map[string]int{tc.wantReason: tc.wantEvict}, ev)
			// Oldest first: the newest entry of each partition is kept, the
			// first one is gone.
			assert.True(t, x.has(testPart(999%tc.parts), testKey(999)))
			assert.False(t, x.has(testPart(0), testKey(0)))
			assert.LessOrEqual(t, len(x.fifo)-x.head, 2*tc.wantTotal+1024, "the queue stays proportional to the live entries")
		})
	}
}

// TestIndexEvictionNeverCrossesPartitions: a global bound evicts another
// tenant's oldest entry but never makes one partition's entry findable in
// another.
func TestIndexEvictionNeverCrossesPartitions(t *testing.T) {
	now := fixedNow()
	x := newSemIndex(indexLimits{entries: 10}, now)
	vecs := clusteredVectors(30, 16, 3)
	a, b := testPart(0), testPart(1)
	for i, v := range vecs {
		part := a
		if i >= 15 {
			part = b
		}
		x.add(part, semEntry{key: testKey(i), prompt: "p", expires: now().Add(time.Hour)}, v)
	}
	assert.Zero(t, partitionLen(x, a), "tenant a's entries were the oldest")
	assert.Equal(t, 10, partitionLen(x, b))
	assert.Empty(t, x.search(a, vecs[25], 4), "b's entries are not searchable from a")
	for _, c := range x.search(b, vecs[3], 4) {
		assert.GreaterOrEqual(t, binary.LittleEndian.Uint64(c.entry.key[:]), uint64(21), "only b's own keys")
	}
}

// TestIndexStaleRefNeverEvictsNewerEntry: an entry evicted by its
// partition's cap and stored again is not removed by the queue ref of its
// first insertion.
func TestIndexStaleRefNeverEvictsNewerEntry(t *testing.T) {
	now := fixedNow()
	x := newSemIndex(indexLimits{perPartition: 2, entries: 3}, now)
	vecs := clusteredVectors(4, 16, 9)
	part := testPart(0)
	add := func(i int) {
		x.add(part, semEntry{key: testKey(i), prompt: "p", expires: now().Add(time.Hour)}, vecs[i])
	}
	add(0)
	add(1)
	add(2) // partition cap evicts 0
	add(0) // 0 again, evicts 1
	assert.True(t, x.has(part, testKey(0)))
	x.add(testPart(1), semEntry{key: testKey(3), prompt: "p", expires: now().Add(time.Hour)}, vecs[3])
	x.add(testPart(1), semEntry{key: testKey(4), prompt: "p", expires: now().Add(time.Hour)}, vecs[2])
	// Total is now 4 > 3: the oldest live insertion is key 2, not key 0
	// (whose first ref is stale).
	assert.False(t, x.has(part, testKey(2)))
	assert.True(t, x.has(part, testKey(0)))
	assert.Equal(t, 3, x.len())
}

func TestIndexExpiredEntriesAreDropped(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	clock := t0
	now := func() time.Time { return clock }
	x := newSemIndex(indexLimits{}, now)
	ev := evictions(x)
	fillIndex(x, 100, 2, now, time.Minute)
	clock = t0.Add(2 * time.Minute)
	x.add(testPart(0), semEntry{key: testKey(1000), prompt: "p", expires: now().Add(time.Minute)}, clusteredVectors(1, 16, 1)[0])
	assert.Equal(t, 1, x.len())
	assert.Equal(t, map[string]int{evictExpired: 100}, ev)
	x.mu.RLock()
	assert.Len(t, x.parts, 1, "emptied partitions are dropped")
	x.mu.RUnlock()
}

// TestCacheIndexBoundMetrics: filling a Cache past max_entries keeps the
// gauges at the bound and counts the evictions.
func TestCacheIndexBoundMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Semantic.MaxEntries = 20
	c, err := New(cfg, reg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx := ctxT(t)
	prompts := syntheticPrompts(50, 11)
	for i, p := range prompts {
		r, err := c.NewRequest([]string{"acme", "globex"}[i%2], "gpt", []byte(chatBody(p)))
		require.NoError(t, err)
		require.NoError(t, c.Store(ctx, r, completionJSON("x")))
	}
	assert.Equal(t, 20.0, gaugeValue(t, reg, "tollgate_cache_semantic_entries"))
	assert.Equal(t, 20.0, gaugeValue(t, reg, "tollgate_cache_semantic_max_entries"))
	assert.Equal(t, float64(DefaultMaxIndexBytes), gaugeValue(t, reg, "tollgate_cache_semantic_max_bytes"))
	// The 20 newest entries: overhead, prompt and vector (~400 B), and the
	// verifier features kept with each.
	features := 0.0
	for _, p := range prompts[30:] {
		e := semEntry{side: newVerifierSide(p, DefaultIDF())}
		features += float64(e.featureBytes())
	}
	assert.InDelta(t, 20*(entryOverhead+400)+features, gaugeValue(t, reg, "tollgate_cache_semantic_bytes"), 20*300)
	assert.Equal(t, 30.0, testutil.ToFloat64(c.metrics.evictions.WithLabelValues(evictEntriesCap)))
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestIndexEntryCost measures the heap one entry costs in a partition held
// at its cap (tombstones included) with built-in embeddings of chat-sized
// prompts, and checks entryCost stays within 15% of it. A prompt of few
// distinct words is stored as a sparse vector, one of many as a dense one.
// Run with -v to see the numbers behind entryOverhead.
func TestIndexEntryCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measures the heap of 2 x 20k insertions")
	}
	const capN = 10_000
	questions := syntheticPrompts(8*capN, 5)
	tests := []struct {
		name   string
		prompt func(i int) string
	}{
		{"sparse: one question repeated to 250 bytes", func(i int) string {
			return strings.Repeat(questions[i]+" ", 250/len(questions[i])+1)[:250]
		}},
		{"dense: four questions padded or cut to 250 bytes", func(i int) string {
			return (strings.Join(questions[4*i:4*i+4], " ") + strings.Repeat(" x", 125))[:250]
		}},
	}
	e := NewBuiltinEmbedder(DefaultIDF())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prompts := make([]string, 2*capN)
			vecs := make([][]float32, len(prompts))
			for i := range prompts {
				prompts[i] = tc.prompt(i)
				vecs[i], _ = e.Embed(t.Context(), prompts[i])
			}
			now := fixedNow()
			x := newSemIndex(indexLimits{perPartition: capN}, now)
			// 2*capN-1 insertions leave capN-1 tombstones, one short of the
			// rebuild that drops them: the partition's largest footprint.
			for i := range prompts[:2*capN-1] {
				// As the cache stores them: with the verifier's side.
				p := strings.Clone(prompts[i])
				x.add(testPart(0), semEntry{key: testKey(i), prompt: p, expires: now().Add(time.Hour), side: newVerifierSide(p, DefaultIDF())}, vecs[i])
			}
			x.wait()
			n, estimated := x.len(), float64(x.size())/float64(x.len())
			// The index's cost is what the heap loses when it is dropped.
			var with, without runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&with)
			runtime.KeepAlive(x)
			x = nil
			runtime.GC()
			runtime.ReadMemStats(&without)
			measured := float64(with.HeapAlloc-without.HeapAlloc) / float64(n)
			t.Logf("entries %d, measured %.0f B/entry, estimated %.0f B/entry (prompt 250 B, stored vector %d B)",
				n, measured, estimated, storedVectorBytes(vecs[len(vecs)-1]))
			assert.InDelta(t, 1, estimated/measured, 0.15)
		})
	}
}

// BenchmarkIndexAddAtBound is the index side of Store once the index is
// full: insert into the HNSW graph, evict the oldest entry (entries cap) and
// the amortised share of the tombstone rebuilds.
func BenchmarkIndexAddAtBound(b *testing.B) {
	const n = 10_000
	e := NewBuiltinEmbedder(DefaultIDF())
	prompts := syntheticPrompts(2*n, 13)
	vecs := make([][]float32, len(prompts))
	for i, p := range prompts {
		vecs[i], _ = e.Embed(b.Context(), p)
	}
	now := fixedNow()
	x := newSemIndex(indexLimits{entries: n}, now)
	for i := range n {
		x.add(testPart(0), semEntry{key: testKey(i), prompt: prompts[i], expires: now().Add(time.Hour)}, vecs[i])
	}
	b.ReportAllocs()
	i := n
	for b.Loop() {
		v := i % len(vecs)
		x.add(testPart(0), semEntry{key: testKey(i), prompt: prompts[v], expires: now().Add(time.Hour)}, vecs[v])
		i++
	}
	b.StopTimer()
	x.wait()
	if x.len() != n {
		b.Fatalf("index holds %d entries, want %d", x.len(), n)
	}
}

// TestIndexConcurrentAtBounds: searches and insertions from several
// goroutines while every bound evicts (run with -race); the counters end
// equal to what the partitions hold.
func TestIndexConcurrentAtBounds(t *testing.T) {
	now := fixedNow()
	x := newSemIndex(indexLimits{perPartition: 60, entries: 100, bytes: 90 * entryCost("p", clusteredVectors(1, 16, 2)[0])}, now)
	vecs := clusteredVectors(400, 16, 2)
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; i < len(vecs); i += 4 {
				x.add(testPart(i%3), semEntry{key: testKey(i), prompt: "p", expires: now().Add(time.Hour)}, vecs[i])
				x.search(testPart((i+1)%3), vecs[i], 4)
				x.has(testPart(i%3), testKey(i))
			}
		}()
	}
	for range 4 {
		<-done
	}
	x.wait()
	held := 0
	for p := range 3 {
		n := partitionLen(x, testPart(p))
		assert.LessOrEqual(t, n, 60)
		held += n
	}
	assert.Equal(t, held, x.len())
	assert.LessOrEqual(t, x.len(), 90)
}

// TestIndexRebuildDoesNotBlock: while a partition's graph is rebuilt,
// searches and insertions in it go on; entries evicted meanwhile stay gone
// and entries inserted meanwhile are in the new graph.
func TestIndexRebuildDoesNotBlock(t *testing.T) {
	now := fixedNow()
	const capN = 1024
	x := newSemIndex(indexLimits{perPartition: capN}, now)
	started, release := make(chan struct{}), make(chan struct{})
	x.beforeSwap = func() {
		close(started)
		<-release
	}
	vecs := clusteredVectors(2*capN+100, 16, 21)
	part := testPart(0)
	add := func(i int) {
		x.add(part, semEntry{key: testKey(i), prompt: "p", expires: now().Add(time.Hour)}, vecs[i])
	}
	for i := range 2 * capN { // the last insertion leaves capN tombstones: rebuild
		add(i)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no rebuild started")
	}
	// The new graph is built and waits to be swapped in; the partition
	// serves meanwhile.
	for i := 2 * capN; i < 2*capN+100; i++ {
		add(i)
		require.NotEmpty(t, x.search(part, vecs[i], 1))
	}
	x.beforeSwap = nil
	close(release)
	x.wait()
	x.mu.RLock()
	p := x.parts[part]
	x.mu.RUnlock()
	p.mu.RLock()
	size, live := p.graph.size(), len(p.entries)
	p.mu.RUnlock()
	assert.Equal(t, capN, live)
	assert.Equal(t, capN, x.len())
	assert.Less(t, size, 2*capN, "the tombstones before the rebuild are gone")
	assert.False(t, x.has(part, testKey(capN+50)), "evicted during the rebuild")
	for _, i := range []int{capN + 100, 2*capN - 1, 2*capN + 99} {
		require.True(t, x.has(part, testKey(i)))
		res := x.search(part, vecs[i], 1)
		require.Len(t, res, 1)
		assert.Equal(t, testKey(i), res[0].entry.key, "entry %d is found in the new graph", i)
	}
}
