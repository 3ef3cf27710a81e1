package main

import (
	"fmt"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
)

// front is the Envoy in front of the ext_proc server under test.
type front interface {
	Start() (baseURL string, err error)
	Close() error
	// MessagesSent is the number of ext_proc messages sent so far.
	MessagesSent() uint64
}

// newFront builds a front; newSimFront is the real one.
type newFront func(filter *extprocfilterv3.ExternalProcessor, extProcAddr, upstream string) (front, error)

type simFront struct{ *envoysim.Sim }

func (s simFront) MessagesSent() uint64 { return s.Stats().StreamMsgsSent }

func newSimFront(filter *extprocfilterv3.ExternalProcessor, extProcAddr, upstream string) (front, error) {
	sim, err := envoysim.New(envoysim.Config{Filter: filter, ExtProcAddr: extProcAddr, Upstream: upstream})
	if err != nil {
		return nil, fmt.Errorf("envoysim: %w", err)
	}
	return simFront{sim}, nil
}

var _ newFront = newSimFront

// loadMessageTimeout replaces Envoy's 200ms message_timeout in both
// configurations: on a shared 2-core machine a scheduling stall can exceed
// 200ms, and this test measures throughput and latency, not timeouts (a
// timeout would still show as an error, a 504).
const loadMessageTimeout = 5 * time.Second

// naiveFilter is Envoy's straightforward configuration: every phase sent,
// both bodies buffered.
func naiveFilter() *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		MessageTimeout: durationpb.New(loadMessageTimeout),
	}
}

// shippedFilter is Tollgate's downstream filter exactly as the control
// plane renders it for cfg (controlplane/translate): request and response
// headers sent, bodies buffered, allow_mode_override. Only
// message_timeout is replaced (see loadMessageTimeout).
func shippedFilter(cfg *config.Config) *extprocfilterv3.ExternalProcessor {
	f := translate.DownstreamExtProc(cfg)
	f.MessageTimeout = durationpb.New(loadMessageTimeout)
	return f
}
