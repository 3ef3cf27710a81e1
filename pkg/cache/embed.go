package cache

import (
	"context"
	_ "embed"
	"math"

	"github.com/viterin/vek/vek32"
)

// Embedder turns a prompt into a vector for the semantic cache.
type Embedder interface {
	// Embed returns the vector for text. Vectors of one embedder all have
	// the same length.
	Embed(ctx context.Context, text string) ([]float32, error)
	// ID names the embedder and its version; vectors stored under another
	// ID are re-embedded instead of compared.
	ID() string
}

// Builtin embedder parameters.
const (
	builtinDims     = 512
	idfBuckets      = 1 << 16
	idfScale        = 16.0 // idf.bin stores round(idf*idfScale) per bucket
	builtinUnknown  = 9.0  // IDF of a word never seen when the table was built
	weightBigram    = 0.3
	weightCharGram  = 0.6
	maxEmbedRunes   = 8192
	builtinIDPrefix = "builtin-v1-"
)

// idfTable holds per-word-bucket IDF values and entityTable a bit per word
// bucket for words that are usually capitalised mid-sentence (names of
// places, people, products), both computed offline from the training split
// of cache-qqp by `go run ./pkg/cache/cmd/bench -write-tables pkg/cache`.
//
//go:embed idf.bin
var idfTable []byte

//go:embed entity.bin
var entityTable []byte

// IDF holds the word statistics the embedder and the guard read: inverse
// document frequency and "usually a proper noun" per word bucket.
type IDF struct {
	table  []byte
	entity []byte
}

// DefaultIDF returns the embedded tables.
func DefaultIDF() IDF { return IDF{table: idfTable, entity: entityTable} }

// Entity reports whether the word is usually written capitalised in the
// middle of a sentence in the corpus the tables were built from.
func (t IDF) Entity(w string) bool { return t.entityAt(wordBucket(w)) }

func (t IDF) entityAt(b uint32) bool {
	if len(t.entity) != idfBuckets/8 {
		return false
	}
	return t.entity[b/8]&(1<<(b%8)) != 0
}

// EntityBytes returns the serialised entity bitset (the entity.bin format).
func (t IDF) EntityBytes() []byte { return t.entity }

// NewIDF builds a table from documents (each a text); buckets never seen get
// the unknown-word weight.
func NewIDF(docs []string) IDF {
	counts := make([]int, idfBuckets)
	midCaps := make([]int, idfBuckets)
	midAll := make([]int, idfBuckets)
	var toks []token
	seen := make(map[uint32]bool)
	for _, d := range docs {
		toks = tokenize(d, toks[:0])
		clear(seen)
		for _, t := range toks {
			b := wordBucket(t.lower)
			if !seen[b] {
				seen[b] = true
				counts[b]++
			}
			if !t.initial && !t.number {
				midAll[b]++
				if t.capital {
					midCaps[b]++
				}
			}
		}
	}
	entity := make([]byte, idfBuckets/8)
	for b := range midAll {
		if midAll[b] >= 2 && midCaps[b]*10 >= midAll[b]*7 {
			entity[b/8] |= 1 << (b % 8)
		}
	}
	table := make([]byte, idfBuckets)
	n := float64(len(docs))
	for i, c := range counts {
		if c == 0 {
			continue
		}
		idf := math.Log((n + 1) / (float64(c) + 0.5))
		q := math.Round(idf * idfScale)
		table[i] = byte(max(1, min(255, q)))
	}
	return IDF{table: table, entity: entity}
}

// sameTables reports whether t and o are the same tables (not copies).
func (t IDF) sameTables(o IDF) bool {
	return len(t.table) == len(o.table) && len(t.entity) == len(o.entity) &&
		(len(t.table) == 0 || &t.table[0] == &o.table[0]) &&
		(len(t.entity) == 0 || &t.entity[0] == &o.entity[0])
}

// Bytes returns the serialised table (the idf.bin format).
func (t IDF) Bytes() []byte { return t.table }

func wordBucket(w string) uint32 { return stemBucket(stem(w)) }

