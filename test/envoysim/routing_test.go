package envoysim

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// md builds a dynamic_metadata Struct from namespace -> value.
func md(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return s
}

// receivingFilter is the shipped downstream mode receiving namespaces ns.
func receivingFilter(ns ...string) *extprocfilterv3.ExternalProcessor {
	f := DefaultFilter()
	f.MetadataOptions = &extprocfilterv3.MetadataOptions{
		ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: ns},
	}
	return f
}

// replyScript answers each message with the reply reply() builds for it.
func replyScript(reply func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse) script {
	return func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			if err := st.send(reply(req)); err != nil {
				return err
			}
		}
	}
}

func TestDynamicMetadataNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name        string
		receiving   []string
		onBody      map[string]any // dynamic_metadata on the request_body reply
		onHeaders   map[string]any // dynamic_metadata on the response_headers reply
		want        map[string]any // Exchange.DynamicMetadata
		wantDropped uint64
	}{
		{
			name:      "listed namespace kept, others dropped",
			receiving: []string{"tollgate"},
			onBody:    map[string]any{"tollgate": map[string]any{"route": "a"}, "other": map[string]any{"x": 1.0}},
			want:      map[string]any{"tollgate": map[string]any{"route": "a"}},

			wantDropped: 1,
		},
		{
			name:      "later replies merge keys",
			receiving: []string{"tollgate"},
			onBody:    map[string]any{"tollgate": map[string]any{"route": "a", "tenant": "t1"}},
			onHeaders: map[string]any{"tollgate": map[string]any{"tenant": "t2", "usage": 3.0}},
			want:      map[string]any{"tollgate": map[string]any{"route": "a", "tenant": "t2", "usage": 3.0}},
		},
		{
			name:        "no receiving namespaces: nothing written",
			onBody:      map[string]any{"tollgate": map[string]any{"route": "a"}},
			wantDropped: 1,
		},
		{
			name:      "two namespaces received",
			receiving: []string{"a", "b"},
			onBody:    map[string]any{"a": map[string]any{"k": "1"}, "b": map[string]any{"k": "2"}, "c": map[string]any{"k": "3"}},
			want:      map[string]any{"a": map[string]any{"k": "1"}, "b": map[string]any{"k": "2"}},

			wantDropped: 1,
		},
		{
			name:      "non-Struct value merges nothing",
			receiving: []string{"tollgate"},
			onBody:    map[string]any{"tollgate": "not a struct"},
			want:      map[string]any{"tollgate": map[string]any{}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, receivingFilter(tc.receiving...), replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				resp := continueFor(req)
				switch {
				case req.GetRequestBody() != nil && tc.onBody != nil:
					resp.DynamicMetadata = md(t, tc.onBody)
				case req.GetResponseHeaders() != nil && tc.onHeaders != nil:
					resp.DynamicMetadata = md(t, tc.onHeaders)
				}
				return resp
			}), nil, nil)
			resp, _ := do(t, post(t, env.url+"/v1/chat/completions", `{"model":"m"}`))
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			if tc.want == nil {
				assert.Nil(t, x.DynamicMetadata)
			} else {
				require.NotNil(t, x.DynamicMetadata)
				assert.Equal(t, tc.want, x.DynamicMetadata.AsMap())
			}
			assert.Equal(t, tc.wantDropped, env.sim.Stats().MetadataNamespaceDropped)
		})
	}
}

func post(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return req
}

// namedUpstream answers 200 with its name as the body.
func namedUpstream(t *testing.T, name string) *fakeUpstream {
	t.Helper()
	return startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, name)
	})
}

func oneTarget(cluster, url string) Route {
	return Route{Targets: []Target{{ClusterName: cluster, URL: url}}}
}

