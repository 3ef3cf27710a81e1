package config

import "time"

// XDS configures `tollgate xds`, the control plane that turns this file into
// Envoy listeners, routes and clusters.
type XDS struct {
	// Listen is the ADS gRPC address of `tollgate xds`.
	Listen string `yaml:"listen"`
	// Listener is the address Envoy's LLM listener binds, e.g. 0.0.0.0:10000.
	Listener string `yaml:"listener"`
	// ExtProcTarget is how Envoy reaches `tollgate extproc` ("host:port" or
	// "unix:/path"); defaults to listen.extproc.
	ExtProcTarget string `yaml:"extproc_target"`
	// MessageTimeout is ext_proc's message_timeout (Envoy default 200ms).
	MessageTimeout time.Duration `yaml:"message_timeout"`
	// Wasm enables the proxy-wasm header router in front of ext_proc.
	Wasm WasmFilter `yaml:"wasm"`
}

// WasmFilter locates the compiled tollgate-router.wasm for Envoy.
type WasmFilter struct {
	Enabled bool   `yaml:"enabled"`
	Path    string `yaml:"path"`
	SHA256  string `yaml:"sha256"`
}
