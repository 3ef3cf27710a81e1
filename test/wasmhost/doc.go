// Package wasmhost is a proxy-wasm (ABI 0.2.1) host on wazero for testing
// Tollgate's compiled router module (wasm/) the way Envoy runs it, without
// Envoy.
//
// What it emulates: it calls _initialize (Go c-shared reactors need it;
// wazero's default start function is _start), drives the context lifecycle
// (context_create -> vm_start -> configure, then per stream context_create ->
// request_headers -> response_headers -> done -> log -> delete), hands buffers
// to the guest through a re-entrant proxy_on_memory_allocate call, and
// implements the env host calls the filter imports with api.GoModuleFunc.
// Envoy's restricted callbacks are enforced: during _initialize and during
// proxy_on_memory_allocate any host call except proxy_log (and WASI proc_exit
// at any time) traps the VM and is recorded as a violation. WASI poll_oneoff
// can answer like proxy-wasm-cpp-host after PR #533 (success, zero events) or
// like Envoy 1.33-1.38 (ENOSYS, which makes the Go runtime abort), and every
// call is counted.
//
// Build compiles the module with the standard toolchain; Host compiles it once
// (optionally cached on disk) and instantiates VMs from it.
package wasmhost