func TestMetadataRouting(t *testing.T) {
	routeMD := func(alias string) *structpb.Struct {
		return &structpb.Struct{Fields: map[string]*structpb.Value{
			"tollgate": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"route": structpb.NewStringValue(alias)}}),
		}}
	}
	withMutation := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-tollgate-route", "b")}}
	for _, tc := range []struct {
		name        string
		cr          *extprocv3.CommonResponse
		metadata    *structpb.Struct
		clientRoute string // x-tollgate-route sent by the client
		wantStatus  int
		wantBody    string
		wantRoute   string
		wantIgnored uint64
	}{
		{
			name:       "metadata and clear_route_cache with a header mutation: re-picked",
			cr:         &extprocv3.CommonResponse{HeaderMutation: withMutation, ClearRouteCache: true},
			metadata:   routeMD("b"),
			wantStatus: http.StatusOK, wantBody: "B", wantRoute: "b",
		},
		{
			name:       "metadata without clear_route_cache: route picked at arrival stays (none)",
			cr:         &extprocv3.CommonResponse{HeaderMutation: withMutation},
			metadata:   routeMD("b"),
			wantStatus: http.StatusNotFound, wantBody: DefaultNotFoundBody,
		},
		{
			name:       "clear_route_cache without a header mutation is ignored",
			cr:         &extprocv3.CommonResponse{ClearRouteCache: true},
			metadata:   routeMD("b"),
			wantStatus: http.StatusNotFound, wantBody: DefaultNotFoundBody, wantIgnored: 1,
		},
		{
			name:        "no metadata: a client x-tollgate-route header does not route",
			cr:          &extprocv3.CommonResponse{HeaderMutation: withMutation, ClearRouteCache: true},
			clientRoute: "a",
			wantStatus:  http.StatusNotFound, wantBody: DefaultNotFoundBody,
		},
		{
			name: "metadata in a namespace the filter does not receive",
			cr:   &extprocv3.CommonResponse{HeaderMutation: withMutation, ClearRouteCache: true},
			metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
				"other": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"route": structpb.NewStringValue("b")}}),
			}},
			wantStatus: http.StatusNotFound, wantBody: DefaultNotFoundBody,
		},
		{
			name:       "unknown alias in metadata",
			cr:         &extprocv3.CommonResponse{HeaderMutation: withMutation, ClearRouteCache: true},
			metadata:   routeMD("zzz"),
			wantStatus: http.StatusNotFound, wantBody: DefaultNotFoundBody,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upA, upB := namedUpstream(t, "A"), namedUpstream(t, "B")
			var statusSeen []string
			env := startSim(t, receivingFilter("tollgate"), replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil {
					resp := replyFor(req, tc.cr)
					resp.DynamicMetadata = tc.metadata
					return resp
				}
				if h := req.GetResponseHeaders(); h != nil {
					statusSeen = headerValues(h.GetHeaders(), ":status")
				}
				return continueFor(req)
			}), nil, func(c *Config) {
				c.Upstream = ""
				c.MetadataRoutes = &MetadataRouting{Namespace: "tollgate", Key: "route", Routes: map[string]Route{
					"a": oneTarget("a/0", upA.srv.URL),
					"b": oneTarget("b/0", upB.srv.URL),
				}}
			})
			req := post(t, env.url+"/v1/chat/completions", `{"model":"m"}`)
			if tc.clientRoute != "" {
				req.Header.Set("x-tollgate-route", tc.clientRoute)
			}
			resp, body := do(t, req)
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, tc.wantBody, string(body))
			x := env.exchange(t)
			assert.Equal(t, tc.wantRoute, x.Route)
			assert.Equal(t, tc.wantIgnored, env.sim.Stats().ClearRouteCacheIgnored)
			upA.none(t)
			if tc.wantStatus == http.StatusNotFound {
				upB.none(t)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				assert.Equal(t, "direct_response", x.Details)
				assert.Equal(t, []string{"404"}, statusSeen, "the 404 direct response passes the response phases")
				assert.Empty(t, x.Attempts)
			} else {
				assert.Equal(t, "b", upB.only(t).header.Get("x-tollgate-route"))
				require.Len(t, x.Attempts, 1)
				assert.Equal(t, "b/0", x.Attempts[0].Cluster)
			}
		})
	}
}

func TestMetadataRoutingCustomNotFoundBody(t *testing.T) {
	env := startSim(t, receivingFilter("tollgate"), echoScript, nil, func(c *Config) {
		c.Upstream = ""
		c.MetadataRoutes = &MetadataRouting{Namespace: "tollgate", Key: "route", NotFoundBody: `{"x":1}`, Routes: map[string]Route{}}
	})
	resp, body := do(t, post(t, env.url+"/v1/x", `{}`))
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Equal(t, `{"x":1}`, string(body))
}

// routeScript is a downstream server that admits every request to alias.
func routeScript(alias string) script {
	return replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, alias) })
}

// closedURL is an http URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// statusUpstream answers code with body.
func statusUpstream(t *testing.T, code int, body string) *fakeUpstream {
	t.Helper()
	return startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	})
}

