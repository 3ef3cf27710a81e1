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
	// TLS, when set, makes the LLM listener terminate TLS.
	TLS *ListenerTLS `yaml:"tls"`
	// AccessLog, when set, writes one access-log line per request.
	AccessLog *AccessLog `yaml:"access_log"`
}

// ListenerTLS is the listener's certificate and key (PEM files on the Envoy
// host, read by Envoy).
type ListenerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// AccessLog is Envoy's file access log of the LLM listener.
type AccessLog struct {
	// Path is the file Envoy appends to ("/dev/stdout" for container logs).
	Path string `yaml:"path"`
	// JSON writes one JSON object per line instead of Envoy's text format.
	JSON bool `yaml:"json"`
}

// WasmFilter locates the compiled tollgate-router.wasm for Envoy.
type WasmFilter struct {
	Enabled bool   `yaml:"enabled"`
	Path    string `yaml:"path"`
	SHA256  string `yaml:"sha256"`
}
