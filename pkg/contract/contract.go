// Package contract holds the names Tollgate's components agree on: the
// headers the ext_proc server sets and clients or platforms read, the
// dynamic-metadata namespace routes match on, the endpoint metadata that
// names a target, the gRPC role of an ext_proc stream and the CEL
// attributes each role asks Envoy for. The control plane writes them into
// Envoy's configuration and the ext_proc server reads them back, so both
// import them from here.
package contract

// Headers of the contract in docs/ARCHITECTURE.md.
const (
	HeaderTenant     = "x-tollgate-tenant"
	HeaderTier       = "x-tollgate-tier"
	HeaderKeyID      = "x-tollgate-key-id"
	HeaderRoute      = "x-tollgate-route" // the model alias; Envoy routes match MetadataRoute instead
	HeaderCache      = "x-tollgate-cache"
	HeaderSimilarity = "x-tollgate-cache-similarity"
	HeaderCost       = "x-tollgate-cost-usd"
	HeaderProvider   = "x-tollgate-provider"
	HeaderModel      = "x-tollgate-model"
	HeaderEstimated  = "x-tollgate-usage-estimated"
	// HeaderTokensSaved carries the prompt tokens compression removed, on
	// responses to requests that had compression on.
	HeaderTokensSaved = "x-tollgate-tokens-saved"
	// HeaderGuardrails says whether guardrails changed the exchange:
	// "redacted-input", "redacted-output", both comma-separated, or "none";
	// absent when guardrails are off.
	HeaderGuardrails = "x-tollgate-guardrails"
	// HeaderPrefix starts every Tollgate header; a client cannot send one
	// to a provider.
	HeaderPrefix = "x-tollgate-"
)

// MetadataNamespace is the dynamic-metadata namespace the downstream role
// writes (keys MetadataRoute, MetadataTenant and, for a virtual key with a
// budget of its own, MetadataAccount), routes match on and the upstream role
// reads back. The provider endpoints carry static metadata in
// the same namespace (keys HostProvider and HostModel) naming the target
// they serve.
const (
	MetadataNamespace = "tollgate"
	MetadataRoute     = "route"
	MetadataTenant    = "tenant"
	MetadataAccount   = "account"
	HostProvider      = "provider"
	HostModel         = "model"
)

// RoleHeader is the gRPC initial-metadata key that tells the ext_proc server
// which role a stream plays; values RoleDownstream and RoleUpstream.
const (
	RoleHeader     = "x-tollgate-role"
	RoleDownstream = "downstream"
	RoleUpstream   = "upstream"
)

// HostAttribute is the CEL attribute that reads key from the metadata of the
// upstream host Envoy chose for the current attempt (an endpoint of one of
// the aggregate cluster's member clusters). Envoy evaluates
// xds.upstream_host_metadata from the stream's upstream info
// (source/extensions/filters/common/expr/context.cc, XDSLookupValues), which
// the router sets per attempt (source/common/router/upstream_request.cc).
func HostAttribute(key string) string {
	return "xds.upstream_host_metadata.filter_metadata['" + MetadataNamespace + "']['" + key + "']"
}

// RequestIDAttribute is Envoy's x-request-id as a CEL attribute.
const RequestIDAttribute = "request.id"

// UpstreamRequestAttributes tell the upstream role which target an attempt
// goes to: the chosen host's provider and model. xds.cluster_name is the
// route's (aggregate) cluster on every attempt, so it cannot name the target.
func UpstreamRequestAttributes() []string {
	return []string{HostAttribute(HostProvider), HostAttribute(HostModel), RequestIDAttribute}
}

// CodeDetailsAttribute is the response's code details: "via_upstream" for a
// provider's answer, the reason of an Envoy local reply otherwise (for
// example "upstream_per_try_timeout").
const CodeDetailsAttribute = "response.code_details"

// DownstreamResponseAttributes tell the downstream role, with the response
// headers, which target served the final attempt (prices follow it) and
// why Envoy answered itself, when it did.
func DownstreamResponseAttributes() []string {
	return []string{HostAttribute(HostProvider), HostAttribute(HostModel), CodeDetailsAttribute}
}
