package cache

import (
	"sync"
	"sync/atomic"
	"time"
)

// semIndex is the in-process vector index: one HNSW graph per partition (a
// partition is one tenant and alias, so an entry can only ever be found by
// the tenant that stored it). Three bounds keep it from growing with
// traffic: entries per partition, entries in total and approximate bytes in
// total. Each is enforced on insertion by evicting the oldest entries first
// (of the partition, or of the whole index), which, with one TTL for all
// entries, are also the first to expire; expired entries are dropped from the
// head of the same queue.
type semIndex struct {
	limits indexLimits
	now    func() time.Time
	// evicted counts removals by reason (metrics); nil = not counted.
	evicted func(reason string)

	// wmu serialises every mutation (add and eviction) and guards fifo,
	// head, stale and seq. Searches never take it.
	wmu   sync.Mutex
	fifo  []entryRef // global insertion order
	head  int
	stale int // refs in fifo[head:] whose entry is gone (partition cap, refresh)
	seq   uint64

	mu    sync.RWMutex // guards parts
	parts map[[32]byte]*partition

	total atomic.Int64 // live entries
	bytes atomic.Int64 // approximate bytes of live entries (entryCost)

	rebuilds sync.WaitGroup // background graph rebuilds
	// beforeSwap, when set, runs in a rebuild after the new graph is built
	// and before it is swapped in (tests).
	beforeSwap func()
}

// indexLimits are the bounds of a semIndex; 0 = unbounded.
type indexLimits struct {
	perPartition int
	entries      int
	bytes        int64
}

// Eviction reasons (label of tollgate_cache_semantic_evictions_total).
const (
	evictPartitionCap = "partition_cap"
	evictEntriesCap   = "entries_cap"
	evictBytesCap     = "bytes_cap"
	evictExpired      = "expired"
)

type entryRef struct {
	p       *partition
	key     [32]byte
	seq     uint64
	expires int64 // unix nanos
}

type semEntry struct {
	key     [32]byte
	prompt  string
	expires time.Time
	seq     uint64 // identifies this insertion: a stale queue ref never removes a newer entry
	cost    int64  // entryCost at insertion
	// The prompt's verifier side or guard facts, computed at insertion
	// (nil when the cache reads neither).
	side  *verifierSide
	facts *promptFacts
}

type partition struct {
	id      [32]byte
	mu      sync.RWMutex
	graph   *graph
	entries map[int32]semEntry
	byKey   map[[32]byte]int32
	order   []int32 // insertion order, for the per-partition cap
	head    int
	// rebuilding: a background rebuild of graph is in flight.
	rebuilding bool
}

// candidate is one search result.
type candidate struct {
	entry      semEntry
	similarity float64
}

// entryOverhead is the heap cost of one index entry besides its prompt text,
// its stored vector and its kept features (featureBytes): the graph node,
// its layer-0 links (m0+1 int32) and their similarities (m0 float32, kept
// for tombstones too), the two maps, the queue refs and slice growth slack.
// Fitted with TestIndexEntryCost at a partition's largest footprint (held
// at its cap, one insertion short of the rebuild that drops tombstones)
// with 250-byte prompts: 3182 B per entry measured with sparse vectors
// (228 B stored), 10295 B with dense ones (2048 B).
const entryOverhead = 1000

// entryCost approximates the most heap bytes one entry holds. The stored
// vector counts 2.5 times: a removed node keeps its vector as a tombstone
// until its partition's graph is rebuilt (tombstones may number as many as
// the live entries), and the vector arena grows by a quarter at a time.
func entryCost(prompt string, vec []float32) int64 {
	v := int64(storedVectorBytes(vec))
	return entryOverhead + int64(len(prompt)) + 2*v + v/2
}

// featureBytes approximates the heap the entry's stored features hold.
func (e *semEntry) featureBytes() int64 {
	var n int64
	if e.side != nil {
		n += e.side.heapBytes()
	}
	if e.facts != nil {
		n += e.facts.heapBytes()
	}
	return n
}

// storedVectorBytes is what graph.store keeps for v: 4 bytes per non-zero
// when stored sparse, 4 bytes per dimension when dense.
func storedVectorBytes(v []float32) int {
	nnz := 0
	for _, x := range v {
		if x != 0 {
			nnz++
		}
	}
	if len(v) > 1<<16 || nnz*4 > len(v) || nnz == 0 {
		return 4 * len(v)
	}
	return 4 * nnz
}

func newSemIndex(limits indexLimits, now func() time.Time) *semIndex {
	return &semIndex{
		limits: limits,
		now:    now,
		parts:  make(map[[32]byte]*partition),
	}
}

