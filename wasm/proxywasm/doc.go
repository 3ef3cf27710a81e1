// Package proxywasm is a thin binding of the proxy-wasm ABI 0.2.1 for Go
// modules built by the standard toolchain (GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared), covering only what Tollgate's router filter uses:
// VM/plugin/stream lifecycle, request and response header maps, the plugin
// configuration buffer, properties, local replies, logging and counters.
//
// Guest callbacks are //go:wasmexport functions that dispatch to the Plugin
// registered with SetNewPlugin (call it from init: in c-shared mode main never
// runs and init runs inside _initialize). Host calls are //go:wasmimport
// functions wrapped in ordinary Go functions returning errors.
//
// Rules the binding follows and callers must too:
//   - no fmt, os or time anywhere in the module (size, and the Go runtime then
//     reaches WASI poll_oneoff at GC, which older Envoy hosts fail);
//   - no host call other than Log from init or from proxy_on_memory_allocate
//     (Envoy's restricted callbacks trap the VM);
//   - no goroutines, timers or sleeps: nothing runs between callbacks;
//   - a panic traps and poisons the VM: handlers return errors instead.
//
// Buffers the host hands back are allocated through proxy_on_memory_allocate,
// kept referenced ("pinned") by the binding until the host call that filled
// them returns, then owned by the caller.
//
// Scratch buffers: during a stream callback (request or response headers)
// those buffers come from one scratch area per VM that the next stream
// callback reuses, so the header map costs no allocation. The area is zeroed
// when the callback returns (no API key outlives its request in linear
// memory); a value from it passed to ReplaceHeader is first copied out of it
// (Envoy copies during the call, but proxytest keeps a view until it reads the
// header map back). Strings and slices from AppendHeaders, HeaderValue and Property are
// therefore valid only until the callback returns and must be copied to be
// kept. Buffers read elsewhere (the plugin configuration) are fresh
// allocations owned by the caller.
//
// Because exports are package-level functions, the binding keeps the VM's
// contexts in one package-level value: the only package state in the project,
// forced by the ABI shape.
//
// The pure parts (constants, the header-pair wire format) build on every
// platform so they are unit-tested natively; the ABI itself builds only for
// wasip1.
package proxywasm
