package envoysim

import (
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	grpcCodes "google.golang.org/grpc/codes"
	grpcStatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Envoy tests reproduced against the emulator, beyond the 25 cases of
// conformance_test.go. Each test's doc comment cites the Envoy test
// (test/extensions/filters/http/ext_proc/<file>: fixture, name; Envoy main,
// 1.38.0-dev) and the test asserts what that test asserts. Cases the
// emulator does not model yet are written out and skipped with
// "needs: ..."; CONFORMANCE.md lists every case and its status.

// Mode shorthands.
const (
	pmSkip     = extprocfilterv3.ProcessingMode_SKIP
	pmSend     = extprocfilterv3.ProcessingMode_SEND
	pmNone     = extprocfilterv3.ProcessingMode_NONE
	pmBuffered = extprocfilterv3.ProcessingMode_BUFFERED
	pmStreamed = extprocfilterv3.ProcessingMode_STREAMED
)

// replyEach answers every message with f(req), or CONTINUE when f returns nil.
func replyEach(f func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse) script {
	return func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			resp := f(req)
			if resp == nil {
				resp = continueFor(req)
			}
			if err := st.send(resp); err != nil {
				return err
			}
		}
	}
}

// immediateReply builds an immediate_response.
func immediateReply(code typev3.StatusCode, body, details string, set ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	ir := &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: code}, Body: []byte(body), Details: details}
	if len(set) > 0 {
		ir.Headers = &extprocv3.HeaderMutation{SetHeaders: set}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}}
}

// setReply is a reply to req carrying set_headers.
func setReply(req *extprocv3.ProcessingRequest, set ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	return replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set}})
}

// bodyReply is a reply to req replacing the body.
func bodyReply(req *extprocv3.ProcessingRequest, body string) *extprocv3.ProcessingResponse {
	return replyFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}}})
}

// kindOf is the oneof case name of one message.
func kindOf(req *extprocv3.ProcessingRequest) string {
	return kinds([]*extprocv3.ProcessingRequest{req})[0]
}

// protoHeaderSet renders a proto header map as sorted "key: value" lines,
// leaving out the headers Envoy's test utility ignores
// (ExtProcTestUtility::ignoredHeaders: x-request-id,
// x-envoy-upstream-service-time, x-envoy-expected-rq-timeout-ms).
func protoHeaderSet(m *corev3.HeaderMap) []string {
	var out []string
	for _, h := range m.GetHeaders() {
		switch h.GetKey() {
		case "x-request-id", "x-envoy-upstream-service-time", "x-envoy-expected-rq-timeout-ms":
			continue
		}
		out = append(out, h.GetKey()+": "+string(h.GetRawValue()))
	}
	sort.Strings(out)
	return out
}

// envoyDefaultRequest is the request of Envoy's integration tests
// (HttpTestUtility::addDefaultHeaders: GET / with host "host"), sent without
// the headers Go's client adds on its own (User-Agent, Accept-Encoding), so
// the server sees exactly what Envoy's test server sees.
func envoyDefaultRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	req.Host = "host"
	req.Header["User-Agent"] = []string{""}
	return req
}

// doPlain sends req with compression negotiation off (no Accept-Encoding).
func doPlain(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// bareUpstream answers like the fake upstream of Envoy's integration tests
// (handleUpstreamRequest): status code, then n bytes, and no other header
// than content-length when withLength is set (chunked otherwise).
func bareUpstream(code, n int, withLength bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Date"] = nil
		h["Content-Type"] = nil
		if withLength {
			h.Set("Content-Length", strconv.Itoa(n))
		}
		w.WriteHeader(code)
		if !withLength {
			_ = http.NewResponseController(w).Flush()
		}
		_, _ = io.WriteString(w, strings.Repeat("a", n))
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ProcessingModeResponseOnly).
// With request headers SKIP the first (and only) message is response_headers;
// its header mutation reaches the client.
func TestEnvoy_ProcessingModeResponseOnly(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			return setReply(req, setHeader("x-response-processed", "1"))
		}
		return nil
	}), bareUpstream(200, 100, true), nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-Response-Processed"))
	x := env.exchange(t)
	require.Equal(t, []string{"response_headers"}, kinds(x.Sent))
	assert.NotNil(t, x.Sent[0].GetProtocolConfig(), "the first message carries protocol_config")
	assert.Equal(t, uint64(1), env.sim.Stats().StreamsStarted)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, OnlyRequestHeadersServerHalfClosesFirst).
// The server replies to request_headers with a mutation and then ends the
// stream with OK: the request continues with the mutation and its 4-byte body.
func TestEnvoy_OnlyRequestHeadersServerHalfClosesFirst(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip}), func(st *scriptStream) error {
		req := st.recv()
		return st.send(setReply(req, setHeader("x-new-header", "new")))
	}, bareUpstream(200, 100, true), nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("body"))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Len(t, up.body, 4)
	assert.Equal(t, "new", up.header.Get("X-New-Header"))
	assert.Equal(t, []string{"request_headers"}, kinds(env.exchange(t).Sent))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ServerHalfClosesAfterHeaders).
// Request body STREAMED: the server answers request_headers
// (end_of_stream=false) and closes the stream with OK; the body still reaches
// the upstream unprocessed. Envoy counts server_half_closed; the emulator's
// StreamsClosed counts the same event (server ended the stream with OK).
func TestEnvoy_ServerHalfClosesAfterHeaders(t *testing.T) {
	headersEOS := make(chan bool, 1)
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestHeaderMode: pmSend, RequestBodyMode: pmStreamed, RequestTrailerMode: pmSkip, ResponseHeaderMode: pmSkip,
	}), func(st *scriptStream) error {
		req := st.recv()
		headersEOS <- req.GetRequestHeaders().GetEndOfStream()
		return st.send(continueFor(req))
	}, bareUpstream(200, 100, true), nil)
	pr, pw := io.Pipe()
	go func() {
		<-headersEOS
		_, _ = pw.Write([]byte("0123456789"))
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, env.url+"/", pr)
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "0123456789", string(env.up.only(t).body))
	env.exchange(t)
	assert.Equal(t, uint64(1), env.sim.Stats().StreamsClosed)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersNonUtf8WithValueInString).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersNonUtf8WithValueInBytes).
// A non-UTF-8 header value reaches the server byte for byte in raw_value
// (every header has a non-empty raw_value); a non-UTF-8 raw_value set by the
// server reaches the upstream byte for byte; the response_headers message
// holds exactly :status.
func TestEnvoy_GetAndSetHeadersNonUtf8(t *testing.T) {
	const bad = "valid_prefix\xc3(valid_suffix"
	for _, tc := range []struct {
		name     string
		respSkip bool
		setNew   bool
	}{
		{"GetAndSetHeadersNonUtf8WithValueInString", false, false},
		{"GetAndSetHeadersNonUtf8WithValueInBytes", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm := &extprocfilterv3.ProcessingMode{}
			if tc.respSkip {
				pm.ResponseHeaderMode = pmSkip
			}
			env := startSim(t, modeFilter(pm), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestHeaders() == nil {
					return nil
				}
				hm := &extprocv3.HeaderMutation{RemoveHeaders: []string{"x-bad-utf8"}}
				if tc.setNew {
					hm.SetHeaders = []*corev3.HeaderValueOption{setHeader("x-new-utf8", bad, false)}
				}
				return replyFor(req, &extprocv3.CommonResponse{HeaderMutation: hm})
			}), bareUpstream(200, 100, false), nil)
			req := envoyDefaultRequest(t, http.MethodGet, env.url+"/", nil)
			req.Header.Set("X-Bad-Utf8", bad)
			resp, _ := doPlain(t, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			up := env.up.only(t)
			assert.Empty(t, up.header.Values("X-Bad-Utf8"))
			if tc.setNew {
				assert.Equal(t, bad, up.header.Get("X-New-Utf8"), "raw bytes round trip")
			}
			x := env.exchange(t)
			rh := x.Sent[0].GetRequestHeaders().GetHeaders()
			for _, h := range rh.GetHeaders() {
				assert.NotEmpty(t, h.GetRawValue(), h.GetKey())
			}
			assert.Equal(t, []string{":authority: host", ":method: GET", ":path: /", ":scheme: http", "x-bad-utf8: " + bad, "x-forwarded-proto: http"}, protoHeaderSet(rh))
			if !tc.respSkip {
				require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent))
				assert.Equal(t, []string{":status: 200"}, protoHeaderSet(x.Sent[1].GetResponseHeaders().GetHeaders()))
			} else {
				assert.Equal(t, []string{"request_headers"}, kinds(x.Sent))
			}
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersOnResponse).
// The response headers reply sets x-response-processed and :status 201.
// (The Envoy test also checks a header written by its on_processing_response
// test extension, which the emulator does not have.)
func TestEnvoy_GetAndSetHeadersOnResponse(t *testing.T) {
	env := startSim(t, nil, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			return setReply(req, setHeader("x-response-processed", "1", false), setHeader(":status", "201", false))
		}
		return nil
	}), bareUpstream(200, 100, true), nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-Response-Processed"))
	assert.Len(t, body, 100)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetBodyOnResponse).