// tollgateRetry is the control plane's retry policy for n targets.
func tollgateRetry(n int, perTry time.Duration) RetryPolicy {
	return RetryPolicy{
		RetryOn:              "5xx,reset,connect-failure,retriable-status-codes",
		RetriableStatusCodes: []int{429, 503},
		NumRetries:           n - 1,
		PerTryTimeout:        perTry,
	}
}

// retrySim starts a sim whose alias "m" has the given target URLs.
func retrySim(t *testing.T, sc script, upstreamFilter *extprocfilterv3.ExternalProcessor, perTry time.Duration, urls ...string) *simEnv {
	t.Helper()
	return retrySimWith(t, sc, upstreamFilter, perTry, nil, urls...)
}

// retrySimWith is retrySim with a last Config adjustment.
func retrySimWith(t *testing.T, sc script, upstreamFilter *extprocfilterv3.ExternalProcessor, perTry time.Duration, mutate func(*Config), urls ...string) *simEnv {
	t.Helper()
	rt := Route{Cluster: "alias/m", Retry: tollgateRetry(len(urls), perTry)}
	for i, u := range urls {
		name := "target/m/" + string(rune('0'+i))
		rt.Targets = append(rt.Targets, Target{ClusterName: name, URL: u, Metadata: map[string]*structpb.Struct{
			"test": {Fields: map[string]*structpb.Value{"target": structpb.NewStringValue(name)}},
		}})
	}
	return startSim(t, receivingFilter("tollgate"), sc, nil, func(c *Config) {
		c.Upstream = ""
		c.UpstreamFilter = upstreamFilter
		c.MetadataRoutes = &MetadataRouting{Namespace: "tollgate", Key: "route", Routes: map[string]Route{"m": rt}}
		if mutate != nil {
			mutate(c)
		}
	})
}

// targetOf returns the attempt's target from the host-metadata attribute
// of the first message of an upstream stream, remembered in *seen.
func targetOf(req *extprocv3.ProcessingRequest, seen *string) string {
	if a := req.GetAttributes()[attributeKey]; a != nil {
		*seen = a.GetFields()[hostTargetAttr].GetStringValue()
	}
	return *seen
}

func clusters(atts []Attempt) []string {
	out := make([]string, 0, len(atts))
	for _, a := range atts {
		out = append(out, a.Cluster)
	}
	return out
}

