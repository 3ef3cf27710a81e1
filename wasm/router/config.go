package router

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/wasm/internal/jsonvalue"
)

// DefaultPaths are the API paths served when the configuration names none.
var DefaultPaths = []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/models"}

// Hash sources for a canary split.
const (
	HashOnRequestID = "request_id"
	HashOnTenant    = "tenant"
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid router configuration")

// Config is the plugin configuration (the JSON handed to the filter by Envoy's
// PluginConfig.configuration or Istio's WasmPlugin.pluginConfig).
type Config struct {
	// Keys maps API keys, by the lower-case hex SHA-256 of the key, to a tenant.
	Keys []Key
	// Anonymous, when set, admits requests that carry no API key.
	Anonymous *Identity
	// Paths are the known API paths (exact match, query string ignored);
	// DefaultPaths when empty.
	Paths []string
	// Deny rejects requests (403) by tenant, path or method.
	Deny Deny
	// Tiers holds per-tier routing: default model and allow-list.
	Tiers map[string]Tier
	// Canaries split traffic for an alias between a stable and a canary alias.
	Canaries []Canary
}

// Identity is a tenant and its tier.
type Identity struct {
	Tenant string
	Tier   string
}

// Key is one API key entry.
type Key struct {
	SHA256 string
	KeyID  string
	Identity
}

// Deny lists what is rejected with 403.
type Deny struct {
	Tenants []string
	Paths   []string
	Methods []string
}

// Tier is per-tier routing.
type Tier struct {
	// DefaultModel is used as x-tollgate-route when the client sent no
	// x-tollgate-model header.
	DefaultModel string
	// AllowedModels, when non-empty, is the allow-list for requested models.
	AllowedModels []string
}

// Canary splits an alias: Weight percent of requests go to Canary, the rest to
// Stable, by a stable hash of the request id or the tenant.
type Canary struct {
	Alias  string
	Stable string
	Canary string
	Weight int
	HashOn string
}

// ParseConfig decodes and validates the plugin configuration; every problem is
// reported (errors.Join), each wrapping ErrInvalidConfig.
func ParseConfig(data []byte) (*Router, error) {
	cfg, err := DecodeConfig(data)
	if err != nil {
		return nil, err
	}
	return New(cfg)
}

// DecodeConfig decodes the JSON configuration strictly (unknown keys and wrong
// types are errors) without cross-field validation.
func DecodeConfig(data []byte) (Config, error) {
	v, err := jsonvalue.Parse(data)
	if err != nil {
		return Config{}, wrapConfig("", err.Error())
	}
	d := decoder{}
	cfg := d.config(v)
	if len(d.errs) > 0 {
		return Config{}, errors.Join(d.errs...)
	}
	return cfg, nil
}

type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }
func (e *configError) Unwrap() error { return ErrInvalidConfig }

func wrapConfig(field, msg string) error {
	if field == "" {
		return &configError{msg: "router config: " + msg}
	}
	return &configError{msg: "router config: " + field + ": " + msg}
}

type decoder struct{ errs []error }

func (d *decoder) fail(field, msg string) { d.errs = append(d.errs, wrapConfig(field, msg)) }

func (d *decoder) object(field string, v any, allowed ...string) map[string]any {
	obj, ok := v.(map[string]any)
	if !ok {
		d.fail(field, "must be an object")
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			d.fail(join(field, k), "unknown field")
		}
	}
	return obj
}

func (d *decoder) str(field string, v any) string {
	s, ok := v.(string)
	if !ok {
		d.fail(field, "must be a string")
	}
	return s
}

