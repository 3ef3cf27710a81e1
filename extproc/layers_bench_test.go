package extproc_test

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/extproctest"
)

// everyLayerBody is a 2 KiB chat request whose user turn starts with n, so
// that no two requests share a prompt (as in real traffic).
func everyLayerBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Request `)
	b.WriteString(strconv.Itoa(n))
	b.WriteString(`: `)
	words := []string{"please", "summarise", "the", "quarterly", "report", "for", "the", "northern", "region", "and", "list", "the", "three", "largest", "risks"}
	for i := 0; b.Len() < 2040; i++ {
		b.WriteString(words[(i+n)%len(words)])
		b.WriteByte(' ')
	}
	b.WriteString(`"}]}`)
	return []byte(b.String())
}

const everyLayerAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Revenue rose 12% while costs stayed flat; the largest risks are supplier concentration, currency exposure and two open hiring requisitions."},"finish_reason":"stop"}],"usage":{"prompt_tokens":420,"completion_tokens":31,"total_tokens":451}}`

func headersMsg(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

// BenchmarkExchangeEveryLayer is one whole exchange with every layer of the
// embedded default configuration on (input and output guardrails, exact and
// semantic cache, metering, budgets, audit trail), a unique 2 KiB prompt per
// request, over a real loopback gRPC connection to extproc.Run. Profile it
// with -cpuprofile to see where a request's CPU goes.
func BenchmarkExchangeEveryLayer(b *testing.B) {
	cfg, err := config.Default()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cfg.Listen.ExtProc, cfg.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Budgets.Ledger.Path = dir + "/ledger.jsonl"
	cfg.Budgets.Tenants = nil
	cfg.Audit.Dir = dir + "/audit"
	addr := extproctest.Start(b, cfg, nil)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	reqHeaders := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
		Headers: headersMsg(":path", "/v1/chat/completions", ":method", "POST", "authorization", "Bearer sk-tollgate-demo", "content-type", "application/json"),
	}}}
	respHeaders := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
		Headers: headersMsg(":status", "200", "content-type", "application/json"),
	}}}
	respBody := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(everyLayerAnswer), EndOfStream: true}}}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		body := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: everyLayerBody(n), EndOfStream: true}}}
		st, err := client.Process(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range []*extprocv3.ProcessingRequest{reqHeaders, body, respHeaders, respBody} {
			if err := st.Send(m); err != nil {
				b.Fatal(err)
			}
			r, err := st.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if r.GetImmediateResponse() != nil {
				b.Fatalf("request %d answered by Tollgate: %v", n, r.GetImmediateResponse())
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
