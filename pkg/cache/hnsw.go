package cache

import (
	"math"
	"math/rand"
	"sync"
)

// graph is a Hierarchical Navigable Small World index (Malkov & Yashunin)
// over unit vectors, scored by inner product. Nodes live in flat arrays;
// deletion is a tombstone (the node keeps routing searches but is never
// returned) and the owner rebuilds when tombstones dominate.
//
// Not safe for concurrent mutation: callers hold a write lock for add and
// remove, and a read lock for search (searches are safe in parallel).
//
// At 100k entries a search is bound by memory latency, not arithmetic: it
// scores ~900 vectors scattered over tens of MB. The layout is chosen for
// that: one small fixed-size record per node (nodes), layer-0 links in one
// fixed-stride array (links0), sparse vectors packed 4 bytes per non-zero,
// a visited bitset that stays in L1, and scoring that first touches every
// neighbour's vector so the cache misses overlap (see scoreNeighbours).
type graph struct {
	dims           int
	m, m0          int
	efConstruction int
	efSearch       int
	ml             float64
	rng            *rand.Rand

	nodes  []node
	dense  []float32 // dims values per dense node
	sparse []uint32  // packed non-zeros of sparse nodes: index<<16 | int16 value
	links0 []int32   // per node: count, then up to m0 neighbour ids
	// sims0 holds, per node, the similarity of each layer-0 link (m0
	// slots, in links0's order), so that pruning a full list on insertion
	// reads no vectors.
	sims0   []float32
	upper   [][][]int32
	deleted []bool
	live    int
	entry   int32
	top     int

	searchPool   sync.Pool // *searchState
	buf          []float32 // densify scratch for add (write lock held)
	scratchLinks []int32   // link-list scratch for connect (write lock held)
}

// node locates a stored vector. A sparse node's values are int16 scaled by
// scale (the largest magnitude maps to 32767: ~3e-5 error per component).
type node struct {
	off     uint32 // into dense or sparse
	n       uint32 // values (dense) or non-zeros (sparse)
	scale   float32
	isDense bool
}

func (g *graph) scratch() []float32 {
	if len(g.buf) != g.dims {
		g.buf = make([]float32, g.dims)
	}
	return g.buf
}