func (d *decoder) strs(field string, v any) []string {
	arr, ok := v.([]any)
	if !ok {
		d.fail(field, "must be an array of strings")
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, e := range arr {
		out = append(out, d.str(index(field, i), e))
	}
	return out
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func index(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func (d *decoder) config(v any) Config {
	var cfg Config
	obj := d.object("", v, "keys", "anonymous", "paths", "deny", "tiers", "canaries")
	if obj == nil {
		return cfg
	}
	if raw, ok := obj["keys"]; ok {
		arr, ok := raw.([]any)
		if !ok {
			d.fail("keys", "must be an array")
		}
		for i, e := range arr {
			f := index("keys", i)
			k := d.object(f, e, "sha256", "key_id", "tenant", "tier")
			if k == nil {
				continue
			}
			cfg.Keys = append(cfg.Keys, Key{
				SHA256:   d.str(f+".sha256", k["sha256"]),
				KeyID:    d.str(f+".key_id", k["key_id"]),
				Identity: Identity{Tenant: d.str(f+".tenant", k["tenant"]), Tier: d.str(f+".tier", k["tier"])},
			})
		}
	}
	if raw, ok := obj["anonymous"]; ok && raw != nil {
		a := d.object("anonymous", raw, "tenant", "tier")
		if a != nil {
			cfg.Anonymous = &Identity{Tenant: d.str("anonymous.tenant", a["tenant"]), Tier: d.str("anonymous.tier", a["tier"])}
		}
	}
	if raw, ok := obj["paths"]; ok {
		cfg.Paths = d.strs("paths", raw)
	}
	if raw, ok := obj["deny"]; ok {
		dn := d.object("deny", raw, "tenants", "paths", "methods")
		if raw, ok := dn["tenants"]; ok {
			cfg.Deny.Tenants = d.strs("deny.tenants", raw)
		}
		if raw, ok := dn["paths"]; ok {
			cfg.Deny.Paths = d.strs("deny.paths", raw)
		}
		if raw, ok := dn["methods"]; ok {
			cfg.Deny.Methods = d.strs("deny.methods", raw)
		}
	}
	if raw, ok := obj["tiers"]; ok {
		tiers, ok := raw.(map[string]any)
		if !ok {
			d.fail("tiers", "must be an object")
		}
		cfg.Tiers = make(map[string]Tier, len(tiers))
		for name, tv := range tiers {
			f := "tiers." + name
			t := d.object(f, tv, "default_model", "allowed_models")
			if t == nil {
				continue
			}
			var tier Tier
			if raw, ok := t["default_model"]; ok {
				tier.DefaultModel = d.str(f+".default_model", raw)
			}
			if raw, ok := t["allowed_models"]; ok {
				tier.AllowedModels = d.strs(f+".allowed_models", raw)
			}
			cfg.Tiers[name] = tier
		}
	}
	if raw, ok := obj["canaries"]; ok {
		arr, ok := raw.([]any)
		if !ok {
			d.fail("canaries", "must be an array")
		}
		for i, e := range arr {
			f := index("canaries", i)
			c := d.object(f, e, "alias", "stable", "canary", "weight", "hash_on")
			if c == nil {
				continue
			}
			cn := Canary{
				Alias:  d.str(f+".alias", c["alias"]),
				Stable: d.str(f+".stable", c["stable"]),
				Canary: d.str(f+".canary", c["canary"]),
				HashOn: HashOnRequestID,
			}
			if raw, ok := c["hash_on"]; ok {
				cn.HashOn = d.str(f+".hash_on", raw)
			}
			w, ok := c["weight"].(float64)
			if !ok || w != float64(int(w)) {
				d.fail(f+".weight", "must be an integer percentage")
			} else if w < 0 || w > 100 {
				d.fail(f+".weight", "must be between 0 and 100")
			} else {
				cn.Weight = int(w)
			}
			cfg.Canaries = append(cfg.Canaries, cn)
		}
	}
	return cfg
}

// Validate reports every cross-field problem of cfg.
func (cfg Config) Validate() error {
	var errs []error
	fail := func(field, msg string) { errs = append(errs, wrapConfig(field, msg)) }
	if len(cfg.Keys) == 0 && cfg.Anonymous == nil {
		fail("", "no keys and no anonymous access: every request would be rejected")
	}
	checkTier := func(field, tier string) {
		if _, ok := cfg.Tiers[tier]; !ok && tier != "" {
			fail(field, "tier "+strconv.Quote(tier)+" is not declared in tiers")
		}
	}
	hashes := map[string]bool{}
	ids := map[string]bool{}
	for i, k := range cfg.Keys {
		f := index("keys", i)
		if !isHexSHA256(k.SHA256) {
			fail(f+".sha256", "must be 64 lower-case hex characters (SHA-256 of the key)")
		} else if hashes[k.SHA256] {
			fail(f+".sha256", "duplicate key hash")
		}
		hashes[k.SHA256] = true
		checkToken(fail, f+".key_id", k.KeyID)
		if ids[k.KeyID] {
			fail(f+".key_id", "duplicate key id "+strconv.Quote(k.KeyID))
		}
		ids[k.KeyID] = true
		checkToken(fail, f+".tenant", k.Tenant)
		checkToken(fail, f+".tier", k.Tier)
		checkTier(f+".tier", k.Tier)
	}
	if a := cfg.Anonymous; a != nil {
		checkToken(fail, "anonymous.tenant", a.Tenant)
		checkToken(fail, "anonymous.tier", a.Tier)
		checkTier("anonymous.tier", a.Tier)
	}
	for i, p := range cfg.Paths {
		checkPath(fail, index("paths", i), p)
	}
	for i, p := range cfg.Deny.Paths {
		checkPath(fail, index("deny.paths", i), p)
	}
	for i, t := range cfg.Deny.Tenants {
		checkToken(fail, index("deny.tenants", i), t)
	}
	for i, m := range cfg.Deny.Methods {
		if m == "" || strings.ToUpper(m) != m || !isToken(m) {
			fail(index("deny.methods", i), "must be an upper-case HTTP method")
		}
	}
	tierNames := make([]string, 0, len(cfg.Tiers))
	for name := range cfg.Tiers {
		tierNames = append(tierNames, name)
	}
	slices.Sort(tierNames)
	for _, name := range tierNames {
		t := cfg.Tiers[name]
		f := "tiers." + name
		checkToken(fail, f, name)
		if t.DefaultModel != "" {
			checkToken(fail, f+".default_model", t.DefaultModel)
			if len(t.AllowedModels) > 0 && !slices.Contains(t.AllowedModels, t.DefaultModel) {
				fail(f+".default_model", "not in allowed_models")
			}
		}
		for i, m := range t.AllowedModels {
			checkToken(fail, index(f+".allowed_models", i), m)
		}
	}
	aliases := map[string]bool{}
	for i, c := range cfg.Canaries {
		f := index("canaries", i)
		checkToken(fail, f+".alias", c.Alias)
		checkToken(fail, f+".stable", c.Stable)
		checkToken(fail, f+".canary", c.Canary)
		if c.Stable == c.Canary && c.Stable != "" {
			fail(f, "stable and canary must differ")
		}
		if aliases[c.Alias] {
			fail(f+".alias", "duplicate canary for alias "+strconv.Quote(c.Alias))
		}
		aliases[c.Alias] = true
		if c.Weight < 0 || c.Weight > 100 {
			fail(f+".weight", "must be between 0 and 100")
		}
		if c.HashOn != HashOnRequestID && c.HashOn != HashOnTenant {
			fail(f+".hash_on", "must be \"request_id\" or \"tenant\"")
		}
	}
	return errors.Join(errs...)
}

// maxToken bounds identifiers that end up in header values.
const maxToken = 256

func checkToken(fail func(field, msg string), field, s string) {
	switch {
	case s == "":
		fail(field, "must not be empty")
	case len(s) > maxToken:
		fail(field, "longer than "+strconv.Itoa(maxToken)+" bytes")
	case !isToken(s):
		fail(field, "must be printable ASCII without spaces")
	}
}

func checkPath(fail func(field, msg string), field, p string) {
	if !strings.HasPrefix(p, "/") || !isToken(p) || strings.ContainsAny(p, "?#") {
		fail(field, "must be an absolute path without query, e.g. /v1/chat/completions")
	}
}

// isToken reports whether s is visible ASCII (0x21..0x7e): safe as a header
// value, no CR/LF injection.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