// stemBucket is the bucket of an already stemmed word.
func stemBucket(st string) uint32 {
	return uint32(fnv64('w', st) & (idfBuckets - 1))
}

// Weight returns the IDF of a word.
func (t IDF) Weight(w string) float64 { return t.weightAt(wordBucket(w)) }

func (t IDF) weightAt(b uint32) float64 {
	if len(t.table) != idfBuckets {
		return 1
	}
	q := t.table[b]
	if q == 0 {
		return builtinUnknown
	}
	return float64(q) / idfScale
}

// BuiltinEmbedder is the default embedder: signed feature hashing of stemmed
// word unigrams and bigrams and character trigrams, TF-IDF weighted, into a
// fixed-size L2-normalised vector. It needs no network and is deterministic
// across processes.
type BuiltinEmbedder struct {
	idf    IDF
	params embedParams
}

// embedParams are the feature weights; tuned on the cache-qqp training split.
type embedParams struct {
	bigram   float64
	chargram float64
	idfPow   float64
}

func defaultEmbedParams() embedParams {
	return embedParams{bigram: weightBigram, chargram: weightCharGram, idfPow: 1}
}

var _ Embedder = (*BuiltinEmbedder)(nil)

// NewBuiltinEmbedder returns the built-in embedder over an IDF table
// (DefaultIDF for the shipped one).
func NewBuiltinEmbedder(idf IDF) *BuiltinEmbedder {
	return &BuiltinEmbedder{idf: idf, params: defaultEmbedParams()}
}

// ID implements Embedder.
func (e *BuiltinEmbedder) ID() string { return builtinIDPrefix + "512" }

// Embed implements Embedder. It never fails.
func (e *BuiltinEmbedder) Embed(_ context.Context, text string) ([]float32, error) {
	vec := make([]float32, builtinDims)
	e.embedInto(vec, text)
	return vec, nil
}

func (e *BuiltinEmbedder) embedInto(vec []float32, text string) {
	if len(text) > maxEmbedRunes*4 {
		text = text[:maxEmbedRunes*4]
	}
	e.embedAnalysis(vec, analyse(text, e.idf, nil))
}

// embedAnalysis embeds an analysed prompt (at most maxEmbedRunes*4 bytes).
func (e *BuiltinEmbedder) embedAnalysis(vec []float32, a *analysis) {
	toks := a.toks
	weight := func(i int) float64 {
		w := a.u[a.uid[i]].idf
		if e.params.idfPow != 1 {
			w = math.Pow(w, e.params.idfPow)
		}
		return w
	}
	add := func(h uint64, w float64) {
		idx := h % builtinDims
		if h>>63 == 1 {
			w = -w
		}
		vec[idx] += float32(w)
	}
	var gram [3 * utf8MaxBytes]byte
	prevW := 0.0
	for i := range toks {
		u := &a.u[a.uid[i]]
		w := weight(i)
		add(u.hu, w)
		if i > 0 {
			bw := e.params.bigram * math.Sqrt(w*prevW)
			add(a.u[a.uid[i-1]].hb^u.hB, bw)
		}
		prevW = w
		// Character trigrams over "^word$" catch spelling variants and
		// morphology the stemmer misses.
		word := toks[i].lower
		padded := len(word) + 2
		if padded < 3 || len(word) > 32 || e.params.chargram == 0 {
			continue
		}
		n := padded - 2
		cw := e.params.chargram * w / math.Sqrt(float64(n))
		for j := 0; j < n; j++ {
			k := 0
			for p := j; p < j+3; p++ {
				switch p {
				case 0:
					gram[k] = '^'
				case padded - 1:
					gram[k] = '$'
				default:
					gram[k] = word[p-1]
				}
				k++
			}
			add(fnv64('c', string(gram[:k])), cw)
		}
	}
	normalize(vec)
}

const utf8MaxBytes = 4

func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
}

// dot is the inner product; vectors are unit length, so it is the cosine.
// It uses AVX2 through github.com/viterin/vek when the CPU has it.
func dot(a, b []float32) float32 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	return vek32.Dot(a, b)
}
