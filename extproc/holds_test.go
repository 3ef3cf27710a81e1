package extproc

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// oneHoldCap fits one reservation of holdBody (max_tokens 100 at the
// alias's most expensive target, other-model at $2/M output: about
// $0.0002) but not two.
const (
	oneHoldCap = 0.0003
	holdBody   = `{"model":"small","max_tokens":100,"messages":[{"role":"user","content":"x"}]}`
)

func budgetsWithCap(t *testing.T, usd float64) *meter.Budgets {
	t.Helper()
	store, err := meter.OpenFileLedger(t.TempDir()+"/l.jsonl", meter.FileLedgerOptions{FlushInterval: -1})
	require.NoError(t, err)
	b := meter.NewBudgets(store, map[string]meter.Caps{"demo": {Daily: meter.MoneyFromUSD(usd)}})
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// admitted runs one more request and reports whether its budget
// reservation went through (no 429).
func admitted(t *testing.T, ts *testServer) bool {
	t.Helper()
	out, err := exchange(t, ts.client, nil, request(holdBody, demoHeaders)...)
	require.NoError(t, err)
	ir := out[len(out)-1].GetImmediateResponse()
	return ir == nil || ir.GetStatus().GetCode() != 429
}

// TestEveryExitReleasesTheHold walks the ways an exchange can end after its
// reservation, with a cap that fits one hold: none may leave the hold
// behind (the next request of the tenant would get 429 until a restart, and
// a file ledger would count it as spent).
func TestEveryExitReleasesTheHold(t *testing.T) {
	jsonErr := func(status string) []*extprocv3.ProcessingRequest {
		return []*extprocv3.ProcessingRequest{
			responseHeaders(":status", status, "content-type", "application/json"),
		}
	}
	cases := []struct {
		name string
		// after the request phase; nil: the stream ends right after it
		rest   []*extprocv3.ProcessingRequest
		cancel bool // the client goes away instead of closing the stream
	}{
		{name: "provider 500", rest: jsonErr("500")},
		{name: "provider 429 after every fallback", rest: jsonErr("429")},
		{name: "router 503 plain text", rest: []*extprocv3.ProcessingRequest{
			responseHeaders(":status", "503", "content-type", "text/plain"),
			responseBody("upstream connect error or disconnect/reset before headers"),
		}},
		{name: "stream ends before the response (Envoy reset)"},
		{name: "client disconnect before the response", cancel: true},
		{name: "response headers without a body", rest: []*extprocv3.ProcessingRequest{{
			Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
				Headers: responseHeaders(":status", "204").GetResponseHeaders().GetHeaders(), EndOfStream: true}},
		}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, budgetsWithCap(t, oneHoldCap))
			msgs := append(request(holdBody, demoHeaders), tc.rest...)
			if tc.cancel {
				ctx, cancel := context.WithCancel(context.Background())
				st, err := ts.client.Process(ctx)
				require.NoError(t, err)
				for _, m := range msgs {
					require.NoError(t, st.Send(m))
					_, err := st.Recv()
					require.NoError(t, err)
				}
				cancel()
			} else {
				_, err := exchange(t, ts.client, nil, msgs...)
				require.NoError(t, err)
			}
			require.Eventually(t, func() bool { return admitted(t, ts) }, 5*time.Second, 10*time.Millisecond,
				"the hold of the first request was left behind")
		})
	}
}

// TestRejectionAfterReservationReleasesTheHold: with credentials.inject
// downstream and the provider key variable unset, the request is refused
// (503) after its budget was reserved; the hold must go with it.
func TestRejectionAfterReservationReleasesTheHold(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("credentials: {inject: downstream}\n"+testConfig))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	b := budgetsWithCap(t, oneHoldCap)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: telemetry.NewMetrics(prometheus.NewRegistry()), Budgets: b,
		Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	for range 3 {
		d := newDownstream(srv, srv.rt.Load())
		_, err := d.handle(t.Context(), requestHeaders(demoHeaders, false))
		require.NoError(t, err)
		out, err := d.handle(t.Context(), requestBody(holdBody))
		require.NoError(t, err)
		require.Equal(t, 503, int(out.GetImmediateResponse().GetStatus().GetCode()),
			"refused for the missing key, not for a budget held by the previous attempt")
		d.finish(t.Context(), false)
	}
}

