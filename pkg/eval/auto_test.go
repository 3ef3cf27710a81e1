package eval_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

// manualClock is a clock tests move by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// gatedRunner blocks every run until the test releases it, so the test
// decides what is running while it triggers.
type gatedRunner struct {
	started chan string
	release chan struct{}
	mu      sync.Mutex
	active  int
	maxSeen int
}

func newGatedRunner() *gatedRunner {
	return &gatedRunner{started: make(chan string, 16), release: make(chan struct{})}
}

func (g *gatedRunner) run(ctx context.Context, alias string) (eval.Report, error) {
	g.mu.Lock()
	g.active++
	g.maxSeen = max(g.maxSeen, g.active)
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.active--; g.mu.Unlock() }()
	g.started <- alias
	select {
	case <-g.release:
	case <-ctx.Done():
		return eval.Report{}, ctx.Err()
	}
	if alias == "broken" {
		return eval.Report{}, errors.New("provider down")
	}
	return eval.Report{Set: "smoke", Model: alias, MeanScore: 0.75, Passed: 3, Failed: 1, StartedAt: time.Unix(1700000000, 0)}, nil
}

func TestAutoQueueRateLimitAndMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock := &manualClock{t: time.Unix(1700000000, 0)}
	reg := prometheus.NewRegistry()
	g := newGatedRunner()
	done := make(chan eval.AutoRun, 16)
	a, err := eval.NewAuto(eval.AutoOptions{
		Aliases: []string{"small", "large", "broken"}, MinInterval: time.Hour, Run: g.run,
		OnDone: func(r eval.AutoRun) { done <- r }, Registerer: reg, Now: clock.Now,
	})
	require.NoError(t, err)
	stopped := a.Start(ctx)

	assert.Equal(t, eval.TriggerNoSet, a.Trigger("other", eval.TriggerModelChange))
	assert.Equal(t, eval.TriggerQueued, a.Trigger("small", eval.TriggerModelChange))
	require.Equal(t, "small", <-g.started)
	// small is running: a new trigger for it is within the interval.
	assert.Equal(t, eval.TriggerRateLimited, a.Trigger("small", eval.TriggerModelChange))
	// One run at a time: large waits, and a second trigger coalesces.
	assert.Equal(t, eval.TriggerQueued, a.Trigger("large", eval.TriggerModelChange))
	assert.Equal(t, eval.TriggerCoalesced, a.Trigger("large", eval.TriggerPromptChange))
	assert.Equal(t, []string{"large"}, a.Pending())

	g.release <- struct{}{}
	r := <-done
	assert.Equal(t, "small", r.Alias)
	assert.Equal(t, eval.TriggerModelChange, r.Trigger)
	require.Equal(t, "large", <-g.started)
	g.release <- struct{}{}
	<-done

	assert.Equal(t, 0.75, testutil.ToFloat64(a.Gauges().Score.WithLabelValues("smoke", "small")))
	assert.Equal(t, 1.0, testutil.ToFloat64(a.Gauges().Cases.WithLabelValues("smoke", "small", "fail")))
	assert.Equal(t, 1.0, testutil.ToFloat64(a.Gauges().LastRun.WithLabelValues("smoke", "small"))/1700000000)

	// After the interval the alias runs again.
	assert.Equal(t, eval.TriggerRateLimited, a.Trigger("small", eval.TriggerModelChange))
	clock.Add(time.Hour)
	assert.Equal(t, eval.TriggerQueued, a.Trigger("small", eval.TriggerModelChange))
	<-g.started
	g.release <- struct{}{}
	<-done

	// A failing run is counted and records no score.
	assert.Equal(t, eval.TriggerQueued, a.Trigger("broken", eval.TriggerPromptChange))
	<-g.started
	g.release <- struct{}{}
	r = <-done
	require.Error(t, r.Err)

	runs := func(alias, result string) float64 {
		return promtest.Sum(t, reg, "tollgate_eval_auto_runs_total", map[string]string{"alias": alias, "result": result})
	}
	assert.Equal(t, 2.0, runs("small", eval.ResultOK))
	assert.Equal(t, 1.0, runs("broken", eval.ResultError))
	assert.Equal(t, 2.0, promtest.Sum(t, reg, "tollgate_eval_auto_triggers_total",
		map[string]string{"alias": "small", "trigger": eval.TriggerModelChange, "outcome": eval.TriggerRateLimited}))
	assert.Equal(t, 1, g.maxSeen, "never more than one run at a time")
	cancel()
	<-stopped
}

func TestNewAutoNeedsRun(t *testing.T) {
	_, err := eval.NewAuto(eval.AutoOptions{Aliases: []string{"a"}})
	require.Error(t, err)
}

// BenchmarkAutoTrigger is the cost a model change adds to the request that
// detects it: a rate-limited trigger (the common case after the first).
func BenchmarkAutoTrigger(b *testing.B) {
	ran := make(chan struct{}, 1)
	a, err := eval.NewAuto(eval.AutoOptions{
		Aliases: []string{"small"}, MinInterval: time.Hour,
		Run:    func(context.Context, string) (eval.Report, error) { return eval.Report{}, nil },
		OnDone: func(eval.AutoRun) { ran <- struct{}{} },
	})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := a.Start(ctx)
	a.Trigger("small", eval.TriggerModelChange)
	<-ran
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.Trigger("small", eval.TriggerModelChange)
	}
	b.StopTimer()
	cancel()
	<-stopped
}
