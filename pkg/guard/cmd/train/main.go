// Command train fits the prompt-injection model that package guard embeds
// (pkg/guard/model/injection.bin): logistic regression over hashed word,
// character and character-class n-grams (package ngram), trained with
// AdaGrad SGD from a fixed seed on the dev half (train + validation splits,
// corpus.SplitOf) of every injection-* corpus plus the synthetic examples.
// The shipped threshold is the lowest one whose pooled out-of-fold
// false-positive rate (5-fold cross-validation over the dev half) is at most
// -max-fpr; the cross-validation results are printed per corpus, then the
// final model's in-sample and held-out test-split rates. The output is
// byte-identical on every run.
//
// Run from the repository root:
//
//	go run ./pkg/guard/cmd/train
package main

import (
	"flag"
	"fmt"
	"hash/fnv"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/guard/corpus"
	"github.com/tollgate-dev/tollgate/pkg/guard/ngram"
)

type example struct {
	norm   []byte
	idx    []uint32
	val    []float32
	attack bool
	split  corpus.Split
	corpus string
}

func main() {
	root := flag.String("corpora", "../shared/corpora", "folder holding the injection-* corpora")
	out := flag.String("out", "pkg/guard/model/injection.bin", "model file to write")
	bits := flag.Uint("bits", 18, "log2 of the number of hash buckets")
	epochs := flag.Int("epochs", 12, "passes over the training split")
	lr := flag.Float64("lr", 0.3, "AdaGrad learning rate")
	l2 := flag.Float64("l2", 1e-5, "L2 penalty per update")
	benignWeight := flag.Float64("benign-weight", 2, "loss weight of benign examples")
	maxFPR := flag.Float64("max-fpr", 0.01, "highest validation false-positive rate allowed when picking the threshold")
	seed := flag.Uint64("seed", 1, "shuffle seed")
	feat := flag.String("features", "word1,word2,char4,shape5", "feature families: word1, word2, word3, char3, char4, char5, shape5")
	cv := flag.Int("cv", 5, "pick the threshold by cross-validation with this many folds over train+validation and fit the model on both (< 2: fit on train, threshold on validation)")
	cvOnly := flag.Bool("cv-only", false, "print the cross-validation result and write no model (compare flags)")
	synthetic := flag.Bool("synthetic", true, "add the synthetic examples of synthetic.go to the train split")
	windowLog2 := flag.Uint("window-log2", 8, "log2 of the scoring window in bytes (0 = whole text only)")
	windowPenalty := flag.Float64("window-penalty", 2, "logit subtracted from a window's score before it counts (cross-validation: 0 costs ~3 points of detection at 1% FPR)")
	flag.Parse()
	set, err := parseFeatures(*feat)
	if err != nil {
		log.Fatal(err)
	}
	if err := run(*root, *out, uint8(*bits), set, uint8(*windowLog2), *windowPenalty, *epochs, *lr, *l2, *benignWeight, *maxFPR, *seed, *synthetic, *cv, *cvOnly); err != nil {
		log.Fatal(err)
	}
}

func parseFeatures(s string) (ngram.FeatureSet, error) {
	var set ngram.FeatureSet
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "word1":
			set |= ngram.WordUnigrams
		case "word2":
			set |= ngram.WordBigrams
		case "char3":
			set |= ngram.Char3
		case "char4":
			set |= ngram.Char4
		case "char5":
			set |= ngram.Char5
		case "word3":
			set |= ngram.WordTrigrams
		case "shape5":
			set |= ngram.Shape5
		default:
			return 0, fmt.Errorf("unknown feature family %q", f)
		}
	}
	return set, nil
}

