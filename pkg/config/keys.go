package config

import (
	"encoding/hex"
	"path/filepath"
	"strings"
)

// Admin protects the admin API (/v1/admin/...) served on listen.admin. With
// neither field set the API is off: its paths answer 404.
type Admin struct {
	// TokenSHA256 is the hex SHA-256 of the bearer token the API accepts.
	TokenSHA256 string `yaml:"token_sha256"`
	// TokenEnv names an environment variable holding the token itself
	// (read once at start).
	TokenEnv string `yaml:"token_env"`
}

// Configured reports whether an admin token is configured.
func (a Admin) Configured() bool { return a.TokenSHA256 != "" || a.TokenEnv != "" }

// Keys configures virtual keys: API keys issued, rotated and revoked at
// runtime through the admin API, kept in the spend ledger's backend (a file
// next to the ledger file, or the ledger's Redis).
type Keys struct {
	Enabled bool `yaml:"enabled"`
	// Path of the key file (ledger backend file); default: the ledger
	// path with .keys.jsonl in place of its extension.
	Path string `yaml:"path"`
	// Tenants, when set, are the only tenants keys may be issued for; they
	// count as known tenants (budgets.tenants, limits.tenants, metric
	// labels). Empty: any tenant id (unlisted ones are labelled "other").
	Tenants []string `yaml:"tenants"`
}

// DefaultKeysPath is the key file beside a ledger file.
func DefaultKeysPath(ledgerPath string) string {
	ext := filepath.Ext(ledgerPath)
	return strings.TrimSuffix(ledgerPath, ext) + ".keys.jsonl"
}

func (v *validator) keys(c *Config) {
	a := c.Admin
	if a.TokenSHA256 != "" {
		if b, err := hex.DecodeString(a.TokenSHA256); err != nil || len(b) != 32 {
			v.add("admin.token_sha256", "must be 64 hex characters (the SHA-256 of the token, never the token itself)")
		}
		if a.TokenEnv != "" {
			v.add("admin.token_env", "set admin.token_sha256 or admin.token_env, not both")
		}
	}
	if a.Configured() && !c.Keys.Enabled {
		v.add("admin", "the admin API serves virtual keys: set keys.enabled: true (or remove admin)")
	}
	if !c.Keys.Enabled {
		if c.Keys.Path != "" || len(c.Keys.Tenants) > 0 {
			v.add("keys.enabled", "keys.path and keys.tenants have no effect unless keys.enabled is true")
		}
		return
	}
	if c.XDS.Wasm.Enabled || c.Tenants.TrustHeader {
		v.add("keys.enabled", "virtual keys are resolved by the ext_proc server; the wasm router (xds.wasm.enabled) and tenants.trust_header decide the tenant from tenants.keys only and would refuse them")
	}
	if c.Keys.Path != "" && c.Budgets.Ledger.Backend != "file" {
		v.add("keys.path", "only used with budgets.ledger.backend file (with redis, keys live in the ledger's Redis)")
	}
	for i, t := range c.Keys.Tenants {
		if !validID(t) {
			v.add("keys.tenants", "entry %d must match [A-Za-z0-9][A-Za-z0-9._:-]*, got %q", i, t)
		}
	}
}
