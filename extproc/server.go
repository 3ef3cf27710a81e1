package extproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// Budgets reserves worst-case cost before a request is sent and settles it
// to the actual cost afterwards. *meter.Budgets implements it.
type Budgets interface {
	Reserve(ctx context.Context, tenant string, amount meter.Money, id string) (*meter.Reservation, error)
	Charge(ctx context.Context, tenant string, amount meter.Money, id string) error
	Spent(ctx context.Context, tenant string) (meter.Spend, error)
	CapsFor(tenant string) meter.Caps
}

// TokenCounter counts tokens with a real tokenizer (for streams cut before
// the provider's usage arrived). *meter.Tokenizer implements it.
type TokenCounter interface {
	CountTokens(model, text string) (int64, error)
}

// Options wires a Server. Config, Catalog and Metrics are required.
type Options struct {
	Config  *config.Config
	Catalog *meter.Catalog
	Budgets Budgets       // nil: no budgets enforced
	Limits  RateLimiter   // nil: no rate limits enforced
	Cache   ResponseCache // nil: no response cache
	Audit   AuditLog      // nil: no audit trail
	Tracer  trace.Tracer  // nil: no spans (a no-op tracer)
	Tokens  TokenCounter  // nil: cut streams are estimated from byte counts
	Keys    KeyLookup     // nil: virtual keys off
	Metrics *telemetry.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	// Getenv reads provider credentials for the upstream role (default os.Getenv).
	Getenv func(string) string
}

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	rt      atomic.Pointer[runtime]
	metrics *telemetry.Metrics
	log     *slog.Logger
	now     func() time.Time
	budgets Budgets
	limiter RateLimiter
	tokens  TokenCounter
	cache   ResponseCache
	audit   AuditLog
	tracer  trace.Tracer
	tracing bool
	stages  map[string]prometheus.Observer // tollgate_stage_duration_seconds by stage, resolved once
	models  *eval.ModelTracker             // provider-reported model per alias/target
	// autoEval runs golden sets when the model behind an alias changes
	// (eval.auto; nil: off). Set by Run before serving.
	autoEval *autoEval

	// reservation ids: unique per process even when clients reuse x-request-id
	idPrefix string
	idSeq    atomic.Uint64
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// New builds a Server from opts.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Catalog == nil || opts.Metrics == nil {
		return nil, errors.New("extproc: Config, Catalog and Metrics are required")
	}
	s := &Server{
		metrics: opts.Metrics,
		log:     opts.Logger,
		now:     opts.Now,
		budgets: opts.Budgets,
		limiter: opts.Limits,
		tokens:  opts.Tokens,
		cache:   opts.Cache,
		audit:   opts.Audit,
		tracer:  opts.Tracer,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.models = eval.NewModelTracker(0, s.now)
	names := stageNames()
	s.stages = make(map[string]prometheus.Observer, len(names))
	for _, name := range names {
		s.stages[name] = s.metrics.StageDuration.WithLabelValues(name)
	}
	s.tracing = s.tracer != nil
	if s.tracer == nil {
		s.tracer = noop.NewTracerProvider().Tracer(telemetry.TracerName)
	}
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	s.idPrefix = hex.EncodeToString(nonce[:]) + "-"
	rt, err := newRuntime(opts.Config, opts.Catalog, opts.Getenv)
	if err != nil {
		return nil, err
	}
	rt.tenants.virtual = opts.Keys
	s.rt.Store(rt)
	return s, nil
}

// Reload swaps in a new configuration for streams that start after it.
func (s *Server) Reload(c *config.Config, catalog *meter.Catalog) error {
	rt, err := newRuntime(c, catalog, s.rt.Load().getenv)
	if err != nil {
		return err
	}
	rt.tenants.virtual = s.rt.Load().tenants.virtual
	s.rt.Store(rt)
	return nil
}

// Process runs one ext_proc stream: one HTTP request.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	ctx := stream.Context()
	role := roleOf(ctx)
	s.metrics.Streams.WithLabelValues(role).Inc()
	defer s.metrics.Streams.WithLabelValues(role).Dec()

	var h handler
	if role == contract.RoleUpstream {
		h = newUpstream(s, s.rt.Load())
	} else {
		h = newDownstream(s, s.rt.Load())
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			// io.EOF: Envoy half-closed after the exchange; anything else
			// (cancelled context, reset) means the client or Envoy went away.
			h.finish(ctx, !errors.Is(err, io.EOF) || !h.complete())
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		resp, err := h.handle(ctx, req)
		if err != nil {
			var pe *protocolError
			if errors.As(err, &pe) {
				s.metrics.ProtocolErrors.WithLabelValues(pe.reason).Inc()
				s.log.Warn("ext_proc protocol violation; closing stream", "role", role, "reason", pe.reason, "detail", pe.detail)
				h.finish(ctx, true)
				return status.Error(codes.FailedPrecondition, pe.Error())
			}
			h.finish(ctx, true)
			return status.Error(codes.Internal, err.Error())
		}
		if err := stream.Send(resp); err != nil {
			h.finish(ctx, true)
			return err
		}
	}
}

// RecoverStream is a gRPC stream interceptor that turns a panic in a stream
// handler into a codes.Internal error on that stream (counted and logged),
// so a bug in one request can never take the process and every other
// in-flight request down with it.
func (s *Server) RecoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.metrics.Failures.WithLabelValues("extproc_panic", "closed").Inc()
			s.log.Error("panic in ext_proc stream; stream closed", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(srv, ss)
}

// handler is one stream's state machine.
type handler interface {
	handle(ctx context.Context, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error)
	// complete reports whether the exchange reached its natural end.
	complete() bool
	// finish runs once when the stream ends; aborted means it ended early.
	finish(ctx context.Context, aborted bool)
}

// protocolError is a message Envoy would never send in the current state.
type protocolError struct {
	reason string // bounded metric label
	detail string
}

func (e *protocolError) Error() string { return "unexpected ext_proc message: " + e.detail }

func roleOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(contract.RoleHeader); len(v) > 0 && v[0] == contract.RoleUpstream {
		return contract.RoleUpstream
	}
	return contract.RoleDownstream
}

// kindOf names the oneof case of a request, for errors and metrics.
func kindOf(req *extprocv3.ProcessingRequest) string {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return "response_trailers"
	}
	return "empty"
}

// reservationID is unique per reservation: the request id (for finding it
// in the ledger) plus a per-process sequence.
func (s *Server) reservationID(requestID string) string {
	id := s.idPrefix + strconv.FormatUint(s.idSeq.Add(1), 36)
	if requestID != "" {
		id = truncate(requestID, 64) + "/" + id
	}
	return id
}

// observeStage records one stage's duration.
func (s *Server) observeStage(stage string, d time.Duration) {
	o, ok := s.stages[stage]
	if !ok {
		o = s.metrics.StageDuration.WithLabelValues(stage)
	}
	o.Observe(d.Seconds())
}

// timeStage observes one stage's duration.
func (s *Server) timeStage(stage string, start time.Time) { s.observeStage(stage, time.Since(start)) }
