package extproc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
	"github.com/tollgate-dev/tollgate/test/netfault"
)

// startModerated serves testConfig with input guardrails whose external
// detector calls url, under failure_mode.guardrails mode.
func startModerated(t *testing.T, url string, mode config.Mode) *testServer {
	t.Helper()
	yaml := testConfig + fmt.Sprintf(`
guardrails:
  input:
    enabled: true
    detectors: {pii: redact, external: block}
    external: {url: %q, api_key_env: MOD_KEY, model: omni-moderation-latest}
failure_mode: {guardrails: %s}
`, url, mode)
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m,
		Getenv: func(k string) string { return map[string]string{"FAKE_KEY": "sk-provider", "MOD_KEY": "sk-mod"}[k] }})
	require.NoError(t, err)
	return serveForTest(t, srv, reg, m)
}

// moderation is an OpenAI-style moderation endpoint that flags inputs
// containing "attack" and records what it was sent.
type moderation struct {
	mu     sync.Mutex
	inputs []string
	keys   []string
}

func (m *moderation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct{ Input string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	m.mu.Lock()
	m.inputs = append(m.inputs, req.Input)
	m.keys = append(m.keys, r.Header.Get("Authorization"))
	m.mu.Unlock()
	flagged := req.Input == "plan the attack"
	fmt.Fprintf(w, `{"results":[{"flagged":%t,"categories":{"violence":%t},"category_scores":{"violence":%v}}]}`,
		flagged, flagged, map[bool]float64{true: 0.97, false: 0.01}[flagged])
}

// TestExternalModeration: the moderation endpoint sees the input after the
// built-in redaction, with its key; a flag blocks as content_blocked, a
// clean answer lets the request through.
func TestExternalModeration(t *testing.T) {
	mod := &moderation{}
	srv := httptest.NewServer(mod)
	t.Cleanup(srv.Close)
	ts := startModerated(t, srv.URL, config.Closed)

	body := `{"model":"small","messages":[{"role":"user","content":"mail me at jane@example.com"}]}`
	out, err := exchange(t, ts.client, nil, request(body, demoHeaders)...)
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Nil(t, out[1].GetImmediateResponse(), "a clean input is forwarded")
	assert.NotNil(t, out[1].GetRequestBody().GetResponse())

	out, err = exchange(t, ts.client, nil, request(`{"model":"small","messages":[{"role":"user","content":"plan the attack"}]}`, demoHeaders)...)
	require.NoError(t, err)
	ir := out[len(out)-1].GetImmediateResponse()
	require.NotNil(t, ir, "a flagged input is answered by the gateway")
	assert.Equal(t, 400, int(ir.GetStatus().GetCode()))
	assert.Contains(t, string(ir.GetBody()), `"code":"content_blocked"`)
	assert.Contains(t, string(ir.GetBody()), "external guardrail (MODERATION_violence)")

	mod.mu.Lock()
	defer mod.mu.Unlock()
	assert.Equal(t, []string{"mail me at [EMAIL_1]", "plan the attack"}, mod.inputs, "the endpoint never sees what the guard redacted")
	assert.Equal(t, []string{"Bearer sk-mod", "Bearer sk-mod"}, mod.keys)
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.GuardFindings.WithLabelValues("input", guard.DetectorExternal, "block")))
	assert.Zero(t, testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("guardrails", "closed")))
}

// TestExternalModerationFailureModes: a moderation endpoint that is down
// (an error status) or hung (a frozen peer, ended by the timeout derived
// from the message timeout) is a guardrail failure. Closed answers an
// OpenAI-style 503 before any provider call; open forwards the request;
// both count in tollgate_failures_total{layer="guardrails"}.
func TestExternalModerationFailureModes(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	frozen := "http://" + netfault.FrozenPeer(t) + "/v1/moderations"
	for _, peer := range []struct{ name, url string }{{"down", down.URL}, {"frozen", frozen}} {
		for _, mode := range []config.Mode{config.Closed, config.Open} {
			t.Run(peer.name+"/"+string(mode), func(t *testing.T) {
				ts := startModerated(t, peer.url, mode)
				start := time.Now()
				out, err := exchange(t, ts.client, nil, request(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`, demoHeaders)...)
				elapsed := time.Since(start)
				require.NoError(t, err)
				require.Len(t, out, 2)
				ir := out[1].GetImmediateResponse()
				if mode == config.Closed {
					require.NotNil(t, ir, "closed: the request is not sent")
					assert.Equal(t, 503, int(ir.GetStatus().GetCode()))
					var e struct {
						Error struct{ Message, Type, Code string }
					}
					require.NoError(t, json.Unmarshal(ir.GetBody(), &e))
					assert.Equal(t, "guardrails_unavailable", e.Error.Code)
					assert.Equal(t, "server_error", e.Error.Type)
				} else {
					assert.Nil(t, ir, "open: the request goes on unmoderated")
					assert.NotNil(t, out[1].GetRequestBody().GetResponse())
				}
				assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("guardrails", string(mode))))
				assert.Less(t, elapsed, config.DefaultMessageTimeout, "answered before Envoy stops waiting")
			})
		}
	}
}
