package envoysim

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The tests in this file follow Part 3 of the research note
// (shared/research/extproc-semantics.md). Each case names the Envoy test it
// reproduces (test/extensions/filters/http/ext_proc/, Envoy main 1.38.0-dev)
// and asserts what that test asserts; CONFORMANCE.md lists them all.
// Subtests are named after the Envoy test when a function covers several.

func modeFilter(pm *extprocfilterv3.ProcessingMode) *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{ProcessingMode: pm}
}

// GetAndCloseStream: the server closes the stream with OK without replying;
// the request is forwarded unmodified and the client gets 200.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndCloseStream).
func TestConformance01_GetAndCloseStream(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		st.recv()
		return nil
	}, nil, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
	env.up.only(t)
	x := env.exchange(t)
	assert.Equal(t, []string{"request_headers"}, kinds(x.Sent), "no more messages after an OK close")
	assert.Equal(t, uint64(1), env.sim.Stats().StreamsClosed)
}

// GetAndFailStream: a failed stream on the first message is a 500.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndFailStream).
func TestConformance02_GetAndFailStream(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		st.recv()
		return status.Error(codes.Internal, "boom")
	}, nil, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	env.up.none(t)
	x := env.exchange(t)
	assert.Equal(t, "ext_proc_error_gRPC_error_13", x.Details)
	assert.Equal(t, uint64(1), env.sim.Stats().StreamsFailed)
}

// GetAndFailStreamOutOfLine: the server replies, then fails the stream
// before the response phase: 500.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndFailStreamOutOfLine).
func TestConformance03_GetAndFailStreamOutOfLine(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		req := st.recv()
		if err := st.send(continueFor(req)); err != nil {
			return err
		}
		return status.Error(codes.Internal, "late failure")
	}, nil, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
}

// GetAndCloseStreamOnResponse / GetAndFailStreamOnResponse: the server ends
// the stream (OK / INTERNAL) on response_headers: 200 / 500.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndCloseStreamOnResponse).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndFailStreamOnResponse).
func TestConformance04_GetAndCloseOrFailStreamOnResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"GetAndCloseStreamOnResponse", nil, http.StatusOK},
		{"GetAndFailStreamOnResponse", status.Error(codes.Internal, "x"), http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, nil, func(st *scriptStream) error {
				req := st.recv()
				if err := st.send(continueFor(req)); err != nil {
					return err
				}
				if st.recv() == nil {
					return errors.New("no response_headers")
				}
				return tc.err
			}, nil, nil)
			resp, _ := get(t, env.url+"/")
			assert.Equal(t, tc.want, resp.StatusCode)
			x := env.exchange(t)
			assert.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent))
		})
	}
}

// GetAndSetHeaders: what the server sees and how set/remove apply.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeaders).
func TestConformance05_GetAndSetHeaders(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		req := st.recv()
		err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders:    []*corev3.HeaderValueOption{setHeader("x-new-header", "new", false)},
			RemoveHeaders: []string{"x-remove-this"},
		}}))
		if err != nil {
			return err
		}
		return echoScript(st)
	}, bareUpstream(200, 100, false), nil)
	req := envoyDefaultRequest(t, http.MethodGet, env.url+"/", nil)
	req.Header.Set("X-Remove-This", "yes")
	resp, _ := doPlain(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	up := env.up.only(t)
	assert.Equal(t, "new", up.header.Get("X-New-Header"))
	assert.Empty(t, up.header.Values("X-Remove-This"))

	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent))
	rh := x.Sent[0].GetRequestHeaders()
	assert.True(t, rh.GetEndOfStream())
	hm := rh.GetHeaders()
	// Exactly Envoy's expected set (host travels as :authority; x-request-id
	// is ignored by Envoy's comparison but must be there).
	assert.Equal(t, []string{":authority: host", ":method: GET", ":path: /", ":scheme: http", "x-forwarded-proto: http", "x-remove-this: yes"}, protoHeaderSet(hm))
	assert.Len(t, headerValues(hm, "x-request-id"), 1, "Envoy generates x-request-id")
	for _, h := range hm.GetHeaders() {
		assert.Equal(t, strings.ToLower(h.GetKey()), h.GetKey(), "keys are lowercased")
		assert.Empty(t, h.GetValue(), "values travel in raw_value")
	}
	assert.Equal(t, []string{":status: 200"}, protoHeaderSet(x.Sent[1].GetResponseHeaders().GetHeaders()))
}

