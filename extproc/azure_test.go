package extproc

import (
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

const azureTestConfig = `
providers:
  oai: {base_url: "https://api.openai.com", api_key_env: OAI_KEY, catalog: openai}
  az:
    kind: azure
    base_url: https://my-resource.openai.azure.com
    api_version: 2024-10-21
    api_key_env: AZ_KEY
    catalog: openai
  groq: {base_url: "https://api.groq.com/openai", catalog: groq}
models:
  m:
    targets:
      - {provider: oai, model: gpt-4o-mini}
      - {provider: az, model: gpt-4o, deployment: my-gpt4o}
      - {provider: groq, model: llama-3.1-8b-instant}
  azfirst:
    targets:
      - {provider: az, model: gpt-4o-mini}
tenants:
  keys:
    - {id: k1, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: demo}
pricing:
  allow_unpriced: true
`

var azureTestKeys = map[string]string{"OAI_KEY": "sk-openai", "AZ_KEY": "azure-key"}

func azureTestServer(t *testing.T, prefix string) *Server {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(prefix+azureTestConfig))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: telemetry.NewMetrics(prometheus.NewRegistry()),
		Getenv: func(k string) string { return azureTestKeys[k] }})
	require.NoError(t, err)
	return srv
}

// apply changes headers as Envoy applies a header mutation to the router's
// header map: removals, then sets.
func apply(headers map[string]string, m *extprocv3.HeaderMutation) {
	for _, k := range m.GetRemoveHeaders() {
		delete(headers, k)
	}
	for _, h := range m.GetSetHeaders() {
		headers[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
}

func TestAzurePath(t *testing.T) {
	const v = "2024-10-21"
	tests := []struct{ client, want string }{
		{"/v1/chat/completions", "/openai/deployments/d/chat/completions?api-version=" + v},
		{"/v1/embeddings", "/openai/deployments/d/embeddings?api-version=" + v},
		{"/v1/completions?x=1", "/openai/deployments/d/completions?x=1&api-version=" + v},
		{"/v1/chat/completions?api-version=1999-01-01&x=1", "/openai/deployments/d/chat/completions?x=1&api-version=" + v},
		{"/v1/chat/completions?", "/openai/deployments/d/chat/completions?api-version=" + v},
		{"/healthz", "/healthz"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, azurePath(tc.client, "d", v), tc.client)
	}
	providers := map[string]config.Provider{"groq": {BaseURL: "https://api.groq.com/openai"}}
	for _, tc := range []struct{ seen, want string }{
		{"/openai/deployments/d/chat/completions?api-version=" + v, "/v1/chat/completions"},
		{"/openai/deployments/d/embeddings?x=1&api-version=" + v, "/v1/embeddings?x=1"},
		{"/openai/v1/chat/completions?x=1", "/v1/chat/completions?x=1"},
		{"/v1/chat/completions?x=1", "/v1/chat/completions?x=1"},
	} {
		assert.Equal(t, tc.want, clientPath(tc.seen, providers), tc.seen)
	}
}

// TestUpstreamRoleAzureFallback: attempts that alternate between an OpenAI,
// an Azure and a base-path target on one header map (Envoy's router keeps
// it across retries) each leave exactly their own path and credential.
func TestUpstreamRoleAzureFallback(t *testing.T) {
	srv := azureTestServer(t, "")
	headers := map[string]string{":path": "/v1/chat/completions?trace=1", "authorization": "Bearer sk-tollgate-demo", "api-key": "sk-tollgate-demo"}
	attempt := func(provider, model string) string {
		t.Helper()
		u := newUpstream(srv, srv.rt.Load())
		h := requestHeaders(headers, false)
		h.Attributes = hostAttrs(provider, model)
		h.MetadataContext = admissionMetadata("demo", "m")
		out, err := u.handle(t.Context(), h)
		require.NoError(t, err)
		apply(headers, out.GetRequestHeaders().GetResponse().GetHeaderMutation())
		out, err = u.handle(t.Context(), requestBody(`{"model":"m","messages":[]}`))
		require.NoError(t, err)
		return string(out.GetRequestBody().GetResponse().GetBodyMutation().GetBody())
	}

	attempt("oai", "gpt-4o-mini")
	assert.Equal(t, map[string]string{":path": "/v1/chat/completions?trace=1", "authorization": "Bearer sk-openai"}, headers,
		"OpenAI: bearer key, no api-key (the client's removed)")

	body := attempt("az", "gpt-4o")
	assert.Equal(t, map[string]string{":path": "/openai/deployments/my-gpt4o/chat/completions?trace=1&api-version=2024-10-21", "api-key": "azure-key"}, headers,
		"Azure: deployment path, api-version, api-key and no authorization")
	assert.Equal(t, `{"model":"gpt-4o","messages":[]}`, body, "the body names the priced model; Azure ignores it")

	attempt("oai", "gpt-4o-mini")
	assert.Equal(t, map[string]string{":path": "/v1/chat/completions?trace=1", "authorization": "Bearer sk-openai"}, headers,
		"after Azure: the client's path back, the Azure key gone")

	attempt("az", "gpt-4o")
	attempt("groq", "llama-3.1-8b-instant")
	assert.Equal(t, map[string]string{":path": "/openai/v1/chat/completions?trace=1"}, headers,
		"after Azure, a base-path provider without a key: its prefix on the client's path, no credential")
}

// TestDownstreamInjectionAzure: with credentials.inject: downstream, an
// alias whose first target is Azure gets the deployment path, api-version
// and api-key from the downstream role, and no authorization.
func TestDownstreamInjectionAzure(t *testing.T) {
	srv := azureTestServer(t, "credentials: {inject: downstream}\n")
	send := func(alias string) *extprocv3.CommonResponse {
		d := newDownstream(srv, srv.rt.Load())
		h := map[string]string{"api-key": "sk-tollgate-demo"}
		for k, v := range demoHeaders {
			h[k] = v
		}
		hr, err := d.handle(t.Context(), requestHeaders(h, false))
		require.NoError(t, err)
		require.Nil(t, hr.GetImmediateResponse(), "%v", hr)
		out, err := d.handle(t.Context(), requestBody(`{"model":"`+alias+`","messages":[{"role":"user","content":"x"}]}`))
		require.NoError(t, err)
		r := out.GetRequestBody().GetResponse()
		require.NotNil(t, r, "%v", out)
		return r
	}

	r := send("azfirst")
	m := r.GetHeaderMutation()
	key, _ := headerValue(m, "api-key")
	assert.Equal(t, "azure-key", key)
	path, _ := headerValue(m, ":path")
	assert.Equal(t, "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", path, "deployment defaults to the model")
	_, set := headerValue(m, "authorization")
	assert.False(t, set)
	assert.Contains(t, m.GetRemoveHeaders(), "authorization")
	assert.Contains(t, string(r.GetBodyMutation().GetBody()), `"model":"gpt-4o-mini"`)

	m = send("m").GetHeaderMutation()
	auth, _ := headerValue(m, "authorization")
	assert.Equal(t, "Bearer sk-openai", auth)
	_, set = headerValue(m, ":path")
	assert.False(t, set, "an OpenAI target keeps the client's path")
	assert.Contains(t, m.GetRemoveHeaders(), "api-key", "the client's api-key never reaches an OpenAI provider")
}