// Response headers SKIP, response body BUFFERED: one response_body message
// (end_of_stream=true) and its replacement reaches the client.
func TestEnvoy_GetAndSetBodyOnResponse(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip, ResponseBodyMode: pmBuffered}),
		replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			if req.GetResponseBody() != nil {
				return bodyReply(req, "Hello, World!")
			}
			return nil
		}), bareUpstream(200, 100, false), nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello, World!", string(body))
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "response_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[1].GetResponseBody().GetEndOfStream())
	assert.Len(t, x.Sent[1].GetResponseBody().GetBody(), 100)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetBodyAndHeadersOnBigResponse).
// A 4000-byte response written in 1000-byte chunks is one response_body
// message (end_of_stream=true); the header set on the body reply reaches the
// client.
func TestEnvoy_GetAndSetBodyAndHeadersOnBigResponse(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}),
		replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			if req.GetResponseBody() != nil {
				return setReply(req, setHeader("x-testing-response-header", "Yes", false))
			}
			return nil
		}), func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < 4; i++ {
				_, _ = io.WriteString(w, strings.Repeat(strconv.Itoa(i), 1000))
				_ = http.NewResponseController(w).Flush()
			}
		}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Yes", resp.Header.Get("X-Testing-Response-Header"))
	assert.Len(t, body, 4000)
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "response_headers", "response_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[2].GetResponseBody().GetEndOfStream())
	assert.Len(t, x.Sent[2].GetResponseBody().GetBody(), 4000)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetBodyOnBoth).
// Both bodies BUFFERED: content-length 13 set on the request headers reply,
// request body replaced by "Hello, World!"; content-length removed on the
// response headers reply, response body replaced by "123".
func TestEnvoy_GetAndSetBodyOnBoth(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: pmBuffered, ResponseBodyMode: pmBuffered}),
		replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			switch {
			case req.GetRequestHeaders() != nil:
				return setReply(req, setHeader("content-length", "13", false))
			case req.GetRequestBody() != nil:
				return bodyReply(req, "Hello, World!")
			case req.GetResponseHeaders() != nil:
				return replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}})
			case req.GetResponseBody() != nil:
				return bodyReply(req, "123")
			}
			return nil
		}), bareUpstream(200, 100, true), nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Replace this!"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "123", string(body))
	up := env.up.only(t)
	assert.Equal(t, "Hello, World!", string(up.body))
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "request_body", "response_headers", "response_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[1].GetRequestBody().GetEndOfStream())
	assert.True(t, x.Sent[3].GetResponseBody().GetEndOfStream())
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnResponse).
// An immediate_response to response_headers replaces the upstream response.
func TestEnvoy_GetAndRespondImmediatelyOnResponse(t *testing.T) {
	env := startSim(t, nil, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			return immediateReply(typev3.StatusCode_Unauthorized, `{"reason": "Not authorized"}`, "Failed because you are not authorized")
		}
		return nil
	}), bareUpstream(200, 100, true), nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, `{"reason": "Not authorized"}`, string(body))
	env.up.only(t)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnRequestBody).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnResponseBody).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnChunkedResponseBody).
// An immediate_response to a BUFFERED body message is what the client gets.
func TestEnvoy_GetAndRespondImmediatelyOnBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pm       *extprocfilterv3.ProcessingMode
		post     bool
		on       string
		upstream http.HandlerFunc
		upCalled bool
	}{
		{"GetAndRespondImmediatelyOnRequestBody", &extprocfilterv3.ProcessingMode{RequestBodyMode: pmBuffered}, true, "request_body", nil, false},
		{"GetAndRespondImmediatelyOnResponseBody", &extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}, false, "response_body", bareUpstream(200, 100, true), true},
		{"GetAndRespondImmediatelyOnChunkedResponseBody", &extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}, false, "response_body", func(w http.ResponseWriter, _ *http.Request) {
			for i := 0; i < 4; i++ {
				_, _ = io.WriteString(w, strings.Repeat("x", 100))
				_ = http.NewResponseController(w).Flush()
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(tc.pm), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if kindOf(req) == tc.on {
					return immediateReply(typev3.StatusCode_Unauthorized, `{"reason": "Not authorized"}`, "Failed because you are not authorized")
				}
				return nil
			}), tc.upstream, nil)
			var resp *http.Response
			var body []byte
			if tc.post {
				req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Replace this!"))
				require.NoError(t, err)
				resp, body = do(t, req)
			} else {
				resp, body = get(t, env.url+"/")
			}
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, `{"reason": "Not authorized"}`, string(body))
			if tc.upCalled {
				env.up.only(t)
			} else {
				env.up.none(t)
			}
			assert.True(t, env.exchange(t).LocalReply)
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnStreamedResponseBody).
// (Despite its name the Envoy test uses a BUFFERED response body.) A header
// set on the response headers reply is not sent to the client when the body
// reply is an immediate_response.
func TestEnvoy_GetAndRespondImmediatelyOnStreamedResponseBody(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch {
		case req.GetResponseHeaders() != nil:
			return setReply(req, setHeader("foo", "bar", false))
		case req.GetResponseBody() != nil:
			return immediateReply(typev3.StatusCode_BadRequest, `{"reason": "Response too evil"}`, "Failed because I don't like this payload")
		}
		return nil
	}), bareUpstream(200, 100, true), nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, `{"reason": "Response too evil"}`, string(body))
	assert.Empty(t, resp.Header.Values("Foo"))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyOnStreamedRequestBody).
// Request body STREAMED: an immediate_response to a body chunk is seen by
// the client; the header set on the request headers reply is not in the
// response.
func TestEnvoy_GetAndRespondImmediatelyOnStreamedRequestBody(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: pmStreamed}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch {
		case req.GetRequestHeaders() != nil:
			return setReply(req, setHeader("foo", "bar", false))
		case req.GetRequestBody() != nil:
			return immediateReply(typev3.StatusCode_BadRequest, `{"reason": "Request too evil"}`, "Failed because I don't like this payload")
		}
		return nil
	}), nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Evil content!"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, `{"reason": "Request too evil"}`, string(body))
	assert.Empty(t, resp.Header.Values("Foo"))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyWithBadStatus).
// An immediate_response with status 100 is sent as 200, with its body.
func TestEnvoy_GetAndRespondImmediatelyWithBadStatus(t *testing.T) {
	env := startSim(t, nil, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return immediateReply(typev3.StatusCode_Continue, `{"reason": "Because"}`, "Failed because we said so")
	}), nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Replace this!"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"reason": "Because"}`, string(body))
	env.up.none(t)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyWithEnvoyHeaderMutation).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndImmediateRespondMutationAllowEnvoy).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyWithInvalidCharacter).
// Immediate-response headers follow the mutation rules but a disallowed or
// invalid one is dropped, never an error (still 401); with allow_envoy and
// allow_all_routing, x-envoy-foo and host are sent.
func TestEnvoy_GetAndRespondImmediatelyHeaderRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   *mutationrulesv3.HeaderMutationRules
		set     []*corev3.HeaderValueOption
		want    map[string]string
		wantNot []string
	}{
		{"GetAndRespondImmediatelyWithEnvoyHeaderMutation",
			&mutationrulesv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true), AllowEnvoy: wrapperspb.Bool(false)},
			[]*corev3.HeaderValueOption{setHeader("x-envoy-foo", "bar", false)}, nil, []string{"X-Envoy-Foo"}},
		{"GetAndImmediateRespondMutationAllowEnvoy",
			&mutationrulesv3.HeaderMutationRules{AllowEnvoy: wrapperspb.Bool(true), AllowAllRouting: wrapperspb.Bool(true)},
			[]*corev3.HeaderValueOption{setHeader("x-envoy-foo", "bar", false), setHeader("host", "test", false)},
			map[string]string{"X-Envoy-Foo": "bar", "Host": "test"}, nil},
		{"GetAndRespondImmediatelyWithInvalidCharacter", nil,
			[]*corev3.HeaderValueOption{setHeader("x-failure-reason\n", "testing", false)}, nil, []string{"X-Failure-Reason"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, &extprocfilterv3.ExternalProcessor{MutationRules: tc.rules}, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return immediateReply(typev3.StatusCode_Unauthorized, "", "", tc.set...)
			}), nil, nil)
			resp, _ := get(t, env.url+"/")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			for k, v := range tc.want {
				assert.Equal(t, v, resp.Header.Get(k), k)
			}
			for _, k := range tc.wantNot {
				assert.Empty(t, resp.Header.Values(k), k)
			}
			env.up.none(t)
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ReplaceCompleteRequest).
// Default mode (no body mode): CONTINUE_AND_REPLACE on the headers reply
// replaces the POST body instead of appending to it.
func TestEnvoy_ReplaceCompleteRequest(t *testing.T) {
	env := startSim(t, nil, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetRequestHeaders() != nil {
			return replyFor(req, &extprocv3.CommonResponse{
				Status:       extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("Hello, Server!")}},
			})
		}
		return nil
	}), nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Replace this!"))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello, Server!", string(env.up.only(t).body))
	assert.Equal(t, []string{"request_headers", "response_headers"}, kinds(env.exchange(t).Sent))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RemoveRequestContentLengthInBufferedMode).
