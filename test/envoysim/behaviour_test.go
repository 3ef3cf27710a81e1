package envoysim

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/structpb"
)

// tollgateScript behaves like Tollgate's downstream server: CONTINUE on the
// request body, STREAMED override for SSE responses, and for streamed
// chunks it upper-cases the first chunk at once, holds back the second and
// releases it with the last one.
func tollgateScript(st *scriptStream) error {
	var held []byte
	chunk := 0
	for {
		req := st.recv()
		if req == nil {
			return nil
		}
		resp := continueFor(req)
		switch {
		case req.GetResponseHeaders() != nil:
			if ct := headerValues(req.GetResponseHeaders().GetHeaders(), "content-type"); len(ct) == 1 && ct[0] == "text/event-stream" {
				resp.ModeOverride = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
			}
		case req.GetResponseBody() != nil:
			b := req.GetResponseBody()
			if len(resp.GetResponseBody().GetResponse().GetHeaderMutation().GetSetHeaders()) == 0 {
				resp.GetResponseBody().Response = &extprocv3.CommonResponse{}
			}
			var out []byte
			switch {
			case b.GetEndOfStream():
				out = append(held, b.GetBody()...)
			case chunk == 0:
				out = b.GetBody()
			default:
				held = append(held, b.GetBody()...)
				out = []byte{}
			}
			chunk++
			resp.GetResponseBody().Response.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(strings.ToUpper(string(out)))}}
		}
		if err := st.send(resp); err != nil {
			return err
		}
	}
}

func TestTollgateShippedMode_JSON(t *testing.T) {
	env := startSim(t, DefaultFilter(), tollgateScript, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"x"}`)
	}, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/v1/chat/completions?x=1", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("X-Request-Id", "rid-1")
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"ID":"X"}`, string(body), "the buffered body reply replaced the body (same length as content-length)")

	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent))
	first := x.Sent[0]
	require.NotNil(t, first.GetProtocolConfig(), "protocol_config in the first message")
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, first.GetProtocolConfig().GetRequestBodyMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, first.GetProtocolConfig().GetResponseBodyMode())
	for _, m := range x.Sent[1:] {
		assert.Nil(t, m.GetProtocolConfig(), "protocol_config only in the first message")
	}
	hm := first.GetRequestHeaders().GetHeaders()
	assert.Equal(t, []string{"Bearer k"}, headerValues(hm, "authorization"), "request headers SEND: the server sees them all")
	assert.Equal(t, []string{"/v1/chat/completions?x=1"}, headerValues(hm, ":path"))
	assert.Equal(t, []string{"rid-1"}, headerValues(hm, "x-request-id"))
	assert.Empty(t, first.GetAttributes(), "no request_attributes configured")
	rb := x.Sent[1]
	assert.Equal(t, `{"model":"m"}`, string(rb.GetRequestBody().GetBody()))
	assert.True(t, rb.GetRequestBody().GetEndOfStream())
	// response_attributes name the upstream host's metadata (this upstream
	// has none, so those evaluate to nothing) and the code details.
	assert.Equal(t, map[string]any{"response.code_details": "via_upstream"},
		x.Sent[2].GetAttributes()[attributeKey].AsMap())
	assert.Equal(t, []string{"200"}, headerValues(x.Sent[2].GetResponseHeaders().GetHeaders(), ":status"))
	assert.Equal(t, `{"id":"x"}`, string(x.Sent[3].GetResponseBody().GetBody()), "the server sees the upstream body")
	assert.True(t, x.Sent[3].GetResponseBody().GetEndOfStream())
}

