package cache

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// builtinCosine is the cosine the cache hands the verifier for two prompts.
func builtinCosine(t testing.TB, a, b string) float64 {
	t.Helper()
	e := NewBuiltinEmbedder(DefaultIDF())
	va, err := e.Embed(context.Background(), a)
	require.NoError(t, err)
	vb, err := e.Embed(context.Background(), b)
	require.NoError(t, err)
	return float64(dot(va, vb))
}

func TestDefaultVerifierLoads(t *testing.T) {
	v, err := ParseVerifier(verifierModel, DefaultIDF())
	require.NoError(t, err, "embedded verifier.json must load")
	m := v.Model()
	assert.Equal(t, VerifierFeatureNames(), m.Features)
	assert.Equal(t, VerifierFloor, m.Floor, "VerifierFloor must be the floor the model was trained for")
	assert.Greater(t, v.Threshold(), 0.5)
	assert.Less(t, v.Threshold(), 1.0)
	assert.NotEmpty(t, m.Trees)

	d := DefaultVerifier()
	assert.Equal(t, v.Threshold(), d.Threshold())
	const a, b = "How do I learn Python quickly?", "What is the fastest way to learn Python?"
	assert.Equal(t, v.Score(a, b, 0.7), d.Score(a, b, 0.7))
}

func TestVerifierDecisions(t *testing.T) {
	v := DefaultVerifier()
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"reworded", "How can I improve my English speaking skills?", "How do I improve my English speaking skills?", true},
		{"case and punctuation", "what is the capital of france", "What is the capital of France?", true},
		{"identical", "Summarize this article in 3 bullet points.", "Summarize this article in 3 bullet points.", true},
		{"plural", "What are the best books to learn machine learning?", "What is the best book to learn machine learning?", true},
		{"different country", "What is the capital of France?", "What is the capital of Germany?", false},
		{"different number", "Is it possible to leave the airport on a layover of 13 hours?", "Is it possible to leave the airport on a layover of 3 hours?", false},
		{"different year", "Who won the World Cup in 2014?", "Who won the World Cup in 2018?", false},
		{"negation", "Why do cats like water?", "Why do cats not like water?", false},
		{"opposite verb", "How can I gain weight quickly?", "How can I lose weight quickly?", false},
		{"different language", "How do I reverse a linked list in Java?", "How do I reverse a linked list in Python?", false},
		{"different question word", "Where was Albert Einstein born?", "When was Albert Einstein born?", false},
		{"unrelated", "How do I bake sourdough bread?", "What is the best laptop for programming?", false},
		{"swapped direction", "Convert 100 USD to EUR", "Convert 100 EUR to USD", false},
		{"swapped languages", "What projects have been ported from Java to Rust?", "What projects have been ported from Rust to Java?", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cos := builtinCosine(t, tc.a, tc.b)
			s := v.Score(tc.a, tc.b, cos)
			assert.GreaterOrEqual(t, s, 0.0)
			assert.LessOrEqual(t, s, 1.0)
			if tc.same {
				assert.GreaterOrEqual(t, s, v.Threshold(), "score %.3f at cosine %.3f", s, cos)
				assert.True(t, v.Accept(tc.a, tc.b, cos))
			} else {
				assert.Less(t, s, v.Threshold(), "score %.3f at cosine %.3f", s, cos)
				assert.False(t, v.Accept(tc.a, tc.b, cos))
			}
		})
	}
}

func TestVerifierSymmetricAndDeterministic(t *testing.T) {
	v := DefaultVerifier()
	pairs := [][2]string{
		{"How do I learn Python quickly?", "What is the fastest way to learn Python?"},
		{"What is the capital of France?", "What is the capital of Germany?"},
		{"Why is the sky blue?", "Why is the sky blue during the day and red at sunset?"},
		{"", "What is Go?"},
		{"1,000 or 1000?", "C++ or C#?"},
	}
	for _, p := range pairs {
		for _, cos := range []float64{0.3, 0.75, 0.99} {
			s := v.Score(p[0], p[1], cos)
			assert.Equal(t, s, v.Score(p[1], p[0], cos), "symmetric: %q / %q", p[0], p[1])
			assert.Equal(t, s, v.Score(p[0], p[1], cos), "deterministic")
			assert.Equal(t, s, DefaultVerifier().Score(p[0], p[1], cos), "same across instances")
			fa, fb := v.Features(p[0], p[1], cos), v.Features(p[1], p[0], cos)
			assert.Equal(t, fa, fb)
			assert.Len(t, fa, len(VerifierFeatureNames()))
		}
	}
}

