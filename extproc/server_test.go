package extproc

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

const testConfig = `
providers:
  fake: {base_url: "http://127.0.0.1:1", api_key_env: FAKE_KEY, catalog: openai}
  backup: {base_url: "http://127.0.0.1:2"}
models:
  small:
    targets:
      - {provider: fake, model: gpt-4o-mini}
      - {provider: backup, model: other-model}
tenants:
  keys:
    - {id: k1, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: demo}
pricing:
  models:
    - {provider: backup, model: other-model, effective: 2024-01-01, input: 1, output: 2}
`

type testServer struct {
	srv     *Server
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
	client  extprocv3.ExternalProcessorClient
}

func startServer(t testing.TB, budgets Budgets) *testServer {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(testConfig))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m, Budgets: budgets,
		Getenv: func(k string) string {
			if k == "FAKE_KEY" {
				return "sk-provider"
			}
			return ""
		}})
	require.NoError(t, err)
	return serveForTest(t, srv, reg, m)
}

// serveForTest serves srv over gRPC on a loopback port, as Run does (with
// the panic-recovering interceptor), and returns a client of it.
func serveForTest(t testing.TB, srv *Server, reg *prometheus.Registry, m *telemetry.Metrics) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer(grpc.StreamInterceptor(srv.RecoverStream))
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &testServer{srv: srv, reg: reg, metrics: m, client: extprocv3.NewExternalProcessorClient(conn)}
}

func attrs(kv map[string]string) map[string]*structpb.Struct {
	f := map[string]*structpb.Value{}
	for k, v := range kv {
		f[k] = structpb.NewStringValue(v)
	}
	return map[string]*structpb.Struct{attrNamespace: {Fields: f}}
}

// requestHeaders is the request_headers message Envoy sends (request
// header mode SEND) for headers kv.
func requestHeaders(kv map[string]string, eos bool) *extprocv3.ProcessingRequest {
	hm := &corev3.HeaderMap{}
	for k, v := range kv {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: hm, EndOfStream: eos}}}
}

func requestBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}},
	}
}

// request is the request phase of the shipped mode: headers, then body.
func request(body string, headers map[string]string) []*extprocv3.ProcessingRequest {
	return []*extprocv3.ProcessingRequest{requestHeaders(headers, false), requestBody(body)}
}

func responseHeaders(kv ...string) *extprocv3.ProcessingRequest {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hm}}}
}

func responseBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

var demoHeaders = map[string]string{
	":path": "/v1/chat/completions", ":method": "POST", "x-request-id": "r1",
	"authorization":  "Bearer sk-tollgate-demo",
	"content-length": "10",
}

func exchange(t testing.TB, c extprocv3.ExternalProcessorClient, md metadata.MD, msgs ...*extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	st, err := c.Process(ctx)
	if err != nil {
		return nil, err
	}
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := st.Send(m); err != nil {
			return out, err
		}
		r, err := st.Recv()
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	_ = st.CloseSend()
	_, err = st.Recv() // server ends the stream
	if err != nil && err.Error() != "EOF" && status.Code(err) != codes.OK {
		return out, err
	}
	return out, nil
}

func headerValue(m *extprocv3.HeaderMutation, k string) (string, bool) {
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetKey() == k {
			return string(h.GetHeader().GetRawValue()), true
		}
	}
	return "", false
}

