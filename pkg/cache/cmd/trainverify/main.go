// Command trainverify fits the semantic cache's pair verifier
// (pkg/cache/verifier.json) on the training split of cache-qqp and reports
// its accuracy.
//
// Splits (by line order, as the corpus keeps pairs that share text together):
// cache-qqp lines 1-13395 (the first 70%) are the training split, of which
// the first 80% fit the model and the last 20% (validation) choose the model
// kind, the number of boosting rounds and the decision threshold (for at most
// -target-false false hits on validation non-duplicates). The held-out 30% of
// cache-qqp and the other corpora are only read with -eval.
//
//	go run ./pkg/cache/cmd/trainverify -corpora ../shared/corpora -out pkg/cache/verifier.json
//	go run ./pkg/cache/cmd/trainverify -corpora ../shared/corpora -eval   # held-out and out-of-domain tables for the embedded model
//
// Training is single-threaded and deterministic: the same corpora give a
// byte-identical model.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/cache/internal/pairs"
)

type record = pairs.Pair

const (
	fitFraction = 0.8 // of the training split: fitted; the rest validates
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trainverify:", err)
		os.Exit(1)
	}
}

type options struct {
	corpora     string
	out         string
	floor       float64
	oddsMin     int
	oddsMax     float64
	trainFloor  float64
	kind        string
	targetFalse float64
	rounds      []int
	depths      []int
	eval        bool
	show        int
	shared      bool
	cv          int
	model       string
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("trainverify", flag.ContinueOnError)
	var o options
	var rounds, depths string
	fs.StringVar(&o.corpora, "corpora", "../shared/corpora", "directory holding cache-*/data.jsonl")
	fs.StringVar(&o.out, "out", "", "write the fitted model (verifier.json) here")
	fs.Float64Var(&o.floor, "floor", cache.VerifierFloor, "cosine floor: pairs below it are never hits and are not trained on")
	fs.Float64Var(&o.trainFloor, "train-floor", 0.2, "cosine down to which fit pairs are trained on (at most -floor)")
	fs.IntVar(&o.oddsMin, "odds-min", 3, "learn word odds for words unmatched in at least this many fit pairs (0: no word odds)")
	fs.Float64Var(&o.oddsMax, "odds-max", 0, "clip learnt word odds to at most this (0: words can only lower the score)")
	fs.StringVar(&o.kind, "kind", "trees", "model kind: logistic, trees or auto (best on validation)")
	fs.Float64Var(&o.targetFalse, "target-false", 0.007, "false-hit rate allowed on validation non-duplicates when choosing the threshold")
	fs.StringVar(&rounds, "rounds", "200", "boosting rounds to compare on validation (trees)")
	fs.StringVar(&depths, "depths", "2", "tree depths to compare on validation (1: stumps)")
	fs.BoolVar(&o.eval, "eval", false, "evaluate a model on the cache-qqp held-out split and the out-of-domain corpora instead of training")
	fs.IntVar(&o.show, "show", 0, "print the N highest-scoring validation non-duplicates (errors of the chosen model)")
	fs.BoolVar(&o.shared, "shared", false, "also evaluate with all pairs in one shared partition (slower)")
	fs.IntVar(&o.cv, "cv", 0, "compare model kinds by N-fold cross-validation on the training split (writes nothing)")
	fs.StringVar(&o.model, "model", "", "with -eval: model file to evaluate (default: the embedded one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, f := range strings.Split(rounds, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
			return fmt.Errorf("bad -rounds %q", rounds)
		}
		o.rounds = append(o.rounds, n)
	}
	slices.Sort(o.rounds)
	for _, f := range strings.Split(depths, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 || n > 4 {
			return fmt.Errorf("bad -depths %q", depths)
		}
		o.depths = append(o.depths, n)
	}
	qqp, err := pairs.Load(filepath.Join(o.corpora, "cache-qqp", "data.jsonl"))
	if err != nil {
		return err
	}
	cut := pairs.TrainCut(len(qqp))
	if o.eval {
		return evaluate(out, o, qqp, cut)
	}
	return train(out, o, qqp[:cut])
}

// pair is one corpus record as the cache sees it.
type pair struct {
	query, cand string    // b (looked up) and a (stored), whitespace-folded
	x           []float64 // verifier features (nil below the floor)
	cosine      float64
	exact       bool // equal after whitespace folding: an exact-tier hit
	dup         bool
	guard       bool // the difference guard lets it through
	unmatched   []uint32
}

