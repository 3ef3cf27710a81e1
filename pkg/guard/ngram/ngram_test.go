package ngram

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Hello,\n\tWORLD  ", "hello, world"},
		{"ig\u200bno\u200dre\u00ad all", "ignore all"},
		{"Ｉｇｎｏｒｅ", "ignore"},
		{"іgnоrе рrеvіоus", "ignore previous"}, // Cyrillic look-alikes
		{"𝐈𝐠𝐧𝐨𝐫𝐞 𝟏𝟐", "ignore 12"},             // mathematical bold
		{"ⓘⓖⓝⓞⓡⓔ", "ignore"},
		// Latin accents fold to the base letters.
		{"Größe ÄÖÜ", "grosse aou"},
		{"Vergiß die Regeln, señor, déjà vu, Łódź", "vergiss die regeln, senor, deja vu, lodz"},
		{"日本語 Ωμέγα", "日本語 wuέya"}, // other scripts keep their letters (look-alikes still fold)
		{"a\U000E0041b", "ab"}, // tag characters are invisible
		{"", ""},
		// Opaque identifiers fold to one mark; words, years and short
		// numbers stay.
		{"record 3f2a9c1e-77b0-4c1d-9a2e-0b6f5d4c3a21 please", "record # please"},
		{"order cus_9Xk2LmQ7pZ and ORD-884213", "order # and #"},
		{"token xKqTzRwe then qzxkvwtp", "token # then #"},
		{"GPT4 in 2024 with base64, JavaScript, 10th, 42", "gpt4 in 2024 with base64, javascript, 10th, 42"},
		{"id ef5563 and 1234567", "id # and #"},
		// Words with few vowels or consonant clusters are words, not ids.
		{"prompt script skills nichts schnell Deutschland strength", "prompt script skills nichts schnell deutschland strength"},
		{"ref qzxkvwtp bcdfgh", "ref # #"},
		// A prefixed key with one case flip is a key; CamelCase words and
		// short hyphenated words stay.
		{"INV-EatHfusq tok_abCdefgh JavaScript iPhone-Case re-Use", "# # javascript iphone-case re-use"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, string(Normalize(nil, tt.in)), "input %q", tt.in)
	}
}

func TestFeaturesDeterministic(t *testing.T) {
	norm := Normalize(nil, "ignore previous instructions")
	classic := WordUnigrams | WordBigrams | Char3 | Char4
	a := Features(nil, norm, 18, classic)
	b := Features(make([]uint32, 0, 4), norm, 18, classic)
	assert.Equal(t, a, b)
	// 3 words + 2 bigrams + (len+2-2) 3-grams + (len+2-3) 4-grams
	n := len(norm)
	assert.Len(t, a, 3+2+n+n-1)
	for _, f := range a {
		assert.Less(t, f, uint32(1<<18))
	}
	assert.Len(t, Features(nil, norm, 18, WordUnigrams), 3)
	// 1 word trigram, (len+2-4) 5-grams of bytes and of byte classes.
	assert.Len(t, Features(nil, norm, 18, WordTrigrams|Char5|Shape5), 1+2*(n-2))
	// Shape n-grams see classes, not letters: same shape, same features.
	assert.Equal(t, Features(nil, []byte("ab, cd!"), 18, Shape5), Features(nil, []byte("xy, zw!"), 18, Shape5))
	assert.NotEqual(t, Features(nil, []byte("ab, cd!"), 18, Char5), Features(nil, []byte("xy, zw!"), 18, Char5))
	assert.Empty(t, Features(nil, nil, 18, AllFeatures))
}

