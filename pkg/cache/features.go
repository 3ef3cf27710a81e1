package cache

import (
	"math"
	"slices"
	"strings"
	"unsafe"
)

// The semantic tier reads each prompt once: analyse tokenises and stems it,
// and the built-in embedder, the verifier's side and the difference guard's
// facts are all derived from that one analysis. A request's derived
// features are computed once per request (Lookup and Store share them) and a
// stored entry's once at insertion (they are kept with the entry), so a
// lookup never re-derives the candidate's.

// analysis is one pass over a prompt's words.
type analysis struct {
	toks []token
	uid  []int32    // per token: index of its stem in u
	u    []stemInfo // distinct stems, in order of first occurrence
}

// stemInfo is one distinct stem of an analysed prompt and its hashes.
type stemInfo struct {
	st         string
	bucket     uint32  // the IDF table's bucket
	idf        float64 // IDF weight of the words with this stem
	hu, hb, hB uint64  // fnv64 with seeds 'u', 'b', 'B' (unigram and bigram features)
}

func analyse(text string, idf IDF, sc *featureScratch) *analysis {
	a := &analysis{toks: tokenize(text, make([]token, 0, len(text)/5+4))}
	n := len(a.toks)
	a.uid = make([]int32, n)
	a.u = make([]stemInfo, 0, n/2+4)
	x := sc.hashIndex(n)
	for i, t := range a.toks {
		st := stem(t.lower)
		hu := fnv64('u', st)
		j, added := x.index(hu)
		if added {
			b := stemBucket(st)
			a.u = append(a.u, stemInfo{st: st, bucket: b, idf: idf.weightAt(b), hu: hu, hb: fnv64('b', st), hB: fnv64('B', st)})
		}
		a.uid[i] = j
	}
	sc.release(x)
	return a
}

// hashIndex maps 64-bit hashes to small indexes (open addressing, linear
// probing). Distinct strings whose FNV-1a hashes are equal (probability
// ~2^-64 per pair) are treated as one.
type hashIndex struct {
	slots []int32 // index+1; 0 = empty
	keys  []uint64
}

// featureScratch is the temporary memory of featurising a prompt, reused
// across requests by a Cache (nil: allocated per call).
type featureScratch struct {
	slots     []int32
	hkeys     []uint64
	keys, tmp []uint64
}

// maxScratchKeys bounds what a pooled scratch keeps after a long prompt.
const maxScratchKeys = 1 << 15

func (sc *featureScratch) fits() bool {
	return cap(sc.keys) <= maxScratchKeys && cap(sc.tmp) <= maxScratchKeys && cap(sc.hkeys) <= maxScratchKeys
}

// hashIndex returns an empty index for n keys, on the scratch's memory.
func (sc *featureScratch) hashIndex(n int) hashIndex {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if sc == nil {
		return hashIndex{slots: make([]int32, size), keys: make([]uint64, 0, n)}
	}
	if cap(sc.slots) < size {
		sc.slots = make([]int32, size)
	}
	sc.slots = sc.slots[:size]
	clear(sc.slots)
	return hashIndex{slots: sc.slots, keys: sc.hkeys[:0]}
}

// release keeps the grown key buffer of x for the next user.
func (sc *featureScratch) release(x hashIndex) {
	if sc != nil {
		sc.hkeys = x.keys[:0]
	}
}

// uint64s returns a buffer of n (capacity c) from *buf, or a new one.
func (sc *featureScratch) uint64s(buf *[]uint64, n, c int) []uint64 {
	if sc == nil || cap(*buf) < c {
		b := make([]uint64, n, c)
		if sc != nil {
			*buf = b
		}
		return b
	}
	return (*buf)[:n]
}

// index returns h's index, adding it as the next one when absent. The
// table doubles when it would be more than half full, so probing always
// ends at an empty slot.
func (x *hashIndex) index(h uint64) (i int32, added bool) {
	if 2*(len(x.keys)+1) > len(x.slots) {
		x.grow()
	}
	mask := uint64(len(x.slots) - 1)
	for s := (h ^ h>>29) & mask; ; s = (s + 1) & mask {
		v := x.slots[s]
		if v == 0 {
			x.keys = append(x.keys, h)
			x.slots[s] = int32(len(x.keys))
			return int32(len(x.keys) - 1), true
		}
		if x.keys[v-1] == h {
			return v - 1, false
		}
	}
}

func (x *hashIndex) grow() {
	x.slots = make([]int32, 2*max(len(x.slots), 8))
	mask := uint64(len(x.slots) - 1)
	for k, h := range x.keys {
		s := (h ^ h>>29) & mask
		for x.slots[s] != 0 {
			s = (s + 1) & mask
		}
		x.slots[s] = int32(k + 1)
	}
}

// hw32 is one hashed feature (stem or bigram) and its weight.
type hw32 struct {
	h uint32
	w float32
}

// sparseVec is a hash-sorted sparse vector with its squared norm.
type sparseVec struct {
	e     []hw32
	norm2 float64
}

