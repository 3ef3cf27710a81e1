package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// ExtProcCluster is the name of the Envoy cluster that reaches `tollgate extproc`.
const ExtProcCluster = "tollgate_extproc"

// MetadataNamespace is the dynamic-metadata namespace the downstream role
// writes (keys MetadataRoute and MetadataTenant) and routes match on.
const (
	MetadataNamespace = "tollgate"
	MetadataRoute     = "route"
	MetadataTenant    = "tenant"
)

// RoleHeader is the gRPC initial-metadata key that tells the ext_proc server
// which role a stream plays; values RoleDownstream and RoleUpstream.
const (
	RoleHeader     = "x-tollgate-role"
	RoleDownstream = "downstream"
	RoleUpstream   = "upstream"
)

// DownstreamHeaderAttributes are the request headers the downstream role
// reads. They travel as request_attributes on the body message instead of in
// a request_headers phase, which saves one gRPC round trip per request (see
// RATIONALE.md). Each is a CEL map index: Envoy renders a whole map attribute
// such as "request.headers" as the string "CelMap value", so headers must be
// named one by one.
var DownstreamHeaderAttributes = []string{
	"authorization", "x-api-key", "content-length", "cache-control",
	"x-tollgate-tenant", "x-tollgate-tier", "x-tollgate-key-id",
	"x-tollgate-prompt", "x-tollgate-prompt-vars", "traceparent",
}

// DownstreamRequestAttributes are sent with the first request-direction message.
var DownstreamRequestAttributes = downstreamAttributes()

func downstreamAttributes() []string {
	attrs := []string{"request.path", "request.method", "request.id"}
	for _, h := range DownstreamHeaderAttributes {
		attrs = append(attrs, "request.headers['"+h+"']")
	}
	return attrs
}

// UpstreamRequestAttributes tell the upstream role which target an attempt goes to.
var UpstreamRequestAttributes = []string{"xds.cluster_name", "request.id"}

// DownstreamProcessingMode is the shipped mode of the downstream filter:
// request headers skipped (they arrive as attributes on the body message),
// request body buffered, response headers sent (the server decides there,
// with mode_override, whether the response body is buffered JSON, streamed
// SSE, or not needed at all), response body buffered by default.
func DownstreamProcessingMode() *extprocv3.ProcessingMode {
	return &extprocv3.ProcessingMode{
		RequestHeaderMode:   extprocv3.ProcessingMode_SKIP,
		RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
		RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
		ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
		ResponseBodyMode:    extprocv3.ProcessingMode_BUFFERED,
		ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
	}
}

// DownstreamExtProc is the ext_proc filter config for the downstream role.
func DownstreamExtProc(c *config.Config) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService:       grpcService(RoleDownstream, c),
		FailureModeAllow:  c.FailureMode.ExtProc == config.Open,
		ProcessingMode:    DownstreamProcessingMode(),
		RequestAttributes: append([]string(nil), DownstreamRequestAttributes...),
		MessageTimeout:    durationpb.New(c.XDS.MessageTimeout),
		AllowModeOverride: true,
		StatPrefix:        "tollgate",
		// The server writes {"tollgate": {"route": alias, "tenant": id}} as
		// dynamic metadata when it admits a request; routes match on it, so
		// a client can never reach a provider by sending x-tollgate-route
		// itself (dynamic metadata cannot come from the client).
		MetadataOptions: &extprocv3.MetadataOptions{
			ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{MetadataNamespace}},
		},
	}
}

// UpstreamExtProc is the ext_proc filter config for the upstream role, run
// once per attempt in each target cluster's upstream filter chain: it
// rewrites "model" for the target, injects the provider credential and
// reports the provider/model that served on the response headers.
func UpstreamExtProc(c *config.Config) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService:      grpcService(RoleUpstream, c),
		FailureModeAllow: c.FailureMode.ExtProc == config.Open,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SKIP,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		RequestAttributes: append([]string(nil), UpstreamRequestAttributes...),
		MessageTimeout:    durationpb.New(c.XDS.MessageTimeout),
		StatPrefix:        "tollgate_upstream",
	}
}

func grpcService(role string, c *config.Config) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
			EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ExtProcCluster},
		},
		// No stream timeout: one stream lives as long as its HTTP request,
		// and streamed completions can run for minutes.
		InitialMetadata: []*corev3.HeaderValue{
			{Key: RoleHeader, Value: role},
		},
	}
}
