// Package envoy holds the configuration files users apply (Envoy, Istio, Envoy
// Gateway) and the embedded default tollgate.yaml.
package envoy

import "embed"

// DefaultConfig is envoy/tollgate.yaml, the configuration `tollgate extproc`
// runs on when no --config is given.
//
//go:embed tollgate.yaml
var DefaultConfig []byte

// DefaultPrompts holds envoy/prompts, the prompt registry of the embedded
// default config (its prompts.dir), so that `tollgate extproc` runs on the
// default config from any working directory.
//
//go:embed prompts/*.yaml
var DefaultPrompts embed.FS