// Request headers SKIP + body BUFFERED: content-length is removed from the
// request (ProcessorState::shouldRemoveContentLength), the body reply's
// replacement is sent upstream chunked.
func TestEnvoy_RemoveRequestContentLengthInBufferedMode(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}),
		replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			if req.GetRequestBody() != nil {
				return bodyReply(req, "Hello, World!")
			}
			return nil
		}), bareUpstream(200, 100, true), nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("test!"))
	require.NoError(t, err)
	req.ContentLength = 5
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, "Hello, World!", string(up.body))
	assert.Empty(t, up.header.Values("Content-Length"))
	assert.Equal(t, int64(-1), up.contentLength)
	x := env.exchange(t)
	require.Equal(t, []string{"request_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[0].GetRequestBody().GetEndOfStream())
}

// Negative case for Tollgate's shipped mode (request headers SKIP, body
// BUFFERED). Source: processor_state.cc
// ProcessorState::processHeaderMutationIfAvailable ("Response had header
// mutations but headers aren't available": headers_ is only set by
// Filter::onHeaders, which SKIP never calls) and
// ProcessorState::shouldRemoveContentLength (BUFFERED + !send_headers_);
// ext_proc.cc Filter::decodeHeaders returns Continue under SKIP, so the
// headers have gone to the router before the body is processed. Envoy
// tests: ext_proc_integration_test.cc
// TEST_P(ExtProcIntegrationTest, RemoveRequestContentLengthInBufferedMode)
// (content-length), filter_test.cc TEST_F(HttpFilterTest,
// PostAndChangeBothBodiesBufferedOneChunk) (decodeHeaders Continue).
// Must hold: the body reply's header mutation is dropped, and content-length
// is gone even when the body is left unchanged.
func TestEnvoy_SkipHeadersBufferedBodyDropsHeaderMutation(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}),
		replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			if req.GetRequestBody() != nil {
				return setReply(req, setHeader("x-from-body-reply", "1", false), setHeader("content-length", "5", false))
			}
			return nil
		}), nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("test!"))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, "test!", string(up.body))
	assert.Empty(t, up.header.Values("X-From-Body-Reply"), "header mutation in a body reply is dropped under request headers SKIP")
	assert.Empty(t, up.header.Values("Content-Length"))
	assert.Equal(t, int64(-1), up.contentLength, "chunked upstream")
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferEmptyBodyNotSendingHeader).
// Request headers SKIP, body BUFFERED, POST with an empty body: the first
// message is an empty request_body with end_of_stream=true.
func TestEnvoy_BufferEmptyBodyNotSendingHeader(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}), echoScript, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", io.NopCloser(strings.NewReader("")))
	require.NoError(t, err)
	req.TransferEncoding = []string{"chunked"}
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	x := env.exchange(t)
	require.Equal(t, []string{"request_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[0].GetRequestBody().GetEndOfStream())
	assert.Empty(t, x.Sent[0].GetRequestBody().GetBody())
	assert.NotNil(t, x.Sent[0].GetProtocolConfig())
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverrideGetWithEmptyResponseBody).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverrideGetWithNoResponseBody).
// Response body BUFFERED: an upstream response with an empty body after the
// headers gives response_headers end_of_stream=false then an empty
// response_body with end_of_stream=true; a response that ends with its
// headers gives only response_headers with end_of_stream=true.
func TestEnvoy_BufferBodyOverrideGetResponseBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		upstream http.HandlerFunc
		want     []string
	}{
		{"BufferBodyOverrideGetWithEmptyResponseBody", bareUpstream(200, 0, false), []string{"request_headers", "response_headers", "response_body"}},
		{"BufferBodyOverrideGetWithNoResponseBody", bareUpstream(200, 0, true), []string{"request_headers", "response_headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}), echoScript, tc.upstream, nil)
			resp, _ := get(t, env.url+"/")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			require.Equal(t, tc.want, kinds(x.Sent))
			assert.True(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
			if len(tc.want) == 3 {
				assert.False(t, x.Sent[1].GetResponseHeaders().GetEndOfStream())
				assert.True(t, x.Sent[2].GetResponseBody().GetEndOfStream())
				assert.Empty(t, x.Sent[2].GetResponseBody().GetBody())
			} else {
				assert.True(t, x.Sent[1].GetResponseHeaders().GetEndOfStream())
			}
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverridePostWithEmptyBodyStreamed).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverrideGetRequestNoBody).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverrideGetRequestNoBodyStreaming).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverridePostWithRequestBody).
// When the request body is delivered after the headers (even empty) there
// is one body message with end_of_stream=true; a GET whose headers end the
// stream has no body message.
func TestEnvoy_BufferBodyOverrideRequestBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode extprocfilterv3.ProcessingMode_BodySendMode
		body *string // nil: GET without body
	}{
		{"BufferBodyOverridePostWithEmptyBodyStreamed", pmStreamed, ptrTo("")},
		{"BufferBodyOverrideGetRequestNoBody", pmBuffered, nil},
		{"BufferBodyOverrideGetRequestNoBodyStreaming", pmStreamed, nil},
		{"BufferBodyOverridePostWithRequestBody", pmBuffered, ptrTo("Testing")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: tc.mode}), echoScript, nil, nil)
			var resp *http.Response
			if tc.body == nil {
				resp, _ = get(t, env.url+"/")
			} else {
				req, err := http.NewRequest(http.MethodPost, env.url+"/", io.NopCloser(strings.NewReader(*tc.body)))
				require.NoError(t, err)
				req.TransferEncoding = []string{"chunked"}
				resp, _ = do(t, req)
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			if tc.body == nil {
				require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent))
				assert.True(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
				return
			}
			require.Equal(t, []string{"request_headers", "request_body", "response_headers"}, kinds(x.Sent))
			assert.False(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
			assert.True(t, x.Sent[1].GetRequestBody().GetEndOfStream())
			assert.Equal(t, *tc.body, string(x.Sent[1].GetRequestBody().GetBody()))
			assert.Equal(t, *tc.body, string(env.up.only(t).body))
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SkipHeaderSendTrailerInBufferedMode).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ClientSendHeaderTrailerFilterConfigedSendAll).
// Body BUFFERED + trailers SEND, and the client sends headers then trailers
// with no data at all: no request_body message (Filter::onTrailers sends
// the buffered body only if data was buffered), the trailers go to the
// server.
func TestEnvoy_TrailersWithoutBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		pm   *extprocfilterv3.ProcessingMode
		want []string
	}{
		{"SkipHeaderSendTrailerInBufferedMode", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered, RequestTrailerMode: pmSend},
			[]string{"request_trailers", "response_headers"}},
		{"ClientSendHeaderTrailerFilterConfigedSendAll", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSend, RequestBodyMode: pmBuffered, RequestTrailerMode: pmSend, ResponseHeaderMode: pmSkip},
			[]string{"request_headers", "request_trailers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Skip("needs: BUFFERED request body with trailers but no data sends no request_body message (Filter::onTrailers sends only data that was buffered; today an empty request_body with end_of_stream=false is sent first)")
			env := startSim(t, modeFilter(tc.pm), echoScript, nil, nil)
			resp, _ := do(t, chunkedWithTrailers(t, env.url+"/", "", map[string]string{"Request": "trailer"}))
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			require.Equal(t, tc.want, kinds(x.Sent))
			for _, m := range x.Sent {
				if tr := m.GetRequestTrailers(); tr != nil {
					assert.Equal(t, []string{"trailer"}, headerValues(tr.GetTrailers(), "request"))
				}
			}
			env.up.only(t)
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RemoveHeaderMutationFailWithResponseHeader).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SetHeaderMutationFailWithRequestBody).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RemoveHeaderMutationFailWithResponseBody).
// 60 set_headers / remove_headers over max_headers_count 50 in a response
// headers, request body or response body reply: 500.
func TestEnvoy_HeaderMutationCountFail(t *testing.T) {
	sets := func() *extprocv3.HeaderMutation {
		hm := &extprocv3.HeaderMutation{}
		for i := 0; i < 60; i++ {
			k := "x-test-header-internal-" + strconv.Itoa(i)
			hm.SetHeaders = append(hm.SetHeaders, setHeader(k, k, false))
		}
		return hm
	}
	removes := func() *extprocv3.HeaderMutation {
		hm := &extprocv3.HeaderMutation{}
		for i := 0; i < 60; i++ {
			hm.RemoveHeaders = append(hm.RemoveHeaders, "x-test-header-internal-"+strconv.Itoa(i))
		}
		return hm
	}
	for _, tc := range []struct {
		name   string
		pm     *extprocfilterv3.ProcessingMode
		on     string
		hm     func() *extprocv3.HeaderMutation
		post   bool
		upCall bool
	}{
		{"RemoveHeaderMutationFailWithResponseHeader", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip}, "response_headers", removes, false, true},
		{"SetHeaderMutationFailWithRequestBody", &extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip, RequestBodyMode: pmBuffered}, "request_body", sets, true, false},
		{"RemoveHeaderMutationFailWithResponseBody", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, ResponseBodyMode: pmBuffered}, "response_body", removes, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(tc.pm), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if kindOf(req) == tc.on {
					return replyFor(req, &extprocv3.CommonResponse{HeaderMutation: tc.hm()})
				}
				return nil
			}), bareUpstream(200, 100, true), func(c *Config) { c.MaxHeadersCount = 50 })
			var resp *http.Response
			if tc.post {
				req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Original body"))
				require.NoError(t, err)
				resp, _ = do(t, req)
			} else {
				resp, _ = get(t, env.url+"/")
			}
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			if tc.upCall {
				env.up.only(t)
			} else {
				env.up.none(t)
			}
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ProtocolConfigurationEncodingTest).
// protocol_config (both body modes) is in the first message only. Envoy's
// test also sets send_body_without_waiting_for_header_response, which the
// emulator refuses (first subtest); the second runs the same modes without
// it.
func TestEnvoy_ProtocolConfigurationEncodingTest(t *testing.T) {
	pm := &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmStreamed, ResponseHeaderMode: pmSend, ResponseBodyMode: pmStreamed}
	t.Run("send_body_without_waiting_for_header_response refused", func(t *testing.T) {
		_, err := New(Config{Filter: &extprocfilterv3.ExternalProcessor{ProcessingMode: pm, SendBodyWithoutWaitingForHeaderResponse: true},
			ExtProcAddr: "127.0.0.1:1", Upstream: "http://127.0.0.1:1"})
		assert.ErrorIs(t, err, ErrUnsupported)
	})
	t.Run("same modes without it", func(t *testing.T) {
		env := startSim(t, modeFilter(pm), echoScript, bareUpstream(200, 100, true), nil)
		resp, body := do(t, chunkedWithTrailers(t, env.url+"/", "hello world", map[string]string{"X-Trailer-Foo": "yes"}))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, body, 100)
		x := env.exchange(t)
		require.GreaterOrEqual(t, len(x.Sent), 3)
		assert.Equal(t, "request_body", kindOf(x.Sent[0]))
		pc := x.Sent[0].GetProtocolConfig()
		require.NotNil(t, pc)
		assert.Equal(t, pmStreamed, pc.GetRequestBodyMode())
		assert.Equal(t, pmStreamed, pc.GetResponseBodyMode())
		for _, m := range x.Sent[1:] {
			assert.Nil(t, m.GetProtocolConfig(), kindOf(m))
		}
		assert.Contains(t, kinds(x.Sent), "response_headers")
		assert.Contains(t, kinds(x.Sent), "response_body")
	})
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SendHeaderBodyNotSendTrailerTest).
// Request body STREAMED, trailer mode SKIP, client sends body and trailers:
// request_headers, request_body, no trailers message; 200.
func TestEnvoy_SendHeaderBodyNotSendTrailerTest(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSend, RequestBodyMode: pmStreamed, ResponseHeaderMode: pmSkip}),
		echoScript, bareUpstream(200, 100, true), nil)
	resp, _ := do(t, chunkedWithTrailers(t, env.url+"/", "hello world", map[string]string{"X-Trailer-Foo": "yes"}))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	x := env.exchange(t)
	k := kinds(x.Sent)
	require.NotEmpty(t, k)
	assert.Equal(t, "request_headers", k[0])
	assert.Contains(t, k, "request_body")
	assert.NotContains(t, k, "request_trailers")
	var body []byte
	for _, m := range x.Sent {
		body = append(body, m.GetRequestBody().GetBody()...)
	}
	assert.Equal(t, "hello world", string(body))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ModeOverrideAllowed).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ModeOverrideDisallowed).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestHeaderModeIgnoredInModeOverrideComparison).
