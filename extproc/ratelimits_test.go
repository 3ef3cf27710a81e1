package extproc

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/ratelimit"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
	"github.com/tollgate-dev/tollgate/test/redistest"
)

// rlNow is 10 seconds into a minute: the window resets in 50s.
var rlNow = time.Unix(1_800_000_000-1_800_000_000%60+10, 0)

// startLimited starts a server with testConfig plus extra YAML and the
// limiter openRateLimits builds for it (nil limiter: that one), on a fixed
// clock.
func startLimited(t testing.TB, extra string, lim RateLimiter) *testServer {
	t.Helper()
	return startLimitedBudgets(t, extra, lim, nil)
}

func startLimitedBudgets(t testing.TB, extra string, lim RateLimiter, budgets Budgets) *testServer {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(testConfig+extra))
	require.NoError(t, err)
	if lim == nil {
		l, closeLimits, err := openRateLimits(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = closeLimits() })
		lim = l
	}
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m, Limits: lim, Budgets: budgets, Now: func() time.Time { return rlNow },
		Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	return serveForTest(t, srv, reg, m)
}

func fixedLimiter() RateLimiter {
	return ratelimit.New(ratelimit.NewMemory(), ratelimit.WithClock(func() time.Time { return rlNow }))
}

// send runs the request phase through ts and returns the immediate
// response, nil when the request was forwarded.
func send(t *testing.T, ts *testServer, body string) *extprocv3.ImmediateResponse {
	t.Helper()
	out, err := exchange(t, ts.client, nil, request(body, demoHeaders)...)
	require.NoError(t, err)
	require.Len(t, out, 2)
	if ir := out[1].GetImmediateResponse(); ir != nil {
		return ir
	}
	return nil
}

// forward runs a whole exchange (request and response with usage) and
// returns the response headers' mutation.
func forward(t *testing.T, ts *testServer, body string, prompt, completion int) *extprocv3.HeaderMutation {
	t.Helper()
	out, err := exchange(t, ts.client, nil, append(request(body, demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"yo"}}],"usage":{"prompt_tokens":`+
			strconv.Itoa(prompt)+`,"completion_tokens":`+strconv.Itoa(completion)+`}}`),
	)...)
	require.NoError(t, err)
	require.Len(t, out, 4)
	require.Nil(t, out[1].GetImmediateResponse(), "forwarded: %s", out[1].GetImmediateResponse().GetBody())
	return out[2].GetResponseHeaders().GetResponse().GetHeaderMutation()
}

func mutated(m *extprocv3.HeaderMutation, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := headerValue(m, k); ok {
			out[k] = v
		}
	}
	return out
}

type openAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

func rateError(t *testing.T, ir *extprocv3.ImmediateResponse) openAIError {
	t.Helper()
	require.NotNil(t, ir, "a 429 was expected")
	assert.Equal(t, 429, int(ir.GetStatus().GetCode()))
	var e openAIError
	require.NoError(t, json.Unmarshal(ir.GetBody(), &e))
	assert.Equal(t, "rate_limit_exceeded", e.Error.Code)
	return e
}

func headers(ir *extprocv3.ImmediateResponse, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := headerValue(ir.GetHeaders(), k); ok {
			out[k] = v
		}
	}
	return out
}

var rateHeaders = []string{
	"retry-after", "x-should-retry",
	"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
	"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
}

func TestRateLimitRPM(t *testing.T) {
	ts := startLimited(t, "limits:\n  tenants:\n    demo: {rpm: 2}\n", fixedLimiter())
	body := `{"model":"small","messages":[{"role":"user","content":"hi"}]}`
	m := forward(t, ts, body, 1, 1)
	assert.Equal(t, map[string]string{
		"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "1", "x-ratelimit-reset-requests": "50s",
	}, mutated(m, rateHeaders...), "a forwarded request's response carries the limits too")
	assert.Nil(t, send(t, ts, body), "the second request fits")
	ir := send(t, ts, body)
	e := rateError(t, ir)
	assert.Equal(t, "requests", e.Error.Type)
	assert.Contains(t, e.Error.Message, "Limit 2, Used 2")
	assert.Equal(t, map[string]string{
		"retry-after": "50", "x-should-retry": "true",
		"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "50s",
	}, headers(ir, rateHeaders...))
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.RateLimitRejections.WithLabelValues("demo", "rpm")))
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Requests.WithLabelValues("demo", "small", "rate_limited")))
}

// TestRateLimitTPMCorrected: the response's usage replaces the estimate
// (prompt + max_tokens), so a request that used less gives the rest back.
func TestRateLimitTPMCorrected(t *testing.T) {
	ts := startLimited(t, "limits:\n  keys:\n    k1: {tpm: 100}\n", fixedLimiter())
	small := `{"model":"small","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}`
	// Estimated 60+ tokens, used 10.
	m := forward(t, ts, small, 5, 5)
	est := 60 + meter.EstimateTokens("hi")
	assert.Equal(t, map[string]string{
		"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": strconv.FormatInt(100-est, 10), "x-ratelimit-reset-tokens": "50s",
	}, mutated(m, rateHeaders...), "remaining as of the admission, before the correction")
	// Without the correction 60+ and 60+ would not fit in 100.
	forward(t, ts, small, 5, 5)
	forward(t, ts, small, 5, 5)
	// 30 used: an estimate of 80+ no longer fits.
	big := `{"model":"small","max_tokens":80,"messages":[{"role":"user","content":"hi"}]}`
	ir := send(t, ts, big)
	e := rateError(t, ir)
	assert.Equal(t, "tokens", e.Error.Type)
	assert.Contains(t, e.Error.Message, "on key k1: Limit 100, Used 30")
	assert.Equal(t, map[string]string{
		"retry-after": "50", "x-should-retry": "true",
		"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "70", "x-ratelimit-reset-tokens": "50s",
	}, headers(ir, rateHeaders...))
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.RateLimitRejections.WithLabelValues("demo", "tpm")))

}

