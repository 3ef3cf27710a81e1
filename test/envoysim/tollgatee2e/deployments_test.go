package tollgatee2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/extproctest"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/envoysim/wasmfilter"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// The demo tenant's key in the embedded default config, and the provider
// keys the deployment tests give Tollgate.
const (
	demoKey      = "sk-tollgate-demo"
	primaryKey   = "sk-provider-primary"
	secondaryKey = "sk-provider-secondary"
)

var (
	wasmOnce   sync.Once
	wasmModule []byte
	wasmErr    error
)

// routerModule compiles the wasm router once per test binary.
func routerModule(t *testing.T) []byte {
	t.Helper()
	wasmOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		wasmModule, wasmErr = wasmfilter.Build(ctx, "../../../wasm")
	})
	require.NoError(t, wasmErr)
	return wasmModule
}

// deployment is the embedded default config's world: two fake providers
// standing in for 127.0.0.1:8081 and :8082 (each requiring its own key),
// and `tollgate extproc` on the default config with those keys.
type deployment struct {
	primary, secondary *fakeprovider.Provider
	extProcAddr        string
	adminAddr          string
	cfg                *config.Config
	hosts              map[string]string
}

// startDeployment starts the providers and extproc; chatFault, if set, is
// the fault the primary answers chat completions with (embeddings, which
// have no fallback target, stay served).
func startDeployment(t *testing.T, chatFault string, mutate func(*config.Config)) *deployment {
	t.Helper()
	d := &deployment{
		primary:   fakeprovider.New(fakeprovider.Options{APIKey: primaryKey}),
		secondary: fakeprovider.New(fakeprovider.Options{APIKey: secondaryKey}),
	}
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if chatFault != "" && r.URL.Path == "/v1/chat/completions" {
			r.Header.Set("x-fake-fault", chatFault)
		}
		d.primary.ServeHTTP(w, r)
	}))
	t.Cleanup(primary.Close)
	_, err := d.secondary.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.secondary.Close() })
	d.hosts = map[string]string{
		"127.0.0.1:8081": primary.URL,
		"127.0.0.1:8082": "http://" + d.secondary.Addr(),
	}
	cfg, err := config.Default()
	require.NoError(t, err)
	cfg.Listen.ExtProc, cfg.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Budgets.Ledger.Path = t.TempDir() + "/ledger.jsonl"
	cfg.Audit.Dir = t.TempDir()
	fake, backup := cfg.Providers["fake"], cfg.Providers["fake-backup"]
	fake.APIKeyEnv, backup.APIKeyEnv = "PRIMARY_KEY", "SECONDARY_KEY"
	cfg.Providers["fake"], cfg.Providers["fake-backup"] = fake, backup
	if mutate != nil {
		mutate(cfg)
	}
	d.cfg = cfg
	addrs := extproctest.StartAddrs(t, cfg, map[string]string{"PRIMARY_KEY": primaryKey, "SECONDARY_KEY": secondaryKey})
	d.extProcAddr, d.adminAddr = addrs.ExtProc, addrs.Admin
	return d
}

// startBootstrap runs the static Envoy bootstrap at path (with the compiled
// wasm router) in the emulator.
func (d *deployment) startBootstrap(t *testing.T, path string) (string, *envoysim.Sim, chan envoysim.Exchange) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	res, err := envoysim.LoadBootstrap(data)
	require.NoError(t, err)
	sc, err := envoysim.FromResources(res, d.hosts, wasmfilter.Factory(routerModule(t)))
	require.NoError(t, err)
	return d.start(t, sc)
}

// start runs the emulator on sc.
func (d *deployment) start(t *testing.T, sc envoysim.Config) (string, *envoysim.Sim, chan envoysim.Exchange) {
	t.Helper()
	sc.ExtProcAddr = d.extProcAddr
	sc.Clock = slowClock{factor: 25}
	exchanges := make(chan envoysim.Exchange, 16)
	sc.OnExchange = func(x envoysim.Exchange) { exchanges <- x }
	sim, err := envoysim.New(sc)
	require.NoError(t, err)
	base, err := sim.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	return base, sim, exchanges
}

// chat sends a chat request with the demo key (and a client's attempts to
// smuggle credentials and a tenant). Cache-Control: no-cache skips the
// default config's response cache, so every request reaches a provider.
func chat(t *testing.T, base, body string) (*http.Response, []byte) {
	t.Helper()
	req := post(t, base+"/v1/chat/completions", body)
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set("Proxy-Authorization", "Basic "+demoKey)
	req.Header.Set("X-Tollgate-Tenant", "someone-else")
	return do(t, req)
}