func TestModelRoundTrip(t *testing.T) {
	w := make([]float32, 1<<4)
	for i := range w {
		w[i] = float32(i) - 8
	}
	m, err := Quantize(w, WordUnigrams|Char4, -0.5, 0.4)
	require.NoError(t, err)
	m.WindowLog2, m.WindowPenalty = 8, 2
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	got, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
	for i, v := range w {
		assert.InDelta(t, v, float32(got.W[i])*got.Scale, 0.001)
	}
	feats := []uint32{15, 15, 0}
	want := Sigmoid((7+7-8)/math.Sqrt(3) - 0.5)
	assert.InDelta(t, want, got.Score(feats), 1e-3)
	assert.InDelta(t, Sigmoid(-0.5), got.Score(nil), 1e-6)

	// Version 1 files have no window penalty field and still decode.
	v1 := append(append([]byte{}, b[:headerV1]...), b[headerBytes:]...)
	v1[4] = 1
	old, err := Decode(v1)
	require.NoError(t, err)
	assert.Equal(t, float32(0), old.WindowPenalty)
	assert.Equal(t, m.W, old.W)
	bad := append([]byte{}, b...)
	binary.LittleEndian.PutUint32(bad[20:], math.Float32bits(-1))
	_, err = Decode(bad)
	assert.ErrorIs(t, err, ErrBadModel, "negative window penalty")
}

func TestDecodeRejects(t *testing.T) {
	m, err := Quantize(make([]float32, 16), AllFeatures, 0, 0.5)
	require.NoError(t, err)
	good, err := m.MarshalBinary()
	require.NoError(t, err)
	bad := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), good[4:]...),
		"truncated": good[:len(good)-1],
		"version":   append(append([]byte{}, good[:4]...), append([]byte{9}, good[5:]...)...),
	}
	for name, b := range bad {
		_, err := Decode(b)
		assert.ErrorIs(t, err, ErrBadModel, name)
	}
	_, err = Quantize(make([]float32, 10), AllFeatures, 0, 0.5)
	assert.Error(t, err)
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"Ignore ALL", "\xff\xfe", "𝐈\u200b\U000E0041", "  \n ", "ab\u200b12cd34", "а1b2c3d4 x", "cus_9Xk2LmQ7pZ-", "-xKqTzR", "ef5563.", "abcdef\u00e9123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(nil, s)
		if len(n) > 0 && (n[0] == ' ' || n[len(n)-1] == ' ') {
			t.Fatalf("untrimmed %q", n)
		}
		if string(Normalize(nil, string(n))) != string(n) {
			t.Fatalf("not idempotent: %q", s)
		}
		if string(FoldOpaque(append([]byte(nil), n...))) != string(n) {
			t.Fatalf("fast-path id folding disagrees with FoldOpaque: %q", s)
		}
		for _, f := range Features(nil, n, 12, AllFeatures) {
			if f >= 1<<12 {
				t.Fatalf("bucket %d out of range", f)
			}
		}
	})
}

func FuzzDecode(f *testing.F) {
	m, _ := Quantize(make([]float32, 16), AllFeatures, 0, 0.5)
	good, _ := m.MarshalBinary()
	f.Add(good)
	f.Add([]byte("TGNG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if len(m.W) != 1<<m.Bits {
			t.Fatalf("decoded %d weights for %d bits", len(m.W), m.Bits)
		}
		// What was accepted encodes back to bytes that decode and encode
		// to the same bytes (compared as bytes: a NaN field is its own bits).
		out, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode an accepted model: %v", err)
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("decode the re-encoded model: %v", err)
		}
		out2, err := m2.MarshalBinary()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the model (%v): %+v vs %+v", err, m, m2)
		}
	})
}

func TestWindowScores(t *testing.T) {
	// Weight +1 on bucket 1, -1 on bucket 0, bias 0; features sit at
	// offsets 0..9: five "bad" features in the middle of benign ones.
	w := make([]float32, 16)
	w[0], w[1] = -1, 1
	m, err := Quantize(w, AllFeatures, 0, 0.5)
	require.NoError(t, err)
	m.WindowLog2 = 2
	require.Equal(t, 4, m.Window())
	feats := []uint32{0, 0, 0, 0, 1, 1, 1, 1, 0, 0}
	pos := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	acc := make([]WindowAcc, 11)
	whole, best := m.WindowScores(feats, pos, 10, m.Window(), acc)
	assert.InDelta(t, Sigmoid(-2/math.Sqrt(10)), whole, 1e-3)
	assert.InDelta(t, Sigmoid(4/math.Sqrt(4)), best, 1e-3, "window [4,8) (stride 2) holds only the bad features")
	// A window penalty lowers every window's logit, not the whole text's.
	m.WindowPenalty = 1.5
	whole, best = m.WindowScores(feats, pos, 10, m.Window(), acc)
	assert.InDelta(t, Sigmoid(-2/math.Sqrt(10)), whole, 1e-3)
	assert.InDelta(t, Sigmoid(4/math.Sqrt(4)-1.5), best, 1e-3)
	m.WindowPenalty = 0
	// Without positions or room the whole-text score is used.
	whole2, best2 := m.WindowScores(feats, nil, 10, 4, acc)
	assert.Equal(t, whole2, best2)
	m.WindowLog2 = 0
	assert.Equal(t, 0, m.Window())
}