// TestRateLimitRefusedLaterGivesTokensBack: a request admitted by the
// limiter but refused by its budget never reaches a provider, so its token
// estimate is taken back.
func TestRateLimitRefusedLaterGivesTokensBack(t *testing.T) {
	ts := startLimitedBudgets(t, "limits:\n  keys:\n    k1: {tpm: 100}\n", fixedLimiter(), budgetsWithCap(t, 0.000001))
	body := `{"model":"small","max_tokens":60,"messages":[{"role":"user","content":"hi"}]}`
	for i := range 3 {
		ir := send(t, ts, body)
		require.NotNil(t, ir)
		var e openAIError
		require.NoError(t, json.Unmarshal(ir.GetBody(), &e))
		assert.Equal(t, "budget_exceeded", e.Error.Code, "request %d passes the limiter and meets the budget", i+1)
	}
	assert.Zero(t, testutil.ToFloat64(ts.metrics.RateLimitRejections.WithLabelValues("demo", "tpm")))
}

// TestRateLimitReload: limits come from the running config, so a reload
// changes them for the next request.
func TestRateLimitReload(t *testing.T) {
	ts := startLimited(t, "limits:\n  tenants:\n    demo: {rpm: 1}\n", fixedLimiter())
	body := `{"model":"small","messages":[{"role":"user","content":"hi"}]}`
	require.Nil(t, send(t, ts, body))
	rateError(t, send(t, ts, body))
	cfg, err := config.Parse("t.yaml", []byte(testConfig+"limits:\n  tenants:\n    demo: {rpm: 3}\n"))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	require.NoError(t, ts.srv.Reload(cfg, cat))
	assert.Nil(t, send(t, ts, body), "the raised limit applies to the same window's count")
}

