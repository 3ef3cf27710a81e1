package envoysim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// BenchmarkExchangeTollgateMode measures one full exchange in Tollgate's
// shipped mode (request_body, response_headers, response_body round trips)
// against an echo ext_proc server and a local upstream, all in-process.
func BenchmarkExchangeTollgateMode(b *testing.B) {
	addr := startEchoExtProc(b)
	up := startOKUpstream(b)
	// A generous timeout: on a loaded machine a 200ms message_timeout can
	// fire and the benchmark measures throughput, not timeouts.
	filter := DefaultFilter()
	filter.MessageTimeout = durationpb.New(10 * time.Second)
	sim, err := New(Config{Filter: filter, ExtProcAddr: addr, Upstream: up})
	if err != nil {
		b.Fatal(err)
	}
	base, err := sim.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	client := &http.Client{}
	payload := `{"model":"m","messages":[{"role":"user","content":"hello"}]}`
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkApplyHeaderMutation(b *testing.B) {
	checker, err := newMutationChecker(nil)
	if err != nil {
		b.Fatal(err)
	}
	m := &extprocv3.HeaderMutation{
		SetHeaders:    []*corev3.HeaderValueOption{setHeader("x-tollgate-route", "gpt"), setHeader(":path", "/v1/x"), setHeader("x-a", "3", true)},
		RemoveHeaders: []string{"authorization"},
	}
	base := baseHeaders()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := base.clone()
		if err := applyHeaderMutation(m, h, mutationParams{checker: checker, maxHeadersCount: 100, rejected: func() {}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalAttributes(b *testing.B) {
	req := baseHeaders()
	req.add("x-request-id", "rid")
	c := &attrContext{reqHeaders: req, remoteAddr: "127.0.0.1:1234"}
	exprs := DefaultFilter().GetRequestAttributes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = evalAttributes(exprs, c)
	}
}

// BenchmarkExchangeMetadataRouteWithRetry measures an exchange routed on
// dynamic metadata whose first target answers 429: two attempts, each with
// its own upstream ext_proc stream (request_body, response_headers), plus
// the downstream stream's three round trips.
func BenchmarkExchangeMetadataRouteWithRetry(b *testing.B) {
	_, addr := startExtProc(b, roleScript(routeScript("m"), echoScript))
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	b.Cleanup(busy.Close)
	ok := startOKUpstream(b)
	filter := receivingFilter("tollgate")
	filter.MessageTimeout = durationpb.New(10 * time.Second)
	upFilter := upstreamTestFilter()
	upFilter.MessageTimeout = durationpb.New(10 * time.Second)
	sim, err := New(Config{
		Filter: filter, UpstreamFilter: upFilter, ExtProcAddr: addr,
		MetadataRoutes: &MetadataRouting{Namespace: "tollgate", Key: "route", Routes: map[string]Route{"m": {
			Targets: []Target{{ClusterName: "t/0", URL: busy.URL}, {ClusterName: "t/1", URL: ok}},
			Retry:   tollgateRetry(2, 0),
		}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	base, err := sim.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	client := &http.Client{}
	payload := `{"model":"m","messages":[{"role":"user","content":"hello"}]}`
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(payload))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
