package extproc

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/ratelimit"
)

// RateLimiter admits requests against per-minute limits and corrects a
// request's token estimate once its usage is known. *ratelimit.Limiter is
// one.
type RateLimiter interface {
	Admit(ctx context.Context, group string, subjects []ratelimit.Subject, tokens int64) (ratelimit.Decision, ratelimit.Ticket, error)
	Correct(ctx context.Context, t ratelimit.Ticket, actual int64) error
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// Limit scopes, the first part of a limiter key.
const (
	scopeTenant = "tenant"
	scopeKey    = "key"
)

// openRateLimits builds the limiter of limits.backend. The limits
// themselves are read from the running config on each request, so a reload
// changes them without a restart; the backend needs one. close releases the
// Redis connections.
func openRateLimits(cfg *config.Config) (RateLimiter, func() error, error) {
	if cfg.Limits.Backend != "redis" {
		return ratelimit.New(ratelimit.NewMemory()), func() error { return nil }, nil
	}
	rc := cfg.Limits.Redis
	// A hung Redis fails the call in time for failure_mode.ratelimits to decide.
	client, callTimeout := newBoundedRedis(rc.Redis, rc.Timeout, cfg.XDS.MessageTimeout)
	store := ratelimit.NewRedis(client, ratelimit.RedisOptions{KeyPrefix: rc.Prefix + "rl:", Timeout: callTimeout})
	return ratelimit.New(store), client.Close, nil
}

// rateState is what the response path needs: the charge to correct and
// the quotas for the x-ratelimit-* headers.
type rateState struct {
	admitted bool
	ticket   ratelimit.Ticket
	decision ratelimit.Decision
}

// rateSubjects are the limits that apply to the request: its tenant's (or
// limits.default) and its key's.
func (d *downstream) rateSubjects() ([]ratelimit.Subject, bool) {
	lim := &d.rt.cfg.Limits
	tl, ok := lim.Tenants[d.id.Tenant]
	if !ok {
		tl = lim.Default
	}
	subjects := []ratelimit.Subject{{Scope: scopeTenant, ID: d.id.Tenant, Limits: ratelimit.Limits{RPM: tl.RPM, TPM: tl.TPM}}}
	limited := tl.RPM > 0 || tl.TPM > 0
	if kl, ok := d.keyRateLimit(); ok {
		subjects = append(subjects, ratelimit.Subject{Scope: scopeKey, ID: d.id.KeyID, Limits: ratelimit.Limits{RPM: kl.RPM, TPM: kl.TPM}})
		limited = limited || kl.RPM > 0 || kl.TPM > 0
	}
	return subjects, limited
}

// rateTokens is the request's token estimate: the prompt plus max_tokens
// (or limits.default_output_tokens) for each of n choices.
func (d *downstream) rateTokens() int64 {
	prompt := meter.EstimateTokens(d.req.PromptText())
	if d.op == llm.OpEmbedding {
		return prompt
	}
	out := d.req.MaxTokens
	if out == 0 {
		out = d.rt.cfg.Limits.DefaultOutputTokens
	}
	return prompt + out*max(d.req.N, 1)
}

// rateLimit admits the request against its tenant's and key's limits, or
// explains the refusal with OpenAI's 429 and x-ratelimit-* headers.
func (d *downstream) rateLimit(ctx context.Context) *rejection {
	if d.s.limiter == nil {
		return nil
	}
	subjects, limited := d.rateSubjects()
	if !limited {
		return nil
	}
	var tokens int64
	for _, s := range subjects {
		if s.Limits.TPM > 0 {
			tokens = d.rateTokens()
			break
		}
	}
	dec, ticket, err := d.s.limiter.Admit(ctx, d.id.Tenant, subjects, tokens)
	if err != nil {
		return d.dependencyFailed("ratelimits", d.rt.cfg.FailureMode.RateLimits, "ratelimit_unavailable", "rate limiter", err)
	}
	if !dec.Allowed {
		d.s.metrics.RateLimitRejections.WithLabelValues(d.rt.tenantLabels.Value(d.id.Tenant), string(dec.Kind)).Inc()
		return rateRejection(dec, tokens, d.s.now())
	}
	d.rl = rateState{admitted: true, ticket: ticket, decision: dec}
	return nil
}

// rateHeaders adds OpenAI's x-ratelimit-* headers to a forwarded request's
// response: the tightest limits as of its admission, overriding the
// provider's own (which describe the gateway's provider key, not the
// client). Without limits the provider's headers pass.
func (d *downstream) rateHeaders(mut *mutation) {
	if d.rl.decision.Reset.IsZero() {
		return
	}
	for k, v := range quotaHeaders(d.rl.decision, resetIn(d.rl.decision.Reset, d.s.now(), 0)) {
		mut.setHeader(k, v)
	}
}

// resetIn is the time to reset rounded up to whole seconds, at least
// floor and at most one window.
func resetIn(reset, now time.Time, floor time.Duration) time.Duration {
	wait := max(time.Duration(math.Ceil(reset.Sub(now).Seconds()))*time.Second, floor)
	return min(wait, ratelimit.Window)
}

// quotaHeaders are OpenAI's x-ratelimit-* headers for the limits that apply.
func quotaHeaders(dec ratelimit.Decision, wait time.Duration) map[string]string {
	reset := wait.String()
	h := map[string]string{}
	if q := dec.Requests; q.Limit > 0 {
		h["x-ratelimit-limit-requests"] = strconv.FormatInt(q.Limit, 10)
		h["x-ratelimit-remaining-requests"] = strconv.FormatInt(q.Remaining, 10)
		h["x-ratelimit-reset-requests"] = reset
	}
	if q := dec.Tokens; q.Limit > 0 {
		h["x-ratelimit-limit-tokens"] = strconv.FormatInt(q.Limit, 10)
		h["x-ratelimit-remaining-tokens"] = strconv.FormatInt(q.Remaining, 10)
		h["x-ratelimit-reset-tokens"] = reset
	}
	return h
}

// correctRateLimit replaces the admitted request's token estimate with its
// usage (zero when it never reached a provider).
func (d *downstream) correctRateLimit(ctx context.Context) {
	if !d.rl.admitted {
		return
	}
	d.rl.admitted = false
	actual := d.usage.InputTokens + d.usage.OutputTokens
	if !d.forwarded {
		actual = 0
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := d.s.limiter.Correct(cctx, d.rl.ticket, actual); err != nil {
		d.s.metrics.Failures.WithLabelValues("ratelimits", string(d.rt.cfg.FailureMode.RateLimits)).Inc()
		d.s.log.Error("correcting the rate limit token count failed", "tenant", d.id.Tenant, "err", err)
	}
}

// rateRejection is OpenAI's answer to a rate limit: 429, error type
// "requests" or "tokens", code rate_limit_exceeded, Retry-After to the
// window's reset and the x-ratelimit-* headers of the tightest limits.
func rateRejection(dec ratelimit.Decision, tokens int64, now time.Time) *rejection {
	wait := resetIn(dec.Reset, now, time.Second)
	reset := wait.String()
	h := quotaHeaders(dec, wait)
	who := dec.Subject.Scope + " " + dec.Subject.ID
	typ, msg := "requests", ""
	switch {
	case dec.TooLarge:
		typ = "tokens"
		msg = fmt.Sprintf("Request too large for tokens per minute (TPM) on %s: Limit %d, Requested %d (the prompt plus max_tokens). Lower max_tokens or shorten the prompt.",
			who, dec.Subject.Limits.TPM, tokens)
		h["x-should-retry"] = "false"
	case dec.Kind == ratelimit.TPM:
		typ = "tokens"
		msg = fmt.Sprintf("Rate limit reached for tokens per minute (TPM) on %s: Limit %d, Used %d, Requested %d. Please try again in %s.",
			who, dec.Subject.Limits.TPM, dec.Used.Tokens, tokens, reset)
	default:
		msg = fmt.Sprintf("Rate limit reached for requests per minute (RPM) on %s: Limit %d, Used %d, Requested 1. Please try again in %s.",
			who, dec.Subject.Limits.RPM, dec.Used.Requests, reset)
	}
	if !dec.TooLarge {
		h["retry-after"] = strconv.Itoa(int(wait / time.Second))
		h["x-should-retry"] = "true"
	}
	r := reject(429, typ, "rate_limit_exceeded", "rate_limited", msg)
	r.headers = h
	return r
}