// GetAndSetPathHeader: only :path may change under the default rules (the
// Envoy test sets :path, :scheme, :authority, :method; this one adds host and
// x-envoy-foo, also rejected by the default rules).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetPathHeader).
func TestConformance06_GetAndSetPathHeader(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		req := st.recv()
		err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
			SetHeaders: []*corev3.HeaderValueOption{
				setHeader(":path", "/mutated_path/bluh"),
				setHeader(":scheme", "https"),
				setHeader(":authority", "new_host"),
				setHeader(":method", "POST"),
				setHeader("host", "new_host"),
				setHeader("x-envoy-foo", "bar"),
			},
		}}))
		if err != nil {
			return err
		}
		return echoScript(st)
	}, nil, nil)
	req, err := http.NewRequest(http.MethodGet, env.url+"/orig", nil)
	require.NoError(t, err)
	req.Host = "host"
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	up := env.up.only(t)
	assert.Equal(t, "/mutated_path/bluh", up.path)
	assert.Equal(t, http.MethodGet, up.method)
	assert.Equal(t, "host", up.host)
	assert.Empty(t, up.header.Get("X-Envoy-Foo"))
	assert.Equal(t, uint64(5), env.sim.Stats().RejectedHeaderMutations)
}

// SetHostHeaderRoutingSucceeded / SetHostHeaderRoutingFailed, plus the
// x-tollgate-route routing Tollgate uses (emulator cases, no Envoy test).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SetHostHeaderRoutingSucceeded).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SetHostHeaderRoutingFailed).
func TestConformance07_SetHostHeaderRouting(t *testing.T) {
	setAndClear := func(key, value string, clearRoute bool, withMutation bool) script {
		return func(st *scriptStream) error {
			req := st.recv()
			cr := &extprocv3.CommonResponse{ClearRouteCache: clearRoute}
			if withMutation {
				cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(key, value)}}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
			return echoScript(st)
		}
	}
	allowRouting := &extprocfilterv3.ExternalProcessor{MutationRules: &mutationrulesv3.HeaderMutationRules{AllowAllRouting: wrapperspb.Bool(true)}}
	for _, tc := range []struct {
		name      string
		filter    *extprocfilterv3.ExternalProcessor
		routeHdr  string
		sc        script
		reqRoute  string
		want      int
		wantOther bool // the request reaches the "other" upstream
	}{
		{"SetHostHeaderRoutingSucceeded", allowRouting, ":authority", setAndClear(":authority", "new_host", true, true), "host", http.StatusOK, true},
		{"SetHostHeaderRoutingFailed", allowRouting, ":authority", setAndClear(":authority", "unknown_host", true, true), "host", http.StatusNotFound, false},
		{"route header re-picked", nil, "", setAndClear("x-tollgate-route", "other", true, true), "main", http.StatusOK, true},
		{"no clear_route_cache keeps route", nil, "", setAndClear("x-tollgate-route", "other", false, true), "main", http.StatusOK, false},
		{"clear_route_cache without header mutation ignored", nil, "", setAndClear("", "", true, false), "main", http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := startUpstream(t, nil)
			env := startSim(t, tc.filter, tc.sc, nil, func(c *Config) {
				main := c.Upstream
				c.Upstream = ""
				c.RouteHeader = tc.routeHdr
				if tc.routeHdr == ":authority" {
					c.Routes = map[string]string{"host": main, "new_host": other.srv.URL}
				} else {
					c.Routes = map[string]string{"main": main, "other": other.srv.URL}
				}
			})
			req, err := http.NewRequest(http.MethodGet, env.url+"/", nil)
			require.NoError(t, err)
			if tc.routeHdr == ":authority" {
				req.Host = tc.reqRoute
			} else {
				req.Header.Set("X-Tollgate-Route", tc.reqRoute)
			}
			resp, _ := do(t, req)
			assert.Equal(t, tc.want, resp.StatusCode)
			switch {
			case tc.want == http.StatusNotFound:
				env.up.none(t)
				other.none(t)
				assert.Equal(t, "route_not_found", env.exchange(t).Details)
			case tc.wantOther:
				other.only(t)
				env.up.none(t)
			default:
				env.up.only(t)
				other.none(t)
			}
		})
	}
}

