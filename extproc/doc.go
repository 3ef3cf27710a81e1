// Package extproc is Tollgate's Envoy external processor: a gRPC
// envoy.service.ext_proc.v3.ExternalProcessor service that runs one small
// state machine per HTTP request (one gRPC stream), in one of two roles chosen
// by the stream's initial metadata (x-tollgate-role):
//
//   - downstream (default): authenticates the tenant, resolves the model
//     alias and sets x-tollgate-route with clear_route_cache, runs the request
//     stages (guardrails, cache, budget reservation), then on the response
//     meters usage into USD, settles the reservation and (for SSE) processes
//     the stream chunk by chunk;
//   - upstream: runs once per attempt inside a target cluster, rewrites the
//     body's model to the target's model, injects the provider credential and
//     reports which provider/model served.
//
// The package speaks the protocol; the LLM work lives in pkg/ (llm, meter,
// guard, cache). Every stage is timed into tollgate_stage_duration_seconds.
package extproc