func TestRetries(t *testing.T) {
	t.Run("429 moves to target 2", func(t *testing.T) {
		first, second := statusUpstream(t, 429, "slow down"), namedUpstream(t, "second")
		env := retrySim(t, routeScript("m"), nil, 0, first.srv.URL, second.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{"model":"m"}`))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "second", string(body))
		first.only(t)
		assert.Equal(t, `{"model":"m"}`, string(second.only(t).body), "the body is replayed")
		x := env.exchange(t)
		require.Len(t, x.Attempts, 2)
		assert.Equal(t, []string{"target/m/0", "target/m/1"}, clusters(x.Attempts))
		assert.Equal(t, 429, x.Attempts[0].Status)
		assert.True(t, x.Attempts[0].Retried)
		assert.Equal(t, 200, x.Attempts[1].Status)
		assert.False(t, x.Attempts[1].Retried)
		assert.Equal(t, uint64(1), env.sim.Stats().UpstreamRetries)
		assert.Equal(t, uint64(2), env.sim.Stats().UpstreamRequests)
		assert.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent), "the downstream filter sees only the final response")
		assert.Equal(t, []string{"200"}, headerValues(x.Sent[2].GetResponseHeaders().GetHeaders(), ":status"))
	})
	t.Run("connect refused moves to target 2", func(t *testing.T) {
		second := namedUpstream(t, "second")
		env := retrySim(t, routeScript("m"), nil, 0, closedURL(t), second.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{"model":"m"}`))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "second", string(body))
		x := env.exchange(t)
		require.Len(t, x.Attempts, 2)
		assert.Error(t, x.Attempts[0].Err)
		assert.Equal(t, 0, x.Attempts[0].Status)
		assert.True(t, x.Attempts[0].Retried)
		assert.False(t, x.LocalReply)
	})
	t.Run("500 is retried under 5xx, 400 is not", func(t *testing.T) {
		first, second := statusUpstream(t, 500, "boom"), namedUpstream(t, "second")
		env := retrySim(t, routeScript("m"), nil, 0, first.srv.URL, second.srv.URL)
		resp, _ := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, env.exchange(t).Attempts, 2)

		bad, other := statusUpstream(t, 400, "bad"), namedUpstream(t, "other")
		env = retrySim(t, routeScript("m"), nil, 0, bad.srv.URL, other.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "bad", string(body))
		assert.Len(t, env.exchange(t).Attempts, 1)
		other.none(t)
	})
	t.Run("no retry once response headers were forwarded", func(t *testing.T) {
		first := startUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "data: one\n\n")
			http.NewResponseController(w).Flush()
			// Break the connection mid-body.
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		})
		second := namedUpstream(t, "second")
		env := retrySim(t, routeScript("m"), nil, 0, first.srv.URL, second.srv.URL)
		req := post(t, env.url+"/v1/chat/completions", `{"stream":true}`)
		resp, err := http.DefaultClient.Do(req.WithContext(ctxTimeout(t)))
		if err == nil {
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		x := env.exchange(t)
		require.Len(t, x.Attempts, 1, "Envoy never retries after the response started")
		assert.Equal(t, 200, x.Attempts[0].Status)
		second.none(t)
		assert.Equal(t, uint64(0), env.sim.Stats().UpstreamRetries)
	})
	t.Run("exhausted: last retriable response is returned", func(t *testing.T) {
		first, second := statusUpstream(t, 429, "first"), statusUpstream(t, 503, "second")
		env := retrySim(t, routeScript("m"), nil, 0, first.srv.URL, second.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.Equal(t, "second", string(body))
		x := env.exchange(t)
		require.Len(t, x.Attempts, 2)
		assert.False(t, x.LocalReply)
		st := env.sim.Stats()
		assert.Equal(t, uint64(1), st.UpstreamRetries)
		assert.Equal(t, uint64(1), st.UpstreamRetriesExhausted)
	})
	t.Run("exhausted: connect failures give a 503 local reply", func(t *testing.T) {
		env := retrySim(t, routeScript("m"), nil, 0, closedURL(t), closedURL(t))
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.True(t, strings.HasPrefix(string(body), "upstream connect error or disconnect/reset before headers"), string(body))
		x := env.exchange(t)
		require.Len(t, x.Attempts, 2)
		assert.True(t, x.LocalReply)
		assert.Equal(t, "upstream_reset_before_response_started{connection_failure}", x.Details)
		assert.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent), "the router's 503 passes the response phases")
	})
	t.Run("per-try timeout moves to target 2", func(t *testing.T) {
		slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		})
		second := namedUpstream(t, "second")
		// 20ms, stretched 25x by the test clock.
		env := retrySim(t, routeScript("m"), nil, 20*time.Millisecond, slow.srv.URL, second.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "second", string(body))
		x := env.exchange(t)
		require.Len(t, x.Attempts, 2)
		assert.ErrorIs(t, x.Attempts[0].Err, ErrPerTryTimeout)
	})
	t.Run("exhausted: a per-try timeout on the last target is a 504 local reply with its details", func(t *testing.T) {
		slow := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		})
		env := retrySimWith(t, routeScript("m"), nil, 20*time.Millisecond, func(c *Config) {
			c.Filter.ResponseAttributes = []string{"response.code_details"}
		}, slow.srv.URL)
		resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
		assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
		assert.Equal(t, "upstream request timeout", string(body))
		x := env.exchange(t)
		assert.Equal(t, "upstream_per_try_timeout", x.Details)
		require.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent))
		assert.Equal(t, "upstream_per_try_timeout", x.Sent[2].GetAttributes()[attributeKey].GetFields()["response.code_details"].GetStringValue(),
			"the downstream filter learns why Envoy answered (context.cc ResponseWrapper CodeDetails)")
	})
}

// roleOf returns the x-tollgate-role of a fake-server stream.
func roleOf(st *scriptStream) string {
	m, _ := metadata.FromIncomingContext(st.stream.Context())
	if v := m.Get("x-tollgate-role"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// upstreamTestFilter is Tollgate's upstream mode with the role metadata.
func upstreamTestFilter() *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "tollgate_extproc"}},
			InitialMetadata: []*corev3.HeaderValue{{Key: "x-tollgate-role", Value: "upstream"}},
		},
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_NONE,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		RequestAttributes: []string{"xds.cluster_name", hostTargetAttr, "request.id"},
		MessageTimeout:    durationpb.New(200 * time.Millisecond),
	}
}

// hostTargetAttr names the target of an attempt from its host's metadata.
const hostTargetAttr = "xds.upstream_host_metadata.filter_metadata['test']['target']"

// roleScript runs downstream for downstream streams and upstream otherwise.
func roleScript(downstream, upstream script) script {
	return func(st *scriptStream) error {
		if roleOf(st) == "upstream" {
			return upstream(st)
		}
		return downstream(st)
	}
}

