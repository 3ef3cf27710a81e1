// Package envoy holds the configuration files users apply (Envoy, Istio, Envoy
// Gateway) and the embedded default tollgate.yaml.
package envoy

import _ "embed"

// DefaultConfig is envoy/tollgate.yaml, the configuration `tollgate extproc`
// runs on when no --config is given.
//
//go:embed tollgate.yaml
var DefaultConfig []byte