func TestDownstreamExchange(t *testing.T) {
	ts := startServer(t, nil)
	body := `{"model":"small","stream":false,"messages":[{"role":"user","content":"hi"}]}`
	out, err := exchange(t, ts.client, nil, append(request(body, demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"yo"}}],"usage":{"prompt_tokens":1000,"completion_tokens":2000}}`),
	)...)
	require.NoError(t, err)
	require.Len(t, out, 4)
	assert.Nil(t, out[0].GetRequestHeaders().GetResponse(), "nothing to change before the body")

	rb := out[1].GetRequestBody().GetResponse()
	require.NotNil(t, rb)
	assert.True(t, rb.GetClearRouteCache())
	route, _ := headerValue(rb.GetHeaderMutation(), contract.HeaderRoute)
	assert.Equal(t, "small", route)
	for _, h := range []string{"authorization", "x-api-key", "proxy-authorization", contract.HeaderTenant, contract.HeaderTier, contract.HeaderKeyID} {
		assert.Contains(t, rb.GetHeaderMutation().GetRemoveHeaders(), h, "%s never reaches a provider", h)
	}
	assert.Equal(t, "demo", out[1].GetDynamicMetadata().GetFields()["tollgate"].GetStructValue().GetFields()["tenant"].GetStringValue(), "the tenant travels as dynamic metadata")

	rh := out[2]
	assert.Nil(t, rh.GetModeOverride(), "JSON stays BUFFERED")
	cost, ok := headerValue(out[3].GetResponseBody().GetResponse().GetHeaderMutation(), contract.HeaderCost)
	require.True(t, ok)
	// gpt-4o-mini (built-in OpenAI price 0.15 / 0.60 per M).
	assert.Equal(t, "0.00135", cost)
	assert.InDelta(t, 0.00135, testutil.ToFloat64(ts.metrics.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-15)
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.Requests.WithLabelValues("demo", "small", "ok")))
}

func TestStreamedResponseSplitsAndStripsUsage(t *testing.T) {
	ts := startServer(t, nil)
	body := `{"model":"small","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	events := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2}}\n\n" +
		"data: [DONE]\n\n"
	cut := 30 // inside the first event
	chunk := func(b string, eos bool) *extprocv3.ProcessingRequest {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(b), EndOfStream: eos}}}
	}
	out, err := exchange(t, ts.client, nil, append(request(body, demoHeaders),
		responseHeaders(":status", "200", "content-type", "text/event-stream", "content-length", "999"),
		chunk(events[:cut], false),
		chunk(events[cut:], false),
		chunk("", true),
	)...)
	require.NoError(t, err)
	// The request asked the provider for usage.
	assert.Contains(t, string(out[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()), `"include_usage":true`)
	assert.Equal(t, "STREAMED", out[2].GetModeOverride().GetResponseBodyMode().String())
	assert.Contains(t, out[2].GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "content-length",
		"Envoy keeps content-length after a mode_override to STREAMED; the reply must remove it")
	var client strings.Builder
	for i, raw := range []string{events[:cut], events[cut:], ""} {
		r := out[3+i].GetResponseBody().GetResponse()
		if bm := r.GetBodyMutation(); bm != nil {
			client.Write(bm.GetBody())
		} else {
			client.WriteString(raw)
		}
	}
	got := client.String()
	assert.NotContains(t, got, `"usage"`, "the client did not ask for the usage chunk")
	assert.Contains(t, got, `"content":"Hel"`)
	assert.True(t, strings.HasSuffix(got, "data: [DONE]\n\n"))
	// 10 input + 2 output tokens of gpt-4o-mini.
	assert.InDelta(t, (10*0.15+2*0.60)/1e6, testutil.ToFloat64(ts.metrics.CostUSD.WithLabelValues("demo", "fake", "gpt-4o-mini")), 1e-15)
}

func TestOutOfOrderMessagesCloseTheStream(t *testing.T) {
	ts := startServer(t, nil)
	tests := []struct {
		name   string
		msgs   []*extprocv3.ProcessingRequest
		reason string
	}{
		{"body before headers on response", append(request(`{"model":"small","messages":[{"role":"user","content":"x"}]}`, demoHeaders), responseBody("{}")), "response_body"},
		{"request body twice", append(request(`{"model":"small","messages":[{"role":"user","content":"x"}]}`, demoHeaders), requestBody(`{}`)), "request_body"},
		{"request body without headers (request_header_mode SKIP)", []*extprocv3.ProcessingRequest{requestBody(`{}`)}, "request_body"},
		{"empty message", []*extprocv3.ProcessingRequest{{}}, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(ts.metrics.ProtocolErrors.WithLabelValues(tt.reason))
			_, err := exchange(t, ts.client, nil, tt.msgs...)
			require.Error(t, err)
			assert.Equal(t, codes.FailedPrecondition, status.Code(err))
			assert.Equal(t, before+1, testutil.ToFloat64(ts.metrics.ProtocolErrors.WithLabelValues(tt.reason)))
		})
	}
	// The server still serves.
	_, err := exchange(t, ts.client, nil, request(`{"model":"small","messages":[{"role":"user","content":"x"}]}`, demoHeaders)...)
	require.NoError(t, err)
}

