package envoysim

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 10 * time.Second

// script drives one ext_proc stream of the fake server.
type script func(st *scriptStream) error

// scriptStream wraps a server stream with helpers for scripts.
type scriptStream struct {
	stream extprocv3.ExternalProcessor_ProcessServer
}

// recv returns the next message, or nil when the client ended the stream.
func (s *scriptStream) recv() *extprocv3.ProcessingRequest {
	req, err := s.stream.Recv()
	if err != nil {
		return nil
	}
	return req
}

func (s *scriptStream) send(resp *extprocv3.ProcessingResponse) error {
	return s.stream.Send(resp)
}

// fakeExtProc is a programmable ext_proc server: every stream runs script.
type fakeExtProc struct {
	extprocv3.UnimplementedExternalProcessorServer
	script script

	mu sync.Mutex
	md []metadata.MD
}

func (f *fakeExtProc) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	f.mu.Lock()
	f.md = append(f.md, md)
	f.mu.Unlock()
	return f.script(&scriptStream{stream: stream})
}

// startExtProc serves script on an ephemeral port and returns the server and
// its address.
func startExtProc(t testing.TB, sc script) (*fakeExtProc, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeExtProc{script: sc}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f, ln.Addr().String()
}

// upstreamRequest is what the fake upstream saw.
type upstreamRequest struct {
	method, path, host string
	header             http.Header
	body               []byte
	contentLength      int64
	transferEncoding   []string
	trailer            http.Header
}

// fakeUpstream records requests and answers with handler (default 200 "ok").
type fakeUpstream struct {
	srv  *httptest.Server
	reqs chan upstreamRequest
}

func startUpstream(t *testing.T, handler http.HandlerFunc) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{reqs: make(chan upstreamRequest, 64)}
	if handler == nil {
		handler = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok")
		}
	}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.reqs <- upstreamRequest{
			method: r.Method, path: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: body,
			contentLength: r.ContentLength, transferEncoding: r.TransferEncoding, trailer: r.Trailer.Clone(),
		}
		handler(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// only returns the single request the upstream received.
func (u *fakeUpstream) only(t *testing.T) upstreamRequest {
	t.Helper()
	select {
	case r := <-u.reqs:
		return r
	case <-time.After(testTimeout):
		t.Fatal("upstream not called")
		return upstreamRequest{}
	}
}

func (u *fakeUpstream) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-u.reqs:
		t.Fatalf("upstream unexpectedly called: %s %s", r.method, r.path)
	default:
	}
}

// simEnv is a started Sim with its peers.
type simEnv struct {
	sim       *Sim
	url       string
	ext       *fakeExtProc
	up        *fakeUpstream
	exchanges chan Exchange
}

// startSim starts a Sim for filter against a fake server running sc and an
// upstream running handler; mutate may adjust the Config.
func startSim(t *testing.T, filter *extprocfilterv3.ExternalProcessor, sc script, handler http.HandlerFunc, mutate func(*Config)) *simEnv {
	t.Helper()
	ext, addr := startExtProc(t, sc)
	up := startUpstream(t, handler)
	env := &simEnv{ext: ext, up: up, exchanges: make(chan Exchange, 64)}
	cfg := Config{
		Filter:      filter,
		ExtProcAddr: addr,
		Upstream:    up.srv.URL,
		OnExchange:  func(e Exchange) { env.exchanges <- e },
	}
	if mutate != nil {
		mutate(&cfg)
	}
	if cfg.Clock == nil {
		// Timeout behaviour is tested with fakeClock; everywhere else stretch
		// message_timeout so a loaded machine cannot turn a slow reply into
		// a 504.
		cfg.Clock = scaledClock{factor: 25}
	}
	sim, err := New(cfg)
	require.NoError(t, err)
	base, err := sim.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })
	env.sim, env.url = sim, base
	return env
}

// exchange returns the next recorded exchange.
func (e *simEnv) exchange(t *testing.T) Exchange {
	t.Helper()
	select {
	case x := <-e.exchanges:
		return x
	case <-time.After(testTimeout):
		t.Fatal("no exchange recorded")
		return Exchange{}
	}
}

// do sends a request to the sim and returns status, headers and body.
func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), testTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return do(t, req)
}

// continueFor returns the plain CONTINUE reply matching req.
func continueFor(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
	return replyFor(req, &extprocv3.CommonResponse{})
}

// replyFor returns the reply of the matching type carrying cr.
func replyFor(req *extprocv3.ProcessingRequest, cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{HeaderMutation: cr.GetHeaderMutation()}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{HeaderMutation: cr.GetHeaderMutation()}}}
	}
	return &extprocv3.ProcessingResponse{}
}

// echoScript answers every message with CONTINUE.
func echoScript(st *scriptStream) error {
	for {
		req := st.recv()
		if req == nil {
			return nil
		}
		if err := st.send(continueFor(req)); err != nil {
			return err
		}
	}
}

// setHeader builds a set_headers entry with raw_value and optional append.
func setHeader(key, value string, appendValue ...bool) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
	if len(appendValue) > 0 {
		o.Append = wrapperspb.Bool(appendValue[0])
	}
	return o
}

// kinds lists the oneof case names of the messages sent in an exchange.
func kinds(msgs []*extprocv3.ProcessingRequest) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		switch m.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			out = append(out, "request_headers")
		case *extprocv3.ProcessingRequest_RequestBody:
			out = append(out, "request_body")
		case *extprocv3.ProcessingRequest_RequestTrailers:
			out = append(out, "request_trailers")
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			out = append(out, "response_headers")
		case *extprocv3.ProcessingRequest_ResponseBody:
			out = append(out, "response_body")
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			out = append(out, "response_trailers")
		}
	}
	return out
}

// headerValues returns the raw values of key in a proto header map.
func headerValues(m *corev3.HeaderMap, key string) []string {
	var out []string
	for _, h := range m.GetHeaders() {
		if h.GetKey() == key {
			out = append(out, string(h.GetRawValue()))
		}
	}
	return out
}

// fakeClock hands out timers the test fires by hand.
type fakeClock struct {
	timers chan *fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	c       chan time.Time
	mu      sync.Mutex
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{timers: make(chan *fakeTimer, 256)} }

func (c *fakeClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	ft := &fakeTimer{d: d, c: make(chan time.Time, 1)}
	c.timers <- ft
	return ft.c, func() {
		ft.mu.Lock()
		ft.stopped = true
		ft.mu.Unlock()
	}
}

// next returns the next timer the sim created.
func (c *fakeClock) next(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case ft := <-c.timers:
		return ft
	case <-time.After(testTimeout):
		t.Fatal("no timer created")
		return nil
	}
}

func (ft *fakeTimer) fire() {
	ft.c <- time.Now()
}

func (ft *fakeTimer) isStopped() bool {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.stopped
}

// startEchoExtProc serves echoScript and returns its address.
func startEchoExtProc(tb testing.TB) string {
	tb.Helper()
	_, addr := startExtProc(tb, echoScript)
	return addr
}

// startOKUpstream serves 200 "ok" and returns its URL.
func startOKUpstream(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// scaledClock is a real clock whose timers run factor times longer.
type scaledClock struct{ factor int }

func (c scaledClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	return realClock{}.Timer(d * time.Duration(c.factor))
}