// GetAndSetHeadersOnResponseBadStatus / GetAndSetHeadersOnResponseTwoStatuses.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersOnResponseBadStatus).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetHeadersOnResponseTwoStatuses).
func TestConformance08_GetAndSetHeadersOnResponseStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     []*corev3.HeaderValueOption
		want    int
		rejects uint64
	}{
		{"GetAndSetHeadersOnResponseBadStatus", []*corev3.HeaderValueOption{setHeader("x-response-processed", "1"), setHeader(":status", "100")}, 200, 1},
		{"GetAndSetHeadersOnResponseTwoStatuses", []*corev3.HeaderValueOption{setHeader("x-response-processed", "1"), setHeader(":status", "201"), setHeader(":status", "202", true)}, 201, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, nil, func(st *scriptStream) error {
				req := st.recv()
				if err := st.send(continueFor(req)); err != nil {
					return err
				}
				req = st.recv()
				if err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: tc.set}})); err != nil {
					return err
				}
				return echoScript(st)
			}, nil, nil)
			resp, body := get(t, env.url+"/")
			assert.Equal(t, tc.want, resp.StatusCode)
			assert.Equal(t, "1", resp.Header.Get("X-Response-Processed"))
			assert.Equal(t, "ok", string(body))
			assert.Equal(t, tc.rejects, env.sim.Stats().RejectedHeaderMutations)
		})
	}
}

// GetBufferedButNoBodies: no body messages when neither side has a body.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetBufferedButNoBodies).
func TestConformance09_GetBufferedButNoBodies(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED, ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
	}), echoScript, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Empty(t, body)
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent))
	assert.True(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
	assert.True(t, x.Sent[1].GetResponseHeaders().GetEndOfStream())
}

// BufferBodyOverridePostWithEmptyBody: an empty (chunked) POST body is one
// empty body message with end_of_stream.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, BufferBodyOverridePostWithEmptyBody).
func TestConformance10_BufferBodyOverridePostWithEmptyBody(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}), echoScript, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", io.NopCloser(strings.NewReader("")))
	require.NoError(t, err)
	req.TransferEncoding = []string{"chunked"}
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	x := env.exchange(t)
	require.Equal(t, []string{"request_headers", "request_body", "response_headers"}, kinds(x.Sent))
	assert.False(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
	assert.Empty(t, x.Sent[1].GetRequestBody().GetBody())
	assert.True(t, x.Sent[1].GetRequestBody().GetEndOfStream())
}

// chunkedWithTrailers builds a chunked POST whose trailers are set.
func chunkedWithTrailers(t *testing.T, url, body string, trailers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, io.NopCloser(strings.NewReader(body)))
	require.NoError(t, err)
	req.TransferEncoding = []string{"chunked"}
	req.Trailer = http.Header{}
	for k, v := range trailers {
		req.Trailer.Set(k, v)
	}
	return req
}

// SkipHeaderTrailerSendBodyClientSendAll: with trailers on the wire the
// buffered body is sent with end_of_stream=false; trailer SKIP sends none.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SkipHeaderTrailerSendBodyClientSendAll).
func TestConformance11_SkipHeaderTrailerSendBodyClientSendAll(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
	}), echoScript, nil, nil)
	resp, _ := do(t, chunkedWithTrailers(t, env.url+"/", "0123456789", map[string]string{"X-Trailer": "t"}))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	x := env.exchange(t)
	require.Equal(t, []string{"request_body"}, kinds(x.Sent))
	assert.Equal(t, "0123456789", string(x.Sent[0].GetRequestBody().GetBody()))
	assert.False(t, x.Sent[0].GetRequestBody().GetEndOfStream())
	up := env.up.only(t)
	assert.Equal(t, "0123456789", string(up.body))
	assert.Equal(t, "t", up.trailer.Get("X-Trailer"))
}

