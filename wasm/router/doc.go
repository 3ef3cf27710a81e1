// Package router holds Tollgate's header-routing decision for the proxy-wasm
// filter as plain Go: no ABI imports, so it runs natively in unit tests and,
// unchanged, inside the wasip1 module.
//
// Flow: ParseConfig validates the plugin configuration JSON once (at plugin
// start) and returns a Router; Router.Decide turns one request's headers into
// a Decision: headers to remove (every client-sent x-tollgate-*), headers to
// set (x-tollgate-tenant, -tier, -key-id, -route) or an OpenAI-shaped local
// reply (401, 403, 404), plus the Outcome that names the decision metric.
//
// The package imports no fmt, os or time (see the wasm/README.md gotchas), so
// it also carries its own SHA-256.
package router
