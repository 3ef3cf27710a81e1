package extproc

import (
	"context"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// stepClock is a clock the test moves forward.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// admissionMetadata is the metadata_context the shipped upstream filter
// forwards: what the downstream role admitted the request with.
func admissionMetadata(tenant, route string) *corev3.Metadata {
	return admissionMetadataAccount(tenant, route, "")
}

// admissionMetadataAccount is admissionMetadata for a virtual key with a
// ledger account: exactly what routeMetadata writes, as Envoy forwards it.
func admissionMetadataAccount(tenant, route, account string) *corev3.Metadata {
	ns := contract.MetadataNamespace
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		ns: routeMetadata(route, tenant, account).GetFields()[ns].GetStructValue(),
	}}
}

// TestTimedOutAttemptsAreBilled: an attempt that got no answer within the
// per-try timeout is charged its prompt at the target's input price (the
// provider received and processed it), past the cap; an answered attempt,
// and one that ended sooner (connect failure, reset), are not.
func TestTimedOutAttemptsAreBilled(t *testing.T) {
	const body = `{"model":"small","messages":[{"role":"user","content":"Summarise the quarterly report in three bullet points, please."}]}`
	cfg, err := config.Parse("t.yaml", []byte(testConfig))
	require.NoError(t, err)
	// The route's per_try_timeout is the largest of its providers'.
	fake, backup := cfg.Providers["fake"], cfg.Providers["backup"]
	fake.Timeout, backup.Timeout = 3*time.Second, 2*time.Second
	cfg.Providers["fake"], cfg.Providers["backup"] = fake, backup
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	clock := &stepClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}

	req, err := llm.ParseRequest(llm.OpChat, []byte(body))
	require.NoError(t, err)
	price, ok := cat.Lookup("openai", "gpt-4o-mini", clock.now())
	require.True(t, ok)
	promptCost := meter.Cost(price, meter.Usage{InputTokens: meter.EstimateTokens(req.PromptText())})
	require.Positive(t, promptCost)

	for _, tc := range []struct {
		name     string
		elapsed  time.Duration
		answer   bool
		tenant   string
		account  string // a virtual key's ledger account
		want     meter.Money
		result   string
		failures float64
	}{
		{"cut by the per-try timeout", 3 * time.Second, false, "demo", "", promptCost, "timed_out", 0},
		{"cut, virtual key with its own budget", 3 * time.Second, false, "demo", "@key:k9", promptCost, "timed_out", 0},
		{"answered late", 5 * time.Second, true, "demo", "", 0, "answered", 0},
		{"ended sooner: connect failure or reset", 2900 * time.Millisecond, false, "demo", "", 0, "unanswered", 0},
		{"no forwarded admission", 3 * time.Second, false, "", "", 0, "timed_out", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A cap the charge exceeds: it is spend, never refused.
			budgets := budgetsWithCap(t, promptCost.USD()/2)
			reg := prometheus.NewRegistry()
			m := telemetry.NewMetrics(reg)
			srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m, Budgets: budgets, Now: clock.now,
				Getenv: func(string) string { return "sk-provider" }})
			require.NoError(t, err)
			ts := serveForTest(t, srv, reg, m)

			ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(),
				metadata.Pairs(contract.RoleHeader, contract.RoleUpstream)), 5*time.Second)
			defer cancel()
			st, err := ts.client.Process(ctx)
			require.NoError(t, err)
			h := requestHeaders(map[string]string{":path": "/v1/chat/completions"}, false)
			h.Attributes = hostAttrs("fake", "gpt-4o-mini")
			msgs := []*extprocv3.ProcessingRequest{h, requestBody(body)}
			if tc.tenant != "" {
				for _, msg := range msgs {
					msg.MetadataContext = admissionMetadataAccount(tc.tenant, "small", tc.account)
				}
			}
			for _, msg := range msgs {
				require.NoError(t, st.Send(msg))
				_, err := st.Recv()
				require.NoError(t, err)
			}
			clock.advance(tc.elapsed)
			if tc.answer {
				require.NoError(t, st.Send(responseHeaders(":status", "200")))
				_, err := st.Recv()
				require.NoError(t, err)
			}
			require.NoError(t, st.CloseSend())
			_, err = st.Recv() // the server has finished the stream
			require.Error(t, err)

			spent, err := budgets.Spent(context.Background(), "demo")
			require.NoError(t, err)
			assert.Equal(t, tc.want, spent.Daily)
			if tc.account != "" {
				keySpent, err := budgets.Spent(context.Background(), tc.account)
				require.NoError(t, err)
				assert.Equal(t, tc.want, keySpent.Daily, "the key's own budget is charged too")
			}
			assert.Equal(t, 1.0, testutil.ToFloat64(m.UpstreamAttempts.WithLabelValues("fake", "gpt-4o-mini", tc.result)))
			assert.InDelta(t, tc.want.USD(), testutil.ToFloat64(m.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-12)
			assert.Equal(t, tc.failures, testutil.ToFloat64(m.Failures.WithLabelValues("upstream_metering", "open")))
		})
	}
}

// TestEnvoyTimeoutBilledWithoutUpstreamRole: where no upstream role runs
// (credentials.inject: downstream, the Istio and Envoy Gateway setups), an
// Envoy 504 whose code details say a timer cut the request after it was
// sent is billed the prompt by the downstream role; a provider's own 504,
// and any 504 where the upstream role bills timed-out attempts, is not.
func TestEnvoyTimeoutBilledWithoutUpstreamRole(t *testing.T) {
	const body = `{"model":"small","messages":[{"role":"user","content":"Summarise the quarterly report in three bullet points, please."}]}`
	for _, tc := range []struct {
		name, inject, details string
		billed                bool
	}{
		{"per-try timeout, no upstream role", "downstream", "upstream_per_try_timeout", true},
		{"route timeout, no upstream role", "downstream", "upstream_response_timeout", true},
		{"the provider's own 504", "downstream", "via_upstream", false},
		{"connect failure", "downstream", "upstream_reset_before_response_started{connection_failure}", false},
		{"per-try timeout, upstream role bills it", "upstream", "upstream_per_try_timeout", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("t.yaml", []byte("credentials: {inject: "+tc.inject+"}\n"+testConfig))
			require.NoError(t, err)
			cat, err := BuildCatalog(cfg)
			require.NoError(t, err)
			m := telemetry.NewMetrics(prometheus.NewRegistry())
			srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m,
				Getenv: func(string) string { return "sk-provider" }})
			require.NoError(t, err)
			d := newDownstream(srv, srv.rt.Load())
			for _, msg := range []*extprocv3.ProcessingRequest{requestHeaders(demoHeaders, false), requestBody(body)} {
				_, err := d.handle(t.Context(), msg)
				require.NoError(t, err)
			}
			rh := responseHeaders(":status", "504", "content-type", "text/plain")
			rh.Attributes = attrs(map[string]string{contract.CodeDetailsAttribute: tc.details})
			_, err = d.handle(t.Context(), rh)
			require.NoError(t, err)
			cost := testutil.ToFloat64(m.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini"))
			if tc.billed {
				assert.Positive(t, cost, "the prompt the provider received")
			} else {
				assert.Zero(t, cost)
			}
		})
	}
}