func TestRejections(t *testing.T) {
	ts := startServer(t, nil)
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int
		code    string
	}{
		{"no key", `{"model":"small","messages":[{"role":"user","content":"x"}]}`, map[string]string{":path": "/v1/chat/completions"}, 401, "missing_api_key"},
		{"unknown model", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`, demoHeaders, 404, "model_not_found"},
		{"malformed", `{"model":`, demoHeaders, 400, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := request(tt.body, tt.headers)
			if tt.status == 401 {
				msgs = msgs[:1] // answered at the headers, before the body is sent
			}
			out, err := exchange(t, ts.client, nil, msgs...)
			require.NoError(t, err)
			ir := out[len(out)-1].GetImmediateResponse()
			require.NotNil(t, ir)
			assert.Equal(t, tt.status, int(ir.GetStatus().GetCode()))
			assert.Contains(t, string(ir.GetBody()), `"code":"`+tt.code+`"`)
		})
	}
}

// hostAttrs are the attributes of the upstream host Envoy chose.
func hostAttrs(provider, model string) map[string]*structpb.Struct {
	return attrs(map[string]string{
		contract.HostAttribute(contract.HostProvider): provider,
		contract.HostAttribute(contract.HostModel):    model,
		"request.id": "r1",
	})
}

func TestUpstreamRole(t *testing.T) {
	ts := startServer(t, nil)
	md := metadata.Pairs(contract.RoleHeader, contract.RoleUpstream)
	attempt := func(provider, model string) []*extprocv3.ProcessingRequest {
		h := requestHeaders(map[string]string{":path": "/v1/chat/completions", "authorization": "Bearer sk-tollgate-demo"}, false)
		h.Attributes = hostAttrs(provider, model)
		return []*extprocv3.ProcessingRequest{h, requestBody(`{"model":"small","messages":[]}`)}
	}
	out, err := exchange(t, ts.client, md, attempt("fake", "gpt-4o-mini")...)
	require.NoError(t, err)
	auth, _ := headerValue(out[0].GetRequestHeaders().GetResponse().GetHeaderMutation(), "authorization")
	assert.Equal(t, "Bearer sk-provider", auth, "the provider key replaces the client's Tollgate key")
	r := out[1].GetRequestBody().GetResponse()
	assert.Equal(t, `{"model":"gpt-4o-mini","messages":[]}`, string(r.GetBodyMutation().GetBody()))
	cl, _ := headerValue(r.GetHeaderMutation(), "content-length")
	assert.Equal(t, "37", cl)

	// The second target, a provider without a credential: the client's
	// authorization is removed, not forwarded.
	out, err = exchange(t, ts.client, md, attempt("backup", "other-model")...)
	require.NoError(t, err)
	assert.Contains(t, out[0].GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "authorization")
	assert.Contains(t, string(out[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()), `"other-model"`)

	// A host without Tollgate metadata (the filter on a cluster Tollgate did
	// not generate): no credential at all, counted.
	before := testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("upstream_target", "open"))
	out, err = exchange(t, ts.client, md, requestHeaders(map[string]string{":path": "/v1/chat/completions", "authorization": "Bearer sk-tollgate-demo"}, false), requestBody(`{"model":"small"}`))
	require.NoError(t, err)
	assert.Contains(t, out[0].GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "authorization")
	assert.Nil(t, out[1].GetRequestBody().GetResponse().GetBodyMutation())
	assert.Equal(t, before+1, testutil.ToFloat64(ts.metrics.Failures.WithLabelValues("upstream_target", "open")))
}

// TestBudgetRejections: a refused reservation says which cap and why, and
// tells SDKs not to retry unless other requests' holds are what blocks it
// (openai-node honours Retry-After without a cap: a daily cap must never
// answer "retry in 22 hours").
func TestBudgetRejections(t *testing.T) {
	body := `{"model":"small","max_tokens":100,"messages":[{"role":"user","content":"x"}]}`
	reject := func(t *testing.T, ts *testServer, body string) *extprocv3.ImmediateResponse {
		t.Helper()
		out, err := exchange(t, ts.client, nil, request(body, demoHeaders)...)
		require.NoError(t, err)
		ir := out[1].GetImmediateResponse()
		require.NotNil(t, ir)
		assert.Equal(t, 429, int(ir.GetStatus().GetCode()))
		return ir
	}
	t.Run("the request alone exceeds the cap", func(t *testing.T) {
		ts := startServer(t, budgetsWithCap(t, 0.000001))
		ir := reject(t, ts, body)
		retry, _ := headerValue(ir.GetHeaders(), "x-should-retry")
		assert.Equal(t, "false", retry)
		_, hasRA := headerValue(ir.GetHeaders(), "retry-after")
		assert.False(t, hasRA)
		assert.Contains(t, string(ir.GetBody()), "max_tokens 100")
		assert.Contains(t, string(ir.GetBody()), "more than the tenant's whole daily cap")
		assert.Equal(t, 1.0, testutil.ToFloat64(ts.metrics.BudgetRejections.WithLabelValues("demo", "daily")))
	})
	t.Run("holds in flight: retry soon", func(t *testing.T) {
		b := budgetsWithCap(t, oneHoldCap)
		ts := startServer(t, b)
		// One request in flight holds the budget.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := ts.client.Process(ctx)
		require.NoError(t, err)
		for _, m := range request(body, demoHeaders) {
			require.NoError(t, st.Send(m))
			_, err := st.Recv()
			require.NoError(t, err)
		}
		ir := reject(t, ts, body)
		retry, _ := headerValue(ir.GetHeaders(), "x-should-retry")
		assert.Equal(t, "true", retry)
		ra, _ := headerValue(ir.GetHeaders(), "retry-after")
		assert.Equal(t, "1", ra)
		assert.Contains(t, string(ir.GetBody()), "held by requests in flight")
	})
}

func TestDownstreamCredentialInjection(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte("credentials: {inject: downstream}\n"+testConfig))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: telemetry.NewMetrics(prometheus.NewRegistry()),
		Getenv: func(k string) string { return map[string]string{"FAKE_KEY": "sk-provider"}[k] }})
	require.NoError(t, err)
	d := newDownstream(srv, srv.rt.Load())
	_, err = d.handle(t.Context(), requestHeaders(demoHeaders, false))
	require.NoError(t, err)
	out, err := d.handle(t.Context(), requestBody(`{"model":"small","messages":[{"role":"user","content":"x"}]}`))
	require.NoError(t, err)
	r := out.GetRequestBody().GetResponse()
	auth, ok := headerValue(r.GetHeaderMutation(), "authorization")
	require.True(t, ok)
	assert.Equal(t, "Bearer sk-provider", auth, "the provider key replaces the client's Tollgate key")
	assert.NotContains(t, r.GetHeaderMutation().GetRemoveHeaders(), "authorization")
	assert.Contains(t, string(r.GetBodyMutation().GetBody()), `"model":"gpt-4o-mini"`, "model rewritten for the first target")
}

// TestUpstreamRolePathPrefix: a provider whose base_url has a path (an
// OpenAI-compatible API under /openai) gets it prepended to the attempt's
// path; the next attempt to a provider without one gets the plain path back
// (the header map is shared by every attempt).
func TestUpstreamRolePathPrefix(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
providers:
  groq: {base_url: "https://api.groq.com/openai", catalog: groq}
  plain: {base_url: "https://api.example.com"}
models:
  m: {targets: [{provider: groq, model: a}, {provider: plain, model: b}]}
pricing:
  allow_unpriced: true
`))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: telemetry.NewMetrics(prometheus.NewRegistry())})
	require.NoError(t, err)
	attempt := func(provider, path string) string {
		u := newUpstream(srv, srv.rt.Load())
		h := requestHeaders(map[string]string{":path": path}, false)
		h.Attributes = hostAttrs(provider, "x")
		out, err := u.handle(t.Context(), h)
		require.NoError(t, err)
		p, _ := headerValue(out.GetRequestHeaders().GetResponse().GetHeaderMutation(), ":path")
		return p
	}
	assert.Equal(t, "/openai/v1/chat/completions", attempt("groq", "/v1/chat/completions"))
	assert.Equal(t, "/v1/chat/completions", attempt("plain", "/openai/v1/chat/completions"), "attempt 2 after attempt 1's prefix")
	assert.Equal(t, "", attempt("plain", "/v1/chat/completions"), "nothing to change")
}
