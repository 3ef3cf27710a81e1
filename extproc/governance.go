package extproc

import (
	"fmt"
	"strings"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

// AuditLog receives one record per request. *audit.Log implements it.
type AuditLog interface {
	Append(rec audit.Record) error
}

// buildPrompts loads the prompt registry; nil when prompts.dir is unset.
func buildPrompts(c config.Prompts) (*prompts.Registry, error) {
	return preflight.LoadPrompts(c)
}

// applyPrompt injects the registry prompt the request names with
// x-tollgate-prompt (variables from x-tollgate-prompt-vars).
func (d *downstream) applyPrompt() *rejection {
	ref := d.headers.get(prompts.HeaderPrompt)
	if ref == "" {
		return nil
	}
	bad := func(err error) *rejection {
		return reject(400, llm.TypeInvalidRequest, "invalid_prompt", "bad_request", err.Error())
	}
	reg := d.rt.prompts
	if reg == nil {
		return bad(fmt.Errorf("prompt %q requested but no prompt registry is configured", truncate(ref, 64)))
	}
	if d.op != llm.OpChat {
		return bad(fmt.Errorf("prompts apply to chat completions only"))
	}
	p, err := reg.Resolve(ref)
	if err != nil {
		return bad(err)
	}
	vars, err := prompts.ParseVars(d.headers.get(prompts.HeaderVars))
	if err != nil {
		return bad(err)
	}
	body, err := p.Apply(d.req.Body, vars)
	if err != nil {
		return bad(err)
	}
	req, err := llm.ParseRequest(d.op, body)
	if err != nil {
		return bad(err)
	}
	d.req = req
	d.prompt = p.Ref()
	d.s.metrics.PromptRequests.WithLabelValues(d.rt.promptLabels.Value(d.prompt)).Inc()
	return nil
}

// routeComplexity resolves a virtual alias (e.g. auto) to the alias of the
// request's complexity tier, or records what it would do in shadow mode.
func (d *downstream) routeComplexity() *rejection {
	r := d.rt.router
	if r == nil {
		return nil
	}
	dec, ok := r.Route(d.id.Tenant, d.req.Model, d.req)
	if !ok {
		return nil
	}
	d.tier = dec.Tier
	d.s.metrics.RoutingDecisions.WithLabelValues(d.rt.modelLabels.Value(d.req.Model), dec.Tier,
		d.rt.modelLabels.Value(dec.Chosen), fmt.Sprint(dec.Shadow)).Inc()
	if err := dec.Apply(d.req); err != nil {
		return reject(400, llm.TypeInvalidRequest, "invalid_request", "bad_request", err.Error())
	}
	if dec.Alias != d.req.Model {
		d.virtualAlias = d.req.Model
		d.req.Model = dec.Alias
	}
	return nil
}

// traceID extracts the trace id of a W3C traceparent header.
func traceID(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) >= 2 && len(parts[1]) == 32 {
		return parts[1]
	}
	return ""
}

// writeAudit appends the request's audit record: who, what, which target,
// tokens, cost, cache and guardrail results by type and position, outcome.
// Never raw prompts or matched values.
func (d *downstream) writeAudit(costUSD float64, outcome string) {
	log := d.s.audit
	if log == nil || (d.req == nil && d.pass) {
		return
	}
	rec := audit.Record{
		Time:         d.s.now().UTC(),
		RequestID:    d.requestID,
		TraceID:      traceID(d.headers.get("traceparent")),
		Tenant:       d.id.Tenant,
		KeyID:        d.id.KeyID,
		Prompt:       d.prompt,
		Alias:        d.alias,
		Tier:         d.tier,
		TokensIn:     d.usage.InputTokens,
		TokensOut:    d.usage.OutputTokens,
		TokensCached: d.usage.CachedInputTokens,
		CostUSD:      costUSD,
		Cache:        d.cacheState,
		Outcome:      outcome,
		Status:       d.status,
	}
	if d.forwarded {
		rec.Provider, rec.Model = d.provider, d.target
	}
	for _, f := range d.findings {
		rec.Findings = append(rec.Findings, audit.Finding{Type: f.Type, Path: f.Direction, Start: f.Start, End: f.End, Action: f.Action})
	}
	if err := log.Append(rec); err != nil {
		d.s.metrics.Failures.WithLabelValues("audit", "open").Inc()
		d.s.log.Error("audit append failed", "err", err)
	}
}

// observeModel detects a silent model update: the provider-reported model or
// system_fingerprint behind an alias's target changed since the last
// response. It counts tollgate_model_change_total and writes an audit event
// (outcome "model_change"); the runbook shows how to run tollgate eval then.
func (d *downstream) observeModel() {
	if d.respModel == "" || d.alias == "" {
		return
	}
	changed, prev := d.s.models.Observe(d.alias+"|"+d.provider+"|"+d.target, d.respModel, d.fingerprint)
	if !changed {
		return
	}
	d.s.metrics.ModelChanges.WithLabelValues(d.rt.modelLabels.Value(d.alias)).Inc()
	d.s.onModelChange(d.alias)
	d.s.log.Warn("provider model changed behind an alias", "alias", d.alias, "provider", d.provider,
		"previous_model", prev.Model, "previous_fingerprint", prev.Fingerprint, "model", d.respModel, "fingerprint", d.fingerprint)
	if d.s.audit != nil {
		_ = d.s.audit.Append(audit.Record{
			Time: d.s.now().UTC(), RequestID: d.requestID, Alias: d.alias, Provider: d.provider,
			Model: d.respModel, Outcome: "model_change",
		})
	}
}