// upstreamRewriter is an upstream role: it rewrites the body to name the
// attempt's cluster, sets x-attempt (and x-first on target 0 only), and
// tags the response with x-served-by.
func upstreamRewriter(st *scriptStream) error {
	var cluster string
	for {
		req := st.recv()
		if req == nil {
			return nil
		}
		if a := req.GetAttributes()[attributeKey]; a != nil {
			cluster = a.GetFields()[hostTargetAttr].GetStringValue()
		}
		switch {
		case req.GetRequestBody() != nil:
			body := `{"model":"` + cluster + `"}`
			set := []*corev3.HeaderValueOption{setHeader("x-attempt", cluster), setHeader("content-length", strconv.Itoa(len(body)))}
			if strings.HasSuffix(cluster, "/0") {
				set = append(set, setHeader("x-first", "yes"))
			}
			if err := st.send(replyFor(req, &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set},
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}},
			})); err != nil {
				return err
			}
		case req.GetResponseHeaders() != nil:
			if err := st.send(replyFor(req, &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-served-by", cluster)}},
			})); err != nil {
				return err
			}
		default:
			if err := st.send(continueFor(req)); err != nil {
				return err
			}
		}
	}
}

func TestUpstreamFilterPerAttempt(t *testing.T) {
	first, second := statusUpstream(t, 429, "busy"), namedUpstream(t, "second")
	var downstreamRespHeaders []*extprocv3.ProcessingRequest
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			downstreamRespHeaders = append(downstreamRespHeaders, req)
		}
		return routeReply(req, "m")
	})
	env := retrySim(t, roleScript(down, upstreamRewriter), upstreamTestFilter(), 0, first.srv.URL, second.srv.URL)
	req := post(t, env.url+"/v1/chat/completions", `{"model":"alias-m"}`)
	req.Header.Set("X-Request-Id", "rid-7")
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "second", string(body))
	assert.Equal(t, "target/m/1", resp.Header.Get("x-served-by"), "upstream response mutations reach the client")

	r1, r2 := first.only(t), second.only(t)
	assert.Equal(t, `{"model":"target/m/0"}`, string(r1.body))
	assert.Equal(t, `{"model":"target/m/1"}`, string(r2.body), "body mutations apply to their attempt only: attempt 2 starts from the downstream body")
	assert.Equal(t, int64(len(`{"model":"target/m/1"}`)), r2.contentLength)
	assert.Equal(t, "target/m/0", r1.header.Get("x-attempt"))
	assert.Equal(t, "target/m/1", r2.header.Get("x-attempt"))
	assert.Equal(t, "yes", r2.header.Get("x-first"), "Envoy's upstream filters mutate the router's header map, so attempt 1's header stays")

	x := env.exchange(t)
	require.Len(t, x.Attempts, 2)
	for i, a := range x.Attempts {
		assert.True(t, a.StreamOpened)
		require.Equal(t, []string{"request_headers", "request_body", "response_headers"}, kinds(a.Sent), "attempt %d", i)
		attrs := a.Sent[0].GetAttributes()[attributeKey].GetFields()
		assert.Equal(t, "alias/m", attrs["xds.cluster_name"].GetStringValue(), "the route's cluster on every attempt (upstream_request.cc)")
		assert.Equal(t, a.Cluster, attrs[hostTargetAttr].GetStringValue(), "the attempt's host names its target")
		assert.Equal(t, "rid-7", attrs["request.id"].GetStringValue())
		assert.Equal(t, `{"model":"alias-m"}`, string(a.Sent[1].GetRequestBody().GetBody()), "each attempt's stream sees the downstream body")
	}
	assert.Equal(t, []string{"429"}, headerValues(x.Attempts[0].Sent[2].GetResponseHeaders().GetHeaders(), ":status"), "the upstream filter sees the retried response too")

	require.Len(t, downstreamRespHeaders, 1)
	assert.Equal(t, []string{"target/m/1"}, headerValues(downstreamRespHeaders[0].GetResponseHeaders().GetHeaders(), "x-served-by"),
		"upstream filters run first on the response path")

	env.ext.mu.Lock()
	roles := []string{}
	for _, m := range env.ext.md {
		roles = append(roles, m.Get("x-tollgate-role")...)
	}
	env.ext.mu.Unlock()
	assert.ElementsMatch(t, []string{"downstream", "upstream", "upstream"}, roles, "one downstream stream, and a new upstream stream per attempt with the upstream filter's initial metadata")
	st := env.sim.Stats()
	assert.Equal(t, uint64(2), st.UpstreamFilter.StreamsStarted)
	assert.Equal(t, uint64(1), st.StreamsStarted)
}