// TestRequestHeaderSkipDropsBodyReplyHeaderMutations is the reason the
// shipped filter sends request headers: with request_header_mode SKIP and a
// BUFFERED body, Envoy's ext_proc returns Continue from decodeHeaders, so
// the router takes the headers (content-length removed) before the body
// reaches the server, and the body reply's header mutations are dropped
// (processor_state.cc processHeaderMutationIfAvailable: "Response had header
// mutations but headers aren't available").
func TestRequestHeaderSkipDropsBodyReplyHeaderMutations(t *testing.T) {
	filter := DefaultFilter()
	filter.ProcessingMode.RequestHeaderMode = extprocfilterv3.ProcessingMode_SKIP
	env := startSim(t, filter, func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			var cr *extprocv3.CommonResponse
			if req.GetRequestBody() != nil {
				cr = &extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{
						SetHeaders:    []*corev3.HeaderValueOption{setHeader("x-added", "1")},
						RemoveHeaders: []string{"authorization"},
					},
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"model":"rewritten"}`)}},
				}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
		}
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{}`)
	}, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer client-key")
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, "Bearer client-key", up.header.Get("Authorization"), "the removal in the body reply was dropped")
	assert.Empty(t, up.header.Get("X-Added"), "the set in the body reply was dropped")
	assert.Equal(t, `{"model":"rewritten"}`, string(up.body), "the body mutation applies")
	assert.Equal(t, int64(-1), up.contentLength, "content-length removed: chunked")
	assert.Equal(t, uint64(1), env.sim.Stats().HeaderMutationsDropped)
	assert.Equal(t, []string{"request_body", "response_headers", "response_body"}, kinds(env.exchange(t).Sent))
}

