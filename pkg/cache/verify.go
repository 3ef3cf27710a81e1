package cache

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The verifier is a learned second stage for the semantic tier: the vector
// search retrieves candidates down to VerifierFloor, and the verifier decides,
// from pair features of the two prompts (channel cosines, IDF mass of words
// present on one side only, the difference guard's signals, length and
// question-word agreement), whether they ask the same thing. The model
// (verifier.json) is fitted offline on the training split of cache-qqp by
// `go run ./pkg/cache/cmd/trainverify -corpora ../shared/corpora -out pkg/cache/verifier.json`
// and embedded.

// VerifierFloor is the cosine (built-in embedder) down to which candidates
// are retrieved and handed to the verifier. It was chosen by cross-validation
// on the cache-qqp training split (lower floors let reworded duplicates
// reach the verifier; the false-hit rate is held by the threshold). The
// shipped model is trained and calibrated for it.
const VerifierFloor = 0.30

// Verifier model kinds.
const (
	VerifierLogistic = "logistic" // sigmoid(bias + weights · standardised features)
	VerifierTrees    = "trees"    // sigmoid(bias + sum of small regression trees)
)

// verifierMaxBytes bounds the text the verifier reads of each prompt.
const verifierMaxBytes = 4096

//go:embed verifier.json
var verifierModel []byte

// VerifierTree is one node of a regression tree: when feature F <= T the
// value is LeftTree's (Left if it is nil), else RightTree's (Right if nil).
type VerifierTree struct {
	F         int           `json:"f"`
	T         float64       `json:"t"`
	Left      float64       `json:"l"`
	Right     float64       `json:"r"`
	LeftTree  *VerifierTree `json:"lt,omitempty"`
	RightTree *VerifierTree `json:"rt,omitempty"`
}

// Value returns the tree's value for the feature vector x.
func (t *VerifierTree) Value(x []float64) float64 {
	for {
		if x[t.F] <= t.T {
			if t.LeftTree == nil {
				return t.Left
			}
			t = t.LeftTree
		} else {
			if t.RightTree == nil {
				return t.Right
			}
			t = t.RightTree
		}
	}
}

// valid reports whether every node reads a feature below n, at most depth
// levels deep.
func (t *VerifierTree) valid(n, depth int) bool {
	if depth == 0 || t.F < 0 || t.F >= n || math.IsNaN(t.T) {
		return false
	}
	return (t.LeftTree == nil || t.LeftTree.valid(n, depth-1)) &&
		(t.RightTree == nil || t.RightTree.valid(n, depth-1))
}

// VerifierWordOdds is the learned log-odds of one word bucket.
type VerifierWordOdds struct {
	Bucket uint32  `json:"b"`
	Odds   float64 `json:"v"`
}

// VerifierModel is the serialised form of a Verifier (verifier.json).
type VerifierModel struct {
	Kind     string   `json:"kind"`
	Features []string `json:"features"` // must equal VerifierFeatureNames()
	Bias     float64  `json:"bias"`
	// Logistic: weights over (x - Mean) / Scale.
	Mean    []float64 `json:"mean,omitempty"`
	Scale   []float64 `json:"scale,omitempty"`
	Weights []float64 `json:"weights,omitempty"`
	// Trees: additive regression trees.
	Trees []VerifierTree `json:"trees,omitempty"`
	// WordOdds are learned log-odds (relative to the base rate) of a pair
	// being a duplicate when a word is present on one side only, by word
	// bucket (the IDF table's hashing of the stem).
	WordOdds []VerifierWordOdds `json:"word_odds,omitempty"`
	// Threshold is the decision threshold on Score; Floor the cosine floor
	// the model was trained and calibrated for.
	Threshold float64 `json:"threshold"`
	Floor     float64 `json:"floor"`
	// Notes records how the model was produced (free text).
	Notes string `json:"notes,omitempty"`
}

