package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCompression(t *testing.T) {
	c, err := Parse("c.yaml", []byte(`
providers:
  p: {base_url: "http://127.0.0.1:1"}
models:
  m:
    targets: [{provider: p, model: x}]
    compression: {enabled: true, json: false, max_prompt_tokens: 8000}
  plain:
    targets: [{provider: p, model: x}]
tenants:
  keys:
    - {id: a, sha256: `+hashA+`, tenant: acme}
    - {id: b, sha256: `+hashB+`, tenant: beta}
compression:
  tenants:
    acme: {enabled: false}
    beta: {enabled: true}
`))
	require.NoError(t, err)

	// The alias's setting for a tenant without its own entry.
	got := c.CompressionFor("other", "m")
	ws, js, dd := got.Rules()
	assert.Equal(t, []bool{true, false, true}, []bool{ws, js, dd})
	assert.Equal(t, int64(8000), got.MaxPromptTokens)
	// The tenant's entry wins both ways.
	ws, js, dd = c.CompressionFor("acme", "m").Rules()
	assert.Equal(t, []bool{false, false, false}, []bool{ws, js, dd})
	ws, js, dd = c.CompressionFor("beta", "plain").Rules()
	assert.Equal(t, []bool{true, true, true}, []bool{ws, js, dd})
	// Neither: off.
	assert.False(t, c.CompressionFor("other", "plain").Enabled)
}

func TestCompressionProblems(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"negative budget": {"    compression: {enabled: true, max_prompt_tokens: -1}\n",
			"c.yaml:7: models.m.compression.max_prompt_tokens: must not be negative, got -1"},
		"unknown tenant": {"compression:\n  tenants:\n    ghost: {enabled: true}\n",
			`compression.tenants.ghost: tenant "ghost" has no API key`},
		"unknown field": {"    compression: {enable: true}\n", "enable"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(minimal+tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
