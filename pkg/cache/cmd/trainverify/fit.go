package main

import (
	"math"
	"slices"

	"github.com/tollgate-dev/tollgate/pkg/cache"
)

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// logistic is an L2-regularised logistic regression over standardised
// features, fitted by Newton's method.
type logistic struct {
	mean, scale, w []float64
	bias           float64
}

func (l *logistic) score(x []float64) float64 {
	z := l.bias
	for i, w := range l.w {
		z += w * (x[i] - l.mean[i]) / l.scale[i]
	}
	return sigmoid(z)
}

func (l *logistic) model() cache.VerifierModel {
	return cache.VerifierModel{
		Kind:     cache.VerifierLogistic,
		Features: cache.VerifierFeatureNames(),
		Bias:     l.bias,
		Mean:     slices.Clone(l.mean),
		Scale:    slices.Clone(l.scale),
		Weights:  slices.Clone(l.w),
	}
}

func fitLogistic(xs [][]float64, ys []float64, lambda float64) *logistic {
	d := len(xs[0])
	n := float64(len(xs))
	l := &logistic{mean: make([]float64, d), scale: make([]float64, d), w: make([]float64, d)}
	for _, x := range xs {
		for j, v := range x {
			l.mean[j] += v / n
		}
	}
	for _, x := range xs {
		for j, v := range x {
			l.scale[j] += (v - l.mean[j]) * (v - l.mean[j]) / n
		}
	}
	for j := range l.scale {
		l.scale[j] = math.Sqrt(l.scale[j])
		if l.scale[j] < 1e-9 {
			l.scale[j] = 1
		}
	}
	// theta = (bias, w...); z = theta · (1, standardised x).
	k := d + 1
	theta := make([]float64, k)
	z := make([]float64, k)
	for iter := 0; iter < 30; iter++ {
		grad := make([]float64, k)
		hess := make([]float64, k*k)
		for i, x := range xs {
			z[0] = 1
			for j, v := range x {
				z[j+1] = (v - l.mean[j]) / l.scale[j]
			}
			var s float64
			for j := range z {
				s += theta[j] * z[j]
			}
			p := sigmoid(s)
			g, h := p-ys[i], p*(1-p)
			for a := range z {
				grad[a] += g * z[a]
				ha := h * z[a]
				for b := a; b < k; b++ {
					hess[a*k+b] += ha * z[b]
				}
			}
		}
		for a := 1; a < k; a++ {
			grad[a] += lambda * theta[a]
			hess[a*k+a] += lambda
		}
		for a := 0; a < k; a++ {
			for b := 0; b < a; b++ {
				hess[a*k+b] = hess[b*k+a]
			}
		}
		step := solve(hess, grad, k)
		var norm float64
		for a := range theta {
			theta[a] -= step[a]
			norm += step[a] * step[a]
		}
		if norm < 1e-16 {
			break
		}
	}
	l.bias = theta[0]
	copy(l.w, theta[1:])
	return l
}

// solve returns x with A x = b by Gaussian elimination with partial pivoting
// (A is k×k, row-major; both are copied).
func solve(a, b []float64, k int) []float64 {
	m := slices.Clone(a)
	x := slices.Clone(b)
	for c := 0; c < k; c++ {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(m[r*k+c]) > math.Abs(m[p*k+c]) {
				p = r
			}
		}
		if p != c {
			for j := 0; j < k; j++ {
				m[c*k+j], m[p*k+j] = m[p*k+j], m[c*k+j]
			}
			x[c], x[p] = x[p], x[c]
		}
		piv := m[c*k+c]
		if math.Abs(piv) < 1e-12 {
			continue
		}
		for r := c + 1; r < k; r++ {
			f := m[r*k+c] / piv
			if f == 0 {
				continue
			}
			for j := c; j < k; j++ {
				m[r*k+j] -= f * m[c*k+j]
			}
			x[r] -= f * x[c]
		}
	}
	for c := k - 1; c >= 0; c-- {
		s := x[c]
		for j := c + 1; j < k; j++ {
			s -= m[c*k+j] * x[j]
		}
		if piv := m[c*k+c]; math.Abs(piv) >= 1e-12 {
			x[c] = s / piv
		} else {
			x[c] = 0
		}
	}
	return x
}

// trees is an additive model of small regression trees fitted by gradient
// boosting on the logistic loss (one Newton step per leaf, shrinkage).
type trees struct {
	bias  float64
	trees []cache.VerifierTree
}

func (t *trees) model() cache.VerifierModel {
	return cache.VerifierModel{
		Kind:     cache.VerifierTrees,
		Features: cache.VerifierFeatureNames(),
		Bias:     t.bias,
		Trees:    slices.Clone(t.trees),
	}
}

