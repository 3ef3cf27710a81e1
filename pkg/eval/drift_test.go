package eval_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/eval"
)

func TestModelTrackerObserve(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	type obs struct {
		alias, model, fp string
		changed          bool
		prev             eval.Seen
	}
	tests := []struct {
		name string
		seq  []obs
	}{
		{name: "first observation is not a change", seq: []obs{{"a", "m-1", "fp1", false, eval.Seen{}}}},
		{name: "same model and fingerprint", seq: []obs{{"a", "m-1", "fp1", false, eval.Seen{}}, {"a", "m-1", "fp1", false, eval.Seen{}}}},
		{name: "model change", seq: []obs{
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"a", "m-2", "fp1", true, eval.Seen{Model: "m-1", Fingerprint: "fp1", Since: t0}},
			{"a", "m-2", "fp1", false, eval.Seen{}},
		}},
		{name: "fingerprint change", seq: []obs{
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"a", "m-1", "fp2", true, eval.Seen{Model: "m-1", Fingerprint: "fp1", Since: t0}},
		}},
		{name: "missing fingerprint is not a change", seq: []obs{
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"a", "m-1", "", false, eval.Seen{}},
			{"a", "m-1", "fp1", false, eval.Seen{}},
		}},
		{name: "first fingerprint is learned, then a new one is a change", seq: []obs{
			{"a", "m-1", "", false, eval.Seen{}},
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"a", "m-1", "fp2", true, eval.Seen{Model: "m-1", Fingerprint: "fp1", Since: t0}},
		}},
		{name: "empty model ignored", seq: []obs{
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"a", "", "", false, eval.Seen{}},
			{"a", "m-1", "fp1", false, eval.Seen{}},
		}},
		{name: "aliases are independent", seq: []obs{
			{"a", "m-1", "fp1", false, eval.Seen{}},
			{"b", "m-2", "fp2", false, eval.Seen{}},
			{"a", "m-1", "fp1", false, eval.Seen{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := eval.NewModelTracker(0, func() time.Time { return t0 })
			for i, o := range tt.seq {
				changed, prev := tr.Observe(o.alias, o.model, o.fp)
				assert.Equal(t, o.changed, changed, "step %d", i)
				assert.Equal(t, o.prev, prev, "step %d", i)
			}
		})
	}
}

func TestModelTrackerBounded(t *testing.T) {
	tr := eval.NewModelTracker(3, nil)
	for i := range 3 {
		tr.Observe(fmt.Sprint("a", i), "m", "fp")
	}
	tr.Observe("a0", "m", "fp") // a1 is now the least recently observed
	tr.Observe("a3", "m", "fp")
	assert.Equal(t, 3, tr.Len())
	_, ok := tr.Current("a1")
	assert.False(t, ok, "least recently observed alias evicted")
	cur, ok := tr.Current("a0")
	require.True(t, ok)
	assert.Equal(t, "m", cur.Model)
	for i := range 1000 {
		tr.Observe(fmt.Sprint("x", i), "m", "fp")
	}
	assert.Equal(t, 3, tr.Len())
}

func TestModelTrackerConcurrent(t *testing.T) {
	tr := eval.NewModelTracker(16, nil)
	tr.Observe("a", "m-1", "fp")
	var wg sync.WaitGroup
	var mu sync.Mutex
	changes := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				model := "m-1"
				if i >= 100 {
					model = "m-2"
				}
				if c, _ := tr.Observe("a", model, "fp"); c {
					mu.Lock()
					changes++
					mu.Unlock()
				}
				tr.Observe(fmt.Sprint("g", g), "m", "fp")
			}
		}()
	}
	wg.Wait()
	// Goroutines interleave m-1 and m-2, so there is at least one change;
	// the final state is whatever the last writer saw.
	assert.GreaterOrEqual(t, changes, 1)
	cur, ok := tr.Current("a")
	require.True(t, ok)
	assert.Equal(t, "m-2", cur.Model)
}

func BenchmarkModelTrackerObserve(b *testing.B) {
	tr := eval.NewModelTracker(0, nil)
	aliases := []string{"gpt-4o-mini", "gpt-4o", "claude", "embed"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		tr.Observe(aliases[i%len(aliases)], "gpt-4o-mini-2024-07-18", "fp_abc")
	}
}

func BenchmarkCheckJSONSchema(b *testing.B) {
	s, err := eval.LoadSet("../../evals/smoke.yaml")
	if err != nil {
		b.Fatal(err)
	}
	ch := s.Cases[1].Checks[0]
	reply := `{"answer": "Paris", "confidence": 0.9}`
	b.ReportAllocs()
	for b.Loop() {
		if err := ch.Eval(reply); err != nil {
			b.Fatal(err)
		}
	}
}