// TestUpstreamFilterForwardsRequestMetadata: the upstream filter reads the
// request's dynamic metadata (its stream info is the downstream one) and
// sends the namespaces in forwarding_namespaces as metadata_context on every
// message; a filter without forwarding namespaces sends none of it.
func TestUpstreamFilterForwardsRequestMetadata(t *testing.T) {
	for _, tc := range []struct {
		name    string
		forward []string
		want    string
	}{
		{"forwarding tollgate", []string{"tollgate", "absent"}, "m"},
		{"no forwarding namespaces", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := namedUpstream(t, "served")
			down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
			f := upstreamTestFilter()
			if tc.forward != nil {
				f.MetadataOptions = &extprocfilterv3.MetadataOptions{
					ForwardingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: tc.forward},
				}
			}
			env := retrySim(t, roleScript(down, replyScript(continueFor)), f, 0, up.srv.URL)
			resp, _ := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
			require.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			require.Len(t, x.Attempts, 1)
			require.Equal(t, []string{"request_headers", "request_body", "response_headers"}, kinds(x.Attempts[0].Sent))
			for _, m := range x.Attempts[0].Sent {
				fm := m.GetMetadataContext().GetFilterMetadata()
				assert.Equal(t, tc.want, fm["tollgate"].GetFields()["route"].GetStringValue())
				assert.NotContains(t, fm, "absent", "a namespace the request lacks is left out")
			}
		})
	}
}

// routeReply admits to alias on the request body, CONTINUE otherwise.
func routeReply(req *extprocv3.ProcessingRequest, alias string) *extprocv3.ProcessingResponse {
	if req.GetRequestBody() == nil {
		return continueFor(req)
	}
	resp := replyFor(req, &extprocv3.CommonResponse{
		HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-tollgate-route", alias)}},
		ClearRouteCache: true,
	})
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		"tollgate": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"route": structpb.NewStringValue(alias)}}),
	}}
	return resp
}

// upstreamDenyFirst answers the body of target 0's attempt with an
// immediate_response.
func upstreamDenyFirst(st *scriptStream) error {
	var cluster string
	for {
		req := st.recv()
		if req == nil {
			return nil
		}
		if req.GetRequestBody() != nil && strings.HasSuffix(targetOf(req, &cluster), "/0") {
			if err := st.send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
				ImmediateResponse: &extprocv3.ImmediateResponse{Body: []byte("denied"), Details: "x"},
			}}); err != nil {
				return err
			}
			continue
		}
		targetOf(req, &cluster)
		if err := st.send(continueFor(req)); err != nil {
			return err
		}
	}
}

// TestUpstreamFilterImmediateResponse: since Envoy 1.36 (envoyproxy/envoy
// PR #41231) an upstream filter's local reply ends the attempt at once and
// reaches the client; it is not retried.
func TestUpstreamFilterImmediateResponse(t *testing.T) {
	first, second := namedUpstream(t, "first"), namedUpstream(t, "second")
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	env := retrySim(t, roleScript(down, upstreamDenyFirst), upstreamTestFilter(), 20*time.Millisecond, first.srv.URL, second.srv.URL)
	resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "immediate_response status defaults to 200")
	assert.Equal(t, "denied", string(body))
	first.none(t)
	second.none(t)
	x := env.exchange(t)
	require.Len(t, x.Attempts, 1, "never retried")
	assert.Equal(t, uint64(1), env.sim.Stats().UpstreamFilter.LocalReplies)
	assert.Equal(t, uint64(0), env.sim.Stats().UpstreamFilter.SendImmediateRespUpstreamIgnored)
}

// TestUpstreamFilterImmediateResponseIgnoredLegacy: before 1.36 the
// upstream filter's local reply is dropped and the attempt stalls until its
// per_try_timeout, then the router retries.
func TestUpstreamFilterImmediateResponseIgnoredLegacy(t *testing.T) {
	first, second := namedUpstream(t, "first"), namedUpstream(t, "second")
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	// The ignored local reply leaves the attempt paused until per_try_timeout
	// (20ms x 25 on the test clock).
	env := retrySimWith(t, roleScript(down, upstreamDenyFirst), upstreamTestFilter(), 20*time.Millisecond,
		func(c *Config) { c.Legacy = true }, first.srv.URL, second.srv.URL)
	resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "second", string(body))
	first.none(t)
	x := env.exchange(t)
	require.Len(t, x.Attempts, 2)
	assert.True(t, errors.Is(x.Attempts[0].Err, ErrUpstreamFilterStalled), "%v", x.Attempts[0].Err)
	assert.Equal(t, uint64(1), env.sim.Stats().UpstreamFilter.SendImmediateRespUpstreamIgnored)
	assert.Equal(t, uint64(0), env.sim.Stats().LocalReplies)
}

