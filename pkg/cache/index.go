package cache

import (
	"sync"
	"time"
)

// semIndex is the in-process vector index: one HNSW graph per partition, with
// a per-partition size cap and a global FIFO that evicts the oldest entries
// (which, with one TTL for all entries, are also the first to expire).
type semIndex struct {
	maxPerPartition int
	maxTotal        int
	now             func() time.Time

	mu    sync.Mutex // guards parts, fifo, total
	parts map[[32]byte]*partition
	fifo  []entryRef
	head  int
	total int
}

type entryRef struct {
	part    [32]byte
	key     [32]byte
	expires time.Time
}

type semEntry struct {
	key     [32]byte
	prompt  string
	expires time.Time
}

type partition struct {
	mu      sync.RWMutex
	graph   *graph
	entries map[int32]semEntry
	byKey   map[[32]byte]int32
	order   []int32 // insertion order, for the per-partition cap
	head    int
}

// candidate is one search result.
type candidate struct {
	entry      semEntry
	similarity float64
}

func newSemIndex(maxPerPartition, maxTotal int, now func() time.Time) *semIndex {
	return &semIndex{
		maxPerPartition: maxPerPartition,
		maxTotal:        maxTotal,
		now:             now,
		parts:           make(map[[32]byte]*partition),
	}
}

func newPartition(dims int) *partition {
	return &partition{
		graph:   newGraph(dims),
		entries: make(map[int32]semEntry),
		byKey:   make(map[[32]byte]int32),
	}
}

// add inserts (or refreshes) an entry. Vectors whose length differs from the
// partition's are ignored (a changed embedder), as the graph cannot mix them.
func (x *semIndex) add(part [32]byte, e semEntry, vec []float32) {
	if len(vec) == 0 {
		return
	}
	x.mu.Lock()
	p, ok := x.parts[part]
	if !ok {
		p = newPartition(len(vec))
		x.parts[part] = p
	}
	x.mu.Unlock()

	p.mu.Lock()
	if p.graph.dims != len(vec) {
		p.mu.Unlock()
		return
	}
	if id, ok := p.byKey[e.key]; ok {
		p.entries[id] = e
		p.mu.Unlock()
		return
	}
	id := p.graph.add(vec)
	p.entries[id] = e
	p.byKey[e.key] = id
	p.order = append(p.order, id)
	for x.maxPerPartition > 0 && len(p.entries) > x.maxPerPartition {
		p.removeOldestLocked()
	}
	p.maybeRebuildLocked()
	p.mu.Unlock()

	x.mu.Lock()
	x.fifo = append(x.fifo, entryRef{part: part, key: e.key, expires: e.expires})
	x.total++
	x.evictLocked()
	x.mu.Unlock()
}

func (p *partition) removeOldestLocked() {
	for p.head < len(p.order) {
		id := p.order[p.head]
		p.head++
		if p.removeLocked(id) {
			break
		}
	}
	p.compactLocked()
}

func (p *partition) removeLocked(id int32) bool {
	e, ok := p.entries[id]
	if !ok {
		return false
	}
	delete(p.entries, id)
	delete(p.byKey, e.key)
	p.graph.remove(id)
	return true
}

// rebuildLocked re-inserts the live entries into a fresh graph once
// tombstones outnumber them, so memory and search width stay bounded.
func (p *partition) maybeRebuildLocked() {
	g := p.graph
	dead := g.size() - g.live
	if dead < 1024 || dead < g.live {
		return
	}
	ng := newGraph(g.dims)
	entries := make(map[int32]semEntry, len(p.entries))
	order := make([]int32, 0, len(p.entries))
	for _, old := range p.order[p.head:] {
		e, ok := p.entries[old]
		if !ok {
			continue
		}
		id := ng.add(g.vec(old, make([]float32, g.dims)))
		entries[id] = e
		p.byKey[e.key] = id
		order = append(order, id)
	}
	p.graph, p.entries, p.order, p.head = ng, entries, order, 0
}

func (p *partition) compactLocked() {
	if p.head > 1024 && p.head*2 > len(p.order) {
		p.order = append(p.order[:0], p.order[p.head:]...)
		p.head = 0
	}
}

// evictLocked drops expired entries from the head of the global FIFO and
// the oldest ones while over the total cap. x.mu must be held.
func (x *semIndex) evictLocked() {
	now := x.now()
	for x.head < len(x.fifo) {
		ref := x.fifo[x.head]
		over := x.maxTotal > 0 && x.total > x.maxTotal
		if !over && ref.expires.After(now) {
			break
		}
		x.head++
		x.total--
		if p, ok := x.parts[ref.part]; ok {
			p.mu.Lock()
			if id, ok := p.byKey[ref.key]; ok {
				p.removeLocked(id)
				p.maybeRebuildLocked()
			}
			empty := len(p.entries) == 0
			p.mu.Unlock()
			if empty {
				delete(x.parts, ref.part)
			}
		}
	}
	if x.head > 1024 && x.head*2 > len(x.fifo) {
		x.fifo = append(x.fifo[:0], x.fifo[x.head:]...)
		x.head = 0
	}
}

// search returns up to k live candidates in the partition, best first.
func (x *semIndex) search(part [32]byte, vec []float32, k int) []candidate {
	x.mu.Lock()
	p, ok := x.parts[part]
	x.mu.Unlock()
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
	x.mu.Lock()
	p, ok := x.parts[part]
	x.mu.Unlock()
	if !ok {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok = p.byKey[key]
	return ok
}

func (x *semIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.total
}