func fold(s string) string { return strings.Join(strings.Fields(s), " ") }

// featurize embeds both prompts with the built-in embedder (as the cache
// stores a and looks up b) and computes the verifier features (with v's word
// odds) of pairs at or above the floor.
func featurize(recs []record, floor float64, v *cache.Verifier) []pair {
	ps := embedPairs(recs, floor)
	setFeatures(ps, v)
	return ps
}

func setFeatures(ps []pair, v *cache.Verifier) {
	for i := range ps {
		if ps[i].x != nil {
			ps[i].x = v.Features(ps[i].query, ps[i].cand, ps[i].cosine)
		}
	}
}

// embedPairs computes the cosine and guard decision of every pair; pairs at
// or above the floor get a non-nil (empty) feature slice, filled by
// setFeatures.
func embedPairs(recs []record, floor float64) []pair {
	idf := cache.DefaultIDF()
	emb := cache.NewBuiltinEmbedder(idf)
	ctx := context.Background()
	out := make([]pair, len(recs))
	for i, r := range recs {
		va, _ := emb.Embed(ctx, fold(r.A))
		vb, _ := emb.Embed(ctx, fold(r.B))
		var s float64
		for k := range va {
			s += float64(va[k]) * float64(vb[k])
		}
		p := pair{query: fold(r.B), cand: fold(r.A), cosine: s, exact: fold(r.A) == fold(r.B), dup: r.Duplicate}
		if s >= floor {
			p.x = []float64{}
			p.guard = cache.GuardVeto(p.query, p.cand, idf) == ""
			p.unmatched = cache.UnmatchedWordBuckets(p.query, p.cand, idf)
		}
		out[i] = p
	}
	return out
}

// rates counts hits among duplicates and false hits among non-duplicates.
type rates struct{ dup, hit, nondup, falseHit int }

func (r rates) String() string {
	return fmt.Sprintf("%s hits, %s false", pct(r.hit, r.dup), pct(r.falseHit, r.nondup))
}

func pct(n, d int) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%% (%d/%d)", 100*float64(n)/float64(d), n, d)
}

func count(ps []pair, hit func(p pair) bool) rates {
	var r rates
	for _, p := range ps {
		r.add(p.dup, p.exact || hit(p))
	}
	return r
}

// add tallies one lookup: a duplicate hit or miss, or a non-duplicate
// (false) hit or miss.
func (r *rates) add(dup, hit bool) {
	if dup {
		r.dup++
		if hit {
			r.hit++
		}
		return
	}
	r.nondup++
	if hit {
		r.falseHit++
	}
}

// scorer is a fitted model before serialisation.
type scorer interface{ score(x []float64) float64 }

// threshold returns the smallest decision threshold (rounded up to 1e-4)
// whose false hits among the non-duplicates of ps stay within rate.
func threshold(ps []pair, s scorer, rate float64) float64 {
	return thresholdOf(ps, scoresOf(ps, s), rate)
}

// scoresOf scores every pair (-1 for pairs the verifier never sees).
func scoresOf(ps []pair, s scorer) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = -1
		if p.x != nil && !p.exact {
			out[i] = s.score(p.x)
		}
	}
	return out
}

func thresholdOf(ps []pair, sc []float64, rate float64) float64 {
	nondup := 0
	var scores []float64
	for i, p := range ps {
		if p.dup {
			continue
		}
		nondup++
		if sc[i] >= 0 {
			scores = append(scores, sc[i])
		}
	}
	allowed := int(math.Floor(rate * float64(nondup)))
	sort.Sort(sort.Reverse(sort.Float64Slice(scores)))
	if allowed >= len(scores) {
		return 0
	}
	// Strictly above the (allowed+1)-th highest non-duplicate score.
	t := math.Ceil(scores[allowed]*1e4+1e-9) / 1e4
	return min(t, 1)
}

func hitsAt(ps []pair, s scorer, t float64) rates {
	return hitsOf(ps, scoresOf(ps, s), t)
}

func hitsOf(ps []pair, sc []float64, t float64) rates {
	var r rates
	for i, p := range ps {
		r.add(p.dup, p.exact || (sc[i] >= 0 && sc[i] >= t))
	}
	return r
}

