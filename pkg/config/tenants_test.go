package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const hashA = "179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f"
const hashB = "4a873d79ed9c2db05e0f5f776fe4356526687b33d5e37e2247622acdab611cba"

// TestTenantKeyProblems covers the key table mistakes that would let a key
// never match, two keys collide, or a tenant id break metric labels and
// ledger keys.
func TestTenantKeyProblems(t *testing.T) {
	key := func(id, sum, tenant string) string {
		return "    - {id: " + id + ", sha256: " + sum + ", tenant: \"" + tenant + "\"}\n"
	}
	tests := []struct {
		name string
		keys string
		want string // "" = valid
	}{
		{"valid", key("a", hashA, "acme") + key("b", hashB, "beta"), ""},
		{"short hash", key("a", hashA[:32], "acme"), "tenants.keys[0].sha256: must be 64 hex"},
		{"long hash", key("a", hashA+"00", "acme"), "tenants.keys[0].sha256: must be 64 hex"},
		{"same hash", key("a", hashA, "acme") + key("b", hashA, "beta"), "tenants.keys[1].sha256: duplicate of tenants.keys[0]"},
		{"same hash, other case", key("a", hashA, "acme") + key("b", strings.ToUpper(hashA), "beta"), "tenants.keys[1].sha256: duplicate of tenants.keys[0]"},
		{"same hash, upper first", key("a", strings.ToUpper(hashA), "acme") + key("b", hashA, "beta"), "tenants.keys[1].sha256: duplicate of tenants.keys[0]"},
		{"same id", key("a", hashA, "acme") + key("a", hashB, "beta"), "tenants.keys[1].id: duplicate of tenants.keys[0]"},
		{"tenant starts with a dot", key("a", hashA, ".acme"), "tenants.keys[0].tenant: must match"},
		{"tenant starts with a colon", key("a", hashA, ":acme"), "tenants.keys[0].tenant: must match"},
		{"tenant starts with a dash", key("a", hashA, "-acme"), "tenants.keys[0].tenant: must match"},
		{"punctuation inside is fine", key("a", hashA, "acme.eu-1:prod_x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(minimal+"tenants:\n  keys:\n"+tt.keys))
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestAnonymousTenantIsKnown: the anonymous tenant may have a budget and is
// a metric label like any keyed tenant.
func TestAnonymousTenantIsKnown(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+"tenants:\n  allow_anonymous: public\n  keys:\n"+
		"    - {id: a, sha256: "+hashA+", tenant: acme}\n"+
		"budgets:\n  tenants:\n    public: {daily_usd: 1}\n    acme: {daily_usd: 5}\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"acme", "public"}, c.TenantIDs())

	_, err = Parse("c.yaml", []byte(minimal+"tenants:\n  allow_anonymous: \".pub\"\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tenants.allow_anonymous: must match")
}