// ClientNoTrailerProcessingModeSendTrailer (and the trailer SEND path with
// trailers on the wire, an emulator case).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ClientNoTrailerProcessingModeSendTrailer).
func TestConformance12_ClientNoTrailerProcessingModeSendTrailer(t *testing.T) {
	pm := &extprocfilterv3.ProcessingMode{
		RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		RequestTrailerMode: extprocfilterv3.ProcessingMode_SEND, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
	}
	t.Run("ClientNoTrailerProcessingModeSendTrailer", func(t *testing.T) {
		// Envoy's configuration: request headers SEND, body BUFFERED,
		// trailers SEND, response headers SKIP; 10 bytes with end of stream.
		env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SEND, RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SEND, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
		}), echoScript, nil, nil)
		req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("0123456789"))
		require.NoError(t, err)
		resp, _ := do(t, req)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		x := env.exchange(t)
		require.Equal(t, []string{"request_headers", "request_body"}, kinds(x.Sent), "no trailers message")
		assert.False(t, x.Sent[0].GetRequestHeaders().GetEndOfStream())
		assert.True(t, x.Sent[1].GetRequestBody().GetEndOfStream())
	})
	t.Run("trailers mutated", func(t *testing.T) {
		env := startSim(t, modeFilter(pm), func(st *scriptStream) error {
			for {
				req := st.recv()
				if req == nil {
					return nil
				}
				cr := &extprocv3.CommonResponse{}
				if req.GetRequestTrailers() != nil {
					cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-trailer", "mutated")}}
				}
				if err := st.send(replyFor(req, cr)); err != nil {
					return err
				}
			}
		}, nil, nil)
		resp, _ := do(t, chunkedWithTrailers(t, env.url+"/", "abc", map[string]string{"X-Trailer": "t"}))
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		x := env.exchange(t)
		require.Equal(t, []string{"request_body", "request_trailers"}, kinds(x.Sent))
		assert.False(t, x.Sent[0].GetRequestBody().GetEndOfStream())
		assert.Equal(t, []string{"t"}, headerValues(x.Sent[1].GetRequestTrailers().GetTrailers(), "x-trailer"))
		assert.Equal(t, "mutated", env.up.only(t).trailer.Get("X-Trailer"))
	})
}

// GetAndSetBodyAndHeadersOnResponse: content-length set on the headers
// reply, body and a header replaced on the body reply.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndSetBodyAndHeadersOnResponse).
func TestConformance13_GetAndSetBodyAndHeadersOnResponse(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}),
		func(st *scriptStream) error {
			for {
				req := st.recv()
				if req == nil {
					return nil
				}
				cr := &extprocv3.CommonResponse{}
				switch {
				case req.GetResponseHeaders() != nil:
					cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", "13")}}
				case req.GetResponseBody() != nil:
					cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-testing-response-header", "Yes")}}
					cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("Hello, World!")}}
				}
				if err := st.send(replyFor(req, cr)); err != nil {
					return err
				}
			}
		}, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, strings.Repeat("x", 100))
		}, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Hello, World!", string(body))
	assert.Equal(t, "Yes", resp.Header.Get("X-Testing-Response-Header"))
	assert.Equal(t, int64(13), resp.ContentLength)
}

// MismatchedContentLengthAndBodyLength: content-length set to len-2, body
// replaced: 500 and the upstream is never contacted.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, MismatchedContentLengthAndBodyLength).
func TestConformance14_MismatchedContentLengthAndBodyLength(t *testing.T) {
	const orig = "Replace this!"
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}),
		func(st *scriptStream) error {
			req := st.recv()
			err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{
				SetHeaders: []*corev3.HeaderValueOption{setHeader("content-length", strconv.Itoa(len(orig)-2))},
			}}))
			if err != nil {
				return err
			}
			req = st.recv()
			if err := st.send(replyFor(req, &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
				Mutation: &extprocv3.BodyMutation_Body{Body: []byte("Hello, World!")},
			}})); err != nil {
				return err
			}
			return echoScript(st)
		}, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(orig))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	env.up.none(t)
	assert.Equal(t, "mismatch_between_content_length_and_the_length_of_the_mutated_body", env.exchange(t).Details)
}

