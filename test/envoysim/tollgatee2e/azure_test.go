package tollgatee2e

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/envoysim/wasmfilter"
	"github.com/tollgate-dev/tollgate/test/extproctest"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

// TestAzureFallbackThroughEnvoy: the gpt-4o-mini alias falls back from the
// OpenAI-kind primary's 429 to an Azure OpenAI target (model gpt-4o,
// deployment my-gpt4o) through the emulated Envoy and Tollgate's xDS config.
// The Azure fake gets its deployment path, api-version and api-key and no
// Authorization; neither provider sees the other's key; the spend is
// priced at the Azure target's model.
func TestAzureFallbackThroughEnvoy(t *testing.T) {
	d := startDeployment(t, "429", func(c *config.Config) {
		p := c.Providers["fake-backup"]
		p.Kind, p.APIVersion = config.KindAzure, "2024-10-21"
		c.Providers["fake-backup"] = p
		m := c.Models["gpt-4o-mini"]
		m.Targets = []config.Target{
			{Provider: "fake", Model: "gpt-4o-mini"},
			{Provider: "fake-backup", Model: "gpt-4o", Deployment: "my-gpt4o"},
		}
		c.Models["gpt-4o-mini"] = m
	})
	azure, azureURL := fakeprovider.StartTest(t, fakeprovider.Options{Azure: true, APIKey: secondaryKey})
	d.hosts["127.0.0.1:8082"] = azureURL
	sc, err := envoysim.FromTollgate(d.cfg, d.hosts, nil)
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)

	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	x := <-exchanges
	require.Len(t, x.Attempts, 2)
	assert.Equal(t, 429, x.Attempts[0].Status)
	assert.Equal(t, 1, d.primary.Calls())
	require.Equal(t, 1, azure.Calls())

	r := azure.Requests()[0]
	assert.Equal(t, "/openai/deployments/my-gpt4o/chat/completions", r.Path)
	assert.Equal(t, "api-version=2024-10-21", r.Query)
	assert.Equal(t, secondaryKey, r.Header.Get("api-key"))
	assert.Empty(t, r.Header.Values("Authorization"), "Azure gets no Authorization")
	assertNoKeyButOwn(t, r.Header, secondaryKey)
	for _, pr := range d.primary.Requests() {
		assert.Equal(t, "Bearer "+primaryKey, pr.Header.Get("Authorization"))
		assert.Empty(t, pr.Header.Values("api-key"))
		assertNoKeyButOwn(t, pr.Header, primaryKey)
	}
	assert.NotContains(t, string(dump(resp, body)), secondaryKey)
	assert.NotContains(t, string(dump(resp, body)), primaryKey)

	// Priced at the Azure target's model, gpt-4o, from the answer's usage.
	assert.Equal(t, "fake-backup", resp.Header.Get("x-tollgate-provider"))
	assert.Equal(t, "gpt-4o", resp.Header.Get("x-tollgate-model"))
	var answer struct {
		Usage struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
		}
	}
	require.NoError(t, json.Unmarshal(body, &answer))
	cat, err := meter.BuiltinCatalog()
	require.NoError(t, err)
	price, ok := cat.Lookup("openai", "gpt-4o", time.Now())
	require.True(t, ok)
	want := meter.Cost(price, meter.Usage{InputTokens: answer.Usage.Prompt, OutputTokens: answer.Usage.Completion}).USD()
	cost, err := strconv.ParseFloat(resp.Header.Get("x-tollgate-cost-usd"), 64)
	require.NoError(t, err)
	assert.InDelta(t, want, cost, 1e-9)
	assert.InDelta(t, want, promtest.SumScraped(promtest.Scrape(t, "http://"+d.adminAddr+"/metrics"), "tollgate_cost_usd_total", map[string]string{"tenant": "demo", "provider": "fake-backup"}), 1e-9)
}

// TestIstioAzureInjection: on Istio (credentials.inject: downstream, the
// platform's routes and clusters), an alias whose first target is Azure
// OpenAI reaches it with the deployment path, api-version and api-key
// that the downstream role set, and no Authorization.
func TestIstioAzureInjection(t *testing.T) {
	const host = "my-resource.openai.azure.com"
	p := istioPlatform(t, "../../../envoy/istio/extproc-gateway.yaml")
	p.routes["gpt-4o-mini"] = host
	azure, _ := fakeprovider.StartTest(t, fakeprovider.Options{Azure: true, APIKey: secondaryKey})
	cfg := k8sConfig(t)
	cfg.Providers["azure-eu"] = config.Provider{Kind: config.KindAzure, BaseURL: "https://" + host, APIVersion: "2024-10-21",
		APIKeyEnv: "AZURE_KEY", Catalog: "openai", Timeout: time.Minute}
	cfg.Models["gpt-4o-mini"] = config.Model{Targets: []config.Target{{Provider: "azure-eu", Model: "gpt-4o-mini", Deployment: "mini-eu"}}}
	d := &deployment{primary: fakeprovider.New(fakeprovider.Options{}), secondary: azure, cfg: cfg}
	d.extProcAddr = extproctest.Start(t, cfg, map[string]string{"OPENAI_API_KEY": primaryKey, "AZURE_KEY": secondaryKey})
	sc, err := envoysim.FromResources(p.resources(t), map[string]string{host + ":443": "http://" + azure.Addr()}, wasmfilter.Factory(routerModule(t)))
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)

	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	<-exchanges
	require.Equal(t, 1, azure.Calls())
	r := azure.Requests()[0]
	assert.Equal(t, "/openai/deployments/mini-eu/chat/completions", r.Path)
	assert.Equal(t, "api-version=2024-10-21", r.Query)
	assert.Equal(t, secondaryKey, r.Header.Get("api-key"))
	assert.Empty(t, r.Header.Values("Authorization"))
	assertNoKeyButOwn(t, r.Header, secondaryKey)
	assert.Equal(t, "gpt-4o-mini", resp.Header.Get("x-tollgate-model"))
	assert.NotEmpty(t, resp.Header.Get("x-tollgate-cost-usd"))
	assert.NotContains(t, string(dump(resp, body)), secondaryKey)
}

// assertNoKeyButOwn checks that no header carries the client's Tollgate key
// or a provider key other than own.
func assertNoKeyButOwn(t *testing.T, h http.Header, own string) {
	t.Helper()
	for k, vs := range h {
		for _, v := range vs {
			for _, key := range []string{demoKey, primaryKey, secondaryKey} {
				if key != own {
					assert.NotContains(t, v, key, "header %s", k)
				}
			}
		}
	}
}
