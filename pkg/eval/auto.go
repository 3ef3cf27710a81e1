package eval

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Triggers of an automatic run (the trigger label and the audit record).
const (
	TriggerModelChange  = "model_change"
	TriggerPromptChange = "prompt_change"
)

// Outcomes of Auto.Trigger (tollgate_eval_auto_triggers_total{outcome}).
const (
	TriggerQueued      = "queued"       // a run is queued
	TriggerCoalesced   = "coalesced"    // a run of the alias was already queued
	TriggerRateLimited = "rate_limited" // the alias ran less than the minimum interval ago
	TriggerNoSet       = "no_set"       // the alias has no golden set
)

// Results of an automatic run (tollgate_eval_auto_runs_total{result}).
const (
	ResultOK         = "ok"
	ResultRegression = "regression"
	ResultError      = "error"
)

// AutoRunFunc runs the golden set of alias and returns its report (Model
// is the metric's model label). It is called by one goroutine at a time.
type AutoRunFunc func(ctx context.Context, alias string) (Report, error)

// AutoRun is one finished automatic run, given to AutoOptions.OnDone.
type AutoRun struct {
	Alias   string
	Trigger string
	Report  Report // zero when Err is set before the set ran
	Err     error
}

// AutoOptions configures an Auto.
type AutoOptions struct {
	// Aliases are the aliases with a golden set; triggers for others are
	// ignored.
	Aliases []string
	// MinInterval is the shortest time between the starts of two runs of
	// one alias; a trigger within it is dropped.
	MinInterval time.Duration
	// Run runs one alias's set (required).
	Run AutoRunFunc
	// OnDone, when set, is called after every run (e.g. to write an audit
	// record), on the runner goroutine.
	OnDone func(AutoRun)
	// Registerer receives the tollgate_eval_* gauges and the
	// tollgate_eval_auto_* counters (nil: not registered).
	Registerer prometheus.Registerer
	// Gauges, when set, are used instead of new ones (then Registerer only
	// receives the counters).
	Gauges *Gauges
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Auto runs golden sets in the background when something behind an alias
// changes. It is bounded: one run at a time (Start's goroutine), and at most
// one pending run per alias; a trigger for an alias whose last run started
// less than MinInterval ago is dropped and counted. Trigger never blocks,
// so it is safe to call on a request path.
type Auto struct {
	opts   AutoOptions
	known  map[string]bool
	gauges *Gauges
	trigs  *prometheus.CounterVec // alias, trigger, outcome
	runs   *prometheus.CounterVec // alias, result
	wake   chan struct{}
	mu     sync.Mutex
	queue  []pending // FIFO, at most one entry per alias
	last   map[string]time.Time
}

type pending struct{ alias, trigger string }

// NewAuto validates opts and returns an Auto; call Start to run it.
func NewAuto(opts AutoOptions) (*Auto, error) {
	if opts.Run == nil {
		return nil, errors.New("eval: AutoOptions.Run is required")
	}
	if opts.MinInterval < 0 {
		return nil, fmt.Errorf("eval: negative minimum interval %v", opts.MinInterval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Auto{
		opts:   opts,
		known:  make(map[string]bool, len(opts.Aliases)),
		gauges: opts.Gauges,
		wake:   make(chan struct{}, 1),
		last:   map[string]time.Time{},
		trigs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_eval_auto_triggers_total",
			Help: "Automatic eval triggers by alias, trigger (model_change, prompt_change) and outcome (queued, coalesced, rate_limited).",
		}, []string{"alias", "trigger", "outcome"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_eval_auto_runs_total",
			Help: "Automatic eval runs by alias and result (ok, regression, error).",
		}, []string{"alias", "result"}),
	}
	for _, al := range opts.Aliases {
		a.known[al] = true
	}
	if a.gauges == nil {
		a.gauges = NewGauges(opts.Registerer)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(a.trigs, a.runs)
	}
	return a, nil
}

// Gauges returns the gauges the runs are recorded in.
func (a *Auto) Gauges() *Gauges { return a.gauges }

// Trigger asks for a run of alias's set because of trigger and returns
// what happened to the request (one of the Trigger* outcomes). It never
// blocks on a run.
func (a *Auto) Trigger(alias, trigger string) string {
	if !a.known[alias] {
		return TriggerNoSet
	}
	outcome := a.enqueue(alias, trigger)
	a.trigs.WithLabelValues(alias, trigger, outcome).Inc()
	return outcome
}

// TriggerAll triggers every alias with a set (e.g. after a prompt change).
func (a *Auto) TriggerAll(trigger string) {
	for _, al := range a.opts.Aliases {
		a.Trigger(al, trigger)
	}
}

func (a *Auto) enqueue(alias, trigger string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.queue {
		if p.alias == alias {
			return TriggerCoalesced
		}
	}
	// The running alias counts as started: its start is in last.
	if t, ok := a.last[alias]; ok && a.opts.Now().Sub(t) < a.opts.MinInterval {
		return TriggerRateLimited
	}
	a.queue = append(a.queue, pending{alias, trigger})
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return TriggerQueued
}

// Start runs queued evals, one at a time, until ctx ends (a run in
// progress is cancelled with it). It returns at once; wait on the returned
// channel for the runner to stop.
func (a *Auto) Start(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, ok := a.next()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-a.wake:
					continue
				}
			}
			if ctx.Err() != nil {
				return
			}
			a.runOne(ctx, p)
		}
	}()
	return done
}

func (a *Auto) next() (pending, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) == 0 {
		return pending{}, false
	}
	p := a.queue[0]
	a.queue = a.queue[1:]
	a.last[p.alias] = a.opts.Now()
	return p, true
}

func (a *Auto) runOne(ctx context.Context, p pending) {
	rep, err := a.opts.Run(ctx, p.alias)
	result := ResultOK
	switch {
	case err != nil:
		result = ResultError
	case rep.Regression:
		result = ResultRegression
	}
	if err == nil {
		a.gauges.Record(rep)
	}
	a.runs.WithLabelValues(p.alias, result).Inc()
	if a.opts.OnDone != nil {
		a.opts.OnDone(AutoRun{Alias: p.alias, Trigger: p.trigger, Report: rep, Err: err})
	}
}

// Pending returns the aliases queued for a run, in order.
func (a *Auto) Pending() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.queue))
	for i, p := range a.queue {
		out[i] = p.alias
	}
	return out
}

// LoadAutoSet loads a golden set for automatic runs: every case needs
// deterministic checks (automatic runs use no judge), and the baseline, when
// given, must be a readable report of the same set.
func LoadAutoSet(setPath, baselinePath string) (*Set, error) {
	set, err := LoadSet(setPath)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range set.Cases {
		if len(c.Checks) == 0 {
			errs = append(errs, fmt.Errorf("%s: case %q has no checks (automatic evals use no judge)", setPath, c.ID))
		}
	}
	if baselinePath != "" {
		b, err := ReadReport(baselinePath)
		switch {
		case err != nil:
			errs = append(errs, err)
		case b.Set != set.Name:
			errs = append(errs, fmt.Errorf("baseline %s is for set %q, not %q", baselinePath, b.Set, set.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}
