package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const limitsKeys = "tenants:\n  keys:\n    - {id: bot, sha256: " + hashA + ", tenant: acme}\n"

func TestLimits(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+limitsKeys+
		"limits:\n  default: {rpm: 60}\n  tenants:\n    acme: {rpm: 100, tpm: 50000}\n  keys:\n    bot: {tpm: 2000}\n"))
	require.NoError(t, err)
	assert.Equal(t, "memory", c.Limits.Backend)
	assert.Equal(t, RateLimit{RPM: 60}, c.Limits.Default)
	assert.Equal(t, RateLimit{RPM: 100, TPM: 50000}, c.Limits.Tenants["acme"])
	assert.Equal(t, RateLimit{TPM: 2000}, c.Limits.Keys["bot"])
	assert.Equal(t, int64(DefaultRateLimitOutputTokens), c.Limits.DefaultOutputTokens)
	assert.Equal(t, Open, c.FailureMode.RateLimits)
	assert.Equal(t, "tollgate:", c.Limits.Redis.Prefix)
}

func TestLimitsProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"negative rpm", "limits:\n  tenants:\n    acme: {rpm: -1}\n",
			[]string{"c.yaml:12: limits.tenants.acme.rpm: must not be negative, got -1"}},
		{"negative default tpm", "limits:\n  default:\n    tpm: -5\n",
			[]string{"c.yaml:12: limits.default.tpm: must not be negative, got -5"}},
		{"unknown tenant", "limits:\n  tenants:\n    nobody: {rpm: 1}\n",
			[]string{`c.yaml:12: limits.tenants.nobody: tenant "nobody" has no API key`}},
		{"unknown key", "limits:\n  keys:\n    ghost: {rpm: 1}\n",
			[]string{`c.yaml:12: limits.keys.ghost: no entry in tenants.keys has id "ghost"`}},
		{"bad backend", "limits:\n  backend: etcd\n",
			[]string{`c.yaml:11: limits.backend: must be memory or redis, got "etcd"`}},
		{"redis without addr", "limits:\n  backend: redis\n",
			[]string{"limits.redis.addr: required for backend redis"}},
		{"bad failure mode", "failure_mode:\n  ratelimits: maybe\n",
			[]string{`c.yaml:11: failure_mode.ratelimits: must be open or closed, got "maybe"`}},
		{"unknown field", "limits:\n  tenants:\n    acme: {rps: 1}\n",
			[]string{"c.yaml:12", "rps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(minimal+limitsKeys+tt.yaml))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
