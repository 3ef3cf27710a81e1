package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// continueServer is a hand-written ext_proc peer for this test: CONTINUE to
// every message (the real one is the passthrough binary, a separate main).
type continueServer struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (continueServer) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	cont := &extprocv3.CommonResponse{}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &extprocv3.ProcessingResponse{}
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cont}}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cont}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: cont}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: cont}}
		default:
			return errors.New("unexpected message")
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// TestLoadThroughEnvoySim drives both filter configurations through the
// real emulator and fake provider with a fixed batch of concurrent
// exchanges: every request succeeds and reaches the provider, and the
// emulator sends exactly 4 messages per exchange in both modes. Counting a fixed batch (not a timed window) keeps the count
// exact however slow the machine is.
func TestLoadThroughEnvoySim(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, continueServer{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	provider, upstream := fakeprovider.StartTest(t, fakeprovider.Options{NoRecording: true})

	cfg, err := config.Parse("default.yaml", envoy.DefaultConfig)
	require.NoError(t, err)
	body, err := chatBody(2048)
	require.NoError(t, err)

	tests := []struct {
		name     string
		filter   *extprocfilterv3.ExternalProcessor
		wantMsgs uint64
	}{
		{"naive", naiveFilter(), 4},
		// Request headers are sent too: Envoy must hold them until the
		// body reply (RATIONALE.md), so the shipped mode is 4 messages.
		{"shipped", shippedFilter(cfg), 4},
	}
	const workers, perWorker = 2, 10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := newSimFront(tt.filter, ln.Addr().String(), upstream)
			require.NoError(t, err)
			base, err := f.Start()
			require.NoError(t, err)
			t.Cleanup(func() { _ = f.Close() })

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			calls0, msgs0 := provider.Calls(), f.MessagesSent()
			errs := make(chan error, workers*perWorker)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range perWorker {
						errs <- doRequest(ctx, &http.Client{}, base+"/v1/chat/completions",
							http.Header{"Content-Type": {"application/json"}}, body)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			const exchanges = workers * perWorker
			assert.Equal(t, exchanges, provider.Calls()-calls0, "every request reached the provider")
			// The emulator waits for each ext_proc reply before it forwards
			// the response, so every message of a finished exchange was sent.
			assert.Equal(t, tt.wantMsgs*exchanges, f.MessagesSent()-msgs0, "ext_proc messages for %d exchanges", exchanges)
		})
	}
}