func TestUpstreamFilterFailureModeAllow(t *testing.T) {
	first := namedUpstream(t, "first")
	up := func(st *scriptStream) error {
		_ = st.recv()
		return status.Error(codes.Unavailable, "down")
	}
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	f := upstreamTestFilter()
	f.FailureModeAllow = true
	env := retrySim(t, roleScript(down, up), f, 0, first.srv.URL)
	resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{"model":"x"}`))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "first", string(body))
	assert.Equal(t, `{"model":"x"}`, string(first.only(t).body), "continued unmodified")
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.UpstreamFilter.StreamsFailed)
	assert.Equal(t, uint64(1), st.UpstreamFilter.FailureModeAllowed)
}

func TestDefaultFilterIsShipped(t *testing.T) {
	f := DefaultFilter()
	assert.Equal(t, []string{"tollgate"}, f.GetMetadataOptions().GetReceivingNamespaces().GetUntyped())
	assert.Equal(t, extprocfilterv3.ProcessingMode_SEND, f.GetProcessingMode().GetRequestHeaderMode(), "the route is decided from the body")
	assert.True(t, proto.Equal(f, DefaultFilter()))
}

func TestNewRejectsBadRouting(t *testing.T) {
	base := Config{ExtProcAddr: "127.0.0.1:1"}
	for name, mutate := range map[string]func(*Config){
		"routes and metadata routes": func(c *Config) {
			c.Routes = map[string]string{"a": "http://x"}
			c.MetadataRoutes = &MetadataRouting{Namespace: "n", Key: "k"}
		},
		"no namespace": func(c *Config) { c.MetadataRoutes = &MetadataRouting{Key: "k"} },
		"no targets": func(c *Config) {
			c.MetadataRoutes = &MetadataRouting{Namespace: "n", Key: "k", Routes: map[string]Route{"a": {}}}
		},
		"bad retry_on": func(c *Config) {
			c.MetadataRoutes = &MetadataRouting{Namespace: "n", Key: "k", Routes: map[string]Route{"a": {
				Targets: []Target{{ClusterName: "c", URL: "http://x"}}, Retry: RetryPolicy{RetryOn: "5xx,bogus"},
			}}}
		},
		"target without cluster": func(c *Config) {
			c.MetadataRoutes = &MetadataRouting{Namespace: "n", Key: "k", Routes: map[string]Route{"a": oneTarget("", "http://x")}}
		},
		"streamed upstream filter": func(c *Config) {
			c.Upstream = "http://x"
			f := upstreamTestFilter()
			f.ProcessingMode.RequestBodyMode = extprocfilterv3.ProcessingMode_STREAMED
			c.UpstreamFilter = f
		},
	} {
		cfg := base
		mutate(&cfg)
		_, err := New(cfg)
		assert.Error(t, err, name)
	}
}

func upstreamFailFirst(st *scriptStream) error {
	req := st.recv()
	if req == nil {
		return nil
	}
	var cluster string
	if strings.HasSuffix(targetOf(req, &cluster), "/0") {
		return status.Error(codes.Internal, "boom")
	}
	if err := st.send(replyFor(req, &extprocv3.CommonResponse{
		HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-up", "1")}},
		ClearRouteCache: true,
	})); err != nil {
		return err
	}
	return echoScript(st)
}

// TestUpstreamFilterErrorIsFinal: an upstream filter's gRPC error becomes
// its 500 local reply, which Envoy >= 1.36 sends to the client.
func TestUpstreamFilterErrorIsFinal(t *testing.T) {
	first, second := namedUpstream(t, "first"), namedUpstream(t, "second")
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	env := retrySim(t, roleScript(down, upstreamFailFirst), upstreamTestFilter(), 20*time.Millisecond, first.srv.URL, second.srv.URL)
	resp, _ := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	first.none(t)
	second.none(t)
	x := env.exchange(t)
	require.Len(t, x.Attempts, 1)
	assert.Equal(t, "ext_proc_error_gRPC_error_13", x.Details)
	assert.Equal(t, uint64(1), env.sim.Stats().UpstreamFilter.StreamsFailed)
}

func TestUpstreamFilterErrorStallsUntilPerTryTimeoutLegacy(t *testing.T) {
	first, second := namedUpstream(t, "first"), namedUpstream(t, "second")
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	env := retrySimWith(t, roleScript(down, upstreamFailFirst), upstreamTestFilter(), 20*time.Millisecond,
		func(c *Config) { c.Legacy = true }, first.srv.URL, second.srv.URL)
	resp, body := do(t, post(t, env.url+"/v1/chat/completions", `{}`))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "second", string(body))
	first.none(t)
	assert.Equal(t, "1", second.only(t).header.Get("x-up"))
	x := env.exchange(t)
	require.Len(t, x.Attempts, 2)
	assert.True(t, errors.Is(x.Attempts[0].Err, ErrUpstreamFilterStalled), "%v", x.Attempts[0].Err)
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.UpstreamFilter.StreamsFailed)
	assert.Equal(t, uint64(1), st.UpstreamFilter.SendImmediateRespUpstreamIgnored, "the 500 error reply is dropped upstream")
	assert.Equal(t, uint64(1), st.UpstreamFilter.ClearRouteCacheUpstreamIgnored)
	assert.Equal(t, uint64(0), st.ClearRouteCacheIgnored)
}

// TestUpstreamFilterStaleContentLength reproduces a hazard of the shared
// header map: attempt 1's upstream filter rewrites the body and sets
// content-length, attempt 2's leaves the body alone, so attempt 2 would
// carry attempt 1's length.
func TestUpstreamFilterStaleContentLength(t *testing.T) {
	first, second := statusUpstream(t, 429, "busy"), namedUpstream(t, "second")
	up := func(st *scriptStream) error {
		var cluster string
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			if req.GetRequestBody() != nil && strings.HasSuffix(targetOf(req, &cluster), "/0") {
				body := `{"model":"a-much-longer-model-name"}`
				if err := st.send(replyFor(req, &extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", strconv.Itoa(len(body)))}},
					BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}},
				})); err != nil {
					return err
				}
				continue
			}
			targetOf(req, &cluster)
			if err := st.send(continueFor(req)); err != nil {
				return err
			}
		}
	}
	down := replyScript(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse { return routeReply(req, "m") })
	env := retrySim(t, roleScript(down, up), upstreamTestFilter(), 0, first.srv.URL, second.srv.URL)
	resp, _ := do(t, post(t, env.url+"/v1/chat/completions", `{"model":"m"}`))
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	first.only(t)
	second.none(t)
	x := env.exchange(t)
	require.Len(t, x.Attempts, 2)
	assert.True(t, errors.Is(x.Attempts[1].Err, ErrContentLengthMismatch), "%v", x.Attempts[1].Err)
	assert.Equal(t, uint64(1), env.sim.Stats().UpstreamContentLengthMismatch)
}

func TestParseRetryOn(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    retryOn
		wantErr bool
	}{
		{"", 0, false},
		{"5xx,reset,connect-failure,retriable-status-codes", retryOn5xx | retryOnReset | retryOnConnectFailure | retryOnRetriableStatusCodes, false},
		{" gateway-error , reset", retryOnGatewayError | retryOnReset, false},
		{"5xx,refused-stream", 0, true},
	} {
		got, err := parseRetryOn(tc.in)
		assert.Equal(t, tc.wantErr, err != nil, tc.in)
		if !tc.wantErr {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	rt := &route{retryOn: retryOnConnectFailure}
	assert.True(t, rt.retriableFailure(failConnect))
	assert.False(t, rt.retriableFailure(failReset), "connect-failure alone does not cover resets")
	assert.False(t, rt.retriableFailure(failPerTryTimeout))
	assert.False(t, rt.retriableStatus(503))
	rt = &route{retryOn: retryOnGatewayError}
	assert.True(t, rt.retriableStatus(504))
	assert.False(t, rt.retriableStatus(500))
}

func FuzzParseRetryOn(f *testing.F) {
	for _, s := range []string{"", "5xx", "5xx,reset,connect-failure,retriable-status-codes", ",,", "gateway-error, reset", "bogus"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		on, err := parseRetryOn(s)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v does not wrap ErrUnsupported", err)
			}
			return
		}
		if on >= retryOnRetriableStatusCodes<<1 {
			t.Fatalf("unknown bits %b", on)
		}
	})
}
