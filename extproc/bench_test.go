package extproc

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

func chat2KiB() string {
	var b strings.Builder
	b.WriteString(`{"model":"small","temperature":0.2,"max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"`)
	words := []string{"please", "summarise", "the", "quarterly", "report", "for", "our", "team", "meeting", "tomorrow"}
	for i := 0; b.Len() < 2040; i++ {
		b.WriteString(words[i%len(words)])
		b.WriteByte(' ')
	}
	b.WriteString(`"}]}`)
	return b.String()
}

const jsonResponse = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The quarterly report shows revenue up 12% with costs flat; the team should focus on the two open hiring requisitions."},"finish_reason":"stop"}],"usage":{"prompt_tokens":420,"completion_tokens":31,"total_tokens":451,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_1"}`

// runExchanges drives b.N exchanges of msgs over one gRPC client.
func runExchanges(b *testing.B, client extprocv3.ExternalProcessorClient, msgs []*extprocv3.ProcessingRequest) {
	b.Helper()
	runExchangesMD(b, client, nil, msgs)
}

// runExchangesMD is runExchanges with the stream's initial metadata.
func runExchangesMD(b *testing.B, client extprocv3.ExternalProcessorClient, md metadata.MD, msgs []*extprocv3.ProcessingRequest) {
	b.Helper()
	b.ReportAllocs()
	ctx := context.Background()
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	for b.Loop() {
		st, err := client.Process(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				b.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			b.Fatalf("want EOF, got %v", err)
		}
	}
}

// BenchmarkExchange is one whole metered exchange in the shipped mode
// (request headers, buffered request body, response headers, buffered JSON
// response body: four messages) over a real loopback gRPC connection: auth,
// parse, route, rewrite, response metering and metrics included.
func BenchmarkExchange(b *testing.B) {
	ts := startServer(b, nil)
	headers := map[string]string{}
	for k, v := range demoHeaders {
		headers[k] = v
	}
	headers["content-length"] = "2048"
	msgs := append(request(chat2KiB(), headers),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(jsonResponse),
	)
	runExchanges(b, ts.client, msgs)
}

// BenchmarkUpstreamAttempt is one attempt of the upstream role over a
// real loopback gRPC connection: request headers (credential), the 2 KiB
// buffered body ("model" rewrite), and, in the shipped mode, the response
// headers that tell an answered attempt from a timed-out one.
func BenchmarkUpstreamAttempt(b *testing.B) {
	ts := startServer(b, nil)
	attempt := func(withResponse bool) []*extprocv3.ProcessingRequest {
		h := requestHeaders(map[string]string{":path": "/v1/chat/completions", "authorization": "Bearer sk-tollgate-demo"}, false)
		h.Attributes = hostAttrs("fake", "gpt-4o-mini")
		msgs := []*extprocv3.ProcessingRequest{h, requestBody(chat2KiB())}
		for _, m := range msgs {
			m.MetadataContext = admissionMetadata("demo", "small")
		}
		if withResponse {
			msgs = append(msgs, responseHeaders(":status", "200", "content-type", "application/json"))
		}
		return msgs
	}
	md := metadata.Pairs(contract.RoleHeader, contract.RoleUpstream)
	for _, bc := range []struct {
		name     string
		response bool
	}{{"request_only", false}, {"shipped", true}} {
		b.Run(bc.name, func(b *testing.B) {
			runExchangesMD(b, ts.client, md, attempt(bc.response))
		})
	}
}

// passthrough replies CONTINUE to every message: the naive ext_proc server.
type passthrough struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (passthrough) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := st.Recv()
		if err != nil {
			return nil
		}
		var resp *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = requestHeadersReply(nil)
		case *extprocv3.ProcessingRequest_RequestBody:
			resp = requestBodyReply(nil)
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = responseHeadersReply(nil, nil)
		default:
			resp = responseBodyReply(nil)
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// BenchmarkPassthroughExchange is the reference: a server that does nothing,
// driven with Envoy's naive 4-phase mode (both headers and both bodies).
func BenchmarkPassthroughExchange(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, passthrough{})
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	reqHeaders := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}}
	msgs := []*extprocv3.ProcessingRequest{
		reqHeaders,
		requestBody(chat2KiB()),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(jsonResponse),
	}
	runExchanges(b, extprocv3.NewExternalProcessorClient(conn), msgs)
}

// BenchmarkGuardrailsHeader is the x-tollgate-guardrails header added to
// each response when guardrails are on.
func BenchmarkGuardrailsHeader(b *testing.B) {
	g, err := preflight.BuildGuard(config.GuardDirection{Enabled: true})
	if err != nil {
		b.Fatal(err)
	}
	d := &downstream{rt: &runtime{inGuard: g, outGuard: g}, guardState: guardState{inputRedacted: true, outputModified: true}}
	b.ReportAllocs()
	for b.Loop() {
		var m mutation
		d.setGuardrailsHeader(&m)
	}
}