// assertNoCredentialCrossed checks that no provider saw the client's
// Tollgate key and every provider request carried that provider's own key,
// and that no provider key reached the client.
func assertNoCredentialCrossed(t *testing.T, d *deployment, clientSaw ...[]byte) {
	t.Helper()
	for _, p := range []struct {
		prov *fakeprovider.Provider
		key  string
	}{{d.primary, primaryKey}, {d.secondary, secondaryKey}} {
		for _, r := range p.prov.Requests() {
			for k, vs := range r.Header {
				for _, v := range vs {
					assert.NotContains(t, v, demoKey, "the client's key reached a provider in %s", k)
				}
			}
			assert.Equal(t, "Bearer "+p.key, r.Header.Get("Authorization"), "each provider gets its own key")
			for _, h := range []string{"Proxy-Authorization", "X-Tollgate-Tenant", "X-Tollgate-Tier", "X-Tollgate-Key-Id"} {
				assert.Empty(t, r.Header.Get(h), "%s reached a provider", h)
			}
			assert.NotContains(t, string(r.Body), demoKey)
		}
	}
	for _, b := range clientSaw {
		assert.NotContains(t, string(b), primaryKey)
		assert.NotContains(t, string(b), secondaryKey)
	}
}

// dump renders a response's headers and body for credential checks.
func dump(resp *http.Response, body []byte) []byte {
	var sb strings.Builder
	for k, vs := range resp.Header {
		sb.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
	}
	sb.Write(body)
	return []byte(sb.String())
}