// Boosting parameters.
const (
	treeBins    = 64   // candidate split points per feature (quantiles)
	treeShrink  = 0.1  // learning rate
	treeLambda  = 2.0  // L2 on leaf values
	treeMinHess = 10.0 // minimum hessian mass per leaf
	leafDigits  = 1e6  // leaf values are rounded to 6 decimals
)

// booster holds the binned training data.
type booster struct {
	n, d  int
	edges [][]float64
	bins  [][]uint8
	g, h  []float64
	depth int
}

// fitTrees boosts trees of the given depth up to the largest of rounds and
// returns the model after each listed number of rounds.
func fitTrees(xs [][]float64, ys []float64, rounds []int, depth int) []*trees {
	n, d := len(xs), len(xs[0])
	b := &booster{n: n, d: d, edges: make([][]float64, d), bins: make([][]uint8, d),
		g: make([]float64, n), h: make([]float64, n), depth: depth}
	// Split candidates per feature: upper edges of quantile bins.
	col := make([]float64, n)
	for j := 0; j < d; j++ {
		for i, x := range xs {
			col[i] = x[j]
		}
		sorted := slices.Clone(col)
		slices.Sort(sorted)
		uniq := slices.Compact(slices.Clone(sorted))
		var e []float64
		if len(uniq) <= treeBins {
			e = uniq[:len(uniq)-1]
		} else {
			for k := 1; k < treeBins; k++ {
				v := sorted[k*n/treeBins]
				if len(e) == 0 || v > e[len(e)-1] {
					e = append(e, v)
				}
			}
		}
		b.edges[j] = e
		b.bins[j] = make([]uint8, n)
		for i, v := range col {
			k, _ := slices.BinarySearch(e, v) // first edge >= v: x <= e[k]
			b.bins[j][i] = uint8(k)
		}
	}
	pos := sum(ys)
	base := math.Log(pos / (float64(n) - pos))
	f := make([]float64, n)
	for i := range f {
		f[i] = base
	}
	model := &trees{bias: base}
	var out []*trees
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	for r := 1; r <= rounds[len(rounds)-1]; r++ {
		for i := range f {
			p := sigmoid(f[i])
			b.g[i], b.h[i] = p-ys[i], p*(1-p)
		}
		t, ok := b.grow(all, 1)
		if !ok {
			break
		}
		model.trees = append(model.trees, t)
		for i, x := range xs {
			f[i] += t.Value(x)
		}
		if slices.Contains(rounds, r) {
			out = append(out, &trees{bias: model.bias, trees: slices.Clone(model.trees)})
		}
	}
	if len(out) == 0 || len(out[len(out)-1].trees) != len(model.trees) {
		out = append(out, model)
	}
	return out
}

func leaf(g, h float64) float64 {
	return math.Round(-g/(h+treeLambda)*treeShrink*leafDigits) / leafDigits
}

// grow finds the best split of the examples idx and, below the maximum
// depth, splits each side again.
func (b *booster) grow(idx []int, level int) (cache.VerifierTree, bool) {
	var G, H float64
	for _, i := range idx {
		G += b.g[i]
		H += b.h[i]
	}
	var gs, hs [treeBins + 1]float64
	bestGain, bestF, bestK := 0.0, -1, 0
	var bGL, bHL float64
	for j := 0; j < b.d; j++ {
		clear(gs[:])
		clear(hs[:])
		bj := b.bins[j]
		for _, i := range idx {
			gs[bj[i]] += b.g[i]
			hs[bj[i]] += b.h[i]
		}
		var gl, hl float64
		for k := 0; k < len(b.edges[j]); k++ {
			gl += gs[k]
			hl += hs[k]
			gr, hr := G-gl, H-hl
			if hl < treeMinHess || hr < treeMinHess {
				continue
			}
			gain := gl*gl/(hl+treeLambda) + gr*gr/(hr+treeLambda) - G*G/(H+treeLambda)
			if gain > bestGain+1e-12 {
				bestGain, bestF, bestK, bGL, bHL = gain, j, k, gl, hl
			}
		}
	}
	if bestF < 0 {
		return cache.VerifierTree{}, false
	}
	t := cache.VerifierTree{F: bestF, T: b.edges[bestF][bestK], Left: leaf(bGL, bHL), Right: leaf(G-bGL, H-bHL)}
	if level < b.depth {
		var left, right []int
		for _, i := range idx {
			if int(b.bins[bestF][i]) <= bestK {
				left = append(left, i)
			} else {
				right = append(right, i)
			}
		}
		if lt, ok := b.grow(left, level+1); ok {
			t.LeftTree = &lt
		}
		if rt, ok := b.grow(right, level+1); ok {
			t.RightTree = &rt
		}
	}
	return t, true
}
