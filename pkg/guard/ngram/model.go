package ngram

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Model is a quantised logistic-regression model over hashed features.
// The weight of bucket i is float32(W[i]) * Scale.
type Model struct {
	Bits     uint8 // 1<<Bits buckets
	Features FeatureSet
	// WindowLog2 is log2 of the window size used by WindowScores at run
	// time (0 = whole text only); chosen at training time with the
	// threshold.
	WindowLog2 uint8
	// WindowPenalty is subtracted from a window's logit before it is
	// compared with the whole text's: a window must be that much more
	// confident to decide. Scoring the maximum over many short windows
	// raises benign scores; the penalty keeps buried injections (which
	// score far above the threshold on their own) found without that.
	WindowPenalty float32
	Scale         float32 // weight quantisation step
	Bias          float32
	Threshold     float32 // decision threshold chosen at training time
	W             []int16
}

const (
	magic   = "TGNG"
	version = 2
	// headerV1 is the header of version 1 files (no window penalty).
	headerV1    = 4 + 1 + 1 + 1 + 1 + 4*3
	headerBytes = headerV1 + 4
)

// ErrBadModel is returned by Decode for data that is not a model file.
var ErrBadModel = errors.New("ngram: bad model data")

// Quantize builds a Model from float weights (len(w) must be a power of
// two) with 16-bit weights.
func Quantize(w []float32, set FeatureSet, bias, threshold float32) (*Model, error) {
	bits := uint8(0)
	for 1<<bits < len(w) {
		bits++
	}
	if len(w) == 0 || 1<<bits != len(w) || bits > 24 {
		return nil, fmt.Errorf("ngram: weight count %d is not a power of two <= 1<<24", len(w))
	}
	var maxAbs float32
	for _, v := range w {
		maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
	}
	scale := maxAbs / 32767
	if scale == 0 {
		scale = 1
	}
	q := make([]int16, len(w))
	for i, v := range w {
		q[i] = int16(math.Round(float64(v / scale)))
	}
	return &Model{Bits: bits, Features: set, Scale: scale, Bias: bias, Threshold: threshold, W: q}, nil
}