// allowed_override_modes filters mode_override (request_header_mode is left
// out of the comparison); in all three cases the server gets one request
// body message with end_of_stream=true and, response headers being SKIP in
// the configuration, nothing else. In Envoy (ext_proc.cc
// effectiveModeOverride) DEFAULT header and trailer modes in a mode_override
// keep the configured mode, and the allow-list check runs on that merged
// mode.
func TestEnvoy_ModeOverrideAllowedOverrideModes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		base     *extprocfilterv3.ProcessingMode
		allowed  []*extprocfilterv3.ProcessingMode
		override *extprocfilterv3.ProcessingMode
		needs    string
	}{
		{"ModeOverrideAllowed",
			&extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip},
			[]*extprocfilterv3.ProcessingMode{{RequestBodyMode: pmNone}, {RequestBodyMode: pmStreamed, ResponseHeaderMode: pmSkip}},
			&extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip, RequestBodyMode: pmStreamed}, ""},
		{"ModeOverrideDisallowed",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: pmStreamed, ResponseHeaderMode: pmSkip},
			[]*extprocfilterv3.ProcessingMode{{RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}},
			&extprocfilterv3.ProcessingMode{ResponseHeaderMode: pmSkip, RequestBodyMode: pmNone}, ""},
		{"RequestHeaderModeIgnoredInModeOverrideComparison",
			&extprocfilterv3.ProcessingMode{RequestBodyMode: pmStreamed, ResponseHeaderMode: pmSkip},
			[]*extprocfilterv3.ProcessingMode{{RequestHeaderMode: pmSend, RequestBodyMode: pmBuffered}},
			&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered},
			"mode_override: DEFAULT header/trailer modes keep the configured mode and allowed_override_modes is checked on that merged mode (ext_proc.cc effectiveModeOverride); today an unset response_header_mode becomes SEND and a response_headers message is sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needs != "" {
				t.Skip("needs: " + tc.needs)
			}
			f := &extprocfilterv3.ExternalProcessor{ProcessingMode: tc.base, AllowModeOverride: true, AllowedOverrideModes: tc.allowed}
			env := startSim(t, f, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestHeaders() != nil {
					r := continueFor(req)
					r.ModeOverride = tc.override
					return r
				}
				return nil
			}), bareUpstream(200, 100, true), nil)
			req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("a", 10)))
			require.NoError(t, err)
			resp, _ := do(t, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			require.Equal(t, []string{"request_headers", "request_body"}, kinds(x.Sent))
			assert.True(t, x.Sent[1].GetRequestBody().GetEndOfStream())
			assert.Equal(t, strings.Repeat("a", 10), string(env.up.only(t).body))
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferedModeOverSizeRequestLocalReply).
// A 4 MiB request body in BUFFERED mode is over the buffer limit: 413.
func TestEnvoy_BufferedModeOverSizeRequestLocalReply(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}), echoScript, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("s", 4096*1024)))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	env.up.none(t)
	x := env.exchange(t)
	assert.NotContains(t, kinds(x.Sent), "request_body")
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, NoTrailersOnResponseWithModeSendHeaderTrailer).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, NoTrailersOnResponseWithModeSendBodyTrailer).
// Response trailer SEND but the upstream sends no trailers: no trailers
// message, 200.
func TestEnvoy_NoTrailersOnResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		pm   *extprocfilterv3.ProcessingMode
		want []string
	}{
		{"NoTrailersOnResponseWithModeSendHeaderTrailer", &extprocfilterv3.ProcessingMode{ResponseTrailerMode: pmSend}, []string{"request_headers", "response_headers"}},
		{"NoTrailersOnResponseWithModeSendBodyTrailer", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, ResponseHeaderMode: pmSkip, ResponseBodyMode: pmBuffered, ResponseTrailerMode: pmSend}, []string{"response_body"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(tc.pm), echoScript, bareUpstream(200, 100, true), nil)
			resp, body := get(t, env.url+"/")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, body, 100)
			assert.Equal(t, tc.want, kinds(env.exchange(t).Sent))
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersAndTrailersOnResponse).
// Response trailer SEND with no response body mode: the upstream's trailers
// go to the server as response_trailers; the client gets the original and
// the added trailer.
func TestEnvoy_GetAndSetHeadersAndTrailersOnResponse(t *testing.T) {
	t.Skip("needs: response trailers sent to the server (trailer SEND) when the response body mode is NONE (today forwarded unprocessed, no response_trailers message)")
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseTrailerMode: pmSend}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseTrailers() != nil {
			return setReply(req, setHeader("x-modified-trailers", "xxx", false))
		}
		return nil
	}), func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Test-Trailers")
		_, _ = io.WriteString(w, strings.Repeat("a", 100))
		w.Header().Set("X-Test-Trailers", "Yes")
	}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, body, 100)
	x := env.exchange(t)
	require.Contains(t, kinds(x.Sent), "response_trailers")
	for _, m := range x.Sent {
		if tr := m.GetResponseTrailers(); tr != nil {
			assert.Equal(t, []string{"x-test-trailers: Yes"}, protoHeaderSet(tr.GetTrailers()))
		}
	}
	assert.Equal(t, "Yes", resp.Trailer.Get("X-Test-Trailers"))
	assert.Equal(t, "xxx", resp.Trailer.Get("X-Modified-Trailers"))
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SendAndReceiveDynamicMetadata).
// The request headers reply writes dynamic_metadata under a namespace listed
// in metadata_options.receiving_namespaces.untyped; it lands in the
// request's dynamic metadata (Envoy's test reads it back through a response
// header; the emulator exposes Exchange.DynamicMetadata). The forwarding half
// (metadata_context on the request) is not modelled.
func TestEnvoy_SendAndReceiveDynamicMetadata(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSend, ResponseHeaderMode: pmSkip},
		MetadataOptions: &extprocfilterv3.MetadataOptions{
			ForwardingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{"forwarding_ns_untyped"}, Typed: []string{"forwarding_ns_typed"}},
			ReceivingNamespaces:  &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{"receiving_ns_untyped"}},
		},
	}
	env := startSim(t, f, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetRequestHeaders() != nil {
			r := continueFor(req)
			md, err := structpb.NewStruct(map[string]any{"receiving_ns_untyped": map[string]any{"foo": "value from ext_proc"}})
			if err != nil {
				panic(err)
			}
			r.DynamicMetadata = md
			return r
		}
		return nil
	}), bareUpstream(200, 100, true), nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	x := env.exchange(t)
	require.NotNil(t, x.DynamicMetadata)
	assert.Equal(t, "value from ext_proc", x.DynamicMetadata.GetFields()["receiving_ns_untyped"].GetStructValue().GetFields()["foo"].GetStringValue())
}