func newPartition(id [32]byte, dims int) *partition {
	return &partition{
		id:      id,
		graph:   newGraph(dims),
		entries: make(map[int32]semEntry),
		byKey:   make(map[[32]byte]int32),
	}
}

func (x *semIndex) count(reason string) {
	if x.evicted != nil {
		x.evicted(reason)
	}
}

// add inserts (or refreshes) an entry, then evicts down to the bounds.
// Vectors whose length differs from the partition's are ignored (a changed
// embedder), as the graph cannot mix them.
func (x *semIndex) add(part [32]byte, e semEntry, vec []float32) {
	if len(vec) == 0 {
		return
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.mu.RLock()
	p, ok := x.parts[part]
	x.mu.RUnlock()
	if !ok {
		p = newPartition(part, len(vec))
		x.mu.Lock()
		x.parts[part] = p
		x.mu.Unlock()
	}
	if p.graph.dims != len(vec) {
		return
	}
	x.seq++
	e.seq = x.seq
	e.cost = entryCost(e.prompt, vec) + e.featureBytes()
	p.mu.Lock()
	if id, ok := p.byKey[e.key]; ok {
		// A refresh: same vector slot, new expiry, new place in the queue.
		old := p.entries[id]
		x.bytes.Add(e.cost - old.cost)
		p.entries[id] = e
		x.stale++
	} else {
		id := p.graph.add(vec)
		p.entries[id] = e
		p.byKey[e.key] = id
		p.order = append(p.order, id)
		x.total.Add(1)
		x.bytes.Add(e.cost)
		for x.limits.perPartition > 0 && len(p.entries) > x.limits.perPartition {
			if old, ok := p.removeOldestLocked(); ok {
				x.dropped(old)
				x.stale++
				x.count(evictPartitionCap)
			}
		}
		x.maybeRebuildLocked(p)
	}
	p.mu.Unlock()
	x.fifo = append(x.fifo, entryRef{p: p, key: e.key, seq: e.seq, expires: e.expires.UnixNano()})
	x.evictLocked()
}

func (x *semIndex) dropped(e semEntry) {
	x.total.Add(-1)
	x.bytes.Add(-e.cost)
}

// removeOldestLocked removes the partition's oldest live entry.
func (p *partition) removeOldestLocked() (semEntry, bool) {
	defer p.compactLocked()
	for p.head < len(p.order) {
		id := p.order[p.head]
		p.head++
		if e, ok := p.removeLocked(id); ok {
			return e, true
		}
	}
	return semEntry{}, false
}

func (p *partition) removeLocked(id int32) (semEntry, bool) {
	e, ok := p.entries[id]
	if !ok {
		return semEntry{}, false
	}
	delete(p.entries, id)
	delete(p.byKey, e.key)
	p.graph.remove(id)
	return e, true
}

// live returns the node id of the entry a queue ref points to, if that
// insertion is still indexed. Called with wmu held (no concurrent writer).
func (p *partition) live(key [32]byte, seq uint64) (int32, semEntry, bool) {
	id, ok := p.byKey[key]
	if !ok {
		return 0, semEntry{}, false
	}
	e := p.entries[id]
	return id, e, e.seq == seq
}

// maybeRebuildLocked starts re-inserting the partition's live entries into
// a fresh graph once tombstones outnumber them, so memory and search width
// stay bounded. x.wmu and p.mu (write) must be held. The graph is built in
// the background from a copy of the live vectors: at a bound, eviction keeps
// producing tombstones and rebuilds recur, and a rebuild takes ~0.1 ms per
// entry (seconds for a large partition), far longer than Envoy waits for a
// lookup, so neither searches nor insertions may wait for it.
func (x *semIndex) maybeRebuildLocked(p *partition) {
	g := p.graph
	dead := g.size() - g.live
	if p.rebuilding || dead < 1024 || dead < g.live {
		return
	}
	snap := make([]rebuildEntry, 0, len(p.entries))
	for _, id := range p.order[p.head:] {
		e, ok := p.entries[id]
		if !ok {
			continue
		}
		snap = append(snap, rebuildEntry{key: e.key, vec: g.vec(id, make([]float32, g.dims))})
	}
	p.rebuilding = true
	x.rebuilds.Add(1)
	go func() {
		defer x.rebuilds.Done()
		x.rebuild(p, snap)
	}()
}

type rebuildEntry struct {
	key [32]byte
	vec []float32
}

// rebuild builds a graph of snap with no lock held, then swaps it in,
// dropping what was removed and adding what was inserted meanwhile.
func (x *semIndex) rebuild(p *partition, snap []rebuildEntry) {
	ng := newGraph(p.graph.dims)
	ids := make([]int32, len(snap))
	for i, s := range snap {
		ids[i] = ng.add(s.vec)
	}
	if x.beforeSwap != nil {
		x.beforeSwap()
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	entries := make(map[int32]semEntry, len(p.entries))
	byKey := make(map[[32]byte]int32, len(p.entries))
	order := make([]int32, 0, len(p.entries))
	for i, s := range snap {
		old, ok := p.byKey[s.key]
		if !ok {
			ng.remove(ids[i]) // evicted during the rebuild
			continue
		}
		entries[ids[i]] = p.entries[old] // possibly refreshed: same key, same vector
		byKey[s.key] = ids[i]
		order = append(order, ids[i])
	}
	var buf []float32
	for _, old := range p.order[p.head:] {
		e, ok := p.entries[old]
		if !ok {
			continue
		}
		if _, done := byKey[e.key]; done {
			continue
		}
		// Inserted during the rebuild.
		if buf == nil {
			buf = make([]float32, ng.dims)
		}
		id := ng.add(p.graph.vec(old, buf))
		entries[id] = e
		byKey[e.key] = id
		order = append(order, id)
	}
	p.graph, p.entries, p.byKey, p.order, p.head = ng, entries, byKey, order, 0
	p.rebuilding = false
}

// wait blocks until background rebuilds have finished.
func (x *semIndex) wait() { x.rebuilds.Wait() }

func (p *partition) compactLocked() {
	if p.head > 1024 && p.head*2 > len(p.order) {
		p.order = append(p.order[:0], p.order[p.head:]...)
		p.head = 0
	}
}

// evictLocked drops, from the head of the global queue, expired entries and
// the oldest ones while the index is over its entry or byte bound. x.wmu must
// be held.
func (x *semIndex) evictLocked() {
	now := x.now().UnixNano()
	for x.head < len(x.fifo) {
		ref := x.fifo[x.head]
		id, e, ok := ref.p.live(ref.key, ref.seq)
		if !ok {
			x.head++
			x.stale--
			continue
		}
		var reason string
		switch {
		case ref.expires <= now:
			reason = evictExpired
		case x.limits.entries > 0 && x.total.Load() > int64(x.limits.entries):
			reason = evictEntriesCap
		case x.limits.bytes > 0 && x.bytes.Load() > x.limits.bytes:
			reason = evictBytesCap
		}
		if reason == "" {
			break
		}
		x.head++
		p := ref.p
		p.mu.Lock()
		p.removeLocked(id)
		x.maybeRebuildLocked(p)
		empty := len(p.entries) == 0
		p.mu.Unlock()
		x.dropped(e)
		x.count(reason)
		if empty {
			x.mu.Lock()
			if x.parts[p.id] == p {
				delete(x.parts, p.id)
			}
			x.mu.Unlock()
		}
	}
	switch {
	case x.stale > 1024 && x.stale*2 > len(x.fifo)-x.head:
		// Refs of entries removed by a partition cap or refreshed pile up
		// behind live ones; drop them so the queue stays proportional to
		// the live entries.
		live := x.fifo[:0]
		for _, ref := range x.fifo[x.head:] {
			if _, _, ok := ref.p.live(ref.key, ref.seq); ok {
				live = append(live, ref)
			}
		}
		clear(x.fifo[len(live):])
		x.fifo, x.head, x.stale = live, 0, 0
	case x.head > 1024 && x.head*2 > len(x.fifo):
		n := copy(x.fifo, x.fifo[x.head:])
		clear(x.fifo[n:])
		x.fifo, x.head = x.fifo[:n], 0
	}
}

// search returns up to k live candidates in the partition, best first.
func (x *semIndex) search(part [32]byte, vec []float32, k int) []candidate {
	x.mu.RLock()
	p, ok := x.parts[part]
	x.mu.RUnlock()
	if !ok {
		return nil
	}
	now := x.now()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.graph.dims != len(vec) || len(p.entries) == 0 {
		return nil
	}
	nodes := p.graph.search(vec, k)
	out := make([]candidate, 0, len(nodes))
	for _, n := range nodes {
		e, ok := p.entries[n.id]
		if !ok || !e.expires.After(now) {
			continue
		}
		out = append(out, candidate{entry: e, similarity: float64(n.sim)})
	}
	return out
}

// has reports whether the entry key is indexed in the partition.
func (x *semIndex) has(part [32]byte, key [32]byte) bool {
	x.mu.RLock()
	p, ok := x.parts[part]
	x.mu.RUnlock()
	if !ok {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok = p.byKey[key]
	return ok
}

// len is the number of live entries.
func (x *semIndex) len() int { return int(x.total.Load()) }

// size is the approximate bytes of the live entries.
func (x *semIndex) size() int64 { return x.bytes.Load() }
