package extproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

// Audit outcome of an automatic eval run.
const outcomeEval = "eval"

// maxEvalReplyBytes bounds one eval reply read for metering.
const maxEvalReplyBytes = 16 << 20

// autoEval runs an alias's golden set in the background when the model
// behind the alias changes or the prompt registry changes (eval.auto). The
// eval's requests go straight to the alias's first target, never through
// the request path; every reply's usage is priced with the catalog and
// charged to the operator tenant's budget (tollgate_cost_usd_total and the
// spend ledger, like a request of that tenant).
type autoEval struct {
	s      *Server
	cfg    config.EvalAuto
	sets   map[string]*eval.Set
	runner *eval.Auto
}

// newAutoEval loads the golden sets of eval.auto; nil when it is off.
func newAutoEval(s *Server, c *config.Config, reg prometheus.Registerer) (*autoEval, error) {
	ac := c.Eval.Auto
	if !ac.Enabled() {
		return nil, nil
	}
	ae := &autoEval{s: s, cfg: ac, sets: map[string]*eval.Set{}}
	aliases := make([]string, 0, len(ac.Aliases))
	var errs []error
	for alias, a := range ac.Aliases {
		aliases = append(aliases, alias)
		set, err := eval.LoadAutoSet(a.Set, a.Baseline)
		if err != nil {
			errs = append(errs, fmt.Errorf("eval.auto.aliases.%s: %w", alias, err))
			continue
		}
		ae.sets[alias] = set
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Strings(aliases)
	runner, err := eval.NewAuto(eval.AutoOptions{
		Aliases: aliases, MinInterval: ac.MinInterval, Run: ae.run, OnDone: ae.done,
		Registerer: reg, Now: s.now,
	})
	if err != nil {
		return nil, err
	}
	ae.runner = runner
	return ae, nil
}

// onModelChange is called by the model-change detector; it never blocks.
func (s *Server) onModelChange(alias string) {
	if ae := s.autoEval; ae != nil {
		ae.runner.Trigger(alias, eval.TriggerModelChange)
	}
}

// run evaluates alias's set against the alias's first target.
func (ae *autoEval) run(ctx context.Context, alias string) (eval.Report, error) {
	rt := ae.s.rt.Load()
	m, ok := rt.cfg.Models[alias]
	if !ok || len(m.Targets) == 0 {
		return eval.Report{}, fmt.Errorf("alias %q is no longer configured", alias)
	}
	target := m.Targets[0]
	p, ok := rt.cfg.Providers[target.Provider]
	if !ok {
		return eval.Report{}, fmt.Errorf("provider %q is no longer configured", target.Provider)
	}
	if err := ae.checkBudget(ctx); err != nil {
		return eval.Report{}, err
	}
	apiKey := ""
	if p.APIKeyEnv != "" {
		apiKey = rt.getenv(p.APIKeyEnv)
	}
	mt := &meteredTransport{ae: ae, rt: rt, alias: alias, target: target, base: http.DefaultTransport}
	rep, err := eval.Run(ctx, eval.Options{
		Set:          ae.sets[alias],
		BaseURL:      strings.TrimSuffix(p.BaseURL, "/") + "/v1",
		APIKey:       apiKey,
		Model:        target.Model,
		BaselinePath: ae.cfg.Aliases[alias].Baseline,
		Threshold:    ae.cfg.Threshold,
		Concurrency:  1,
		Timeout:      ae.cfg.Timeout,
		MaxRetries:   -1,
		HTTPClient:   &http.Client{Transport: mt},
		Now:          ae.s.now,
	}, io.Discard)
	// The metric's model label is the alias, as for tollgate eval --alias.
	rep.Model = alias
	return rep, err
}

// checkBudget refuses a run when the operator tenant's budget is spent.
func (ae *autoEval) checkBudget(ctx context.Context) error {
	b := ae.s.budgets
	if b == nil {
		return nil
	}
	caps := b.CapsFor(ae.cfg.Tenant)
	if caps.Daily <= 0 && caps.Monthly <= 0 {
		return nil
	}
	spent, err := b.Spent(ctx, ae.cfg.Tenant)
	if err != nil {
		return fmt.Errorf("operator tenant %q: %w", ae.cfg.Tenant, err)
	}
	if (caps.Daily > 0 && spent.Daily >= caps.Daily) || (caps.Monthly > 0 && spent.Monthly >= caps.Monthly) {
		return fmt.Errorf("operator tenant %q has spent its budget", ae.cfg.Tenant)
	}
	return nil
}

// done logs the run and appends its audit record.
func (ae *autoEval) done(r eval.AutoRun) {
	s := ae.s
	res := &audit.EvalResult{Set: ae.sets[r.Alias].Name, Trigger: r.Trigger}
	if r.Err != nil {
		res.Error = r.Err.Error()
		s.log.Error("automatic eval failed", "alias", r.Alias, "trigger", r.Trigger, "err", r.Err)
	} else {
		rep := r.Report
		res.Score, res.Regression = rep.MeanScore, rep.Regression
		res.Passed, res.Failed, res.Errored = rep.Passed, rep.Failed, rep.Errored
		if rep.Baseline != nil {
			res.Baseline = &rep.Baseline.MeanScore
		}
		level := slog.LevelInfo
		if rep.Regression {
			level = slog.LevelWarn
		}
		s.log.Log(context.Background(), level, "automatic eval finished", "alias", r.Alias, "set", rep.Set,
			"trigger", r.Trigger, "score", rep.MeanScore, "regression", rep.Regression, "reasons", strings.Join(rep.Reasons, "; "))
	}
	if s.audit == nil {
		return
	}
	rec := audit.Record{Time: s.now().UTC(), Tenant: ae.cfg.Tenant, Alias: r.Alias, Outcome: outcomeEval, Eval: res}
	if t := s.rt.Load().cfg.Models[r.Alias].Targets; len(t) > 0 {
		rec.Provider, rec.Model = t[0].Provider, t[0].Model
	}
	if err := s.audit.Append(rec); err != nil {
		s.metrics.Failures.WithLabelValues("audit", "open").Inc()
		s.log.Error("audit append failed", "err", err)
	}
}

// meteredTransport meters every eval reply to the operator tenant: the
// provider-reported usage priced with the catalog, charged to the tenant's
// budget and counted in tollgate_cost_usd_total.
type meteredTransport struct {
	ae     *autoEval
	rt     *runtime
	alias  string
	target config.Target
	base   http.RoundTripper
}

func (t *meteredTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEvalReplyBytes))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read eval reply: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	t.meter(req.Context(), body)
	return resp, nil
}