func TestVerifierScoreMonotoneInCosine(t *testing.T) {
	// Not guaranteed by the model class, but a model where more similar
	// vectors lower the score for the same texts would be suspect.
	v := DefaultVerifier()
	const a, b = "How can I improve my English speaking skills?", "How do I improve my English speaking skills?"
	assert.LessOrEqual(t, v.Score(a, b, 0.3), v.Score(a, b, 0.99)+1e-9)
}

func TestParseVerifierRejects(t *testing.T) {
	good := DefaultVerifier().Model()
	mutate := func(f func(m *VerifierModel)) []byte {
		m := DefaultVerifier().Model()
		f(&m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"not json", []byte("{")},
		{"unknown kind", mutate(func(m *VerifierModel) { m.Kind = "svm" })},
		{"feature mismatch", mutate(func(m *VerifierModel) { m.Features = m.Features[1:] })},
		{"feature out of range", mutate(func(m *VerifierModel) { m.Trees = []VerifierTree{{F: 999}} })},
		{"threshold", mutate(func(m *VerifierModel) { m.Threshold = 1.5 })},
		{"logistic sizes", mutate(func(m *VerifierModel) { m.Kind = VerifierLogistic; m.Weights = []float64{1} })},
		{"odds bucket", mutate(func(m *VerifierModel) { m.WordOdds = []VerifierWordOdds{{Bucket: idfBuckets, Odds: 1}} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseVerifier(tc.data, DefaultIDF())
			assert.Error(t, err)
		})
	}
	b, err := json.Marshal(good)
	require.NoError(t, err)
	_, err = ParseVerifier(b, DefaultIDF())
	assert.NoError(t, err, "round trip")
}

func TestLogisticVerifier(t *testing.T) {
	n := len(VerifierFeatureNames())
	m := VerifierModel{Kind: VerifierLogistic, Features: VerifierFeatureNames(), Threshold: 0.5,
		Mean: make([]float64, n), Scale: make([]float64, n), Weights: make([]float64, n)}
	for i := range m.Scale {
		m.Scale[i] = 1
	}
	m.Weights[0] = 10 // cosine only
	m.Bias = -5
	v, err := NewVerifier(m, DefaultIDF())
	require.NoError(t, err)
	assert.InDelta(t, 0.5, v.Score("a", "b", 0.5), 1e-12)
	assert.InDelta(t, 1/(1+math.Exp(-5)), v.Score("a", "b", 1), 1e-12)
}

func TestVerifierOrderSwapCap(t *testing.T) {
	names := VerifierFeatureNames()
	require.Equal(t, "order_swap", names[verifierFeatOrderSwap])
	// A model that accepts everything still cannot accept a swapped pair.
	m := VerifierModel{Kind: VerifierTrees, Features: names, Bias: 20, Threshold: 0.9}
	v, err := NewVerifier(m, DefaultIDF())
	require.NoError(t, err)
	assert.True(t, v.Accept("Convert 100 USD to EUR", "Convert 100 USD into EUR", 0.9))
	assert.Equal(t, verifierSwapCap, v.Score("Convert 100 USD to EUR", "Convert 100 EUR to USD", 0.9))
	assert.False(t, v.Accept("Convert 100 USD to EUR", "Convert 100 EUR to USD", 0.9))
}

func TestVerifierTreeValue(t *testing.T) {
	tree := VerifierTree{F: 0, T: 0.5, Left: -1, Right: 1,
		RightTree: &VerifierTree{F: 1, T: 2, Left: 3, Right: 4}}
	tests := []struct {
		x    []float64
		want float64
	}{
		{[]float64{0.5, 9}, -1},
		{[]float64{0.6, 2}, 3},
		{[]float64{0.6, 2.1}, 4},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, tree.Value(tc.x))
	}
}