// RemoveRequestContentLengthInStreamedMode / RemoveResponseContentLength:
// STREAMED bodies drop content-length, HTTP/1 falls back to chunked.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RemoveRequestContentLengthInStreamedMode).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RemoveResponseContentLength).
func TestConformance15_RemoveContentLengthInStreamedMode(t *testing.T) {
	env := startSim(t, modeFilter(&extprocfilterv3.ProcessingMode{
		RequestBodyMode: extprocfilterv3.ProcessingMode_STREAMED, ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED,
	}), func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			cr := &extprocv3.CommonResponse{}
			if b := req.GetRequestBody(); b != nil && len(b.GetBody()) > 0 {
				cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(strings.ToUpper(string(b.GetBody())))}}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
		}
	}, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	}, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("request body"))
	require.NoError(t, err)
	resp, body := do(t, req)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello", string(body))
	assert.Equal(t, int64(-1), resp.ContentLength, "client response is chunked")
	assert.Equal(t, []string{"chunked"}, resp.TransferEncoding)
	up := env.up.only(t)
	assert.Equal(t, "REQUEST BODY", string(up.body))
	assert.Equal(t, int64(-1), up.contentLength)
	assert.Equal(t, []string{"chunked"}, up.transferEncoding)
	x := env.exchange(t)
	for _, m := range x.Sent {
		if rh := m.GetRequestHeaders(); rh != nil {
			assert.Equal(t, []string{"12"}, headerValues(rh.GetHeaders(), "content-length"), "the server still sees the original header")
		}
	}
}

