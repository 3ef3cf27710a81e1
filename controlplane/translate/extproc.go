package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// ExtProcCluster is the name of the Envoy cluster that reaches `tollgate extproc`.
const ExtProcCluster = "tollgate_extproc"

// DownstreamProcessingMode is the shipped mode of the downstream filter.
// Request headers are SENT: Envoy then holds them (and the router) until the
// body reply, so the route chosen from the body's model and the header
// mutations of the body reply (credential removal, x-tollgate-*,
// content-length) take effect. With SKIP, Envoy's ext_proc decodeHeaders
// returns Continue, the router picks the route before the body reaches the
// server, and body-reply header mutations are dropped
// (ext_proc.cc Filter::decodeHeaders; processor_state.cc
// processHeaderMutationIfAvailable). The response headers are sent because
// the server decides there, with mode_override, whether the response body is
// buffered JSON, streamed SSE or not needed at all.
func DownstreamProcessingMode() *extprocv3.ProcessingMode {
	return &extprocv3.ProcessingMode{
		RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
		RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
		RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
		ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
		ResponseBodyMode:    extprocv3.ProcessingMode_BUFFERED,
		ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
	}
}

// UpstreamProcessingMode is the shipped mode of the upstream filter: request
// headers sent (held until the body reply, so the provider credential set
// there applies), the request body buffered (the model is rewritten for the
// attempt's target), and the response headers, so that the server knows
// which attempts a provider answered: an attempt cut by per_try_timeout
// never has response headers, and a provider bills the prompt it received
// (the downstream role learns the serving target from
// contract.DownstreamResponseAttributes and meters the answer).
func UpstreamProcessingMode() *extprocv3.ProcessingMode {
	return &extprocv3.ProcessingMode{
		RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
		RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
		RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
		ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
		ResponseBodyMode:    extprocv3.ProcessingMode_NONE,
		ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
	}
}

// DownstreamExtProc is the ext_proc filter config for the downstream role.
func DownstreamExtProc(c *config.Config) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService:        grpcService(contract.RoleDownstream, c),
		FailureModeAllow:   c.FailureMode.ExtProc == config.Open,
		ProcessingMode:     DownstreamProcessingMode(),
		ResponseAttributes: contract.DownstreamResponseAttributes(),
		MessageTimeout:     durationpb.New(c.XDS.MessageTimeout),
		AllowModeOverride:  true,
		StatPrefix:         "tollgate",
		// The server writes {"tollgate": {"route": alias, "tenant": id}} as
		// dynamic metadata when it admits a request; routes match on it, so
		// a client can never reach a provider by sending x-tollgate-route
		// itself (dynamic metadata cannot come from the client).
		MetadataOptions: &extprocv3.MetadataOptions{
			ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{contract.MetadataNamespace}},
		},
	}
}

// UpstreamExtProc is the ext_proc filter config for the upstream role, run
// once per attempt in the upstream filter chain of each alias's aggregate
// cluster (Envoy builds that chain from the route's cluster,
// upstream_request.cc UpstreamRequest::UpstreamRequest): it rewrites "model"
// for the chosen host's target and injects the provider credential.
func UpstreamExtProc(c *config.Config) *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService:       grpcService(contract.RoleUpstream, c),
		FailureModeAllow:  c.FailureMode.ExtProc == config.Open,
		ProcessingMode:    UpstreamProcessingMode(),
		RequestAttributes: contract.UpstreamRequestAttributes(),
		MessageTimeout:    durationpb.New(c.XDS.MessageTimeout),
		StatPrefix:        "tollgate_upstream",
		// The downstream role's {"tollgate": {"route", "tenant"}} reaches
		// each attempt as metadata_context (the upstream filter shares the
		// request's stream info), so a timed-out attempt is billed to the
		// right tenant.
		MetadataOptions: &extprocv3.MetadataOptions{
			ForwardingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{contract.MetadataNamespace}},
		},
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
			{Key: contract.RoleHeader, Value: role},
		},
	}
}
