// Package jsonvalue is a small, strict JSON parser for code compiled to
// GOOS=wasip1: encoding/json pulls in fmt, os and time, which add ~0.75 MB to
// the module and make the Go runtime reach WASI poll_oneoff during GC (fatal on
// Envoy builds before proxy-wasm-cpp-host PR #533).
//
// Parse returns a tree of nil, bool, float64, string, []any and map[string]any.
// Duplicate object keys, trailing data, invalid UTF-8 escapes and nesting deeper
// than MaxDepth are errors.
package jsonvalue