// filter_test.cc: TEST_F(HttpFilterTest, OutOfOrderFailOpen).
// filter_test.cc: TEST_F(HttpFilterTest, OutOfOrderFailClose).
// filter_test.cc: TEST_F(HttpFilterTest, PostAndRespondImmediatelyWithDisabledConfig).
// The server answers request_headers with a request_body reply (or, with
// disable_immediate_response, an immediate_response, equally spurious).
// Fail open: the stream is ignored from then on, the request goes through
// unmodified, spurious_msgs_received 1, failure_mode_allowed 1,
// stream_msgs_received 0. Fail closed: local reply (500, runtime
// ext_proc_fail_close_spurious_resp), spurious_msgs_received 1,
// failure_mode_allowed 0, stream_msgs_received 0.
func TestEnvoy_OutOfOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fma      bool
		want     int
		wantFMA  uint64
		upstream bool
	}{
		{"OutOfOrderFailOpen", true, http.StatusOK, 1, true},
		{"OutOfOrderFailClose", false, http.StatusInternalServerError, 0, false},
		{"PostAndRespondImmediatelyWithDisabledConfig", false, http.StatusInternalServerError, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Skip("needs: Envoy's counters for a spurious reply: stream_msgs_received not counted, failure_mode_allowed counted under failure_mode_allow (ext_proc.cc onReceiveMessage, logFailOpen); status, upstream and messages already match")
			f := &extprocfilterv3.ExternalProcessor{FailureModeAllow: tc.fma}
			reply := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
			if tc.name == "PostAndRespondImmediatelyWithDisabledConfig" {
				f.DisableImmediateResponse = true
				reply = immediateReply(typev3.StatusCode_BadRequest, "Bad request", "Got a bad request", setHeader("content-type", "text/plain", false))
			}
			env := startSim(t, f, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				return reply
			}), nil, nil)
			req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("foo"))
			require.NoError(t, err)
			resp, _ := do(t, req)
			assert.Equal(t, tc.want, resp.StatusCode)
			if tc.upstream {
				assert.Equal(t, "foo", string(env.up.only(t).body))
			} else {
				env.up.none(t)
			}
			assert.Equal(t, []string{"request_headers"}, kinds(env.exchange(t).Sent))
			st := env.sim.Stats()
			assert.Equal(t, uint64(1), st.StreamsStarted)
			assert.Equal(t, uint64(1), st.StreamMsgsSent)
			assert.Equal(t, uint64(1), st.SpuriousMsgsReceived)
			assert.Equal(t, tc.wantFMA, st.FailureModeAllowed)
			assert.Equal(t, uint64(0), st.StreamMsgsReceived)
		})
	}
}

// ordering_test.cc: TEST_F(OrderingTest, IncorrectRequestHeadersReply).
// ordering_test.cc: TEST_F(OrderingTest, IncorrectRequestHeadersReply2).
// ordering_test.cc: TEST_F(OrderingTest, IncorrectRequestBodyReply).
// ordering_test.cc: TEST_F(OrderingTest, IncorrectResponseHeadersReply).
// failure_mode_allow: a reply of the wrong kind (response_headers or
// response_trailers to request_headers, response_body to request_body,
// request_headers to response_headers) makes the filter ignore the server
// for the rest of the request: it continues normally and sends no more
// messages.
func TestEnvoy_IncorrectReply(t *testing.T) {
	wrong := map[string]*extprocv3.ProcessingResponse{
		"response_headers":  {Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}},
		"response_trailers": {Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}},
		"response_body":     {Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}},
		"request_headers":   {Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}},
	}
	for _, tc := range []struct {
		name  string
		pm    *extprocfilterv3.ProcessingMode
		on    string // message answered wrongly
		reply string // kind of the wrong reply
		post  bool
		want  []string
	}{
		{"IncorrectRequestHeadersReply", nil, "request_headers", "response_headers", false, []string{"request_headers"}},
		{"IncorrectRequestHeadersReply2", nil, "request_headers", "response_trailers", false, []string{"request_headers"}},
		{"IncorrectRequestBodyReply", &extprocfilterv3.ProcessingMode{RequestBodyMode: pmBuffered, ResponseBodyMode: pmBuffered}, "request_body", "response_body", true, []string{"request_headers", "request_body"}},
		{"IncorrectResponseHeadersReply", nil, "response_headers", "request_headers", false, []string{"request_headers", "response_headers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &extprocfilterv3.ExternalProcessor{FailureModeAllow: true, ProcessingMode: tc.pm}
			env := startSim(t, f, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if kindOf(req) == tc.on {
					return wrong[tc.reply]
				}
				return nil
			}), func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "Hello!") }, nil)
			var resp *http.Response
			var body []byte
			if tc.post {
				req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Hello!"))
				require.NoError(t, err)
				resp, body = do(t, req)
			} else {
				resp, body = get(t, env.url+"/")
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "Hello!", string(body))
			assert.Equal(t, tc.want, kinds(env.exchange(t).Sent))
			assert.Equal(t, uint64(1), env.sim.Stats().SpuriousMsgsReceived)
		})
	}
}

// filter_test.cc: TEST_F(HttpFilterTest, PostAndIgnoreFailure).
// ordering_test.cc: TEST_F(OrderingTest, GrpcErrorInlineIgnored).
// failure_mode_allow: a gRPC error on the request headers message is
// ignored; the request and response go through unprocessed, one message
// sent, failure_mode_allowed 1.
func TestEnvoy_PostAndIgnoreFailure(t *testing.T) {
	env := startSim(t, &extprocfilterv3.ExternalProcessor{FailureModeAllow: true}, func(st *scriptStream) error {
		st.recv()
		return grpcInternal("error message")
	}, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "bar") }, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("foo"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "bar", string(body))
	assert.Equal(t, "foo", string(env.up.only(t).body))
	assert.Equal(t, []string{"request_headers"}, kinds(env.exchange(t).Sent))
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamsStarted)
	assert.Equal(t, uint64(1), st.StreamMsgsSent)
	assert.Equal(t, uint64(1), st.FailureModeAllowed)
}