// candidate is one fitted model (not yet thresholded).
type candidate struct {
	name  string
	model cache.VerifierModel
	v     *cache.Verifier
}

func (c candidate) score(x []float64) float64 { return c.v.ScoreFeatures(x) }

// fitModels fits every model kind asked for on the fit pairs (pairs at or
// above the training floor, features computed here with out-of-fold word
// odds) and returns them with the word odds learnt from all fit pairs.
func fitModels(fit []pair, o options) ([]candidate, error) {
	var odds []cache.VerifierWordOdds
	if o.oddsMin > 0 {
		odds = wordOdds(fit, o.oddsMin, o.oddsMax)
		for k := 0; k < oddsFolds; k++ {
			lo, hi := k*len(fit)/oddsFolds, (k+1)*len(fit)/oddsFolds
			rest := append(slices.Clone(fit[:lo]), fit[hi:]...)
			v, err := oddsVerifier(wordOdds(rest, o.oddsMin, o.oddsMax))
			if err != nil {
				return nil, err
			}
			setFeatures(fit[lo:hi], v)
		}
	} else {
		v, err := oddsVerifier(nil)
		if err != nil {
			return nil, err
		}
		setFeatures(fit, v)
	}
	var xs [][]float64
	var ys []float64
	for _, p := range fit {
		if p.x != nil && !p.exact {
			xs = append(xs, p.x)
			ys = append(ys, b2f(p.dup))
		}
	}
	if len(xs) == 0 || sum(ys) == 0 || sum(ys) == float64(len(ys)) {
		return nil, errors.New("no training examples of both classes above the training floor")
	}
	var models []candidate
	if o.kind == "auto" || o.kind == cache.VerifierLogistic {
		models = append(models, candidate{name: "logistic", model: fitLogistic(xs, ys, 1.0).model()})
	}
	if o.kind == "auto" || o.kind == cache.VerifierTrees {
		for _, depth := range o.depths {
			for _, t := range fitTrees(xs, ys, o.rounds, depth) {
				models = append(models, candidate{name: fmt.Sprintf("trees%d/%d", depth, len(t.trees)), model: t.model()})
			}
		}
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("unknown -kind %q", o.kind)
	}
	for i := range models {
		models[i].model.WordOdds = odds
		models[i].model.Floor = o.floor
		models[i].model.Threshold = 1
		v, err := cache.NewVerifier(models[i].model, cache.DefaultIDF())
		if err != nil {
			return nil, fmt.Errorf("fitted model does not load: %w", err)
		}
		models[i].v = v
	}
	return models, nil
}

// dropBelow clears the features of pairs below the floor: the cache never
// hands those to the verifier.
func dropBelow(ps []pair, floor float64) {
	for i := range ps {
		if ps[i].cosine < floor {
			ps[i].x = nil
		}
	}
}

func train(out io.Writer, o options, recs []record) error {
	vcut := int(float64(len(recs)) * fitFraction)
	tf := min(o.trainFloor, o.floor)
	fmt.Fprintf(out, "training split: cache-qqp lines 1-%d; fit lines 1-%d, validation lines %d-%d; floor %.2f, training floor %.2f\n",
		len(recs), vcut, vcut+1, len(recs), o.floor, tf)
	if o.cv > 1 {
		return crossValidate(out, o, recs)
	}
	fit := embedPairs(recs[:vcut], tf)
	val := embedPairs(recs[vcut:], o.floor)
	models, err := fitModels(fit, o)
	if err != nil {
		return err
	}
	dropBelow(fit, o.floor)
	setFeatures(val, models[0].v)
	baseline := func(p pair) bool { return p.cosine >= cache.DefaultThreshold && p.guard }
	fmt.Fprintf(out, "word odds: %d buckets; baseline (cosine >= %.2f + guard): fit %v; validation %v\n",
		len(models[0].model.WordOdds), cache.DefaultThreshold, count(fit, baseline), count(val, baseline))
	best, bestT, bestRes := 0, 1.0, rates{}
	for i, c := range models {
		t := threshold(val, c, o.targetFalse)
		res := hitsAt(val, c, t)
		fmt.Fprintf(out, "  %-12s threshold %.4f  fit %v  validation %v\n", c.name, t, hitsAt(fit, c, t), res)
		if i == 0 || res.hit > bestRes.hit {
			best, bestT, bestRes = i, t, res
		}
	}
	c := models[best]
	c.model.Threshold = bestT
	c.model.Notes = fmt.Sprintf("trainverify: %s; cache-qqp lines 1-%d fit, %d-%d validation; threshold for <= %.2f%% false hits on validation: validation %v",
		c.name, vcut, vcut+1, len(recs), 100*o.targetFalse, bestRes)
	fmt.Fprintf(out, "chosen: %s, threshold %.4f\n", c.name, bestT)
	if o.show > 0 {
		showErrors(out, recs[vcut:], val, c, o.show)
	}
	final, err := cache.NewVerifier(c.model, cache.DefaultIDF())
	if err != nil {
		return fmt.Errorf("fitted model does not load: %w", err)
	}
	if o.shared {
		printShared(out, "validation", recs[vcut:], final, o.floor)
	}
	if o.out == "" {
		return nil
	}
	data, err := json.Marshal(c.model)
	if err != nil {
		return fmt.Errorf("encode model: %w", err)
	}
	data = append(data, '\n')
	if err := os.WriteFile(o.out, data, 0o644); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	fmt.Fprintf(out, "wrote %s (%d bytes)\n", o.out, len(data))
	return nil
}