func run(root, out string, bits uint8, set ngram.FeatureSet, windowLog2 uint8, windowPenalty float64, epochs int, lr, l2, benignWeight, maxFPR float64, seed uint64, synthetic bool, cvFolds int, cvOnly bool) error {
	dirs, err := corpus.Dirs(root, "injection-")
	if err != nil {
		return err
	}
	var all []example
	var norm []byte
	var feats []uint32
	for _, d := range dirs {
		recs, err := corpus.Load(filepath.Join(root, d))
		if err != nil {
			return err
		}
		for _, r := range recs {
			norm = ngram.Normalize(norm, r.Text)
			feats = ngram.Features(feats, norm, bits, set)
			e := sparse(feats, r.Attack(), corpus.SplitOf(r.Text), d)
			e.norm = append([]byte(nil), norm...)
			all = append(all, e)
		}
	}
	if synthetic {
		texts, attack := synthExamples()
		for i, t := range texts {
			norm = ngram.Normalize(norm, t)
			feats = ngram.Features(feats, norm, bits, set)
			e := sparse(feats, attack[i], corpus.Train, "synthetic")
			e.norm = append([]byte(nil), norm...)
			all = append(all, e)
		}
	}
	// The threshold comes from pooled out-of-fold scores over the train and
	// validation splits (cvFolds folds), and the final model is then fit on
	// both; with cvFolds < 2 the model is fit on train and the threshold
	// picked on validation.
	var cvThreshold float64
	if cvFolds > 1 {
		thr, err := crossValidate(all, cvFolds, bits, set, windowLog2, windowPenalty, epochs, lr, l2, benignWeight, maxFPR, seed)
		if err != nil {
			return err
		}
		if cvOnly {
			return nil
		}
		cvThreshold = thr
	}
	var train []int
	for i, e := range all {
		if e.split == corpus.Train || cvFolds > 1 && e.split == corpus.Validation {
			train = append(train, i)
		}
	}
	n := 1 << bits
	w, bias := fit(all, train, n, epochs, lr, l2, benignWeight, seed)
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	m, scores, err := quantizedScores(all, idx, w, bias, set, windowLog2, windowPenalty)
	if err != nil {
		return err
	}
	var valBenign []float64
	for i, e := range all {
		if e.split == corpus.Validation && !e.attack {
			valBenign = append(valBenign, scores[i])
		}
	}
	m.Threshold = float32(pickThreshold(valBenign, maxFPR))
	if cvFolds > 1 {
		m.Threshold = float32(cvThreshold)
	}
	log.Printf("threshold %.4f (max FPR %.3f; cross-validation folds %d, else validation benign n=%d)", m.Threshold, maxFPR, cvFolds, len(valBenign))
	for _, sp := range []corpus.Split{corpus.Train, corpus.Validation, corpus.Test} {
		report(all, scores, sp, float64(m.Threshold), dirs)
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create model dir: %w", err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	log.Printf("wrote %s (%d bytes)", out, len(b))
	return nil
}

// fit trains logistic regression with AdaGrad SGD on all[idx].
func fit(all []example, idx []int, n, epochs int, lr, l2, benignWeight float64, seed uint64) ([]float64, float64) {
	train := append([]int(nil), idx...)
	w := make([]float64, n)
	g2 := make([]float64, n)
	var bias, bg2 float64
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for ep := 0; ep < epochs; ep++ {
		rng.Shuffle(len(train), func(i, j int) { train[i], train[j] = train[j], train[i] })
		var loss float64
		for _, k := range train {
			e := &all[k]
			z := bias
			for j, f := range e.idx {
				z += w[f] * float64(e.val[j])
			}
			p := ngram.Sigmoid(z)
			y, cw := 0.0, benignWeight
			if e.attack {
				y, cw = 1, 1
			}
			loss -= cw * (y*math.Log(p+1e-12) + (1-y)*math.Log(1-p+1e-12))
			g := cw * (p - y)
			for j, f := range e.idx {
				gi := g*float64(e.val[j]) + l2*w[f]
				g2[f] += gi * gi
				w[f] -= lr * gi / (math.Sqrt(g2[f]) + 1e-8)
			}
			bg2 += g * g
			bias -= lr * g / (math.Sqrt(bg2) + 1e-8)
		}
		log.Printf("epoch %d: mean weighted loss %.4f", ep+1, loss/float64(len(train)))
	}
	return w, bias
}

// quantizedScores scores all[idx] with the quantised model and window
// scoring, as the guard does at run time (without obfuscation decoders).
func quantizedScores(all []example, idx []int, w []float64, bias float64, set ngram.FeatureSet, windowLog2 uint8, windowPenalty float64) (*ngram.Model, []float64, error) {
	w32 := make([]float32, len(w))
	for i, v := range w {
		w32[i] = float32(v)
	}
	m, err := ngram.Quantize(w32, set, float32(bias), 0.5)
	if err != nil {
		return nil, nil, err
	}
	m.WindowLog2 = windowLog2
	m.WindowPenalty = float32(windowPenalty)
	scores := make([]float64, len(idx))
	var feats []uint32
	pos := make([]int32, 0, 1024)
	var acc []ngram.WindowAcc
	for k, i := range idx {
		e := &all[i]
		feats, pos = ngram.FeaturesAt(feats, pos, e.norm, m.Bits, m.Features)
		if len(acc) < len(e.norm)+1 {
			acc = make([]ngram.WindowAcc, len(e.norm)+1)
		}
		_, scores[k] = m.WindowScores(feats, pos, len(e.norm), m.Window(), acc)
	}
	return m, scores, nil
}

// crossValidate splits the corpora's train and validation examples into
// folds (FNV-1a of the normalised text), trains on all but one fold (plus
// the synthetic examples) and scores the held-out fold; it prints the
// pooled out-of-fold detection rate at the threshold that keeps pooled
// benign FPR at most maxFPR, and returns that threshold. The test split is
// not touched.
func crossValidate(all []example, folds int, bits uint8, set ngram.FeatureSet, windowLog2 uint8, windowPenalty float64, epochs int, lr, l2, benignWeight, maxFPR float64, seed uint64) (float64, error) {
	foldOf := func(e *example) int {
		h := fnv.New32a()
		h.Write(e.norm)
		return int(h.Sum32()>>8) % folds
	}
	var benign, attack []float64
	var heldIdx []int
	var heldScore []float64
	for f := 0; f < folds; f++ {
		var train, held []int
		for i := range all {
			e := &all[i]
			switch {
			case e.split == corpus.Test:
			case e.corpus == "synthetic":
				train = append(train, i)
			case foldOf(e) == f:
				held = append(held, i)
			default:
				train = append(train, i)
			}
		}
		w, bias := fit(all, train, 1<<bits, epochs, lr, l2, benignWeight, seed)
		_, scores, err := quantizedScores(all, held, w, bias, set, windowLog2, windowPenalty)
		if err != nil {
			return 0, err
		}
		for k, i := range held {
			heldIdx = append(heldIdx, i)
			heldScore = append(heldScore, scores[k])
			if all[i].attack {
				attack = append(attack, scores[k])
			} else {
				benign = append(benign, scores[k])
			}
		}
	}
	for _, f := range []float64{0.005, 0.01, 0.02, 0.03, 0.05} {
		t := pickThreshold(benign, f)
		d := 0
		for _, s := range attack {
			if s >= t {
				d++
			}
		}
		fmt.Printf("cv trade-off: max FPR %.1f%% -> threshold %.2f detects %.2f%%\n", 100*f, t, pct(d, len(attack)))
	}
	thr := pickThreshold(benign, maxFPR)
	det, fp := 0, 0
	for _, s := range attack {
		if s >= thr {
			det++
		}
	}
	for _, s := range benign {
		if s >= thr {
			fp++
		}
	}
	fmt.Printf("cv %d folds: threshold %.2f  detected %.2f%% of %d attacks  FPR %.2f%% of %d benign\n",
		folds, thr, pct(det, len(attack)), len(attack), pct(fp, len(benign)), len(benign))
	cvReport(all, heldIdx, heldScore, thr)
	return thr, nil
}

// sparse turns bucket indices into (bucket, count/sqrt(total)) pairs, the
// same scaling ngram.Model.Score applies.
func sparse(feats []uint32, attack bool, split corpus.Split, name string) example {
	counts := map[uint32]float32{}
	for _, f := range feats {
		counts[f]++
	}
	e := example{attack: attack, split: split, corpus: name}
	keys := make([]uint32, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	scale := float32(1)
	if len(feats) > 0 {
		scale = float32(1 / math.Sqrt(float64(len(feats))))
	}
	for _, k := range keys {
		e.idx = append(e.idx, k)
		e.val = append(e.val, counts[k]*scale)
	}
	return e
}

// pickThreshold returns the lowest threshold on a 0.01 grid from 0.10 at
// which at most maxFPR of the benign scores reach it.
func pickThreshold(benign []float64, maxFPR float64) float64 {
	for t := 0.10; t < 1; t += 0.01 {
		fp := 0
		for _, s := range benign {
			if s >= t {
				fp++
			}
		}
		if float64(fp) <= maxFPR*float64(len(benign)) {
			return math.Round(t*100) / 100
		}
	}
	return 0.99
}

func report(all []example, scores []float64, sp corpus.Split, thr float64, dirs []string) {
	fmt.Printf("== %s split, threshold %.2f\n", sp, thr)
	for _, d := range dirs {
		var att, det, ben, fp int
		for i, e := range all {
			if e.split != sp || e.corpus != d {
				continue
			}
			hit := scores[i] >= thr
			if e.attack {
				att++
				if hit {
					det++
				}
			} else {
				ben++
				if hit {
					fp++
				}
			}
		}
		fmt.Printf("%-26s attacks %4d detected %6.2f%%   benign %4d FPR %6.2f%%\n", d, att, pct(det, att), ben, pct(fp, ben))
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return 100 * float64(a) / float64(b)
}

// cvReport prints the out-of-fold detection and false-positive rate per
// corpus at threshold thr; with TRAIN_CV_DUMP set it writes the
// out-of-fold misses and false positives to that file.
func cvReport(all []example, idx []int, scores []float64, thr float64) {
	type tally struct{ att, det, ben, fp int }
	per := map[string]*tally{}
	var names []string
	var dump strings.Builder
	for k, i := range idx {
		e := &all[i]
		t := per[e.corpus]
		if t == nil {
			t = &tally{}
			per[e.corpus] = t
			names = append(names, e.corpus)
		}
		hit := scores[k] >= thr
		if e.attack {
			t.att++
			if hit {
				t.det++
			} else {
				fmt.Fprintf(&dump, "MISS %s %.3f %q\n", e.corpus, scores[k], e.norm)
			}
		} else {
			t.ben++
			if hit {
				t.fp++
				fmt.Fprintf(&dump, "FP %s %.3f %q\n", e.corpus, scores[k], e.norm)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		t := per[n]
		fmt.Printf("cv %-26s attacks %4d detected %6.2f%%   benign %4d FPR %6.2f%%\n", n, t.att, pct(t.det, t.att), t.ben, pct(t.fp, t.ben))
	}
	if p := os.Getenv("TRAIN_CV_DUMP"); p != "" {
		if err := os.WriteFile(p, []byte(dump.String()), 0o644); err != nil {
			log.Print(err)
		}
	}
}
