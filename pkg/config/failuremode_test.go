package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoSettingWithoutEffect: failure_mode.cache: closed and a half
// configured external detector were parsed and did nothing; each is now an
// error that says why, at its line.
func TestNoSettingWithoutEffect(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"cache closed", minimal + "failure_mode:\n  cache: closed\n",
			[]string{"c.yaml:8: failure_mode.cache: must be open: a failing cache tier makes the lookup a miss"}},
		{"external rule without endpoint", minimal + "guardrails:\n  input:\n    enabled: true\n    detectors: {external: block}\n",
			[]string{"c.yaml:10: guardrails.input.detectors.external: needs guardrails.input.external.url"}},
		{"endpoint without rule", minimal + "guardrails:\n  input:\n    enabled: true\n    external: {url: \"http://m/v1/moderations\"}\n",
			[]string{"c.yaml:10: guardrails.input.external: add detectors.external: block"}},
		{"external on output", minimal + "guardrails:\n  output:\n    enabled: true\n    detectors: {external: block}\n    external: {url: \"http://m\"}\n",
			[]string{"guardrails.output.external: the external detector screens input only"}},
		{"bad endpoint", minimal + "guardrails:\n  input:\n    detectors: {external: log}\n    external: {url: \"ftp://m\", threshold: 2, timeout: 1s}\n",
			[]string{"guardrails.input.external.url: scheme must be http or https",
				"guardrails.input.external.threshold: must be within [0,1]",
				"guardrails.input.external.timeout: must be below xds.message_timeout (200ms)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			require.ErrorIs(t, err, ErrInvalid)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	c, err := Parse("c.yaml", []byte(minimal+"guardrails:\n  input:\n    enabled: true\n    detectors: {external: block}\n    external: {url: \"https://api.openai.com/v1/moderations\", api_key_env: OPENAI_API_KEY}\nfailure_mode: {guardrails: open, cache: open}\n"))
	require.NoError(t, err)
	assert.Equal(t, "https://api.openai.com/v1/moderations", c.Guardrails.Input.External.URL)
	assert.Equal(t, Open, c.FailureMode.Guardrails)
}