// Verifier scores whether two prompts ask the same thing. It is immutable and
// safe for concurrent use.
type Verifier struct {
	m     VerifierModel
	idf   IDF
	odds  map[uint32]float64
	nodes []flatNode // m.Trees, flattened for scoring
	roots []int32
}

// flatNode is a VerifierTree node in Verifier.nodes; a child index < 0
// means the side's leaf value is used.
type flatNode struct {
	t           float64
	left, right float64
	f           int32
	lt, rt      int32
}

// flatten appends t's nodes and returns its index.
func flatten(nodes []flatNode, t *VerifierTree) ([]flatNode, int32) {
	i := int32(len(nodes))
	nodes = append(nodes, flatNode{t: t.T, left: t.Left, right: t.Right, f: int32(t.F), lt: -1, rt: -1})
	if t.LeftTree != nil {
		var c int32
		nodes, c = flatten(nodes, t.LeftTree)
		nodes[i].lt = c
	}
	if t.RightTree != nil {
		var c int32
		nodes, c = flatten(nodes, t.RightTree)
		nodes[i].rt = c
	}
	return nodes, i
}

// DefaultVerifier returns the verifier with the embedded model and the
// embedded IDF tables. The embedded model is checked by the package tests; if
// it could not be loaded the returned verifier scores every pair 0 with
// threshold 1 (it never accepts: fail closed).
func DefaultVerifier() *Verifier {
	v, err := ParseVerifier(verifierModel, DefaultIDF())
	if err != nil {
		return &Verifier{m: VerifierModel{Kind: VerifierTrees, Features: VerifierFeatureNames(), Threshold: 1, Bias: math.Inf(-1)}, idf: DefaultIDF()}
	}
	return v
}

// ParseVerifier decodes a verifier.json model for the given IDF tables.
func ParseVerifier(data []byte, idf IDF) (*Verifier, error) {
	var m VerifierModel
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("verifier model: %w", err)
	}
	return NewVerifier(m, idf)
}

