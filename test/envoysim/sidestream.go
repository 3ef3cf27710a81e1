package envoysim

import (
	"context"
	"errors"
	"io"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"
)

// recvResult is one Recv outcome from the side stream.
type recvResult struct {
	resp *extprocv3.ProcessingResponse
	err  error // io.EOF: the server closed the stream with OK
}

// sideStream is the per-request gRPC stream, opened lazily at the first
// message like Envoy's ext_proc filter does.
type sideStream struct {
	fc     *filterConf
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	recv   chan recvResult
	done   chan struct{}
	closed bool
}

// open starts the stream with grpc_service.initial_metadata as gRPC
// metadata. The stream's context is derived from the HTTP request's, so a
// client disconnect resets it.
func (ss *sideStream) open(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	var kv []string
	for _, hv := range ss.fc.filter.GetGrpcService().GetInitialMetadata() {
		v := hv.GetValue()
		if len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		kv = append(kv, strings.ToLower(hv.GetKey()), v)
	}
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	stream, err := ss.fc.client.Process(ctx)
	if err != nil {
		cancel()
		return err
	}
	ss.stream = stream
	ss.cancel = cancel
	ss.recv = make(chan recvResult, 16)
	ss.done = make(chan struct{})
	go ss.receive(ctx)
	return nil
}

func (ss *sideStream) receive(ctx context.Context) {
	defer close(ss.done)
	for {
		resp, err := ss.stream.Recv()
		select {
		case ss.recv <- recvResult{resp: resp, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// send writes one message. An io.EOF from Send means the server already
// finished the stream; its status is then delivered by Recv, so send
// reports success and the caller's wait sees the status.
func (ss *sideStream) send(req *extprocv3.ProcessingRequest) error {
	err := ss.stream.Send(req)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// close half-closes and resets the stream (Envoy's default close at filter
// destroy and after an immediate response or error).
func (ss *sideStream) close() {
	if ss.stream == nil || ss.closed {
		return
	}
	ss.closed = true
	// CloseSend only fails when the stream is already broken.
	_ = ss.stream.CloseSend()
	ss.cancel()
	<-ss.done
}
