package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Other replaces label values that are not known from configuration.
const Other = "other"

// Metrics holds every metric the ext_proc server exports (the cache
// registers its own tollgate_cache_* lookup metrics on the same registry). Names follow the
// OpenTelemetry GenAI conventions where they exist (gen_ai_*), Tollgate's own
// are tollgate_*.
type Metrics struct {
	TokenUsage         *prometheus.HistogramVec // gen_ai_client_token_usage
	RequestDuration    *prometheus.HistogramVec // gen_ai_server_request_duration_seconds
	TimeToFirstToken   *prometheus.HistogramVec // gen_ai_server_time_to_first_token_seconds
	TimePerOutputToken *prometheus.HistogramVec // gen_ai_server_time_per_output_token_seconds

	CostUSD             *prometheus.CounterVec   // tollgate_cost_usd_total{tenant,provider,model}
	Requests            *prometheus.CounterVec   // tollgate_requests_total{tenant,model,outcome}
	EstimatedRequests   *prometheus.CounterVec   // tollgate_usage_estimated_total{tenant,model}
	CacheSavedUSD       *prometheus.CounterVec   // tollgate_cache_saved_usd_total{tenant}
	GuardFindings       *prometheus.CounterVec   // tollgate_guardrail_findings_total{direction,detector,action}
	StageDuration       *prometheus.HistogramVec // tollgate_stage_duration_seconds{stage}
	BudgetSpent         *prometheus.GaugeVec     // tollgate_budget_spent_usd{tenant,window}
	BudgetRejections    *prometheus.CounterVec   // tollgate_budget_rejections_total{tenant,window}
	Failures            *prometheus.CounterVec   // tollgate_failures_total{layer,mode}
	RateLimitRejections *prometheus.CounterVec   // tollgate_ratelimit_rejections_total{tenant,kind}
	ProtocolErrors      *prometheus.CounterVec   // tollgate_extproc_protocol_errors_total{reason}
	Passthrough         *prometheus.CounterVec   // tollgate_passthrough_requests_total{reason}
	Streams             *prometheus.GaugeVec     // tollgate_extproc_streams{role}
	Unpriced            *prometheus.CounterVec   // tollgate_unpriced_requests_total{provider,model}
	UpstreamAttempts    *prometheus.CounterVec   // tollgate_upstream_attempts_total{provider,model,result}
	PromptRequests      *prometheus.CounterVec   // tollgate_prompt_requests_total{prompt}
	RoutingDecisions    *prometheus.CounterVec   // tollgate_routing_decisions_total{alias,tier,chosen,shadow}
	ModelChanges        *prometheus.CounterVec   // tollgate_model_change_total{alias}
	ConfigReloads       *prometheus.CounterVec   // tollgate_config_reloads_total{result}
	LedgerLag           *prometheus.GaugeVec     // tollgate_ledger_lag_seconds{backend}
	PromptTokensSaved   *prometheus.CounterVec   // tollgate_prompt_tokens_saved_total{tenant,model}
}

// Results of a config reload (label of tollgate_config_reloads_total).
const (
	ReloadOK              = "ok"
	ReloadError           = "error"
	ReloadRestartRequired = "restart_required"
)

