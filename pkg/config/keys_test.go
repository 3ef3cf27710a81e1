package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+limitsKeys+
		"budgets:\n  ledger: {path: /var/lib/tollgate/ledger.jsonl}\n  tenants:\n    beta: {daily_usd: 5}\n"+
		"keys:\n  enabled: true\n  tenants: [beta]\nadmin:\n  token_env: TOLLGATE_ADMIN_TOKEN\n"+
		"limits:\n  keys:\n    vk-1: {rpm: 10}\n"))
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/tollgate/ledger.keys.jsonl", c.Keys.Path, "next to the ledger")
	assert.True(t, c.Admin.Configured())
	assert.Contains(t, c.TenantIDs(), "beta", "keys.tenants are known tenants")
}

func TestKeysProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"admin without keys", "admin:\n  token_env: T\n",
			[]string{"c.yaml:10: admin: the admin API serves virtual keys"}},
		{"bad token hash", "keys: {enabled: true}\nadmin:\n  token_sha256: secret\n",
			[]string{"c.yaml:12: admin.token_sha256: must be 64 hex characters"}},
		{"both tokens", "keys: {enabled: true}\nadmin:\n  token_sha256: " + hashA + "\n  token_env: T\n",
			[]string{"admin.token_env: set admin.token_sha256 or admin.token_env, not both"}},
		{"path when off", "keys: {path: k.jsonl}\n",
			[]string{"keys.enabled: keys.path and keys.tenants have no effect"}},
		{"path with redis", "keys: {enabled: true, path: k.jsonl}\nbudgets: {ledger: {backend: redis, redis: {addr: \"127.0.0.1:6379\"}}}\n",
			[]string{"keys.path: only used with budgets.ledger.backend file"}},
		{"bad tenant", "keys: {enabled: true, tenants: [\"a b\"]}\n",
			[]string{`keys.tenants: entry 0 must match`}},
		{"with the wasm router", "keys: {enabled: true}\nxds: {wasm: {enabled: true, path: /x.wasm}}\n",
			[]string{"keys.enabled: virtual keys are resolved by the ext_proc server"}},
		{"virtual key limits need keys", "limits:\n  keys:\n    vk-1: {rpm: 1}\n",
			[]string{`limits.keys.vk-1: no entry in tenants.keys has id "vk-1"`}},
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