func TestRateLimitTooLarge(t *testing.T) {
	ts := startLimited(t, "limits:\n  default: {tpm: 100}\n", fixedLimiter())
	ir := send(t, ts, `{"model":"small","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}`)
	e := rateError(t, ir)
	assert.Equal(t, "tokens", e.Error.Type)
	assert.Contains(t, e.Error.Message, "Request too large")
	h := headers(ir, rateHeaders...)
	assert.Equal(t, "false", h["x-should-retry"])
	assert.NotContains(t, h, "retry-after", "waiting does not help")
}

// TestRateLimitFailureMode: a Redis that is down lets traffic through
// (failure_mode.ratelimits: open, the default) or refuses it (closed), and
// is counted either way.
func TestRateLimitFailureMode(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop()
	extra := "limits:\n  backend: redis\n  redis: {addr: \"" + srv.Addr + "\", timeout: 200ms}\n  tenants:\n    demo: {rpm: 5}\n"
	body := `{"model":"small","messages":[{"role":"user","content":"hi"}]}`

	ts := startLimited(t, extra, nil)
	assert.Nil(t, send(t, ts, body), "open: the request passes")
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("ratelimits", "open")))

	ts = startLimited(t, extra+"failure_mode:\n  ratelimits: closed\n", nil)
	ir := send(t, ts, body)
	require.NotNil(t, ir)
	assert.Equal(t, 503, int(ir.GetStatus().GetCode()))
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("ratelimits", "closed")))
}

// TestRateLimitReplicas: two servers on one Redis share the tenant's RPM.
func TestRateLimitReplicas(t *testing.T) {
	srv := redistest.Start(t)
	replica := func() RateLimiter {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		return ratelimit.New(ratelimit.NewRedis(c, ratelimit.RedisOptions{}), ratelimit.WithClock(func() time.Time { return rlNow }))
	}
	extra := "limits:\n  tenants:\n    demo: {rpm: 3}\n"
	a, b := startLimited(t, extra, replica()), startLimited(t, extra, replica())
	body := `{"model":"small","messages":[{"role":"user","content":"hi"}]}`
	forward(t, a, body, 1, 1)
	forward(t, b, body, 1, 1)
	forward(t, a, body, 1, 1)
	ir := send(t, b, body)
	rateError(t, ir)
	rem, _ := headerValue(ir.GetHeaders(), "x-ratelimit-remaining-requests")
	assert.Equal(t, "0", rem)
	assert.Equal(t, 1.0, testutil.ToFloat64(b.metrics.RateLimitRejections.WithLabelValues("demo", "rpm")))
}

// BenchmarkExchangeRateLimited is BenchmarkExchange with a tenant and a key
// limit (RPM and TPM) checked before and corrected after each request.
func BenchmarkExchangeRateLimited(b *testing.B) {
	limits := "  tenants:\n    demo: {rpm: 1000000000000, tpm: 1000000000000000}\n  keys:\n    k1: {rpm: 1000000000000, tpm: 1000000000000000}\n"
	for _, bc := range []struct{ name, backend string }{
		{"memory", "limits:\n  backend: memory\n"},
		{"redis", "redis"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			extra := bc.backend
			if extra == "redis" {
				extra = "limits:\n  backend: redis\n  redis: {addr: \"" + redistest.Start(b).Addr + "\"}\n"
			}
			ts := startLimited(b, extra+limits, nil)
			headers := map[string]string{}
			for k, v := range demoHeaders {
				headers[k] = v
			}
			headers["content-length"] = "2048"
			msgs := append(request(chat2KiB(), headers),
				responseHeaders(":status", "200", "content-type", "application/json"),
				responseBody(jsonResponse),
			)
			runExchanges(b, ts.client, msgs)
			if n := testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("ratelimits", "open")); n > 0 {
				b.Fatalf("%v limiter failures: the benchmark measured the failure path", n)
			}
		})
	}
}