// NewMetrics creates and registers every metric on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		TokenUsage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens used per request, by token type (input|output).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}, []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model", "gen_ai_token_type"}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_request_duration_seconds",
			Help:    "Time from the request body reaching Tollgate to the end of the response.",
			Buckets: []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
		}, []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}),
		TimeToFirstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_to_first_token_seconds",
			Help:    "Time to the first streamed content chunk.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10},
		}, []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}),
		TimePerOutputToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_server_time_per_output_token_seconds",
			Help:    "Average time per output token after the first, for streamed responses.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5},
		}, []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"}),
		CostUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cost_usd_total", Help: "Provider cost in USD at catalog prices.",
		}, []string{"tenant", "provider", "model"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_requests_total", Help: "Requests by outcome (ok, cache_hit, error classes, blocked, ...).",
		}, []string{"tenant", "model", "outcome"}),
		EstimatedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_usage_estimated_total", Help: "Requests metered from a tokenizer estimate because the provider's usage never arrived.",
		}, []string{"tenant", "model"}),
		CacheSavedUSD: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_saved_usd_total", Help: "Provider cost avoided by cache hits.",
		}, []string{"tenant"}),
		GuardFindings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_guardrail_findings_total", Help: "Guardrail findings by direction, detector and action taken.",
		}, []string{"direction", "detector", "action"}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tollgate_stage_duration_seconds",
			Help:    "Time spent in each processing stage.",
			Buckets: []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2},
		}, []string{"stage"}),
		BudgetSpent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_budget_spent_usd", Help: "Spend in the current budget window.",
		}, []string{"tenant", "window"}),
		BudgetRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_budget_rejections_total", Help: "Requests rejected with 429 budget_exceeded.",
		}, []string{"tenant", "window"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_failures_total", Help: "Degraded decisions: a layer failed and traffic was let through (open) or rejected (closed).",
		}, []string{"layer", "mode"}),
		RateLimitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_ratelimit_rejections_total", Help: "Requests rejected with 429 rate_limit_exceeded, by the limit that refused them (rpm or tpm).",
		}, []string{"tenant", "kind"}),
		ProtocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_extproc_protocol_errors_total", Help: "ext_proc streams closed because of an unexpected or out-of-order message.",
		}, []string{"reason"}),
		Passthrough: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_passthrough_requests_total", Help: "Requests passed through untouched (not an LLM API path).",
		}, []string{"reason"}),
		Streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_extproc_streams", Help: "ext_proc streams in flight.",
		}, []string{"role"}),
		Unpriced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_unpriced_requests_total", Help: "Requests whose provider/model has no catalog price (cost counted as 0).",
		}, []string{"provider", "model"}),
		UpstreamAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_upstream_attempts_total",
			Help: "Attempts the upstream role saw, by result: answered (the provider's response headers arrived), timed_out (no answer within the per-try timeout: billed the prompt), unanswered (ended sooner without an answer: connect failure or reset, not billed).",
		}, []string{"provider", "model", "result"}),
		PromptRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_prompt_requests_total", Help: "Requests that used a registry prompt, by name@version.",
		}, []string{"prompt"}),
		RoutingDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_routing_decisions_total", Help: "Complexity-routing decisions: requested alias, tier, chosen alias, shadow mode.",
		}, []string{"alias", "tier", "chosen", "shadow"}),
		ModelChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_model_change_total", Help: "Changes of the provider-reported model or system_fingerprint behind an alias.",
		}, []string{"alias"}),
		LedgerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_ledger_lag_seconds", Help: "Age of the oldest spend record not yet durable in the ledger (file: not yet fsynced; redis: 0, writes are synchronous). Refreshed every 10 s.",
		}, []string{"backend"}),
		PromptTokensSaved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_prompt_tokens_saved_total", Help: "Prompt tokens prompt compression removed from requests sent to a provider (the model label is the alias).",
		}, []string{"tenant", "model"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_config_reloads_total", Help: "Config file changes seen by the server: ok (applied), error (rejected, the running config stays), restart_required (applied, but some changed settings only take effect after a restart).",
		}, []string{"result"}),
	}
	for _, r := range []string{ReloadOK, ReloadError, ReloadRestartRequired} {
		m.ConfigReloads.WithLabelValues(r)
	}
	reg.MustRegister(m.ConfigReloads, m.LedgerLag, m.PromptRequests, m.RoutingDecisions, m.ModelChanges,
		m.TokenUsage, m.RequestDuration, m.TimeToFirstToken, m.TimePerOutputToken,
		m.CostUSD, m.Requests, m.EstimatedRequests, m.CacheSavedUSD, m.GuardFindings,
		m.StageDuration, m.BudgetSpent, m.BudgetRejections, m.Failures, m.RateLimitRejections, m.ProtocolErrors,
		m.Passthrough, m.Streams, m.Unpriced, m.UpstreamAttempts, m.PromptTokensSaved)
	return m
}

// Labels maps free-form values to a bounded set known from configuration.
type Labels struct{ known map[string]struct{} }

// NewLabels allows exactly the given values.
func NewLabels(values ...string) Labels {
	l := Labels{known: make(map[string]struct{}, len(values))}
	for _, v := range values {
		l.known[v] = struct{}{}
	}
	return l
}

// Value returns v if it is known, else Other.
func (l Labels) Value(v string) string {
	if _, ok := l.known[v]; ok {
		return v
	}
	return Other
}