// NewVerifier validates a model and returns a verifier over the IDF tables
// the features are computed with (DefaultIDF for the shipped model).
func NewVerifier(m VerifierModel, idf IDF) (*Verifier, error) {
	names := VerifierFeatureNames()
	var errs []error
	if !slices.Equal(m.Features, names) {
		errs = append(errs, fmt.Errorf("verifier model: features %v do not match this build's %v", m.Features, names))
	}
	switch m.Kind {
	case VerifierLogistic:
		if len(m.Weights) != len(names) || len(m.Mean) != len(names) || len(m.Scale) != len(names) {
			errs = append(errs, errors.New("verifier model: logistic weights, mean and scale need one value per feature"))
		}
		for _, s := range m.Scale {
			if !(s > 0) {
				errs = append(errs, errors.New("verifier model: non-positive scale"))
				break
			}
		}
	case VerifierTrees:
		for i := range m.Trees {
			if !m.Trees[i].valid(len(names), 8) {
				errs = append(errs, fmt.Errorf("verifier model: tree %d reads a feature out of range or is too deep", i))
				break
			}
		}
	default:
		errs = append(errs, fmt.Errorf("verifier model: unknown kind %q", m.Kind))
	}
	if !(m.Threshold >= 0 && m.Threshold <= 1) {
		errs = append(errs, fmt.Errorf("verifier model: threshold %v outside [0,1]", m.Threshold))
	}
	odds := make(map[uint32]float64, len(m.WordOdds))
	for _, o := range m.WordOdds {
		if o.Bucket >= idfBuckets || math.IsNaN(o.Odds) || math.IsInf(o.Odds, 0) {
			errs = append(errs, fmt.Errorf("verifier model: bad word odds %+v", o))
			break
		}
		odds[o.Bucket] = o.Odds
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v := &Verifier{m: m, idf: idf, odds: odds}
	for i := range m.Trees {
		var root int32
		v.nodes, root = flatten(v.nodes, &m.Trees[i])
		v.roots = append(v.roots, root)
	}
	return v, nil
}

// Model returns a copy of the verifier's model.
func (v *Verifier) Model() VerifierModel {
	m := v.m
	m.Features = slices.Clone(m.Features)
	m.Mean = slices.Clone(m.Mean)
	m.Scale = slices.Clone(m.Scale)
	m.Weights = slices.Clone(m.Weights)
	m.Trees = slices.Clone(m.Trees) // nodes below the roots are shared; scoring reads its own copy
	m.WordOdds = slices.Clone(m.WordOdds)
	return m
}

// Threshold is the shipped decision threshold: a candidate whose Score is >=
// Threshold is served.
func (v *Verifier) Threshold() float64 { return v.m.Threshold }

// Accept reports whether the candidate may be served for the query.
func (v *Verifier) Accept(query, candidate string, cosine float64) bool {
	return v.Score(query, candidate, cosine) >= v.m.Threshold
}

// Score returns the model's probability (0..1) that query and candidate ask
// the same thing, given the cosine of their built-in embeddings. It is
// symmetric: Score(a, b, c) == Score(b, a, c).
func (v *Verifier) Score(query, candidate string, cosine float64) float64 {
	return v.Query(query).Score(candidate, cosine)
}

// VerifierQuery is a query prompt prepared once for scoring several
// candidates (the cache checks up to a few nearest neighbours per lookup).
type VerifierQuery struct {
	v    *Verifier
	side *verifierSide
}

// Query prepares query for scoring candidates against it.
func (v *Verifier) Query(query string) *VerifierQuery {
	return &VerifierQuery{v: v, side: newVerifierSide(query, v.idf)}
}

// Score is Verifier.Score for the prepared query.
func (q *VerifierQuery) Score(candidate string, cosine float64) float64 {
	return q.scoreSide(newVerifierSide(candidate, q.v.idf), cosine)
}

// scoreSide scores a featurised candidate against the prepared query.
func (q *VerifierQuery) scoreSide(c *verifierSide, cosine float64) float64 {
	var buf [verifierNumFeatures]float64
	return q.v.scoreFeatures(pairFeatures(buf[:0], q.side, c, cosine, q.v.odds))
}

// Accept reports whether the candidate may be served for the prepared query.
func (q *VerifierQuery) Accept(candidate string, cosine float64) bool {
	return q.Score(candidate, cosine) >= q.v.m.Threshold
}

// check is the cache's one pass over a candidate (its side computed when it
// was stored): the difference guard (when guard is set), run on the facts
// the verifier computes anyway, then the verifier. It returns the veto
// reason, "" when the candidate may be served; the result equals running
// GuardVeto and then Accept.
func (q *VerifierQuery) check(c *verifierSide, cosine float64, guard bool) string {
	if guard {
		mode := defaultGuardParams().wh
		if reason := differ(q.side.facts.asMode(mode), c.facts.asMode(mode)); reason != "" {
			return reason
		}
	}
	if q.scoreSide(c, cosine) < q.v.m.Threshold {
		return VetoVerifier
	}
	return ""
}

// Features returns the pair features Score reads (see VerifierFeatureNames),
// for training and evaluation tools. They depend on the model's WordOdds.
func (v *Verifier) Features(query, candidate string, cosine float64) []float64 {
	a, b := newVerifierSide(query, v.idf), newVerifierSide(candidate, v.idf)
	return pairFeatures(make([]float64, 0, verifierNumFeatures), a, b, cosine, v.odds)
}

// ScoreFeatures scores a feature vector from Features (for training and
// evaluation tools).
func (v *Verifier) ScoreFeatures(x []float64) float64 {
	if len(x) != verifierNumFeatures {
		return 0
	}
	return v.scoreFeatures(x)
}

// verifierSwapCap is the highest score of a pair whose shared content words
// appear in another order: too few training pairs show that this reverses
// the question ("convert USD to EUR" / "convert EUR to USD") for the model to
// learn it, so it is a rule.
const verifierSwapCap = 0.5

func (v *Verifier) scoreFeatures(x []float64) float64 {
	p := v.modelScore(x)
	if x[verifierFeatOrderSwap] != 0 {
		p = min(p, verifierSwapCap)
	}
	return p
}

func (v *Verifier) modelScore(x []float64) float64 {
	z := v.m.Bias
	switch v.m.Kind {
	case VerifierLogistic:
		for i, w := range v.m.Weights {
			z += w * (x[i] - v.m.Mean[i]) / v.m.Scale[i]
		}
	case VerifierTrees:
		for _, i := range v.roots {
			for {
				n := &v.nodes[i]
				if x[n.f] <= n.t {
					if n.lt < 0 {
						z += n.left
						break
					}
					i = n.lt
				} else {
					if n.rt < 0 {
						z += n.right
						break
					}
					i = n.rt
				}
			}
		}
	}
	return sigmoid(z)
}

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Verifier features, in order. All are symmetric in the two prompts.
var verifierFeatureNames = [...]string{
	"cosine",            // cosine of the built-in embeddings (given)
	"word_cos",          // cosine of stem TF-IDF vectors
	"bigram_cos",        // cosine of stem-bigram vectors (word order)
	"trigram_cos",       // cosine of character-trigram vectors
	"jaccard",           // Jaccard of stem sets
	"only_frac_min",     // min over sides of IDF mass of unmatched words / side's IDF mass
	"only_frac_max",     // max of the same
	"only_idf_sum",      // log1p(IDF mass of unmatched words, both sides)
	"max_unmatched_idf", // max IDF of an unmatched word / unknown-word IDF
	"unmatched_min",     // min over sides of unmatched word count
	"unmatched_max",     // max over sides of unmatched word count
	"len_absdiff",       // log1p(|token count difference|)
	"len_logratio",      // |log(len a / len b)|
	"len_min",           // log1p(min token count)
	"num_diff",          // numbers differ (guard rule)
	"num_same",          // both have numbers and they are the same
	"wh_diff",           // why/where/when/who differ (guard rule)
	"how_diff",          // "how" in one only
	"what_diff",         // "what"/"which" in one only
	"neg_diff",          // negation in one only (guard rule)
	"entity_both",       // entity substituted on both sides (guard rule)
	"entity_either",     // an entity of one side missing from the other
	"content_both",      // rare word substituted on both sides (guard rule)
	"content_either",    // a rare word of one side missing from the other
	"same_first",        // same first word
	"same_last",         // same last stem
	"guard_veto",        // the difference guard vetoes
	"odds_sum",          // sum of learned word log-odds over unmatched words
	"odds_min",          // min of the same (0 when none)
	"odds_max",          // max of the same (0 when none)
	"order_swap",        // shared content words appear in another order (must stay last)
}

const verifierNumFeatures = len(verifierFeatureNames)

// verifierFeatOrderSwap is the index of "order_swap".
const verifierFeatOrderSwap = verifierNumFeatures - 1

// VerifierFeatureNames returns the names of the pair features, in the order
// PairFeatures returns them.
func VerifierFeatureNames() []string { return slices.Clone(verifierFeatureNames[:]) }

// UnmatchedWordBuckets returns the word buckets (as in VerifierWordOdds) of
// the words of either prompt that have no counterpart in the other, each
// once, for training the word odds.
func UnmatchedWordBuckets(query, candidate string, idf IDF) []uint32 {
	sa, sb := newVerifierSide(query, idf), newVerifierSide(candidate, idf)
	var out []uint32
	for _, p := range [2][2]*verifierSide{{sa, sb}, {sb, sa}} {
		for _, st := range p[0].stems {
			b := uint32(st.bucket)
			if !p[1].matches(st.st) && !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
	}
	slices.Sort(out)
	return out
}

// verifierSide is what the verifier reads of one prompt.
type verifierSide struct {
	stems    []sideStem // unique stems, first occurrence order
	words    sparseVec  // stem TF-IDF
	bigrams  sparseVec
	trigrams sparseVec
	ntok     int
	first    string
	last     string
	facts    promptFacts
}

// verifierGuardParams are the default guard rules, with "how" and
// "what/which" recorded as question words too (as separate features).
func verifierGuardParams() guardParams {
	gp := defaultGuardParams()
	gp.wh = 3
	return gp
}

// newVerifierSide featurises a prompt (its first verifierMaxBytes).
func newVerifierSide(text string, idf IDF) *verifierSide {
	if len(text) > verifierMaxBytes {
		text = text[:verifierMaxBytes]
	}
	return sideOf(analyse(text, idf, nil), idf, nil)
}

// verifierOrderIDF is the IDF from which a word counts as content for the
// word-order check.
const verifierOrderIDF = 4.0

// orderSwapped reports whether the two prompts have the same content words
// in a different order ("from Java to .NET" / "from .NET to Java"). Pairs
// that also differ in content words are not reorderings of one question
// (paraphrases of statements often move words around) and report false.
func orderSwapped(a, b *verifierSide, inA, inB []bool) bool {
	var bufA, bufB [32]string
	seqA, allA := a.sharedContent(inA, bufA[:0])
	seqB, allB := b.sharedContent(inB, bufB[:0])
	return allA && allB && len(seqA) >= 2 && !slices.Equal(seqA, seqB)
}

// sharedContent appends, in order of first occurrence, the stems of s with
// IDF >= verifierOrderIDF that the other prompt also has (in[rank]: see
// commonStems); all reports whether it has every one of them.
func (s *verifierSide) sharedContent(in []bool, dst []string) (seq []string, all bool) {
	all = true
	for _, st := range s.stems {
		if float64(st.idf) < verifierOrderIDF {
			continue
		}
		if in[st.rank] {
			dst = append(dst, st.st)
		} else {
			all = false
		}
	}
	return dst, all
}

// matches reports whether the stem has a counterpart in s: the same stem or
// a spelling variant, as the guard matches them.
func (s *verifierSide) matches(st string) bool {
	return s.facts.words.has(st) || s.facts.words.prefixMatch(st)
}

// unmatchedStats sums what of s's words have no counterpart in other.
type unmatchedStats struct {
	mass, total, maxIDF float64
	count               int
	oddsSum             float64
	oddsMin, oddsMax    float64
	oddsN               int
}

// unmatched sums over s's stems that have no counterpart in other: neither
// the same stem (in[rank], see commonStems) nor a spelling variant.
func (s *verifierSide) unmatched(other *verifierSide, in []bool, odds map[uint32]float64, u *unmatchedStats) {
	for _, st := range s.stems {
		w := float64(st.idf)
		u.total += w
		if in[st.rank] || other.facts.words.prefixMatch(st.st) {
			continue
		}
		u.mass += w
		u.maxIDF = max(u.maxIDF, w)
		u.count++
		if o, ok := odds[uint32(st.bucket)]; ok {
			u.oddsSum += o
			if u.oddsN == 0 {
				u.oddsMin, u.oddsMax = o, o
			} else {
				u.oddsMin, u.oddsMax = min(u.oddsMin, o), max(u.oddsMax, o)
			}
			u.oddsN++
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// commonStems marks, by position in each side's sorted stem set, the stems
// the other side has too (one merge of the two sorted sets) and counts them.
func commonStems(sa, sb *verifierSide, bufA, bufB []bool) (inA, inB []bool, inter int) {
	wa, wb := sa.facts.words, sb.facts.words
	inA, inB = boolsOf(bufA, len(wa)), boolsOf(bufB, len(wb))
	for i, j := 0, 0; i < len(wa) && j < len(wb); {
		switch {
		case wa[i] < wb[j]:
			i++
		case wa[i] > wb[j]:
			j++
		default:
			inA[i], inB[j] = true, true
			inter++
			i++
			j++
		}
	}
	return inA, inB, inter
}

// boolsOf returns n false values in buf when it is long enough.
func boolsOf(buf []bool, n int) []bool {
	if n > len(buf) {
		return make([]bool, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

func pairFeatures(dst []float64, sa, sb *verifierSide, cosine float64, odds map[uint32]float64) []float64 {
	var bufA, bufB [256]bool
	inA, inB, inter := commonStems(sa, sb, bufA[:], bufB[:])
	var ua, ub, both unmatchedStats
	sa.unmatched(sb, inA, odds, &ua)
	sb.unmatched(sa, inB, odds, &ub)
	massA, totA, maxA, cntA := ua.mass, ua.total, ua.maxIDF, ua.count
	massB, totB, maxB, cntB := ub.mass, ub.total, ub.maxIDF, ub.count
	// Odds over both sides, in an order that does not depend on which
	// prompt is the query.
	both.oddsSum = ua.oddsSum + ub.oddsSum
	both.oddsN = ua.oddsN + ub.oddsN
	switch {
	case ua.oddsN > 0 && ub.oddsN > 0:
		both.oddsMin, both.oddsMax = min(ua.oddsMin, ub.oddsMin), max(ua.oddsMax, ub.oddsMax)
	case ua.oddsN > 0:
		both.oddsMin, both.oddsMax = ua.oddsMin, ua.oddsMax
	case ub.oddsN > 0:
		both.oddsMin, both.oddsMax = ub.oddsMin, ub.oddsMax
	}
	frac := func(m, t float64) float64 {
		if t == 0 {
			return 1
		}
		return m / t
	}
	fa, fb := frac(massA, totA), frac(massB, totB)

	jaccard := 0.0
	if union := len(sa.stems) + len(sb.stems) - inter; union > 0 {
		jaccard = float64(inter) / float64(union)
	}
	na, nb := float64(sa.ntok), float64(sb.ntok)
	logRatio := 0.0
	if na > 0 && nb > 0 {
		logRatio = math.Abs(math.Log(na / nb))
	}

	fa2, fb2 := sa.facts, sb.facts
	numDiff := len(fa2.numbers) != len(fb2.numbers)
	for n := range fa2.numbers {
		if !fb2.numbers[n] {
			numDiff = true
		}
	}
	whDiff := (fa2.wh ^ fb2.wh) & 15
	entA, entB := missing(fa2.entities, fb2.words), missing(fb2.entities, fa2.words)
	conA, conB := missing(fa2.content, fb2.words), missing(fb2.content, fa2.words)
	// The guard as shipped reads why/where/when/who only.
	ga, gb := fa2, fb2
	ga.wh &= 15
	gb.wh &= 15
	guard := differ(ga, gb) != ""

	return append(dst,
		cosine,
		sa.words.cosine(sb.words),
		sa.bigrams.cosine(sb.bigrams),
		sa.trigrams.cosine(sb.trigrams),
		jaccard,
		min(fa, fb),
		max(fa, fb),
		math.Log1p(massA+massB),
		max(maxA, maxB)/builtinUnknown,
		float64(min(cntA, cntB)),
		float64(max(cntA, cntB)),
		math.Log1p(math.Abs(na-nb)),
		logRatio,
		math.Log1p(min(na, nb)),
		b2f(numDiff),
		b2f(!numDiff && len(fa2.numbers) > 0),
		b2f(whDiff != 0),
		b2f((fa2.wh^fb2.wh)&16 != 0),
		b2f((fa2.wh^fb2.wh)&32 != 0),
		b2f((fa2.negation > 0) != (fb2.negation > 0)),
		b2f(entA && entB),
		b2f(entA || entB),
		b2f(conA && conB),
		b2f(conA || conB),
		b2f(sa.first == sb.first),
		b2f(sa.last == sb.last),
		b2f(guard),
		both.oddsSum,
		both.oddsMin,
		both.oddsMax,
		b2f(orderSwapped(sa, sb, inA, inB)),
	)
}