// TestReservationCountsN: n choices are reserved n times over; a request
// whose n makes it exceed the cap is refused before the provider.
func TestReservationCountsN(t *testing.T) {
	ts := startServer(t, budgetsWithCap(t, oneHoldCap))
	out, err := exchange(t, ts.client, nil, request(`{"model":"small","max_tokens":100,"n":4,"messages":[{"role":"user","content":"x"}]}`, demoHeaders)...)
	require.NoError(t, err)
	require.NotNil(t, out[1].GetImmediateResponse(), "4 choices of 100 tokens cannot fit a cap for one")
	assert.Equal(t, 429, int(out[1].GetImmediateResponse().GetStatus().GetCode()))
	assert.True(t, admitted(t, ts), "n=1 still fits")
}

// TestCutStreamEstimateCountsEachDeltaOnce: a stream cut before the usage
// chunk is metered from the prompt and the text actually streamed, each
// delta once.
func TestCutStreamEstimateCountsEachDeltaOnce(t *testing.T) {
	ts := startServer(t, nil)
	chunk := func(b string) *extprocv3.ProcessingRequest {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(b)}}}
	}
	text := "The quick brown fox jumps over the lazy dog and keeps running far away"
	msgs := append(request(`{"model":"small","stream":true,"messages":[{"role":"user","content":"hi"}]}`, demoHeaders),
		responseHeaders(":status", "200", "content-type", "text/event-stream"),
		chunk(`data: {"choices":[{"index":0,"delta":{"content":"`+text[:30]+`"}}]}`+"\n\n"),
		chunk(`data: {"choices":[{"index":0,"delta":{"content":"`+text[30:]+`"}}]}`+"\n\n"),
	)
	_, err := exchange(t, ts.client, nil, msgs...) // the stream ends: cut before [DONE]
	require.NoError(t, err)
	in := meter.EstimateTokens("hi")
	outTok := meter.EstimateTokens(text)
	price := meter.Price{Input: meter.MoneyFromUSD(0.15), Output: meter.MoneyFromUSD(0.60)}
	want := meter.Cost(price, meter.Usage{InputTokens: in, OutputTokens: outTok, Estimated: true})
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(ts.metrics.EstimatedRequests.WithLabelValues("demo", "small")) == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.InDelta(t, want.USD(), testutil.ToFloat64(ts.metrics.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-12)
}

// TestReloadAppliesDefaultCaps: budgets.default is reloaded with
// budgets.tenants (tightened and loosened).
func TestReloadAppliesDefaultCaps(t *testing.T) {
	ts := startServer(t, nil)
	store, err := meter.OpenFileLedger(t.TempDir()+"/l.jsonl", meter.FileLedgerOptions{FlushInterval: -1})
	require.NoError(t, err)
	b := meter.NewBudgets(store, nil, meter.WithDefaultCaps(meter.Caps{Daily: meter.MoneyFromUSD(1)}))
	t.Cleanup(func() { _ = b.Close() })
	for _, usd := range []float64{0.5, 3} {
		cfg, err := config.Parse("t.yaml", []byte(testConfig+"budgets:\n  default: {daily_usd: "+strconv.FormatFloat(usd, 'f', -1, 64)+"}\n"))
		require.NoError(t, err)
		require.NoError(t, ts.srv.ReloadConfig(cfg, b))
		assert.Equal(t, meter.MoneyFromUSD(usd), b.CapsFor("anyone").Daily)
	}
}

// TestCutJSONBodyMeteredFromWhatArrived: a JSON answer cut mid-way is
// metered from the prompt and the completion text that arrived, not from
// the whole envelope as output.
func TestCutJSONBodyMeteredFromWhatArrived(t *testing.T) {
	ts := startServer(t, nil)
	full := `{"id":"chatcmpl-123456789","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","system_fingerprint":"fp_1234567890","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, friend"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":4}}`
	cut := full[:strings.Index(full, "friend")] // the body stops inside the content
	_, err := exchange(t, ts.client, nil, append(request(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`, demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(cut))...)
	require.NoError(t, err)
	price := meter.Price{Input: meter.MoneyFromUSD(0.15), Output: meter.MoneyFromUSD(0.60)}
	want := meter.Cost(price, meter.Usage{InputTokens: meter.EstimateTokens("hi"), OutputTokens: meter.EstimateTokens("Hello there, "), Estimated: true})
	assert.InDelta(t, want.USD(), testutil.ToFloat64(ts.metrics.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-12)
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Requests.WithLabelValues("demo", "small", "provider_malformed")))
}