func TestUnmatchedWordBuckets(t *testing.T) {
	idf := DefaultIDF()
	got := UnmatchedWordBuckets("What is the capital of France?", "What is the capital city of Germany?", idf)
	want := []uint32{wordBucket("city"), wordBucket("france"), wordBucket("germany")}
	assert.ElementsMatch(t, want, got)
	assert.Empty(t, UnmatchedWordBuckets("Learning Go", "learning go!", idf))
}

func FuzzVerifierScore(f *testing.F) {
	f.Add("What is the capital of France?", "What is the capital of Germany?", 0.8)
	f.Add("", "", 0.0)
	f.Add("1,000.5 C++ don't", "Ünïcödé ß 日本語", 1.0)
	v := DefaultVerifier()
	f.Fuzz(func(t *testing.T, a, b string, cos float64) {
		if math.IsNaN(cos) || math.IsInf(cos, 0) {
			return
		}
		s := v.Score(a, b, cos)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("score %v outside [0,1]", s)
		}
		if s2 := v.Score(b, a, cos); s2 != s {
			t.Fatalf("not symmetric: %v vs %v", s, s2)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := DefaultVerifier()
	const q, c = "How can I improve my English speaking skills quickly?", "What is the best way to improve my spoken English?"
	cos := builtinCosine(b, q, c)
	b.Run("pair", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.Score(q, c, cos)
		}
	})
	b.Run("prepared-query", func(b *testing.B) {
		// Per extra candidate of one lookup: the query side is prepared once.
		pq := v.Query(q)
		b.ReportAllocs()
		for b.Loop() {
			pq.Score(c, cos)
		}
	})
}

func TestVerifierQueryMatchesScore(t *testing.T) {
	v := DefaultVerifier()
	q := v.Query("How do I learn Python quickly?")
	for _, c := range []string{"What is the fastest way to learn Python?", "How do I learn Go quickly?", ""} {
		assert.Equal(t, v.Score("How do I learn Python quickly?", c, 0.6), q.Score(c, 0.6))
		assert.Equal(t, v.Accept("How do I learn Python quickly?", c, 0.6), q.Accept(c, 0.6))
	}
}

func BenchmarkVerifierModel(b *testing.B) {
	// The model alone (features precomputed): the trees' share of Score.
	v := DefaultVerifier()
	x := v.Features("How can I improve my English speaking skills quickly?", "What is the best way to improve my spoken English?", 0.7)
	b.ReportAllocs()
	for b.Loop() {
		v.ScoreFeatures(x)
	}
}

// TestVerifierCheckMatchesGuardThenAccept pins the cache's combined pass to
// running the difference guard and the verifier separately.
func TestVerifierCheckMatchesGuardThenAccept(t *testing.T) {
	v := DefaultVerifier()
	idf := DefaultIDF()
	prompts := []string{
		"What is the capital of France?", "what's the capital of France", "What is the capital of Germany?",
		"How do I not reverse a linked list in Go?", "How do I reverse a linked list in Go?",
		"Why do cats like water?", "Where do cats like water?", "How do cats like water?",
		"Which is the best laptop for programming?", "What is the best laptop for programming?",
		"Is a layover of 13 hours enough?", "Is a layover of 3 hours enough?", "Convert 100 USD to EUR",
		"Convert 100 EUR to USD", "How can I improve my English speaking skills?",
	}
	for _, a := range prompts {
		q := v.Query(a)
		for _, b := range prompts {
			for _, guard := range []bool{false, true} {
				want := ""
				if guard {
					want = GuardVeto(a, b, idf)
				}
				if want == "" && !v.Accept(a, b, 0.8) {
					want = VetoVerifier
				}
				assert.Equal(t, want, q.check(newVerifierSide(b, idf), 0.8, guard), "%q vs %q guard=%v", a, b, guard)
			}
		}
	}
}