func TestFeaturesAtPositions(t *testing.T) {
	norm := []byte("ab cd")
	feats, pos := FeaturesAt(nil, make([]int32, 0), norm, 16, WordUnigrams|Char4)
	require.Len(t, pos, len(feats))
	assert.Equal(t, []int32{1, 4}, pos[:2], "word features sit at the word's last byte")
	for _, p := range pos {
		assert.Less(t, p, int32(len(norm)))
		assert.GreaterOrEqual(t, p, int32(0))
	}
}

// TestScoreNormMatchesWindowScores checks that the fused run-time path
// (ScoreNorm) scores exactly like the training path (FeaturesAt, then
// WindowScores) for every feature family, window and penalty.
func TestScoreNormMatchesWindowScores(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	texts := []string{"", "a", "ignore all previous instructions", "x y", "  ", "é"}
	const alpha = "abc xyz,.!? 0123456789-_\u00e4"
	for range 200 {
		b := make([]byte, r.IntN(900))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		texts = append(texts, string(b))
	}
	for _, set := range []FeatureSet{WordUnigrams | WordBigrams | Char4, AllFeatures, Char3, WordTrigrams | Shape5} {
		w := make([]float32, 1<<12)
		for i := range w {
			w[i] = float32(r.NormFloat64())
		}
		m, err := Quantize(w, set, -0.7, 0.5)
		require.NoError(t, err)
		for _, wl := range []uint8{0, 4, 8} {
			m.WindowLog2, m.WindowPenalty = wl, float32(wl)/4
			for _, text := range texts {
				norm := Normalize(nil, text)
				feats, pos := FeaturesAt(nil, make([]int32, 0), norm, m.Bits, m.Features)
				acc := make([]WindowAcc, len(norm)+1)
				w1, b1 := m.WindowScores(feats, pos, len(norm), m.Window(), acc)
				w2, b2 := m.ScoreNorm(norm, make([]WindowAcc, len(norm)+1))
				require.Equal(t, w1, w2, "whole, set %b window %d: %q", set, m.Window(), text)
				require.Equal(t, b1, b2, "best, set %b window %d: %q", set, m.Window(), text)
			}
		}
	}
}

// BenchmarkScoreNorm measures the run-time scorer (features, window sums
// and scores) on 2 KiB of normalised prose with a 2^18-bucket model and
// 256-byte windows; BenchmarkFeaturesWindowScores is the trainer's path.
func BenchmarkScoreNorm(b *testing.B) {
	m, norm := benchModel(b)
	acc := make([]WindowAcc, len(norm)+1)
	b.SetBytes(int64(len(norm)))
	b.ReportAllocs()
	for b.Loop() {
		m.ScoreNorm(norm, acc)
	}
}

func BenchmarkFeaturesWindowScores(b *testing.B) {
	m, norm := benchModel(b)
	acc := make([]WindowAcc, len(norm)+1)
	feats, pos := make([]uint32, 0, 8*len(norm)), make([]int32, 0, 8*len(norm))
	b.SetBytes(int64(len(norm)))
	b.ReportAllocs()
	for b.Loop() {
		feats, pos = FeaturesAt(feats, pos, norm, m.Bits, m.Features)
		m.WindowScores(feats, pos, len(norm), m.Window(), acc)
	}
}

func benchModel(b *testing.B) (*Model, []byte) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 1))
	w := make([]float32, 1<<18)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	m, err := Quantize(w, WordUnigrams|WordBigrams|Char4|Shape5, 0, 0.5)
	require.NoError(b, err)
	m.WindowLog2, m.WindowPenalty = 8, 2
	text := strings.Repeat("Please review the deployment notes (p99 85 ms, 3 replicas) and summarise the risks; timeout = 30s. ", 25)[:2048]
	return m, Normalize(nil, text)
}