// MarshalBinary encodes the model: "TGNG", version, bits, feature set, log2 window,
// scale, bias, threshold, window penalty (float32 LE), then 1<<bits int16
// LE weights. Version 1 files (no window penalty) still decode.
func (m *Model) MarshalBinary() ([]byte, error) {
	if len(m.W) != 1<<m.Bits {
		return nil, fmt.Errorf("ngram: %d weights for %d bits", len(m.W), m.Bits)
	}
	b := make([]byte, headerBytes, headerBytes+2*len(m.W))
	copy(b, magic)
	b[4] = version
	b[5] = m.Bits
	b[6] = byte(m.Features)
	b[7] = m.WindowLog2
	binary.LittleEndian.PutUint32(b[8:], math.Float32bits(m.Scale))
	binary.LittleEndian.PutUint32(b[12:], math.Float32bits(m.Bias))
	binary.LittleEndian.PutUint32(b[16:], math.Float32bits(m.Threshold))
	binary.LittleEndian.PutUint32(b[20:], math.Float32bits(m.WindowPenalty))
	for _, v := range m.W {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b, nil
}

// Decode parses data written by MarshalBinary.
func Decode(data []byte) (*Model, error) {
	if len(data) < headerV1 || string(data[:4]) != magic {
		return nil, fmt.Errorf("%w: missing header", ErrBadModel)
	}
	hdr := headerBytes
	switch data[4] {
	case 1:
		hdr = headerV1
	case version:
		if len(data) < headerBytes {
			return nil, fmt.Errorf("%w: missing header", ErrBadModel)
		}
	default:
		return nil, fmt.Errorf("%w: version %d", ErrBadModel, data[4])
	}
	bits := data[5]
	if bits == 0 || bits > 24 || data[6] == 0 || FeatureSet(data[6])&^AllFeatures != 0 || data[7] > 20 {
		return nil, fmt.Errorf("%w: %d bits", ErrBadModel, bits)
	}
	n := 1 << bits
	if len(data) != hdr+2*n {
		return nil, fmt.Errorf("%w: %d bytes for %d weights", ErrBadModel, len(data), n)
	}
	m := &Model{
		Bits:       bits,
		Features:   FeatureSet(data[6]),
		WindowLog2: data[7],
		Scale:      math.Float32frombits(binary.LittleEndian.Uint32(data[8:])),
		Bias:       math.Float32frombits(binary.LittleEndian.Uint32(data[12:])),
		Threshold:  math.Float32frombits(binary.LittleEndian.Uint32(data[16:])),
		W:          make([]int16, n),
	}
	if hdr == headerBytes {
		m.WindowPenalty = math.Float32frombits(binary.LittleEndian.Uint32(data[20:]))
		if p := float64(m.WindowPenalty); math.IsNaN(p) || p < 0 || p > 100 {
			return nil, fmt.Errorf("%w: window penalty %v", ErrBadModel, m.WindowPenalty)
		}
	}
	body := data[hdr:]
	for i := range m.W {
		m.W[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
	}
	return m, nil
}

// Featurize appends the model's feature buckets for the normalised text.
func (m *Model) Featurize(dst []uint32, norm []byte) []uint32 {
	return Features(dst, norm, m.Bits, m.Features)
}

// Score returns the probability in [0,1] that the text whose feature
// buckets are feats is an attack.
func (m *Model) Score(feats []uint32) float64 {
	if len(feats) == 0 {
		return Sigmoid(float64(m.Bias))
	}
	var sum int64
	mask := uint32(len(m.W) - 1)
	for _, f := range feats {
		sum += int64(m.W[f&mask])
	}
	z := float64(sum)*float64(m.Scale)/math.Sqrt(float64(len(feats))) + float64(m.Bias)
	return Sigmoid(z)
}

// WindowScores scores a text of n normalised bytes whose features (from
// FeaturesAt) are feats at offsets pos: whole is the score of the whole
// text, best the highest score of the whole text and of every window of
// window bytes (stride window/2), a window's logit lowered by
// WindowPenalty. acc must have room for n+1 values; it
// is scratch space.
func (m *Model) WindowScores(feats []uint32, pos []int32, n, window int, acc []WindowAcc) (whole, best float64) {
	if n <= window || window < 2 || len(feats) == 0 || len(pos) != len(feats) || len(acc) < n+1 {
		whole = m.Score(feats)
		return whole, whole
	}
	acc = acc[:n+1]
	clear(acc)
	mask := uint32(len(m.W) - 1)
	var total int64
	for k, f := range feats {
		w := int64(m.W[f&mask])
		total += w
		a := &acc[pos[k]+1]
		a.Sum += w
		a.Count++
	}
	return m.windows(acc, n, window, total, int32(len(feats)))
}

// windows finishes WindowScores and ScoreNorm: acc[i+1] holds the weight
// sum and count of the features ending at byte i (prefix-summed here),
// total and count those of the whole text.
func (m *Model) windows(acc []WindowAcc, n, window int, total int64, count int32) (whole, best float64) {
	scale, bias := float64(m.Scale), float64(m.Bias)
	if count == 0 {
		whole = Sigmoid(bias)
		return whole, whole
	}
	whole = Sigmoid(float64(total)*scale/math.Sqrt(float64(count)) + bias)
	best = whole
	if n <= window || window < 2 {
		return whole, best
	}
	wbias := bias - float64(m.WindowPenalty)
	for i := 1; i <= n; i++ {
		acc[i].Sum += acc[i-1].Sum
		acc[i].Count += acc[i-1].Count
	}
	for s := 0; s < n; s += window / 2 {
		e := min(n, s+window)
		if c := acc[e].Count - acc[s].Count; c > 0 {
			z := float64(acc[e].Sum-acc[s].Sum)*scale/math.Sqrt(float64(c)) + wbias
			best = max(best, Sigmoid(z))
		}
		if e == n {
			break
		}
	}
	return whole, best
}

// ScoreNorm returns what WindowScores returns for the features of the
// normalised text norm (FeaturesAt with the model's bits and feature set)
// and the model's window, without materialising the features: each
// feature's weight goes straight into a sum per half window (the stride),
// kept in acc, which must have room for len(norm)+1 values (scratch
// space; only len(norm)/stride+1 are used). TestScoreNormMatchesWindowScores
// keeps the two paths equal.
func (m *Model) ScoreNorm(norm []byte, acc []WindowAcc) (whole, best float64) {
	n := len(norm)
	w, bits, set := m.W, m.Bits, m.Features
	mask := uint32(len(w) - 1)
	weight := func(b uint32) int64 { return int64(w[b&mask]) }
	window := m.Window()
	blocks := window >= 2 && n > window
	var shift uint
	if blocks {
		shift = uint(m.WindowLog2 - 1)
		acc = acc[:(n-1)>>shift+1]
		clear(acc)
	}
	var total int64
	var count int32
	// Features ending at the same byte are summed locally and stored once.
	var prev, prev2 uint64
	nprev := 0
	for i := 0; i < n; {
		if !isWordByte(norm[i]) {
			i++
			continue
		}
		h := uint64(14695981039346656037)
		for ; i < n && isWordByte(norm[i]); i++ {
			h ^= uint64(norm[i])
			h *= 1099511628211
		}
		var sum int64
		var c int32
		if set&WordUnigrams != 0 {
			sum += weight(bucket(h^kindWord, bits))
			c++
		}
		if nprev >= 1 && set&WordBigrams != 0 {
			sum += weight(bucket((prev*mixMul)^h^kindBigram, bits))
			c++
		}
		if nprev >= 2 && set&WordTrigrams != 0 {
			sum += weight(bucket(((prev2*mixMul)^prev)*mixMul^h^kindTrigram, bits))
			c++
		}
		if blocks {
			a := &acc[(i-1)>>shift] // the word's last byte is i-1
			a.Sum += sum
			a.Count += c
		}
		total += sum
		count += c
		prev2, prev = prev, h
		nprev++
	}
	if n > 0 && set&(Char3|Char4|Char5|Shape5) != 0 {
		var win uint64 = ' '
		var shape uint64 = ' '
		seen := 1 // bytes in the sliding window, padding included
		for i := 0; i <= n; i++ {
			c := byte(' ')
			if i < n {
				c = norm[i]
			}
			win = win<<8 | uint64(c)
			shape = shape<<8 | uint64(shapeClass[c])
			seen++
			var sum int64
			var k int32
			if seen >= 3 && set&Char3 != 0 {
				sum += weight(bucket(win&0xFFFFFF|kindChar3<<32, bits))
				k++
			}
			if seen >= 4 && set&Char4 != 0 {
				sum += weight(bucket(win&0xFFFFFFFF|kindChar4<<32, bits))
				k++
			}
			if seen >= 5 && set&Char5 != 0 {
				sum += weight(bucket(win&0xFFFFFFFFFF|kindChar5<<40, bits))
				k++
			}
			if seen >= 5 && set&Shape5 != 0 {
				sum += weight(bucket(shape&0xFFFFFFFFFF|kindShape<<40, bits))
				k++
			}
			if blocks {
				a := &acc[min(i, n-1)>>shift]
				a.Sum += sum
				a.Count += k
			}
			total += sum
			count += k
		}
	}
	scale, bias := float64(m.Scale), float64(m.Bias)
	if count == 0 {
		whole = Sigmoid(bias)
		return whole, whole
	}
	whole = Sigmoid(float64(total)*scale/math.Sqrt(float64(count)) + bias)
	best = whole
	if !blocks {
		return whole, best
	}
	// The window starting at block k covers blocks k and k+1 (the last
	// one ends at n), as WindowScores' windows [s, min(n, s+window)).
	wbias := bias - float64(m.WindowPenalty)
	for k := range acc {
		sum, c := acc[k].Sum, acc[k].Count
		if k+1 < len(acc) {
			sum += acc[k+1].Sum
			c += acc[k+1].Count
		}
		if c > 0 {
			best = max(best, Sigmoid(float64(sum)*scale/math.Sqrt(float64(c))+wbias))
		}
		if k<<shift+window >= n {
			break
		}
	}
	return whole, best
}

// Window is the window size for WindowScores (0 = whole text only).
func (m *Model) Window() int {
	if m.WindowLog2 == 0 {
		return 0
	}
	return 1 << m.WindowLog2
}

// WindowAcc is scratch space for WindowScores.
type WindowAcc struct {
	Sum   int64
	Count int32
}

// Sigmoid is the logistic function.
func Sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
