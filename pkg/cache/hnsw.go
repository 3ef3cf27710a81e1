package cache

import (
	"math"
	"math/rand"
	"sync"
)

// graph is a Hierarchical Navigable Small World index (Malkov & Yashunin)
// over unit vectors, scored by inner product. Nodes live in flat slices;
// deletion is a tombstone (the node keeps routing searches but is never
// returned) and the owner rebuilds when tombstones dominate.
//
// Not safe for concurrent mutation: callers hold a write lock for add and
// remove, and a read lock for search (searches are safe in parallel).
type graph struct {
	dims           int
	m, m0          int
	efConstruction int
	efSearch       int
	ml             float64
	rng            *rand.Rand

	vecs    []nodeVec
	dense   []float32
	spIdx   []uint16
	spVal   []float32
	links   [][][]int32
	deleted []bool
	live    int
	entry   int32
	top     int

	visitedPool sync.Pool // *visitSet
	buf         []float32 // densify scratch for add (write lock held)
}

func (g *graph) scratch() []float32 {
	if len(g.buf) != g.dims {
		g.buf = make([]float32, g.dims)
	}
	return g.buf
}

type visitSet struct {
	marks []uint32
	epoch uint32
}

func newGraph(dims int) *graph {
	const m = 16
	return &graph{
		dims:           dims,
		m:              m,
		m0:             2 * m,
		efConstruction: 64,
		efSearch:       32,
		ml:             1 / math.Log(m),
		rng:            rand.New(rand.NewSource(1)),
		entry:          -1,
	}
}

// Stored vectors live in flat arenas for locality: a node is dense (its
// dims values in dense) or, when at most a quarter of its entries are
// non-zero (the built-in embedder's hashed n-grams), sparse (indices in
// spIdx, values in spVal). Sparse storage keeps a 100k-entry partition in a
// few MB instead of 200 MB, so searches mostly hit the CPU caches.
type nodeVec struct {
	off    int32 // into dense (dims values) or spIdx/spVal (n values)
	n      int32
	sparse bool
}

func (g *graph) store(v []float32) nodeVec {
	nnz := 0
	for _, x := range v {
		if x != 0 {
			nnz++
		}
	}
	if len(v) > 1<<16 || nnz*4 > len(v) {
		nv := nodeVec{off: int32(len(g.dense)), n: int32(len(v))}
		g.dense = append(g.dense, v...)
		return nv
	}
	nv := nodeVec{off: int32(len(g.spIdx)), n: int32(nnz), sparse: true}
	for i, x := range v {
		if x != 0 {
			g.spIdx = append(g.spIdx, uint16(i))
			g.spVal = append(g.spVal, x)
		}
	}
	return nv
}

// sim is the inner product of a dense query with stored node i.
func (g *graph) sim(q []float32, i int32) float32 {
	n := g.vecs[i]
	if !n.sparse {
		return dot(q, g.dense[n.off:n.off+n.n])
	}
	idx := g.spIdx[n.off : n.off+n.n]
	val := g.spVal[n.off : n.off+n.n]
	var s float32
	for k, j := range idx {
		s += q[j] * val[k]
	}
	return s
}

// vec returns node i as a dense vector (in buf when it is sparse).
func (g *graph) vec(i int32, buf []float32) []float32 {
	n := g.vecs[i]
	if !n.sparse {
		return g.dense[n.off : n.off+n.n]
	}
	clear(buf)
	for k := n.off; k < n.off+n.n; k++ {
		buf[g.spIdx[k]] = g.spVal[k]
	}
	return buf
}

func (g *graph) size() int { return len(g.deleted) }

type scored struct {
	id  int32
	sim float32
}

// maxHeap pops the highest similarity first.
type maxHeap []scored

func (h *maxHeap) push(s scored) {
	*h = append(*h, s)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].sim >= a[i].sim {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *maxHeap) pop() scored {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	siftDown(a, 0, func(x, y float32) bool { return x > y })
	*h = a
	return top
}

// minHeap pops the lowest similarity first (the worst of the results).
type minHeap []scored

func (h *minHeap) push(s scored) {
	*h = append(*h, s)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].sim <= a[i].sim {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *minHeap) pop() scored {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	siftDown(a, 0, func(x, y float32) bool { return x < y })
	*h = a
	return top
}

func siftDown(a []scored, i int, better func(x, y float32) bool) {
	for {
		l := 2*i + 1
		if l >= len(a) {
			return
		}
		best := l
		if r := l + 1; r < len(a) && better(a[r].sim, a[l].sim) {
			best = r
		}
		if !better(a[best].sim, a[i].sim) {
			return
		}
		a[i], a[best] = a[best], a[i]
		i = best
	}
}

func (g *graph) visits() *visitSet {
	v, _ := g.visitedPool.Get().(*visitSet)
	if v == nil {
		v = &visitSet{}
	}
	if len(v.marks) < g.size() {
		v.marks = make([]uint32, g.size()+g.size()/2+16)
		v.epoch = 0
	}
	v.epoch++
	if v.epoch == 0 {
		clear(v.marks)
		v.epoch = 1
	}
	return v
}