// crossValidate compares the model kinds by o.cv-fold cross-validation over
// the whole training split (contiguous folds): out-of-fold scores are pooled
// and hit rates are read at several false-hit rates, which is steadier than
// one validation part for choosing features and parameters.
func crossValidate(out io.Writer, o options, recs []record) error {
	tf := min(o.trainFloor, o.floor)
	all := embedPairs(recs, tf)
	pooled := map[string][]pair{}
	scores := map[string][]float64{}
	var names []string
	for k := 0; k < o.cv; k++ {
		lo, hi := k*len(all)/o.cv, (k+1)*len(all)/o.cv
		fit := append(slices.Clone(all[:lo]), all[hi:]...)
		held := slices.Clone(all[lo:hi])
		dropBelow(held, o.floor)
		models, err := fitModels(fit, o)
		if err != nil {
			return err
		}
		setFeatures(held, models[0].v)
		for _, c := range models {
			if k == 0 {
				names = append(names, c.name)
			}
			pooled[c.name] = append(pooled[c.name], held...)
			scores[c.name] = append(scores[c.name], scoresOf(held, c)...)
		}
	}
	fractions := []float64{0.005, 0.007, 0.01, 0.02, 0.05}
	names = append(names, "baseline")
	pooled["baseline"] = all
	scores["baseline"] = make([]float64, len(all))
	for i, p := range all {
		// The shipped rule as a ranking: cosine among pairs the guard passes.
		scores["baseline"][i] = -1
		if p.guard && !p.exact {
			scores["baseline"][i] = p.cosine
		}
	}
	fmt.Fprintf(out, "%d-fold cross-validation on the training split, pooled; hit rate on duplicates at a false-hit rate of", o.cv)
	for _, r := range fractions {
		fmt.Fprintf(out, " %.1f%%", 100*r)
	}
	fmt.Fprintln(out)
	for _, name := range names {
		ps, sc := pooled[name], scores[name]
		fmt.Fprintf(out, "  %-12s", name)
		for _, r := range fractions {
			res := hitsOf(ps, sc, thresholdOf(ps, sc, r))
			fmt.Fprintf(out, " %5.1f%%", 100*float64(res.hit)/float64(res.dup))
		}
		fmt.Fprintln(out)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// verifierScorer adapts a loaded Verifier.
type verifierScorer struct{ v *cache.Verifier }

func (s verifierScorer) score(x []float64) float64 { return s.v.ScoreFeatures(x) }

func evaluate(out io.Writer, o options, qqp []record, cut int) error {
	v := cache.DefaultVerifier()
	if o.model != "" {
		data, err := os.ReadFile(o.model)
		if err != nil {
			return fmt.Errorf("read model: %w", err)
		}
		if v, err = cache.ParseVerifier(data, cache.DefaultIDF()); err != nil {
			return err
		}
	}
	m := v.Model()
	floor := m.Floor
	if floor == 0 {
		floor = cache.VerifierFloor
	}
	sets := []struct {
		name string
		recs []record
	}{{fmt.Sprintf("cache-qqp held-out (lines %d-%d)", cut+1, len(qqp)), qqp[cut:]}}
	for _, name := range []string{"cache-mrpc", "cache-stsb", "cache-gptcache-mock"} {
		recs, err := pairs.Load(filepath.Join(o.corpora, name, "data.jsonl"))
		if err != nil {
			return err
		}
		sets = append(sets, struct {
			name string
			recs []record
		}{name, recs})
	}
	fmt.Fprintf(out, "model %s, floor %.2f, threshold %.4f; baseline = cosine >= %.2f + difference guard\n", m.Kind, floor, v.Threshold(), cache.DefaultThreshold)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "corpus\tdup pairs\tbaseline hits\tverifier hits\tverifier+guard hits\tnon-dup pairs\tbaseline false\tverifier false\tverifier+guard false\t")
	s := verifierScorer{v}
	for _, set := range sets {
		ps := featurize(set.recs, floor, v)
		base := count(ps, func(p pair) bool { return p.cosine >= cache.DefaultThreshold && p.guard })
		ver := hitsAt(ps, s, v.Threshold())
		both := count(ps, func(p pair) bool { return p.x != nil && p.guard && s.score(p.x) >= v.Threshold() })
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", set.name, base.dup,
			pct(base.hit, base.dup), pct(ver.hit, ver.dup), pct(both.hit, both.dup), base.nondup,
			pct(base.falseHit, base.nondup), pct(ver.falseHit, ver.nondup), pct(both.falseHit, both.nondup))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o.shared {
		for _, set := range sets {
			printShared(out, set.name, set.recs, v, floor)
		}
	}
	return nil
}

// showErrors prints the n highest-scoring non-duplicates of ps.
func showErrors(out io.Writer, recs []record, ps []pair, s scorer, n int) {
	type scored struct {
		i     int
		score float64
	}
	var l []scored
	for i, p := range ps {
		if !p.dup && p.x != nil {
			l = append(l, scored{i, s.score(p.x)})
		}
	}
	sort.SliceStable(l, func(a, b int) bool { return l[a].score > l[b].score })
	for _, e := range l[:min(n, len(l))] {
		fmt.Fprintf(out, "%.3f cos %.3f | %s | %s\n", e.score, ps[e.i].cosine, recs[e.i].A, recs[e.i].B)
	}
}

// oddsFolds is the number of folds for the out-of-fold word odds.
const oddsFolds = 5

// oddsPrior is the pseudo-count that shrinks a word's odds to the base rate.
const oddsPrior = 4.0

// wordOdds learns, per word bucket, the log-odds of a pair being a
// duplicate when that word is unmatched, relative to the base rate, from
// the pairs at or above the training floor (not exact matches).
func wordOdds(ps []pair, minCount int, maxOdds float64) []cache.VerifierWordOdds {
	dups := map[uint32]int{}
	all := map[uint32]int{}
	var n, nd int
	for _, p := range ps {
		if p.x == nil || p.exact {
			continue
		}
		n++
		if p.dup {
			nd++
		}
		for _, b := range p.unmatched {
			all[b]++
			if p.dup {
				dups[b]++
			}
		}
	}
	if n == 0 || nd == 0 || nd == n {
		return nil
	}
	rate := float64(nd) / float64(n)
	base := math.Log(rate / (1 - rate))
	var out []cache.VerifierWordOdds
	for b, c := range all {
		if c < minCount {
			continue
		}
		d := float64(dups[b])
		lo := math.Log((d+oddsPrior*rate)/(float64(c)-d+oddsPrior*(1-rate))) - base
		lo = min(lo, maxOdds)
		out = append(out, cache.VerifierWordOdds{Bucket: b, Odds: math.Round(lo*1e4) / 1e4})
	}
	slices.SortFunc(out, func(x, y cache.VerifierWordOdds) int { return int(x.Bucket) - int(y.Bucket) })
	return out
}

// oddsVerifier is a verifier used only to compute features with a word odds
// table.
func oddsVerifier(odds []cache.VerifierWordOdds) (*cache.Verifier, error) {
	return cache.NewVerifier(cache.VerifierModel{
		Kind: cache.VerifierTrees, Features: cache.VerifierFeatureNames(), Threshold: 1, WordOdds: odds,
	}, cache.DefaultIDF())
}