// filter_test.cc: TEST_F(HttpFilterTest, PostAndClose).
// The server closes the stream (OK) instead of answering request_headers:
// the request and response go through unprocessed, one message sent.
func TestEnvoy_PostAndClose(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		st.recv()
		return nil
	}, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "bar") }, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("foo"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "bar", string(body))
	assert.Equal(t, "foo", string(env.up.only(t).body))
	assert.Equal(t, []string{"request_headers"}, kinds(env.exchange(t).Sent))
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamsStarted)
	assert.Equal(t, uint64(1), st.StreamMsgsSent)
}

// ordering_test.cc: TEST_F(OrderingTest, GrpcCloseAfter).
// The server answers request_headers and then closes the stream: the rest
// of the request is not processed, so no response_headers message is sent.
func TestEnvoy_GrpcCloseAfter(t *testing.T) {
	t.Skip("needs: a server close between messages is noticed when it arrives (Envoy's onGrpcClose), not at the next wait; today response_headers is still sent")
	replied := make(chan struct{})
	env := startSim(t, nil, func(st *scriptStream) error {
		req := st.recv()
		if err := st.send(continueFor(req)); err != nil {
			return err
		}
		close(replied)
		return nil
	}, func(w http.ResponseWriter, _ *http.Request) {
		<-replied
		_, _ = io.WriteString(w, "Hello!")
	}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello!", string(body))
	assert.Equal(t, []string{"request_headers"}, kinds(env.exchange(t).Sent))
}

// filter_test.cc: TEST_F(HttpFilterTest, ReplaceCompleteResponseBuffered).
// Response body BUFFERED, CONTINUE_AND_REPLACE on the response headers reply
// with a header and a body: the client gets "Hello, World!" and the header;
// no response_body message although configured; 2 messages each way.
func TestEnvoy_ReplaceCompleteResponseBuffered(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: pmBuffered}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			return replyFor(req, &extprocv3.CommonResponse{
				Status:         extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-test-header", "true", false)}},
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("Hello, World!")}},
			})
		}
		return nil
	}), func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "200")
		_, _ = io.WriteString(w, strings.Repeat("r", 200))
	}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello, World!", string(body))
	assert.Equal(t, "true", resp.Header.Get("X-Test-Header"))
	assert.Equal(t, []string{"request_headers", "response_headers"}, kinds(env.exchange(t).Sent))
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamsStarted)
	assert.Equal(t, uint64(2), st.StreamMsgsSent)
	assert.Equal(t, uint64(2), st.StreamMsgsReceived)
}

// filter_test.cc: TEST_F(HttpFilterTest, StreamingBodyMutateLastEmptyChunk).
// filter_test.cc: TEST_F(HttpFilterTest, StreamingBodyNotMutateLastEmptyChunk).
// filter_test.cc: TEST_F(HttpFilterTest, StreamingBodyMutateLastChunk).
// filter_test.cc: TEST_F(HttpFilterTest, StreamingBodyNotMutateLastChunk).
// Response body STREAMED (headers SKIP both ways): chunks "0", "1", "2" each
// replaced by "<chunk> <i> ", then a last chunk ("3" or empty, with end of
// stream) replaced or left alone; the client gets the replies in order; 4
// messages each way on one stream.
func TestEnvoy_StreamingBody(t *testing.T) {
	for _, tc := range []struct {
		name             string
		emptyLast, mutat bool
	}{
		{"StreamingBodyMutateLastEmptyChunk", true, true},
		{"StreamingBodyNotMutateLastEmptyChunk", true, false},
		{"StreamingBodyMutateLastChunk", false, true},
		{"StreamingBodyNotMutateLastChunk", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan struct{}, 8) // one per body message the server saw
			var (
				mu   sync.Mutex
				want strings.Builder
			)
			env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
				RequestHeaderMode: pmSkip, ResponseHeaderMode: pmSkip, RequestBodyMode: pmNone, ResponseBodyMode: pmStreamed,
			}), func(st *scriptStream) error {
				for i := 0; ; i++ {
					req := st.recv()
					if req == nil {
						return nil
					}
					b := req.GetResponseBody()
					resp := continueFor(req)
					mu.Lock()
					if !b.GetEndOfStream() || tc.mutat {
						nb := string(b.GetBody()) + " " + strconv.Itoa(i) + " "
						want.WriteString(nb)
						resp = bodyReply(req, nb)
					} else {
						want.Write(b.GetBody())
					}
					mu.Unlock()
					if err := st.send(resp); err != nil {
						return err
					}
					got <- struct{}{}
				}
			}, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				for i := 0; i < 3; i++ {
					_, _ = io.WriteString(w, strconv.Itoa(i))
					_ = http.NewResponseController(w).Flush()
					<-got // the next chunk only after this one was processed
				}
				if !tc.emptyLast {
					_, _ = io.WriteString(w, "3")
				}
			}, nil)
			resp, body := get(t, env.url+"/")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			x := env.exchange(t)
			require.Equal(t, []string{"response_body", "response_body", "response_body", "response_body"}, kinds(x.Sent))
			last := x.Sent[3].GetResponseBody()
			assert.True(t, last.GetEndOfStream())
			if tc.emptyLast {
				assert.Empty(t, last.GetBody())
			} else {
				assert.Equal(t, "3", string(last.GetBody()))
			}
			mu.Lock()
			assert.Equal(t, want.String(), string(body))
			mu.Unlock()
			st := env.sim.Stats()
			assert.Equal(t, uint64(1), st.StreamsStarted)
			assert.Equal(t, uint64(4), st.StreamMsgsSent)
			assert.Equal(t, uint64(4), st.StreamMsgsReceived)
		})
	}
}

// grpcInternal is the gRPC error a failing server returns.
func grpcInternal(msg string) error { return grpcStatus.Error(grpcCodes.Internal, msg) }

// filter_test.cc: TEST_F(HttpFilterTest, PostAndChangeBothBodiesBufferedOneChunk).
// Headers SKIP both ways, both bodies BUFFERED, content-length 100 on the
// request and the response: the server clears the request body and replaces
// the response body with "Hello, World!"; 2 messages each way on one stream.
// With headers SKIP, content-length is removed (shouldRemoveContentLength)
// and no content-length check is made (validateContentLength needs the
// headers), so both replacements go through.
func TestEnvoy_PostAndChangeBothBodiesBufferedOneChunk(t *testing.T) {
	t.Skip("needs: response headers SKIP + BUFFERED body removes content-length on the response too (the request side is modelled)")
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestHeaderMode: pmSkip, ResponseHeaderMode: pmSkip, RequestBodyMode: pmBuffered, ResponseBodyMode: pmBuffered,
		RequestTrailerMode: pmSkip, ResponseTrailerMode: pmSkip,
	}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch {
		case req.GetRequestBody() != nil:
			return replyFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}})
		case req.GetResponseBody() != nil:
			return bodyReply(req, "Hello, World!")
		}
		return nil
	}), func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, strings.Repeat("r", 100))
	}, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("q", 100)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello, World!", string(body))
	assert.Equal(t, int64(-1), resp.ContentLength, "content-length removed: chunked to the client")
	up := env.up.only(t)
	assert.Empty(t, up.body)
	assert.Equal(t, int64(-1), up.contentLength, "content-length removed: chunked upstream")
	x := env.exchange(t)
	require.Equal(t, []string{"request_body", "response_body"}, kinds(x.Sent))
	assert.True(t, x.Sent[0].GetRequestBody().GetEndOfStream())
	assert.Len(t, x.Sent[0].GetRequestBody().GetBody(), 100)
	assert.True(t, x.Sent[1].GetResponseBody().GetEndOfStream())
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamsStarted)
	assert.Equal(t, uint64(2), st.StreamMsgsSent)
	assert.Equal(t, uint64(2), st.StreamMsgsReceived)
}

