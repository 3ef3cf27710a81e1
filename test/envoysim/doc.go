// Package envoysim emulates Envoy's side of the ext_proc protocol
// (envoy.service.ext_proc.v3.ExternalProcessor/Process) so that Tollgate's
// ext_proc server can be tested without an Envoy binary.
//
// A Sim is an HTTP front that behaves like an Envoy listener with one
// ext_proc HTTP filter followed by the router: for every incoming HTTP
// request it opens one gRPC stream to the ext_proc server (lazily, at the
// first message), runs the request phases the configured ProcessingMode
// asks for, picks a route, forwards the request upstream, runs the response
// phases and writes the result to the client. Header maps, mutation rules,
// body modes (NONE, BUFFERED, STREAMED), mode overrides, immediate
// responses, dynamic metadata (receiving namespaces), clear_route_cache,
// message_timeout, failure_mode_allow and spurious message handling follow
// Envoy's behaviour; README.md lists each behaviour with the Envoy source or
// test it comes from, and what is not modelled.
//
// Routing can follow dynamic metadata (Config.MetadataRoutes, like a
// RouteMatch.dynamic_metadata matcher): a route has ordered targets (an
// aggregate cluster's priorities) and a retry policy, and with
// Config.UpstreamFilter every attempt runs its own upstream ext_proc side
// stream, as in a cluster's upstream filter chain. FromTollgate builds both
// filters and the routes from a Tollgate config the way the control plane
// does; DefaultFilter is the downstream filter Tollgate ships.
//
// The filter configuration is the real Envoy proto
// (envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor), so tests
// can load the same YAML Tollgate ships. Every exchange can be observed
// through Config.OnExchange (including each upstream attempt), and filter
// statistics through Sim.Stats.
package envoysim
