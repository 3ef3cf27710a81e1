package config

import "github.com/tollgate-dev/tollgate/envoy"

// DefaultName is the Source of the embedded default config.
const DefaultName = "<embedded envoy/tollgate.yaml>"

// Default parses the embedded envoy/tollgate.yaml.
func Default() (*Config, error) { return Parse(DefaultName, envoy.DefaultConfig) }