func TestTollgateShippedMode_SSEStreamedOverride(t *testing.T) {
	next := make(chan struct{})
	env := startSim(t, DefaultFilter(), tollgateScript, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
		http.NewResponseController(w).Flush()
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.url+"/v1/chat/completions", strings.NewReader(`{"stream":true}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, int64(-1), resp.ContentLength)
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "DATA: ONE\n", line, "the first chunk reaches the client before the upstream continues")
	close(next)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "\nDATA: TWO\n\nDATA: [DONE]\n\n", string(rest))

	x := env.exchange(t)
	k := kinds(x.Sent)
	require.GreaterOrEqual(t, len(k), 4)
	assert.Equal(t, []string{"request_headers", "request_body", "response_headers"}, k[:3])
	var joined []byte
	for i, m := range x.Sent[3:] {
		b := m.GetResponseBody()
		require.NotNil(t, b, "message %d", i+3)
		joined = append(joined, b.GetBody()...)
		assert.Equal(t, i == len(x.Sent)-4, b.GetEndOfStream(), "only the last chunk has end_of_stream")
	}
	assert.Equal(t, "data: one\n\ndata: two\n\ndata: [DONE]\n\n", string(joined))
	assert.Equal(t, "data: one\n\n", string(x.Sent[3].GetResponseBody().GetBody()), "one chunk per upstream flush")
}

func TestAttributes(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		},
		RequestAttributes: []string{
			"request.headers", "request.headers['x-multi']", "request.headers[\"x-absent\"]", "request.id", "request.host",
			"request.scheme", "source.address", "xds.cluster_name", "request.unknown", "response.code_details",
		},
		ResponseAttributes: []string{"response.code", "response.headers", "response.headers['x-up']", "request.path", "response.code_details"},
	}
	env := startSim(t, f, echoScript, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Up", "u")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "created")
	}, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/p", strings.NewReader("b"))
	require.NoError(t, err)
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusCreated, resp.StatusCode)

	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent))
	reqAttrs := x.Sent[0].GetAttributes()[attributeKey].GetFields()
	assert.Equal(t, "CelMap value", reqAttrs["request.headers"].GetStringValue())
	assert.Equal(t, "a,b", reqAttrs["request.headers['x-multi']"].GetStringValue(), "multiple values joined with a comma")
	assert.NotContains(t, reqAttrs, "request.headers[\"x-absent\"]")
	assert.NotContains(t, reqAttrs, "request.unknown")
	assert.NotContains(t, reqAttrs, "response.code_details", "no details before a response")
	assert.Len(t, reqAttrs["request.id"].GetStringValue(), 36, "generated UUID")
	assert.Equal(t, x.RequestID, reqAttrs["request.id"].GetStringValue())
	assert.Equal(t, "http", reqAttrs["request.scheme"].GetStringValue())
	assert.Equal(t, strings.TrimPrefix(env.url, "http://"), reqAttrs["request.host"].GetStringValue())
	host, _, err := net.SplitHostPort(reqAttrs["source.address"].GetStringValue())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, DefaultClusterName, reqAttrs["xds.cluster_name"].GetStringValue())
	assert.Empty(t, x.Sent[1].GetAttributes(), "attributes only in the first message of a direction")

	respAttrs := x.Sent[2].GetAttributes()[attributeKey].GetFields()
	assert.Equal(t, structpb.NewNumberValue(201).AsInterface(), respAttrs["response.code"].AsInterface(), "int64 becomes number_value")
	assert.Equal(t, "CelMap value", respAttrs["response.headers"].GetStringValue())
	assert.Equal(t, "u", respAttrs["response.headers['x-up']"].GetStringValue())
	assert.Equal(t, "/p", respAttrs["request.path"].GetStringValue())
	assert.Equal(t, "via_upstream", respAttrs["response.code_details"].GetStringValue())
	assert.Empty(t, x.Sent[3].GetAttributes())
}

func TestGrpcInitialMetadata(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{GrpcService: &corev3.GrpcService{
		InitialMetadata: []*corev3.HeaderValue{{Key: "x-tollgate-role", Value: "downstream"}},
	}}
	env := startSim(t, f, echoScript, nil, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	env.exchange(t)
	env.ext.mu.Lock()
	defer env.ext.mu.Unlock()
	require.Len(t, env.ext.md, 1, "one stream per request")
	assert.Equal(t, []string{"downstream"}, env.ext.md[0].Get("x-tollgate-role"))
}

func TestSpuriousMessages(t *testing.T) {
	wrongType := func(st *scriptStream) error {
		req := st.recv()
		_ = req
		if err := st.send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}); err != nil {
			return err
		}
		return echoScript(st)
	}
	immediate := func(st *scriptStream) error {
		st.recv()
		if err := st.send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
		}}}); err != nil {
			return err
		}
		return echoScript(st)
	}
	for _, tc := range []struct {
		name    string
		sc      script
		fma     bool
		legacy  bool
		disable bool
		want    int
	}{
		{"modern fails closed", wrongType, false, false, false, http.StatusInternalServerError},
		{"modern with failure_mode_allow continues", wrongType, true, false, false, http.StatusOK},
		{"legacy continues", wrongType, false, true, false, http.StatusOK},
		{"immediate response disabled is spurious", immediate, false, false, true, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &extprocfilterv3.ExternalProcessor{FailureModeAllow: tc.fma, DisableImmediateResponse: tc.disable}
			env := startSim(t, f, tc.sc, nil, func(c *Config) { c.Legacy = tc.legacy })
			resp, _ := get(t, env.url+"/")
			assert.Equal(t, tc.want, resp.StatusCode)
			x := env.exchange(t)
			assert.Equal(t, []string{"request_headers"}, kinds(x.Sent), "the side stream is closed after a spurious message")
			assert.Equal(t, tc.want == http.StatusOK, x.UpstreamCalled)
			assert.Equal(t, uint64(1), env.sim.Stats().SpuriousMsgsReceived)
		})
	}
}

func TestModeOverride(t *testing.T) {
	overrideOn := func(kind string, mo *extprocfilterv3.ProcessingMode) script {
		return func(st *scriptStream) error {
			for {
				req := st.recv()
				if req == nil {
					return nil
				}
				resp := continueFor(req)
				if kinds([]*extprocv3.ProcessingRequest{req})[0] == kind {
					resp.ModeOverride = mo
				}
				if err := st.send(resp); err != nil {
					return err
				}
			}
		}
	}
	bufferedReq := &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}
	skipResp := &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}
	for _, tc := range []struct {
		name  string
		allow bool
		pm    *extprocfilterv3.ProcessingMode
		sc    script
		want  []string
	}{
		{"not allowed", false, nil, overrideOn("request_headers", bufferedReq), []string{"request_headers", "response_headers"}},
		{"request headers reply enables buffered body", true, nil, overrideOn("request_headers", bufferedReq), []string{"request_headers", "request_body", "response_headers"}},
		{"applies to both directions", true,
			&extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED},
			overrideOn("request_headers", bufferedReq), []string{"request_headers", "request_body", "response_headers"}},
		{"skip response headers", true, nil, overrideOn("request_headers", skipResp), []string{"request_headers"}},
		{"ignored in a body reply", true, &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED},
			overrideOn("request_body", skipResp), []string{"request_headers", "request_body", "response_headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &extprocfilterv3.ExternalProcessor{ProcessingMode: tc.pm, AllowModeOverride: tc.allow}
			env := startSim(t, f, tc.sc, nil, nil)
			req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("body"))
			require.NoError(t, err)
			resp, body := do(t, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "ok", string(body))
			assert.Equal(t, tc.want, kinds(env.exchange(t).Sent))
		})
	}
}

func TestBufferLimit413(t *testing.T) {
	env := startSim(t, DefaultFilter(), echoScript, nil, func(c *Config) { c.BufferLimit = 16 })
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("a", 17)))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "Payload Too Large", string(body))
	env.up.none(t)
	x := env.exchange(t)
	assert.Equal(t, []string{"request_headers"}, kinds(x.Sent), "the server never sees the body")

	req, err = http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("a", 16)))
	require.NoError(t, err)
	resp, _ = do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "exactly at the limit is fine")
}

func TestUpstreamConnectionRefused503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	env := startSim(t, nil, echoScript, nil, func(c *Config) { c.Upstream = dead })
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, string(body), "upstream connect error")
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent), "the router's local reply passes the encoder filters")
	assert.Equal(t, []string{"503"}, headerValues(x.Sent[1].GetResponseHeaders().GetHeaders(), ":status"))
}

func TestClientDisconnectCancelsUpstreamAndStream(t *testing.T) {
	upstreamGone := make(chan struct{})
	f := &extprocfilterv3.ExternalProcessor{ProcessingMode: &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}}
	streamErr := make(chan error, 1)
	sc := func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				// The stream ended from the client side: Envoy half-closes
				// and resets, so the stream context must end.
				select {
				case <-st.stream.Context().Done():
				case <-ctxTimeout(t).Done():
				}
				streamErr <- st.stream.Context().Err()
				return nil
			}
			if err := st.send(continueFor(req)); err != nil {
				return err
			}
		}
	}
	env := startSim(t, f, sc, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
		close(upstreamGone)
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.url+"/", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: first\n", line)
	cancel()
	resp.Body.Close()

	select {
	case <-upstreamGone:
	case <-ctxTimeout(t).Done():
		t.Fatal("upstream request not cancelled")
	}
	select {
	case err := <-streamErr:
		assert.ErrorIs(t, err, context.Canceled, "the server sees its stream context cancelled")
	case <-ctxTimeout(t).Done():
		t.Fatal("ext_proc stream not reset")
	}
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestMutationErrorsAre500(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *extprocv3.HeaderMutation
	}{
		{"value and raw_value", &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-a", Value: "v", RawValue: []byte("v")}}}}},
		{"invalid name", &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("bad name", "v")}}},
		{"invalid value", &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "a\nb")}}},
		{"invalid remove", &extprocv3.HeaderMutation{RemoveHeaders: []string{"bad\x00"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}
			env := startSim(t, f, func(st *scriptStream) error {
				req := st.recv()
				if err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: tc.m})); err != nil {
					return err
				}
				return echoScript(st)
			}, nil, nil)
			resp, _ := get(t, env.url+"/")
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "regardless of failure_mode_allow")
			env.up.none(t)
		})
	}
}

func TestStreamedBodyReplyHeaderMutationIgnored(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{ProcessingMode: &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_STREAMED}}
	env := startSim(t, f, func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			cr := &extprocv3.CommonResponse{}
			if req.GetRequestBody() != nil {
				cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-late", "1")}}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
		}
	}, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("abc"))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, "abc", string(up.body))
	assert.Empty(t, up.header.Get("X-Late"))
}

func TestClearRouteCacheOnResponseIgnored(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			cr := &extprocv3.CommonResponse{}
			if req.GetResponseHeaders() != nil {
				cr.ClearRouteCache = true
				cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-a", "1")}}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
		}
	}, nil, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-A"))
	assert.Equal(t, uint64(1), env.sim.Stats().ClearRouteCacheIgnored)
}

func TestOneStreamPerRequest(t *testing.T) {
	env := startSim(t, nil, echoScript, nil, nil)
	for i := 0; i < 3; i++ {
		resp, _ := get(t, env.url+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		env.exchange(t)
	}
	st := env.sim.Stats()
	assert.Equal(t, uint64(3), st.StreamsStarted)
	assert.Equal(t, uint64(6), st.StreamMsgsSent)
	assert.Equal(t, uint64(6), st.StreamMsgsReceived)
}
