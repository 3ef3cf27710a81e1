package config

import (
	"io/fs"

	"github.com/tollgate-dev/tollgate/envoy"
)

// DefaultName is the Source of the embedded default config.
const DefaultName = "<embedded envoy/tollgate.yaml>"

// DefaultPromptsDir is prompts.dir in the embedded default config. Its files
// are compiled into the binary, and the default config reads them from
// there whatever the working directory.
const DefaultPromptsDir = "envoy/prompts"

// Default parses the embedded envoy/tollgate.yaml.
func Default() (*Config, error) {
	c, err := Parse(DefaultName, envoy.DefaultConfig)
	if err != nil {
		return nil, err
	}
	if c.Prompts.Dir == DefaultPromptsDir {
		sub, err := fs.Sub(envoy.DefaultPrompts, "prompts")
		if err != nil {
			return nil, err
		}
		c.Prompts.FS = sub
	}
	return c, nil
}
