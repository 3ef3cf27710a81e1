// Package preflight builds, without serving anything, every part that
// `tollgate extproc` builds from a loaded config (the price catalog, the
// guardrails, the prompt registry, the complexity router, the cache
// settings) and checks what a config cannot say about itself: that each
// target has a price, that the named catalogs exist, that the ledger's
// directory exists, that the environment variables it names are set, and
// that the Envoy-facing addresses parse. `tollgate validate` and startup
// share it, so a config that validates is a config that starts.
//
// Every problem is a config.Problem with the file and line of the key.
package preflight