// exerciseGateway runs the scenarios every deployment must carry: a chat
// request that falls back from the primary's 429 to the secondary, priced
// at the secondary; a streamed chat; embeddings; and the credential check.
func exerciseGateway(t *testing.T, d *deployment, base string, exchanges chan envoysim.Exchange, fallback bool) {
	t.Helper()
	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	seen := [][]byte{dump(resp, body)}
	if fallback {
		assert.Equal(t, "fake-backup", resp.Header.Get("x-tollgate-provider"), "priced at the target that served")
		x := <-exchanges
		require.Len(t, x.Attempts, 2)
		assert.Equal(t, 429, x.Attempts[0].Status)
		assert.Equal(t, 1, d.primary.Calls())
	} else {
		assert.Equal(t, "fake", resp.Header.Get("x-tollgate-provider"))
		<-exchanges
	}
	assert.Equal(t, "gpt-4o-mini", resp.Header.Get("x-tollgate-model"))
	assert.NotEmpty(t, resp.Header.Get("x-tollgate-cost-usd"))

	resp, body = chat(t, base, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "data: [DONE]")
	seen = append(seen, dump(resp, body))
	<-exchanges

	req := post(t, base+"/v1/embeddings", `{"model":"text-embedding-3-small","input":"hello"}`)
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, body = do(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var emb struct {
		Data []struct{ Embedding []float64 }
	}
	require.NoError(t, json.Unmarshal(body, &emb))
	require.Len(t, emb.Data, 1)
	seen = append(seen, dump(resp, body))
	<-exchanges
	assertNoCredentialCrossed(t, d, seen...)
}

// TestShippedStaticConfig runs envoy/static/envoy.yaml, the file users
// apply, with the compiled wasm router, against `tollgate extproc` on the
// embedded default config.
func TestShippedStaticConfig(t *testing.T) {
	d := startDeployment(t, "429", nil)
	base, sim, exchanges := d.startBootstrap(t, "../../../envoy/static/envoy.yaml")
	exerciseGateway(t, d, base, exchanges, true)
	assert.Equal(t, uint64(5), sim.Stats().UpstreamFilter.StreamsStarted, "one upstream stream per attempt: 2 + 2 (both chats fall back) + 1")

	// The wasm router answers a bad key before ext_proc sees a body.
	req := post(t, base+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`)
	req.Header.Set("Authorization", "Bearer sk-wrong")
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestXDSConfig runs what `tollgate xds` pushes for the same config.
func TestXDSConfig(t *testing.T) {
	d := startDeployment(t, "429", nil)
	sc, err := envoysim.FromTollgate(d.cfg, d.hosts, nil)
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)
	exerciseGateway(t, d, base, exchanges, true)
}

// TestPreviousShippedConfigFailsAsEnvoyWould runs the static configuration
// Tollgate shipped before request headers were sent
// (testdata/shipped-2026-12-06-static-envoy.yaml): request_header_mode SKIP
// lets the router pick the route at the headers, before the downstream role
// has written the tollgate.route metadata, so every chat request gets the
// catch-all 404 and no provider is called.
func TestPreviousShippedConfigFailsAsEnvoyWould(t *testing.T) {
	d := startDeployment(t, "", nil)
	base, sim, exchanges := d.startBootstrap(t, "../testdata/shipped-2026-12-06-static-envoy.yaml")
	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, string(body), `"code":"model_not_found"`)
	x := <-exchanges
	assert.Equal(t, "direct_response", x.Details)
	for _, m := range x.Sent {
		assert.Nil(t, m.GetRequestBody(), "the router answered before the body reached the server")
	}
	assert.Zero(t, d.primary.Calls()+d.secondary.Calls())
	assert.Equal(t, uint64(0), sim.Stats().UpstreamFilter.StreamsStarted)
}

// TestUpstreamFilterOnMemberClustersNeverRuns keeps today's downstream
// filter but puts the upstream filter where Tollgate used to, on the
// aggregate's member clusters: Envoy builds the upstream chain from the
// route's cluster, the aggregate (envoyproxy/envoy#29318), so the upstream
// role never runs: the provider gets the alias instead of its model and no
// credential at all.
func TestUpstreamFilterOnMemberClustersNeverRuns(t *testing.T) {
	d := startDeployment(t, "", nil)
	res, err := translate.Envoy(withExtProcTarget(d.cfg))
	require.NoError(t, err)
	byName := map[string]*clusterv3.Cluster{}
	for _, c := range res.Clusters {
		byName[c.GetName()] = c
	}
	for _, c := range res.Clusters {
		po, ok := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
		if !ok || c.GetClusterType() == nil {
			continue
		}
		for _, m := range memberNames(t, c) {
			byName[m].TypedExtensionProtocolOptions = map[string]*anypb.Any{
				"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": proto.Clone(po).(*anypb.Any),
			}
		}
		delete(c.TypedExtensionProtocolOptions, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
	}
	sc, err := envoysim.FromResources(envoysim.Resources{
		Listener: res.Listeners[0], Routes: res.Routes, Clusters: res.Clusters, Extensions: res.Extensions,
	}, d.hosts, nil)
	require.NoError(t, err)
	base, sim, exchanges := d.start(t, sc)
	resp, body := chat(t, base, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "the provider refuses a request without its key: %s", body)
	<-exchanges
	reqs := d.primary.Requests()
	require.Len(t, reqs, 1)
	assert.Empty(t, reqs[0].Header.Get("Authorization"), "no credential: the downstream role removed the client's, no upstream role added the provider's")
	assert.Equal(t, uint64(0), sim.Stats().UpstreamFilter.StreamsStarted)
}

func withExtProcTarget(c *config.Config) *config.Config {
	cc := *c
	cc.XDS.ExtProcTarget = "127.0.0.1:50051"
	return &cc
}

func memberNames(t *testing.T, c *clusterv3.Cluster) []string {
	t.Helper()
	var agg aggregateConfig
	require.NoError(t, c.GetClusterType().GetTypedConfig().UnmarshalTo(&agg.ClusterConfig))
	return agg.GetClusters()
}

type aggregateConfig struct{ aggregatev3.ClusterConfig }

// TestWasmRouterAndExtProcAgree runs the compiled wasm router ahead of
// ext_proc (what `tollgate xds` pushes with xds.wasm.enabled): a tier's
// allow-list holds even when the client names the model only in the body
// (the router sees no x-tollgate-model header and lets it pass; ext_proc
// refuses it), and a canary split moves the body's model too.
func TestWasmRouterAndExtProcAgree(t *testing.T) {
	d := startDeployment(t, "", func(c *config.Config) {
		c.XDS.Wasm.Enabled, c.XDS.Wasm.Path = true, "/etc/envoy/wasm/tollgate-router.wasm"
		c.Tenants.Tiers = map[string]config.Tier{"standard": {AllowedModels: []string{"gpt-4o-mini", "gpt-4o"}}}
		c.Routing.Canaries = []config.Canary{{Alias: "gpt-4o-mini", Canary: "gpt-4o", Weight: 100}}
	})
	sc, err := envoysim.FromTollgate(d.cfg, d.hosts, wasmfilter.Factory(routerModule(t)))
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)

	// Not in the tier's allow-list, named only in the body.
	req := post(t, base+"/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`)
	req.Header.Set("Authorization", "Bearer "+demoKey)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"code":"model_not_allowed"`)
	<-exchanges
	// The same through the header: the wasm router refuses it first.
	req = post(t, base+"/v1/embeddings", `{"model":"text-embedding-3-small","input":"x"}`)
	req.Header.Set("Authorization", "Bearer "+demoKey)
	req.Header.Set("x-tollgate-model", "text-embedding-3-small")
	resp, _ = do(t, req)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	<-exchanges
	assert.Zero(t, d.primary.Calls()+d.secondary.Calls())

	// The canary takes every gpt-4o-mini request (weight 100) to gpt-4o.
	resp, body = chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	x := <-exchanges
	assert.Equal(t, "gpt-4o", x.Route)
	reqs := d.primary.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, string(reqs[0].Body), `"model":"gpt-4o"`)
	assertNoCredentialCrossed(t, d, dump(resp, body))
}

// TestLargeBodiesReachTollgate: the shipped listener's buffer limit
// (max_body_bytes + 1 MiB) lets a 1.5 MB request (a vision prompt) through
// Envoy's buffering to Tollgate and the provider, and a body over
// max_body_bytes gets Tollgate's OpenAI-shaped 413, not Envoy's plain text.
func TestLargeBodiesReachTollgate(t *testing.T) {
	d := startDeployment(t, "", nil)
	base, _, exchanges := d.startBootstrap(t, "../../../envoy/static/envoy.yaml")
	big := func(n int) string {
		return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", n) + `"}]}`
	}
	resp, body := chat(t, base, big(1_500_000))
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body[:min(len(body), 200)]))
	<-exchanges
	resp, body = chat(t, base, big(4_500_000))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Contains(t, string(body), `"code":"request_too_large"`)
	<-exchanges
}
