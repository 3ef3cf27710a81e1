// Package translate turns a validated tollgate config into Envoy v3 resources.
//
// It is a pure function of the config: no I/O, no clocks. The ext_proc filter
// configs built here are the single source of the processing modes Tollgate
// ships; the static configs in envoy/ and the Envoy emulator in test/envoysim
// use the same values (tests compare them).
//
// Translation runs in stages: config.Config (validated by pkg/config) ->
// Model (BuildModel: addresses parsed, names decided, aliases sorted) ->
// Resources (Model.Envoy or Model.GRPC), each resource checked with
// ValidateAll. One file per part: listener.go (the HTTP filter order, decided
// in httpFilters), route.go (alias routes, retry policy, 404), cluster.go
// (aggregate, target and ext_proc clusters), wasm.go, bootstrap.go (the
// minimal bootstrap a plain Envoy starts from), static.go (every resource
// inline in one bootstrap, no control plane), render.go (stable YAML).
package translate
