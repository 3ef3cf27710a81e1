package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each case is a config an operator can plausibly write that used to load
// without a word and then misbehave.
func TestOperatorTraps(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"anonymous false is not a tenant name", minimal + "tenants:\n  allow_anonymous: false\n",
			[]string{"c.yaml:8: tenants.allow_anonymous: got the boolean false where a string is expected"}},
		{"anonymous true", minimal + "tenants:\n  allow_anonymous: true\n",
			[]string{"c.yaml:8: tenants.allow_anonymous: got the boolean true"}},
		{"a boolean detector action", minimal + "guardrails:\n  input:\n    detectors: {EMAIL: false}\n",
			[]string{"c.yaml:9: guardrails.input.detectors.EMAIL: got the boolean false"}},
		{"a boolean failure mode", minimal + "failure_mode:\n  cache: true\n",
			[]string{"c.yaml:8: failure_mode.cache: got the boolean true"}},
		{"a string for a boolean", minimal + "guardrails:\n  input:\n    enabled: \"true\"\n",
			[]string{`c.yaml:9: guardrails.input.enabled: got the string "true" where true or false is expected`}},
		{"a number for a boolean", minimal + "tenants:\n  trust_header: 1\n",
			[]string{"c.yaml:8: tenants.trust_header: got the number 1 where true or false is expected"}},
		{"a word for a duration", minimal + "listen:\n  shutdown_grace: soon\n",
			[]string{`c.yaml:8: listen.shutdown_grace: got the string "soon" where a duration (e.g. 30s, 5m) is expected`}},
		{"port out of range", "listen:\n  extproc: 127.0.0.1:500510\n" + minimal,
			[]string{"c.yaml:2: listen.extproc: port must be a number from 0 to 65535, got \"500510\""}},
		{"admin without port", "listen:\n  admin: localhost\n" + minimal,
			[]string{"c.yaml:2: listen.admin: must be host:port"}},
		{"negative cache ttl", minimal + "cache:\n  exact:\n    ttl: -5m\n",
			[]string{"c.yaml:9: cache.exact.ttl: must be positive"}},
		{"trust_header without the router", minimal + "tenants:\n  trust_header: true\n",
			[]string{"c.yaml:8: tenants.trust_header: true without the wasm router"}},
		{"trust_header_from without trust_header", minimal + "tenants:\n  trust_header_from: wasm-router\n",
			[]string{"c.yaml:8: tenants.trust_header_from: has no effect"}},
		{"trust_header_from unknown", minimal + "tenants:\n  trust_header: true\n  trust_header_from: nginx\n",
			[]string{"c.yaml:9: tenants.trust_header_from: must be wasm-router or other-filter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid))
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestTrustHeaderAcknowledged(t *testing.T) {
	for _, y := range []string{
		minimal + "tenants:\n  trust_header: true\n  trust_header_from: wasm-router\n",
		minimal + "tenants:\n  trust_header: true\n  trust_header_from: other-filter\n",
		minimal + "tenants:\n  trust_header: true\nxds:\n  wasm: {enabled: true, path: /r.wasm}\n",
		minimal + "tenants:\n  allow_anonymous: \"false\"\n",                                                                                 // quoted: the operator meant it
		minimal + "tenants:\n  keys:\n    - {id: 7, sha256: 0000000000000000000000000000000000000000000000000000000000000001, tenant: 42}\n", // numbers keep their text
	} {
		_, err := Parse("c.yaml", []byte(y))
		assert.NoError(t, err, y)
	}
}

func TestMaxTemperatureZeroIsZero(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+"cache:\n  max_temperature: 0\n"))
	require.NoError(t, err)
	assert.Zero(t, c.Cache.MaxTemperature, "an explicit 0 caches only temperature-0 requests")
	c, err = Parse("c.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxTemperature, c.Cache.MaxTemperature, "absent: the default")
	assert.True(t, c.Set("models.m.targets"))
	assert.False(t, c.Set("cache.max_temperature"))
	assert.Equal(t, 6, c.Line("models.m.targets[0].model"))
}