// sortByHash sorts packed keys by their upper 32 bits (the hash): an
// insertion sort for short lists, else an LSD radix sort in four passes of
// 8 bits through tmp (len(tmp) >= len(keys)).
func sortByHash(keys, tmp []uint64) {
	if len(keys) <= 48 {
		for i := 1; i < len(keys); i++ {
			k := keys[i]
			j := i
			for ; j > 0 && keys[j-1]>>32 > k>>32; j-- {
				keys[j] = keys[j-1]
			}
			keys[j] = k
		}
		return
	}
	src, dst := keys, tmp[:len(keys)]
	for shift := 32; shift < 64; shift += 8 {
		var count [256]int
		for _, k := range src {
			count[(k>>shift)&255]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, k := range src {
			b := (k >> shift) & 255
			dst[count[b]] = k
			count[b]++
		}
		src, dst = dst, src
	}
}

// sortedSparse sorts packed (hash<<32 | float32 bits) keys, sums the weights
// of equal hashes and returns the vector in dst.
func sortedSparse(keys, tmp []uint64, dst []hw32) sparseVec {
	sortByHash(keys, tmp)
	out := dst[:0]
	for _, k := range keys {
		x := hw32{uint32(k >> 32), math.Float32frombits(uint32(k))}
		if n := len(out); n > 0 && out[n-1].h == x.h {
			out[n-1].w += x.w
			continue
		}
		out = append(out, x)
	}
	v := sparseVec{e: out}
	for _, x := range out {
		v.norm2 += float64(x.w) * float64(x.w)
	}
	return v
}

func packHW(h uint64, w float64) uint64 {
	return uint64(uint32(h))<<32 | uint64(math.Float32bits(float32(w)))
}

// cosine of two sparse vectors by a merge of their sorted hashes.
func (a sparseVec) cosine(b sparseVec) float64 {
	if a.norm2 == 0 || b.norm2 == 0 {
		return 0
	}
	var d float64
	i, j := 0, 0
	for i < len(a.e) && j < len(b.e) {
		switch {
		case a.e[i].h < b.e[j].h:
			i++
		case a.e[i].h > b.e[j].h:
			j++
		default:
			d += float64(a.e[i].w) * float64(b.e[j].w)
			i++
			j++
		}
	}
	return d / math.Sqrt(a.norm2*b.norm2)
}

// appendTrigrams adds the character trigrams of "^word$" with weight w (a
// word longer than 32 bytes counts as one feature).
func appendTrigrams(dst []uint64, word string, w float64) []uint64 {
	if len(word) > 32 {
		return append(dst, packHW(fnv64('c', word), w))
	}
	var padded [34]byte
	padded[0] = '^'
	copy(padded[1:], word)
	n := len(word) + 2
	padded[n-1] = '$'
	for j := 0; j+3 <= n; j++ {
		const prime = 1099511628211
		h := uint64(14695981039346656037)
		for _, c := range padded[j : j+3] {
			h ^= uint64(c)
			h *= prime
		}
		dst = append(dst, packHW(h, w))
	}
	return dst
}

// stemSet is a sorted set of stems.
type stemSet []string

func (s stemSet) has(st string) bool {
	_, ok := slices.BinarySearch(s, st)
	return ok
}

// prefixMatch reports whether the set holds a spelling variant of w: a stem
// sharing a prefix of at least 5 bytes and three quarters of the longer one.
// Such stems share w's first 5 bytes, so only that range of the sorted set
// is read.
func (s stemSet) prefixMatch(w string) bool {
	if len(w) < 5 {
		return false
	}
	p := w[:5]
	i, _ := slices.BinarySearch(s, p)
	for ; i < len(s) && strings.HasPrefix(s[i], p); i++ {
		o := s[i]
		n := min(len(o), len(w))
		common := 0
		for common < n && o[common] == w[common] {
			common++
		}
		if common*4 >= max(len(o), len(w))*3 {
			return true
		}
	}
	return false
}

// factsFrom computes the guard's facts from an analysis.
func factsFrom(a *analysis, idf IDF, gp guardParams) promptFacts {
	var f promptFacts
	words := make([]string, len(a.u))
	for i := range a.u {
		words[i] = a.u[i].st
	}
	slices.Sort(words)
	f.words = words
	for i, t := range a.toks {
		u := &a.u[a.uid[i]]
		s := u.st
		f.wh |= whBit(t.lower, gp.wh)
		switch {
		case t.number:
			if f.numbers == nil {
				f.numbers = make(map[string]bool)
			}
			f.numbers[t.lower] = true
		case isNegation(t.lower):
			f.negation++
		}
		if t.number {
			continue
		}
		if (t.capital && !t.initial && t.lower != "i") || idf.entityAt(u.bucket) {
			f.entities = append(f.entities, s)
		}
		if gp.rareIDF > 0 && u.idf >= gp.rareIDF {
			f.content = append(f.content, s)
		}
	}
	// Each is read as "any of them missing": duplicates only cost time.
	f.entities = uniqueStems(f.entities)
	f.content = uniqueStems(f.content)
	return f
}

// uniqueStems sorts and deduplicates a short list in place.
func uniqueStems(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	u := slices.Compact(s)
	if len(u) < len(s) {
		u = slices.Clone(u) // a stored entry keeps only what it uses
	}
	return u
}

// heapBytes approximates the heap the facts hold (strings that are
// substrings of the prompt are not counted).
func (f *promptFacts) heapBytes() int64 {
	n := int64(unsafe.Sizeof(*f)) + 16*int64(cap(f.words)+cap(f.entities)+cap(f.content))
	if f.numbers != nil {
		n += 64 + 48*int64(len(f.numbers))
	}
	return n
}

// sideStem is one unique stem of a verifier side.
type sideStem struct {
	st     string
	idf    float32 // IDF table values (multiples of 1/16 up to 16) are exact in float32
	bucket uint16  // the IDF table's bucket (idfBuckets = 1<<16)
	rank   uint16  // position in facts.words (a side has fewer than 1<<16 stems)
}

// sideOf builds the verifier's view of a prompt from its analysis.
func sideOf(a *analysis, idf IDF, sc *featureScratch) *verifierSide {
	n := len(a.toks)
	s := &verifierSide{ntok: n, facts: factsFrom(a, idf, verifierGuardParams())}
	s.stems = make([]sideStem, len(a.u))
	counts := make([]int32, len(a.u))
	for i, j := range a.uid {
		counts[j]++
		if i == 0 {
			s.first = a.toks[i].lower
		}
		s.last = a.u[j].st
	}
	// Unigrams: one key per distinct stem, weighted by its count.
	keys := sc.uint64s(&sc0(sc).keys, 0, len(a.u)+max(n-1, 0)+8*n)
	for j := range a.u {
		u := &a.u[j]
		rank, _ := slices.BinarySearch(s.facts.words, u.st)
		s.stems[j] = sideStem{st: u.st, idf: float32(u.idf), bucket: uint16(u.bucket), rank: uint16(rank)}
		keys = append(keys, packHW(u.hu, u.idf*float64(counts[j])))
	}
	nw := len(keys)
	for i := 1; i < n; i++ {
		p, u := &a.u[a.uid[i-1]], &a.u[a.uid[i]]
		keys = append(keys, packHW(p.hb^u.hB, math.Sqrt(u.idf*p.idf)))
	}
	nb := len(keys) - nw
	// Character trigrams once per distinct word, weighted by its count.
	words := sc.hashIndex(n) // distinct words: at most the tokens
	var wordCount, wordFirst []int32
	for i, t := range a.toks {
		if j, added := words.index(fnv64('t', t.lower)); added {
			wordCount = append(wordCount, 1)
			wordFirst = append(wordFirst, int32(i))
		} else {
			wordCount[j]++
		}
	}
	for j, c := range wordCount {
		keys = appendTrigrams(keys, a.toks[wordFirst[j]].lower, float64(c))
	}
	sc.release(words)
	if sc != nil {
		sc.keys = keys[:0] // grown by appendTrigrams
	}
	tmp := sc.uint64s(&sc0(sc).tmp, len(keys), len(keys))
	hw := make([]hw32, len(keys))
	s.words = sortedSparse(keys[:nw], tmp, hw[:0:nw])
	s.bigrams = sortedSparse(keys[nw:nw+nb], tmp, hw[nw:nw:nw+nb])
	s.trigrams = sortedSparse(keys[nw+nb:], tmp, hw[nw+nb:nw+nb])
	if used := len(s.words.e) + len(s.bigrams.e) + len(s.trigrams.e); used < len(hw) {
		// Repeated bigrams and trigrams: keep only what is used (a stored
		// side's size is charged to the index's bounds).
		all := make([]hw32, 0, used)
		all = append(all, s.words.e...)
		all = append(all, s.bigrams.e...)
		all = append(all, s.trigrams.e...)
		nw, nb := len(s.words.e), len(s.bigrams.e)
		s.words.e, s.bigrams.e, s.trigrams.e = all[:nw:nw], all[nw:nw+nb:nw+nb], all[nw+nb:]
	} else {
		s.words.e = slices.Clip(s.words.e)
		s.bigrams.e = slices.Clip(s.bigrams.e)
	}
	return s
}

// sc0 returns sc, or a throwaway scratch when it is nil (for taking the
// address of a buffer field).
func sc0(sc *featureScratch) *featureScratch {
	if sc == nil {
		return new(featureScratch)
	}
	return sc
}

// heapBytes approximates the heap a stored side holds.
func (s *verifierSide) heapBytes() int64 {
	n := int64(unsafe.Sizeof(*s)) + s.facts.heapBytes() - int64(unsafe.Sizeof(s.facts))
	n += int64(unsafe.Sizeof(sideStem{})) * int64(cap(s.stems))
	n += 8 * int64(cap(s.words.e)+cap(s.bigrams.e)+cap(s.trigrams.e))
	return n
}