// searchState is per-search scratch, pooled: the visited bitset and the
// neighbour batch.
type searchState struct {
	visited []uint64
	batch   []int32
	sink    uint32 // touch's result, stored so the loads are not dead code
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

// store appends v to the arenas. A vector with at most a quarter of its
// entries non-zero (the built-in embedder's hashed n-grams, ~57 of 512) is
// stored sparse, which keeps a 100k-entry partition near 25 MB instead of
// 200 MB; others (OpenAI) are stored dense and scored with an AVX2 dot.
func (g *graph) store(v []float32) node {
	nnz := 0
	var peak float32
	for _, x := range v {
		if x != 0 {
			nnz++
			peak = max(peak, x, -x)
		}
	}
	if len(v) > 1<<16 || nnz*4 > len(v) || peak == 0 {
		nv := node{off: uint32(len(g.dense)), n: uint32(len(v)), isDense: true}
		g.dense = append(g.dense, v...)
		return nv
	}
	nv := node{off: uint32(len(g.sparse)), n: uint32(nnz), scale: peak / 32767}
	inv := 32767 / peak
	for i, x := range v {
		if x != 0 {
			q := int16(math.Round(float64(x * inv)))
			g.sparse = append(g.sparse, uint32(i)<<16|uint32(uint16(q)))
		}
	}
	return nv
}

// sim is the inner product of a dense query with stored node i.
func (g *graph) sim(q []float32, i int32) float32 {
	n := g.nodes[i]
	if n.isDense {
		return dot(q, g.dense[n.off:n.off+n.n])
	}
	return sparseDot(q, g.sparse[n.off:n.off+n.n]) * n.scale
}

// sparseDot is the inner product of dense q with packed non-zeros, in four
// independent sums so the adds do not wait on each other (about twice as
// fast as one running sum). q must have an entry for every packed index.
func sparseDot(q []float32, nz []uint32) float32 {
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= len(nz); k += 4 {
		w := nz[k : k+4 : k+4]
		s0 += q[w[0]>>16] * float32(int16(w[0]))
		s1 += q[w[1]>>16] * float32(int16(w[1]))
		s2 += q[w[2]>>16] * float32(int16(w[2]))
		s3 += q[w[3]>>16] * float32(int16(w[3]))
	}
	for ; k < len(nz); k++ {
		s0 += q[nz[k]>>16] * float32(int16(nz[k]))
	}
	return (s0 + s1) + (s2 + s3)
}

// vec returns node i as a dense vector (in buf when it is sparse).
func (g *graph) vec(i int32, buf []float32) []float32 {
	n := g.nodes[i]
	if n.isDense {
		return g.dense[n.off : n.off+n.n]
	}
	clear(buf)
	for _, w := range g.sparse[n.off : n.off+n.n] {
		buf[w>>16] = float32(int16(w)) * n.scale
	}
	return buf
}

// neighbours returns node i's links at level lc.
func (g *graph) neighbours(i int32, lc int) []int32 {
	if lc == 0 {
		rec := g.links0[int(i)*(g.m0+1):]
		return rec[1 : 1+rec[0]]
	}
	return g.upper[i][lc-1]
}

func (g *graph) setNeighbours(i int32, lc int, l []int32) {
	if lc == 0 {
		rec := g.links0[int(i)*(g.m0+1) : (int(i)+1)*(g.m0+1)]
		n := copy(rec[1:], l)
		rec[0] = int32(n)
		sims := g.sims0[int(i)*g.m0 : int(i)*g.m0+n]
		iv := g.vec(i, g.scratch())
		for k, o := range l[:n] {
			sims[k] = g.sim(iv, o)
		}
		return
	}
	g.upper[i][lc-1] = l
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

func (g *graph) state() *searchState {
	st, _ := g.searchPool.Get().(*searchState)
	if st == nil {
		st = &searchState{}
	}
	words := (g.size() + 63) / 64
	if cap(st.visited) < words {
		st.visited = make([]uint64, words, words+words/2+1)
	}
	st.visited = st.visited[:words]
	clear(st.visited)
	return st
}

// visit marks node i and reports whether it was unvisited.
func (st *searchState) visit(i int32) bool {
	w, b := i>>6, uint64(1)<<(i&63)
	if st.visited[w]&b != 0 {
		return false
	}
	st.visited[w] |= b
	return true
}

// touch reads every cache line of each node's vector (the first word of a
// dense one) and returns a value that depends on all of them. The loads are
// independent, so the CPU issues their cache misses together instead of one
// per scored neighbour: at 100k entries this took a search from about 350 µs
// to 130 µs.
func (g *graph) touch(ids []int32) uint32 {
	var acc uint32
	for _, i := range ids {
		n := g.nodes[i]
		if n.isDense {
			acc += math.Float32bits(g.dense[n.off])
		} else {
			// Every cache line of the packed non-zeros (16 per line).
			for k := n.off; k < n.off+n.n; k += 16 {
				acc += g.sparse[k]
			}
		}
	}
	return acc
}

// searchLayer is the beam search of the paper: ef best nodes reachable from
// the entry points at level lc.
func (g *graph) searchLayer(q []float32, eps []scored, ef, lc int, st *searchState) minHeap {
	cand := make(maxHeap, 0, ef*2)
	res := make(minHeap, 0, ef+1)
	for _, e := range eps {
		st.visit(e.id)
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
		batch := st.batch[:0]
		for _, n := range g.neighbours(c.id, lc) {
			if st.visit(n) {
				batch = append(batch, n)
			}
		}
		st.batch = batch
		st.sink += g.touch(batch)
		for _, n := range batch {
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
		for _, n := range g.neighbours(ep.id, lc) {
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
	g.nodes = append(g.nodes, g.store(v))
	g.deleted = append(g.deleted, false)
	g.live++
	level := int(-math.Log(1-g.rng.Float64()) * g.ml)
	g.links0 = append(g.links0, make([]int32, g.m0+1)...)
	g.sims0 = append(g.sims0, make([]float32, g.m0)...)
	var up [][]int32
	if level > 0 {
		up = make([][]int32, level)
		for l := range up {
			up[l] = make([]int32, 0, g.m+1)
		}
	}
	g.upper = append(g.upper, up)
	if g.entry < 0 {
		g.entry, g.top = id, level
		return id
	}
	st := g.state()
	defer g.searchPool.Put(st)
	ep := scored{g.entry, g.sim(v, g.entry)}
	for lc := g.top; lc > level; lc-- {
		ep = g.greedy(v, ep, lc)
	}
	eps := []scored{ep}
	for lc := min(level, g.top); lc >= 0; lc-- {
		clear(st.visited)
		w := g.searchLayer(v, eps, g.efConstruction, lc, st)
		maxN := g.m
		if lc == 0 {
			maxN = g.m0
		}
		sel := g.selectNeighbors(sortDesc(w), g.m)
		own := make([]int32, 0, len(sel))
		for _, s := range sel {
			own = append(own, s.id)
			g.connect(s.id, id, lc, maxN)
		}
		g.setNeighbours(id, lc, own)
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
	if lc == 0 {
		g.connect0(n, id)
		return
	}
	l := append(g.scratchLinks[:0], g.neighbours(n, lc)...)
	l = append(l, id)
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
	g.scratchLinks = l
	if lc == 0 {
		g.setNeighbours(n, lc, l)
	} else {
		g.upper[n][lc-1] = append(g.upper[n][lc-1][:0], l...)
	}
}

// connect0 is connect on layer 0 (maxN = m0) with the links' stored
// similarities: the same list as recomputing them, one vector read.
func (g *graph) connect0(n, id int32) {
	rec := g.links0[int(n)*(g.m0+1) : (int(n)+1)*(g.m0+1)]
	sims := g.sims0[int(n)*g.m0 : (int(n)+1)*g.m0]
	cnt := int(rec[0])
	s := g.sim(g.vec(n, g.scratch()), id)
	if cnt < g.m0 {
		rec[1+cnt], sims[cnt] = id, s
		rec[0]++
		return
	}
	// Full: drop the least similar of the m0+1 (the first on ties, the
	// new link last), moving the new link into its slot.
	worst, worstSim := -1, float32(math.Inf(1))
	for k, x := range sims[:cnt] {
		if x < worstSim {
			worst, worstSim = k, x
		}
	}
	if s < worstSim || worst < 0 {
		return
	}
	rec[1+worst], sims[worst] = id, s
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
	st := g.state()
	defer g.searchPool.Put(st)
	ep := scored{g.entry, g.sim(q, g.entry)}
	for lc := g.top; lc > 0; lc-- {
		ep = g.greedy(q, ep, lc)
	}
	ef := max(g.efSearch, k)
	// Tombstones occupy beam slots; widen the beam as they accumulate.
	if dead := g.size() - g.live; dead > 0 {
		ef += min(ef, ef*dead/max(g.live, 1))
	}
	w := g.searchLayer(q, []scored{ep}, ef, 0, st)
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