// GetAndRespondImmediately: 401 with the reply's headers and body.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediately).
func TestConformance16_GetAndRespondImmediately(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		st.recv()
		if err := st.send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
				setHeader("x-failure-reason", "testing"), setHeader("content-type", "application/json"),
			}},
			Body:    []byte(`{"reason": "Not authorized"}`),
			Details: "Failed because you are not authorized",
		}}}); err != nil {
			return err
		}
		return echoScript(st)
	}, nil, nil)
	resp, body := get(t, env.url+"/")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "testing", resp.Header.Get("X-Failure-Reason"))
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"reason": "Not authorized"}`, string(body))
	env.up.none(t)
	x := env.exchange(t)
	assert.Equal(t, []string{"request_headers"}, kinds(x.Sent), "no response phase after an immediate response")
	assert.True(t, x.LocalReply)
	// The response code details (spaces replaced by underscores, as
	// Filter::sendImmediateResponse does) are checked by
	// TestEnvoy_RespondImmediatelyWithBinaryBody.
}

// GetAndRespondImmediatelyWithSystemHeaderMutation: a `:foo` header in an
// immediate response is dropped, never an error.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndRespondImmediatelyWithSystemHeaderMutation).
func TestConformance17_GetAndRespondImmediatelyWithSystemHeaderMutation(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{MutationRules: &mutationrulesv3.HeaderMutationRules{
		DisallowSystem: wrapperspb.Bool(true), DisallowIsError: wrapperspb.Bool(true),
	}}
	env := startSim(t, f, func(st *scriptStream) error {
		st.recv()
		return st.send(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
			Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":foo", "bar"), setHeader("x-kept", "1")}},
		}}})
	}, nil, nil)
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-Kept"))
	assert.Empty(t, resp.Header.Get(":foo"))
}

// GetAndIncorrectlyModifyHeaderOnBody: `:scheme` set on a body reply with
// disallow_is_error: 500.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, GetAndIncorrectlyModifyHeaderOnBody).
func TestConformance18_GetAndIncorrectlyModifyHeaderOnBody(t *testing.T) {
	f := &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED},
		MutationRules:  &mutationrulesv3.HeaderMutationRules{DisallowIsError: wrapperspb.Bool(true)},
	}
	env := startSim(t, f, func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			cr := &extprocv3.CommonResponse{}
			if req.GetRequestBody() != nil {
				cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader(":scheme", "tcp")}}
			}
			if err := st.send(replyFor(req, cr)); err != nil {
				return err
			}
		}
	}, nil, nil)
	req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader("body"))
	require.NoError(t, err)
	resp, _ := do(t, req)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	env.up.none(t)
}

// ConvertGetToPost / ReplaceCompleteRequestBuffered: CONTINUE_AND_REPLACE in
// the request headers reply replaces the body (and may change :method); no
// body message follows even in BUFFERED mode.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ConvertGetToPost).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ReplaceCompleteRequestBuffered).
func TestConformance19_ConvertGetToPostAndReplaceCompleteRequestBuffered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pm       *extprocfilterv3.ProcessingMode
		body     string // client body ("" = GET)
		set      []*corev3.HeaderValueOption
		wantMeth string
		wantCT   string
	}{
		{"ConvertGetToPost", nil, "", []*corev3.HeaderValueOption{setHeader(":method", "POST"), setHeader("content-type", "text/plain")}, http.MethodPost, "text/plain"},
		{"ReplaceCompleteRequestBuffered", &extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_BUFFERED}, "Replace this!", nil, http.MethodPost, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := startSim(t, modeFilter(tc.pm), func(st *scriptStream) error {
				req := st.recv()
				cr := &extprocv3.CommonResponse{
					Status:       extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("Hello, Server!")}},
				}
				if tc.set != nil {
					cr.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: tc.set}
				}
				if err := st.send(replyFor(req, cr)); err != nil {
					return err
				}
				return echoScript(st)
			}, nil, nil)
			var resp *http.Response
			if tc.body == "" {
				resp, _ = get(t, env.url+"/")
			} else {
				req, err := http.NewRequest(http.MethodPost, env.url+"/", strings.NewReader(tc.body))
				require.NoError(t, err)
				resp, _ = do(t, req)
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			up := env.up.only(t)
			assert.Equal(t, tc.wantMeth, up.method)
			assert.Equal(t, "Hello, Server!", string(up.body), "replaced, not appended")
			assert.Len(t, up.body, 14)
			if tc.wantCT != "" {
				assert.Equal(t, tc.wantCT, up.header.Get("Content-Type"))
			}
			x := env.exchange(t)
			assert.Equal(t, []string{"request_headers", "response_headers"}, kinds(x.Sent), "no body message after CONTINUE_AND_REPLACE")
		})
	}
}

// silentOn returns a script that answers everything except the first
// message matching kind, on which it blocks until the stream ends.
func silentOn(kind string) script {
	return func(st *scriptStream) error {
		for {
			req := st.recv()
			if req == nil {
				return nil
			}
			if kinds([]*extprocv3.ProcessingRequest{req})[0] == kind {
				<-st.stream.Context().Done()
				return nil
			}
			if err := st.send(continueFor(req)); err != nil {
				return err
			}
		}
	}
}

// RequestMessageTimeout / ResponseMessageTimeout and the
// failure_mode_allow variants (RequestMessageTimeoutIgnoreError,
// ResponseMessageTimeoutIgnoreError): cases 20 and 21.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageTimeout).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ResponseMessageTimeout).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageTimeoutIgnoreError).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, ResponseMessageTimeoutIgnoreError).
func TestConformance20and21_MessageTimeout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		silentOn  string
		fma       bool
		timerIdx  int // which timer to fire
		want      int
		wantSent  []string
		upCalled  bool
		wantAllow uint64
	}{
		{"RequestMessageTimeout", "request_headers", false, 0, http.StatusGatewayTimeout, []string{"request_headers"}, false, 0},
		{"ResponseMessageTimeout", "response_headers", false, 1, http.StatusGatewayTimeout, []string{"request_headers", "response_headers"}, true, 0},
		{"RequestMessageTimeoutIgnoreError", "request_headers", true, 0, http.StatusOK, []string{"request_headers"}, true, 1},
		{"ResponseMessageTimeoutIgnoreError", "response_headers", true, 1, http.StatusOK, []string{"request_headers", "response_headers"}, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			f := &extprocfilterv3.ExternalProcessor{FailureModeAllow: tc.fma, MessageTimeout: durationpb.New(200 * 1e6)}
			env := startSim(t, f, silentOn(tc.silentOn), nil, func(c *Config) { c.Clock = clock })
			go func() {
				for i := 0; ; i++ {
					ft := <-clock.timers
					if i == tc.timerIdx {
						ft.fire()
						return
					}
				}
			}()
			resp, body := get(t, env.url+"/")
			assert.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusOK {
				assert.Equal(t, "ok", string(body))
			}
			x := env.exchange(t)
			assert.Equal(t, tc.wantSent, kinds(x.Sent))
			assert.Equal(t, tc.upCalled, x.UpstreamCalled)
			if tc.want == http.StatusGatewayTimeout {
				assert.Equal(t, "ext_proc_error_per-message_timeout_exceeded", x.Details)
			}
			st := env.sim.Stats()
			assert.Equal(t, uint64(1), st.MessageTimeouts)
			assert.Equal(t, tc.wantAllow, st.FailureModeAllowed)
		})
	}
}

// RequestMessageNewTimeoutNoMutation and the negative variants.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageNewTimeoutNoMutation).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageNewTimeoutNegativeTestTimeoutNotAcceptedDefaultMax).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageNewTimeoutNegativeTestTimeoutTooBigWithSmallMax).
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, RequestMessageNewTimeoutNegativeTestTimeoutTooSmall).
func TestConformance22_RequestMessageNewTimeout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      *durationpb.Duration
		override *durationpb.Duration
		accepted bool
	}{
		{"RequestMessageNewTimeoutNoMutation", durationpb.New(1e9), durationpb.New(500 * 1e6), true},
		{"RequestMessageNewTimeoutNegativeTestTimeoutNotAcceptedDefaultMax", nil, durationpb.New(500 * 1e6), false},
		{"RequestMessageNewTimeoutNegativeTestTimeoutTooBigWithSmallMax", durationpb.New(1e8), durationpb.New(500 * 1e6), false},
		{"RequestMessageNewTimeoutNegativeTestTimeoutTooSmall", durationpb.New(1e9), durationpb.New(0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			release := make(chan struct{})
			overrideSeen := make(chan struct{})
			f := &extprocfilterv3.ExternalProcessor{MaxMessageTimeout: tc.max}
			env := startSim(t, f, func(st *scriptStream) error {
				req := st.recv()
				if err := st.send(&extprocv3.ProcessingResponse{OverrideMessageTimeout: tc.override}); err != nil {
					return err
				}
				select {
				case <-release:
				case <-st.stream.Context().Done():
					return nil
				}
				if err := st.send(continueFor(req)); err != nil {
					return err
				}
				return echoScript(st)
			}, nil, func(c *Config) {
				c.Clock = clock
				c.OnReceive = func(r *extprocv3.ProcessingResponse) {
					if r.GetOverrideMessageTimeout() != nil {
						close(overrideSeen)
					}
				}
			})
			done := make(chan *http.Response, 1)
			go func() {
				resp, _ := get(t, env.url+"/")
				done <- resp
			}()
			first := clock.next(t)
			assert.Equal(t, DefaultMessageTimeout, first.d)
			if tc.accepted {
				second := clock.next(t)
				assert.Equal(t, tc.override.AsDuration(), second.d)
				assert.True(t, first.isStopped(), "the original timer is replaced")
				first.fire() // a stale timer has no effect
				close(release)
				resp := <-done
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, uint64(1), env.sim.Stats().OverrideMessageTimeoutAccepted)
				return
			}
			<-overrideSeen // OnReceive runs before the override is acted on
			first.fire()
			resp := <-done
			assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
			assert.Equal(t, uint64(1), env.sim.Stats().OverrideMessageTimeoutIgnored)
		})
	}
}

// SetHeaderMutationFailWithRequestHeader (the request-header half of case 23):
// 60 set_headers over max_headers_count 50: 500.
// ext_proc_integration_test.cc: TEST_P(ExtProcIntegrationTest, SetHeaderMutationFailWithRequestHeader).
func TestConformance23_SetHeaderMutationFailWithRequestHeader(t *testing.T) {
	env := startSim(t, nil, func(st *scriptStream) error {
		req := st.recv()
		var set []*corev3.HeaderValueOption
		for i := 0; i < 60; i++ {
			set = append(set, setHeader("x-h-"+strconv.Itoa(i), "v"))
		}
		if err := st.send(replyFor(req, &extprocv3.CommonResponse{HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: set}})); err != nil {
			return err
		}
		return echoScript(st)
	}, nil, func(c *Config) { c.MaxHeadersCount = 50 })
	resp, _ := get(t, env.url+"/")
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	env.up.none(t)
}

// Cases 24 (observability_mode) and 25 (FULL_DUPLEX_STREAMED) are not
// modelled: New refuses those configurations instead of misbehaving. Envoy
// tests not reproduced: ext_proc_observability_integration_test.cc
// ObservabilityModeWithHeader/WithBody, ext_proc_full_duplex_integration_test.cc.
func TestConformance24and25_UnsupportedModesRefused(t *testing.T) {
	for _, f := range []*extprocfilterv3.ExternalProcessor{
		{ObservabilityMode: true},
		modeFilter(&extprocfilterv3.ProcessingMode{RequestBodyMode: extprocfilterv3.ProcessingMode_FULL_DUPLEX_STREAMED, RequestTrailerMode: extprocfilterv3.ProcessingMode_SEND}),
		modeFilter(&extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED_PARTIAL}),
	} {
		_, err := New(Config{Filter: f, ExtProcAddr: "127.0.0.1:1", Upstream: "http://127.0.0.1:1"})
		assert.ErrorIs(t, err, ErrUnsupported)
	}
}