func (t *meteredTransport) meter(ctx context.Context, body []byte) {
	s, rt := t.ae.s, t.rt
	r, err := llm.ParseUsage(body)
	if err != nil || r.IsError {
		return
	}
	u := meter.Usage{InputTokens: r.Usage.InputTokens, OutputTokens: r.Usage.OutputTokens, CachedInputTokens: r.Usage.CachedInputTokens}
	tenant := t.ae.cfg.Tenant
	provider := rt.providerLabels.Value(t.target.Provider)
	target := rt.targetLabels.Value(t.target.Model)
	price, ok := rt.price(t.target.Provider, t.target.Model, s.now())
	if !ok {
		s.metrics.Unpriced.WithLabelValues(provider, target).Inc()
		return
	}
	cost := meter.Cost(price, u)
	if cost <= 0 {
		return
	}
	s.metrics.CostUSD.WithLabelValues(rt.tenantLabels.Value(tenant), provider, target).Add(cost.USD())
	if s.budgets == nil {
		return
	}
	if err := s.budgets.Charge(ctx, tenant, cost, s.reservationID("eval-"+t.alias)); err != nil {
		s.metrics.Failures.WithLabelValues("budgets", "open").Inc()
		s.log.Error("charging an automatic eval to the operator tenant failed", "tenant", tenant, "err", err)
	}
}

// watchPrompts polls prompts.dir and, on a change, reloads the registry
// (a broken file keeps the running registry, counted in
// tollgate_prompt_reloads_total{result="error"}) and triggers the automatic
// evals. It returns when ctx ends.
func watchPrompts(ctx context.Context, s *Server, c *config.Config, reloads *prometheus.CounterVec) {
	if c.Prompts.Dir == "" || c.Prompts.FS != nil {
		return
	}
	w := prompts.NewDirWatcher(c.Prompts.Dir)
	w.Watch(ctx, c.Prompts.PollInterval, func() {
		if err := s.reloadPrompts(); err != nil {
			reloads.WithLabelValues("error").Inc()
			s.metrics.Failures.WithLabelValues("prompts_reload", "closed").Inc()
			s.log.Error("prompt registry change rejected; keeping the running registry", "dir", c.Prompts.Dir, "problems", err.Error())
			return
		}
		reloads.WithLabelValues("ok").Inc()
		s.log.Info("prompt registry reloaded", "dir", c.Prompts.Dir)
		if ae := s.autoEval; ae != nil {
			ae.runner.TriggerAll(eval.TriggerPromptChange)
		}
	})
}

// newPromptReloads is tollgate_prompt_reloads_total{result}.
func newPromptReloads(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollgate_prompt_reloads_total",
		Help: "Reloads of the prompt registry after its directory changed, by result (ok, error: the running registry was kept).",
	}, []string{"result"})
	for _, r := range []string{"ok", "error"} {
		c.WithLabelValues(r)
	}
	reg.MustRegister(c)
	return c
}

// reloadPrompts rebuilds the running runtime, which reads the registry
// directory again; a concurrent config reload (which reads it too) wins.
func (s *Server) reloadPrompts() error {
	old := s.rt.Load()
	rt, err := newRuntime(old.cfg, old.catalog, old.getenv)
	if err != nil {
		return err
	}
	rt.tenants.virtual = old.tenants.virtual
	s.rt.CompareAndSwap(old, rt)
	return nil
}

// startAutoEval wires eval.auto and the prompt directory watch into Run.
// stop ends both (a run in progress is cancelled and still writes its
// audit record) and returns when they have stopped.
func startAutoEval(ctx context.Context, s *Server, c *config.Config, reg prometheus.Registerer) (stop func(), err error) {
	ae, err := newAutoEval(s, c, reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	reloads := newPromptReloads(reg)
	var runnerDone <-chan struct{}
	if ae != nil {
		s.autoEval = ae
		runnerDone = ae.runner.Start(ctx)
	}
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watchPrompts(ctx, s, c, reloads)
	}()
	return func() {
		cancel()
		if runnerDone != nil {
			<-runnerDone
		}
		<-watchDone
	}, nil
}
