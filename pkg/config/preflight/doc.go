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
//
// Use:
//
//	cfg, err := config.Load(path)
//	built, warnings, err := preflight.Check(cfg, preflight.Options{Env: preflight.EnvWarn})
//	// err: config.Problems, one line each; refuse to start (or, on a
//	// reload, keep the running config). warnings: log them.
//	// built.Catalog, built.InGuard, built.OutGuard, built.Prompts,
//	// built.Router and built.Cache are what the server runs with.
//
// The builders (BuildCatalog, BuildGuard, BuildRouter, RouteConfig,
// CacheConfig) are exported for callers that build one part.
package preflight