// filter_test.cc: TEST_F(HttpFilterTest, PostAndChangeBothBodiesBufferedOneChunk)
// (decodeHeaders and encodeHeaders return Continue under header mode SKIP;
// ext_proc.cc Filter::decodeHeaders / encodeHeaders). With request headers
// SKIP and a BUFFERED request body, the next filter (the router) gets the
// headers before the body is processed: the upstream sees the request
// headers while the server still holds the request_body message. Likewise,
// with response headers SKIP and a BUFFERED response body, the client gets
// the response headers before the server answers response_body. The server
// waits up to 2 s for that to happen, then answers anyway.
func TestEnvoy_SkipHeadersContinueBeforeBody(t *testing.T) {
	const bound = 2 * time.Second
	t.Run("request: router gets headers before the body reply", func(t *testing.T) {
		t.Skip("needs: the upstream request started with the headers while the body is still with the server (the emulator decides the route at the headers, as Envoy, but opens the upstream connection after the body reply)")
		upHeaders := make(chan struct{})
		first := make(chan bool, 1)
		env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, RequestBodyMode: pmBuffered, ResponseHeaderMode: pmSkip}),
			replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestBody() != nil {
					select {
					case <-upHeaders:
						first <- true
					case <-time.After(bound):
						first <- false
					}
				}
				return nil
			}), func(w http.ResponseWriter, r *http.Request) {
				close(upHeaders)
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "ok")
			}, nil)
		req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("body"))
		require.NoError(t, err)
		resp, _ := do(t, req)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.True(t, <-first, "the upstream saw the request headers before the request_body reply")
	})
	t.Run("response: client gets headers before the body reply", func(t *testing.T) {
		t.Skip("needs: response headers SKIP sends the response headers to the client at once (today they wait for the response_body reply)")
		clientHeaders := make(chan struct{})
		first := make(chan bool, 1)
		env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, ResponseHeaderMode: pmSkip, ResponseBodyMode: pmBuffered}),
			replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetResponseBody() != nil {
					select {
					case <-clientHeaders:
						first <- true
					case <-time.After(bound):
						first <- false
					}
				}
				return nil
			}), bareUpstream(200, 100, true), nil)
		req, err := http.NewRequest(http.MethodGet, env.url+"/", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req) // returns once the headers are in
		require.NoError(t, err)
		close(clientHeaders)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, body, 100)
		assert.Equal(t, int64(-1), resp.ContentLength, "content-length removed")
		assert.True(t, <-first, "the client had the response headers before the response_body reply")
	})
}

// filter_test.cc: TEST_F(HttpFilterTest, KeepContentLength).
// allow_content_length_header keeps content-length in STREAMED mode.
func TestEnvoy_KeepContentLength(t *testing.T) {
	t.Skip("needs: allow_content_length_header (content-length kept in STREAMED and SKIP+BUFFERED modes; today removed, upstream chunked)")
	f := &extprocfilterv3.ExternalProcessor{
		ProcessingMode:           &extprocfilterv3.ProcessingMode{RequestBodyMode: pmStreamed},
		AllowContentLengthHeader: true,
	}
	env := startSim(t, f, echoScript, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(strings.Repeat("k", 100)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/plain")
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, int64(100), up.contentLength)
	assert.Equal(t, []string{"100"}, up.header.Values("Content-Length"))
}

// filter_test.cc: TEST_F(HttpFilterTest, IgnoreInvalidHeaderMutations).
// filter_test.cc: TEST_F(HttpFilterTest, FailOnInvalidHeaderMutations).
// Setting host and removing x-envoy-special-thing are not allowed by the
// default rules: ignored (request unchanged, rejected_header_mutations 2),
// or with disallow_is_error a 500.
func TestEnvoy_InvalidHeaderMutations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules *mutationrulesv3.HeaderMutationRules
		want  int
	}{
		{"IgnoreInvalidHeaderMutations", nil, http.StatusOK},
		{"FailOnInvalidHeaderMutations", &mutationrulesv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true)}, http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, &extprocfilterv3.ExternalProcessor{MutationRules: tc.rules}, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
				if req.GetRequestHeaders() != nil {
					return replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
						SetHeaders:    []*corev3.HeaderValueOption{setHeader("Host", "wrong:1234", false)},
						RemoveHeaders: []string{"x-envoy-special-thing"},
					}})
				}
				return nil
			}), nil, nil)
			req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("x"))
			require.NoError(t, err)
			req.Host = "host"
			req.Header.Set("X-Envoy-Special-Thing", "1")
			resp, _ := do(t, req)
			assert.Equal(t, tc.want, resp.StatusCode)
			if tc.want != http.StatusOK {
				env.up.none(t)
				return
			}
			up := env.up.only(t)
			assert.Equal(t, "host", up.host)
			assert.Equal(t, "1", up.header.Get("X-Envoy-Special-Thing"))
			assert.Equal(t, uint64(2), env.sim.Stats().RejectedHeaderMutations)
		})
	}
}

// filter_test.cc: TEST_F(HttpFilterTest, RespondImmediatelyWithBinaryBody).
// An immediate_response to response_headers with a non-UTF-8 body: 400 with
// that body byte for byte, no header added, response code details with
// spaces replaced by underscores ("Got_a_bad_request",
// Filter::sendImmediateResponse: StringUtil::replaceAllEmptySpace); 2
// messages each way.
func TestEnvoy_RespondImmediatelyWithBinaryBody(t *testing.T) {
	const body = "non-utf-8 compliant field\x80\x81"
	env := startSim(t, nil, replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetResponseHeaders() != nil {
			return immediateReply(typev3.StatusCode_BadRequest, body, "Got a bad request")
		}
		return nil
	}), nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("foo"))
	require.NoError(t, err)
	resp, got := do(t, req)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, body, string(got))
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamsStarted)
	assert.Equal(t, uint64(2), st.StreamMsgsSent)
	assert.Equal(t, uint64(2), st.StreamMsgsReceived)
	x := env.exchange(t)
	if x.Details == "Got a bad request" {
		t.Skip("needs: response code details of an immediate_response with spaces replaced by underscores (Filter::sendImmediateResponse)")
	}
	assert.Equal(t, "Got_a_bad_request", x.Details)
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageNoMutationMultipleNewTimeout).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestAndResponseMessageNewTimeoutWithHeaderMutation).
// max_message_timeout 10 s, message_timeout 200 ms. Only the first
// override_message_timeout per message restarts the timer (a second one,
// 10 ms, is ignored); an override is honoured on the response path too, and
// the header mutation of the reply that follows still applies. Timers are
// observed with a fake clock: none fires, so the client gets 200.
func TestEnvoy_RequestMessageNewTimeout(t *testing.T) {
	override := func(d time.Duration) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{OverrideMessageTimeout: durationpb.New(d)}
	}
	for _, tc := range []struct {
		name       string
		onResponse bool
		second     bool
		wantTimers []time.Duration
		accepted   uint64
		ignored    uint64
	}{
		{"RequestMessageNoMutationMultipleNewTimeout", false, true,
			[]time.Duration{200 * time.Millisecond, 10 * time.Second, 200 * time.Millisecond}, 1, 1},
		{"RequestAndResponseMessageNewTimeoutWithHeaderMutation", true, false,
			[]time.Duration{200 * time.Millisecond, 10 * time.Second, 200 * time.Millisecond, 10 * time.Second}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			f := &extprocfilterv3.ExternalProcessor{MessageTimeout: durationpb.New(200 * time.Millisecond), MaxMessageTimeout: durationpb.New(10 * time.Second)}
			env := startSim(t, f, func(st *scriptStream) error {
				for {
					req := st.recv()
					if req == nil {
						return nil
					}
					if req.GetRequestHeaders() != nil || (tc.onResponse && req.GetResponseHeaders() != nil) {
						if err := st.send(override(10 * time.Second)); err != nil {
							return err
						}
						if tc.second {
							if err := st.send(override(10 * time.Millisecond)); err != nil {
								return err
							}
						}
					}
					resp := continueFor(req)
					if req.GetRequestHeaders() != nil && tc.onResponse {
						resp = replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
							SetHeaders: []*corev3.HeaderValueOption{setHeader("x-new-header", "new", false)}, RemoveHeaders: []string{"x-remove-this"},
						}})
					}
					if err := st.send(resp); err != nil {
						return err
					}
				}
			}, bareUpstream(200, 100, true), func(c *Config) { c.Clock = clock })
			req, err := http.NewRequest(http.MethodGet, env.url+"/", nil)
			require.NoError(t, err)
			req.Header.Set("X-Remove-This", "yes")
			resp, _ := do(t, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			env.exchange(t)
			var got []time.Duration
			for len(clock.timers) > 0 {
				got = append(got, (<-clock.timers).d)
			}
			assert.Equal(t, tc.wantTimers, got)
			st := env.sim.Stats()
			assert.Equal(t, tc.accepted, st.OverrideMessageTimeoutAccepted)
			assert.Equal(t, tc.ignored, st.OverrideMessageTimeoutIgnored)
			up := env.up.only(t)
			if tc.onResponse {
				assert.Equal(t, "new", up.header.Get("X-New-Header"))
				assert.Empty(t, up.header.Values("X-Remove-This"))
			}
		})
	}
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetBodyOnBothWithClearRouteCache).
// Both bodies STREAMED; every reply sets clear_route_cache, the request
// headers reply sets content-length 13 (skipped: Envoy removes
// content-length in STREAMED mode), the request body is replaced, the
// response headers reply removes content-length, the response body reply
// carries a header mutation: 200.
func TestEnvoy_GetAndSetBodyOnBothWithClearRouteCache(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: pmStreamed, ResponseBodyMode: pmStreamed}), replyEach(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		cr := &extprocv3.CommonResponse{ClearRouteCache: true}
		switch {
		case req.GetRequestHeaders() != nil:
			cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", "13", false)}}
		case req.GetRequestBody() != nil:
			if req.GetRequestBody().GetEndOfStream() {
				cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: append(req.GetRequestBody().GetBody()[:0:0], "Hello, World!"...)}}
			} else if len(req.GetRequestBody().GetBody()) > 0 {
				cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}
			}
		case req.GetResponseHeaders() != nil:
			cr.HeaderMutation = &extprocv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}
		case req.GetResponseBody() != nil:
			cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-testing-response-header", "Yes", false)}}
		}
		return replyFor(req, cr)
	}), bareUpstream(200, 100, true), nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("Replace this!"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, body, 100)
	up := env.up.only(t)
	assert.Equal(t, "Hello, World!", string(up.body))
	assert.Equal(t, int64(-1), up.contentLength, "content-length set by the server is skipped in STREAMED mode")
}

// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestResponseAttributes).
// request_attributes go on the first request message only and leave out
// what is not available yet (response.code); response_attributes go on
// the response headers message without the request attributes. The first
// subtest uses the attributes the emulator models; the second is Envoy's
// full list (request.size, connection.mtls, connection.id,
// response.code_details, and the response_trailers message that must carry
// no attributes).
func TestEnvoy_RequestResponseAttributes(t *testing.T) {
	run := func(t *testing.T, reqAttrs, respAttrs []string, check func(t *testing.T, reqF, respF map[string]*structpb.Value)) {
		f := &extprocfilterv3.ExternalProcessor{
			ProcessingMode:     &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSend, ResponseHeaderMode: pmSend, ResponseTrailerMode: pmSend},
			RequestAttributes:  reqAttrs,
			ResponseAttributes: respAttrs,
		}
		env := startSim(t, f, echoScript, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Trailer", "X-Test-Trailers")
			_, _ = io.WriteString(w, strings.Repeat("a", 100))
			w.Header().Set("X-Test-Trailers", "Yes")
		}, nil)
		resp, _ := get(t, env.url+"/")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		x := env.exchange(t)
		require.GreaterOrEqual(t, len(x.Sent), 2)
		require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent)[:2])
		for _, m := range x.Sent {
			assert.Empty(t, m.GetRequestHeaders().GetAttributes(), "nothing in the deprecated HttpHeaders.attributes")
			assert.Empty(t, m.GetResponseHeaders().GetAttributes(), "nothing in the deprecated HttpHeaders.attributes")
		}
		require.Len(t, x.Sent[0].GetAttributes(), 1)
		require.Len(t, x.Sent[1].GetAttributes(), 1)
		for _, m := range x.Sent[2:] {
			assert.Empty(t, m.GetAttributes(), kindOf(m))
		}
		check(t, x.Sent[0].GetAttributes()[attributeKey].GetFields(), x.Sent[1].GetAttributes()[attributeKey].GetFields())
	}
	t.Run("modelled attributes", func(t *testing.T) {
		run(t, []string{"request.path", "request.method", "request.scheme", "response.code"}, []string{"response.code"},
			func(t *testing.T, reqF, respF map[string]*structpb.Value) {
				assert.Equal(t, "/", reqF["request.path"].GetStringValue())
				assert.Equal(t, "GET", reqF["request.method"].GetStringValue())
				assert.Equal(t, "http", reqF["request.scheme"].GetStringValue())
				assert.Len(t, reqF, 3, "response.code is not available yet")
				assert.Equal(t, float64(200), respF["response.code"].GetNumberValue())
				assert.NotContains(t, respF, "request.method")
			})
	})
	t.Run("RequestResponseAttributes", func(t *testing.T) {
		t.Skip("needs: attributes request.size, connection.mtls, connection.id, response.code_details; response trailers sent with trailer SEND and no body mode")
		run(t, []string{"request.path", "request.method", "request.scheme", "request.size", "connection.mtls", "connection.id", "response.code"},
			[]string{"response.code", "response.code_details"},
			func(t *testing.T, reqF, respF map[string]*structpb.Value) {
				assert.Equal(t, "/", reqF["request.path"].GetStringValue())
				assert.Equal(t, "GET", reqF["request.method"].GetStringValue())
				assert.Equal(t, "http", reqF["request.scheme"].GetStringValue())
				assert.Equal(t, float64(0), reqF["request.size"].GetNumberValue())
				assert.False(t, reqF["connection.mtls"].GetBoolValue())
				assert.NotNil(t, reqF["connection.id"].GetKind())
				assert.Len(t, reqF, 6)
				assert.Equal(t, float64(200), respF["response.code"].GetNumberValue())
				assert.Equal(t, "via_upstream", respF["response.code_details"].GetStringValue())
				assert.NotContains(t, respF, "request.method")
			})
	})
}

// filter_test.cc: TEST_F(HttpFilterTest, ProcessingModeRequestHeadersOnly).
// filter_test.cc: TEST_F(HttpFilterTest, ProcessingModeResponseHeadersOnly).
// One direction's headers only: one message each way, the other direction
// untouched (the response keeps content-type and content-length 3).
func TestEnvoy_ProcessingModeHeadersOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		pm   *extprocfilterv3.ProcessingMode
		want string
	}{
		{"ProcessingModeRequestHeadersOnly", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSend, ResponseHeaderMode: pmSkip}, "request_headers"},
		{"ProcessingModeResponseHeadersOnly", &extprocfilterv3.ProcessingMode{RequestHeaderMode: pmSkip, ResponseHeaderMode: pmSend}, "response_headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pm.RequestBodyMode, tc.pm.ResponseBodyMode = pmNone, pmNone
			tc.pm.RequestTrailerMode, tc.pm.ResponseTrailerMode = pmSkip, pmSkip
			env := startSim(t, modeFilter(tc.pm), echoScript, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Content-Length", "3")
				_, _ = io.WriteString(w, "bar")
			}, nil)
			req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("foo"))
			require.NoError(t, err)
			resp, body := do(t, req)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "bar", string(body))
			assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
			assert.Equal(t, int64(3), resp.ContentLength)
			assert.Equal(t, "foo", string(env.up.only(t).body))
			assert.Equal(t, []string{tc.want}, kinds(env.exchange(t).Sent))
			st := env.sim.Stats()
			assert.Equal(t, uint64(1), st.StreamsStarted)
			assert.Equal(t, uint64(1), st.StreamMsgsSent)
			assert.Equal(t, uint64(1), st.StreamMsgsReceived)
		})
	}
}

// filter_test.cc: TEST_F(HttpFilterTest, CloseStreamOnRequestHeaders).
// (Also int: OnlyRequestHeadersServerHalfClosesFirst, "Envoy closes the side
// stream in this case".) With nothing left to process after the request
// headers reply (response headers SKIP, no bodies, no trailers), Envoy
// closes the side stream at once (runtime
// ext_proc_stream_close_optimization, on by default since 1.37):
// the server sees its stream end before the upstream has answered.
func TestEnvoy_CloseStreamOnRequestHeaders(t *testing.T) {
	t.Skip("needs: the side stream closed as soon as the last expected reply arrived (Filter::closeGrpcStreamIfLastRespReceived); today it closes when the exchange ends")
	const bound = 2 * time.Second
	streamEnded := make(chan struct{})
	first := make(chan bool, 1)
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestHeaderMode: pmSend, ResponseHeaderMode: pmSkip, RequestBodyMode: pmNone, ResponseBodyMode: pmNone,
		RequestTrailerMode: pmSkip, ResponseTrailerMode: pmSkip,
	}), func(st *scriptStream) error {
		req := st.recv()
		if err := st.send(continueFor(req)); err != nil {
			return err
		}
		if st.recv() == nil {
			close(streamEnded)
		}
		return nil
	}, func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-streamEnded:
			first <- true
		case <-time.After(bound):
			first <- false
		}
		_, _ = io.WriteString(w, "ok")
	}, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, <-first, "the side stream ended before the upstream answered")
	st := env.sim.Stats()
	assert.Equal(t, uint64(1), st.StreamMsgsSent)
	assert.Equal(t, uint64(1), st.StreamMsgsReceived)
}