// searchLayer is the beam search of the paper: ef best nodes reachable from
// the entry points at level lc.
func (g *graph) searchLayer(q []float32, eps []scored, ef, lc int, vs *visitSet) minHeap {
	cand := make(maxHeap, 0, ef*2)
	res := make(minHeap, 0, ef+1)
	for _, e := range eps {
		vs.marks[e.id] = vs.epoch
		cand.push(e)
		res.push(e)
		if len(res) > ef {
			res.pop()
		}
	}
	for len(cand) > 0 {
		c := cand.pop()
		if len(res) >= ef && c.sim < res[0].sim {
			break
		}
		for _, n := range g.links[c.id][lc] {
			if vs.marks[n] == vs.epoch {
				continue
			}
			vs.marks[n] = vs.epoch
			s := g.sim(q, n)
			if len(res) < ef || s > res[0].sim {
				cand.push(scored{n, s})
				res.push(scored{n, s})
				if len(res) > ef {
					res.pop()
				}
			}
		}
	}
	return res
}

func (g *graph) greedy(q []float32, ep scored, lc int) scored {
	for changed := true; changed; {
		changed = false
		for _, n := range g.links[ep.id][lc] {
			if s := g.sim(q, n); s > ep.sim {
				ep = scored{n, s}
				changed = true
			}
		}
	}
	return ep
}

// add inserts a vector and returns its node id.
func (g *graph) add(v []float32) int32 {
	id := int32(g.size())
	g.vecs = append(g.vecs, g.store(v))
	g.deleted = append(g.deleted, false)
	g.live++
	level := int(-math.Log(1-g.rng.Float64()) * g.ml)
	lk := make([][]int32, level+1)
	for l := range lk {
		capN := g.m
		if l == 0 {
			capN = g.m0
		}
		lk[l] = make([]int32, 0, capN+1)
	}
	g.links = append(g.links, lk)
	if g.entry < 0 {
		g.entry, g.top = id, level
		return id
	}
	vs := g.visits()
	defer g.visitedPool.Put(vs)
	ep := scored{g.entry, g.sim(v, g.entry)}
	for lc := g.top; lc > level; lc-- {
		ep = g.greedy(v, ep, lc)
	}
	eps := []scored{ep}
	for lc := min(level, g.top); lc >= 0; lc-- {
		if lc != min(level, g.top) {
			vs.epoch++
		}
		w := g.searchLayer(v, eps, g.efConstruction, lc, vs)
		maxN := g.m
		if lc == 0 {
			maxN = g.m0
		}
		sel := g.selectNeighbors(sortDesc(w), g.m)
		for _, s := range sel {
			g.links[id][lc] = append(g.links[id][lc], s.id)
			g.connect(s.id, id, lc, maxN)
		}
		eps = w
	}
	if level > g.top {
		g.entry, g.top = id, level
	}
	return id
}

func sortDesc(h minHeap) []scored {
	out := make([]scored, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		out[i] = h.pop()
	}
	return out
}

// selectNeighbors is the paper's heuristic: keep a candidate only if it is
// closer to the new node than to any neighbour already kept, which keeps
// links pointing in different directions.
func (g *graph) selectNeighbors(cands []scored, m int) []scored {
	out := make([]scored, 0, m)
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		ok := true
		cv := g.vec(c.id, g.scratch())
		for _, s := range out {
			if g.sim(cv, s.id) > c.sim {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	// Fill up with the closest skipped ones if the heuristic was too strict.
	for _, c := range cands {
		if len(out) >= m {
			break
		}
		dup := false
		for _, s := range out {
			if s.id == c.id {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// connect adds a back link from n to id, shrinking n's list to maxN by
// dropping its least similar neighbour.
func (g *graph) connect(n, id int32, lc, maxN int) {
	l := append(g.links[n][lc], id)
	if len(l) > maxN {
		nv := g.vec(n, g.scratch())
		worst, worstSim := 0, float32(math.Inf(1))
		for i, o := range l {
			if s := g.sim(nv, o); s < worstSim {
				worst, worstSim = i, s
			}
		}
		l[worst] = l[len(l)-1]
		l = l[:len(l)-1]
	}
	g.links[n][lc] = l
}

// remove tombstones a node.
func (g *graph) remove(id int32) {
	if id >= 0 && int(id) < g.size() && !g.deleted[id] {
		g.deleted[id] = true
		g.live--
	}
}

// search returns up to k live nodes, most similar first.
func (g *graph) search(q []float32, k int) []scored {
	if g.entry < 0 || g.live == 0 || len(q) != g.dims {
		return nil
	}
	vs := g.visits()
	defer g.visitedPool.Put(vs)
	ep := scored{g.entry, g.sim(q, g.entry)}
	for lc := g.top; lc > 0; lc-- {
		ep = g.greedy(q, ep, lc)
	}
	ef := max(g.efSearch, k)
	// Tombstones occupy beam slots; widen the beam as they accumulate.
	if dead := g.size() - g.live; dead > 0 {
		ef += min(ef, ef*dead/max(g.live, 1))
	}
	w := g.searchLayer(q, []scored{ep}, ef, 0, vs)
	all := sortDesc(w)
	out := all[:0]
	for _, s := range all {
		if !g.deleted[s.id] {
			out = append(out, s)
			if len(out) == k {
				break
			}
		}
	}
	return out
}
