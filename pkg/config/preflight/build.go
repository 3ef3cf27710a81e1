package preflight

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
	"github.com/tollgate-dev/tollgate/pkg/route"
)

// BuildCatalog is the price catalog a config asks for: the built-in one
// (unless pricing.builtin is false) with pricing.models applied on top.
func BuildCatalog(c *config.Config) (*meter.Catalog, error) {
	entries := make([]meter.Entry, 0, len(c.Pricing.Models))
	for _, p := range c.Pricing.Models {
		entries = append(entries, meter.Entry{
			Provider: p.Provider, Model: p.Model, Effective: p.Effective,
			InputPerM: p.Input, OutputPerM: p.Output, CachedInputPerM: p.CachedInput,
			MaxOutputTokens: int(p.MaxOutputTokens),
		})
	}
	if c.Pricing.Builtin != nil && !*c.Pricing.Builtin {
		return meter.NewCatalog(entries)
	}
	base, err := meter.BuiltinCatalog()
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return base, nil
	}
	return base.Override(entries)
}

// BuildGuard builds one direction's guardrails; nil when it is off. An
// external detector's key is read with os.Getenv and its timeout derived
// from the default message timeout; BuildGuardWith takes both.
func BuildGuard(d config.GuardDirection) (*guard.Guard, error) {
	return BuildGuardWith(d, config.DefaultMessageTimeout, os.Getenv)
}

// BuildGuardWith builds one direction's guardrails; nil when it is off. An
// external detector without its own timeout gets
// guard.ExternalTimeoutFor(messageTimeout); its key is getenv(api_key_env).
func BuildGuardWith(d config.GuardDirection, messageTimeout time.Duration, getenv func(string) string) (*guard.Guard, error) {
	if !d.Enabled {
		return nil, nil
	}
	cfg := guard.Config{
		Rules:              make(map[string]guard.Action, len(d.Detectors)),
		InjectionThreshold: d.InjectionThreshold,
		StreamWindow:       d.StreamWindow,
		Roles:              d.Roles,
	}
	if len(d.Detectors) == 0 {
		cfg.Rules = guard.DefaultConfig().Rules
	}
	for k, v := range d.Detectors {
		a, err := guard.ParseAction(v)
		if err != nil {
			return nil, fmt.Errorf("detector %s: %w", k, err)
		}
		cfg.Rules[k] = a
	}
	if e := d.External; e != nil {
		if messageTimeout <= 0 {
			messageTimeout = config.DefaultMessageTimeout
		}
		timeout := e.Timeout
		if timeout == 0 {
			timeout = guard.ExternalTimeoutFor(messageTimeout)
		}
		key := ""
		if e.APIKeyEnv != "" && getenv != nil {
			key = getenv(e.APIKeyEnv)
		}
		// One client per guard: connections to the endpoint are reused.
		cfg.External = &guard.ExternalConfig{URL: e.URL, APIKey: key, Model: e.Model, Timeout: timeout,
			Threshold: e.Threshold, Client: &http.Client{Timeout: timeout}}
	}
	return guard.New(cfg)
}

// LoadPrompts loads the prompt registry: from prompts.FS when set (the
// embedded default config's compiled-in files), else from prompts.dir on
// disk; nil when prompts.dir is unset.
func LoadPrompts(c config.Prompts) (*prompts.Registry, error) {
	switch {
	case c.Dir == "":
		return nil, nil
	case c.FS != nil:
		return prompts.LoadFS(c.FS, c.Dir)
	}
	return prompts.LoadDir(c.Dir)
}

// RouteConfig maps tollgate.yaml's routing: section to pkg/route.
func RouteConfig(c config.Routing) route.Config {
	rc := route.Config{
		Virtual:     map[string]route.Virtual{},
		Tenants:     map[string]route.Tenant{},
		AliasLimits: map[string]route.Limits{},
	}
	for _, t := range c.Tiers {
		rc.Tiers = append(rc.Tiers, route.Tier{Name: t.Name, MinScore: t.MinScore})
	}
	virtual := func(v config.VirtualAlias) route.Virtual {
		rv := route.Virtual{Tiers: map[string]route.Target{}, Shadow: v.Shadow, Fallback: v.Fallback}
		for tier, t := range v.Tiers {
			rv.Tiers[tier] = route.Target{Alias: t.Alias, Limits: route.Limits{Default: t.MaxTokensDefault, Cap: t.MaxTokensCap}}
		}
		return rv
	}
	for name, v := range c.Virtual {
		rc.Virtual[name] = virtual(v)
	}
	for name, t := range c.Tenants {
		rt := route.Tenant{Virtual: map[string]route.Virtual{}, Disabled: t.Disabled, Shadow: t.Shadow}
		for vn, v := range t.Virtual {
			rt.Virtual[vn] = virtual(v)
		}
		rc.Tenants[name] = rt
	}
	for alias, l := range c.Limits {
		rc.AliasLimits[alias] = route.Limits{Default: l.Default, Cap: l.Cap}
	}
	return rc
}

// BuildRouter builds the complexity router; nil without a routing section.
func BuildRouter(c config.Routing) (*route.Router, error) {
	if len(c.Virtual) == 0 && len(c.Limits) == 0 && len(c.Tenants) == 0 {
		return nil, nil
	}
	return route.New(RouteConfig(c))
}

// CacheConfig maps tollgate.yaml's cache: section to pkg/cache. Zero
// sizes and durations mean the package defaults; max_temperature is taken
// as written (config.Load fills in the default when the key is absent, so
// an explicit 0 caches only temperature-0 requests). Timeouts not set
// explicitly are derived from the ext_proc message timeout
// (cache.TimeoutsFor), so a cache lookup ends before Envoy stops waiting.
func CacheConfig(c config.Cache, messageTimeout time.Duration, getenv func(string) string) cache.Config {
	cc := cache.DefaultConfig()
	cc.Exact.Enabled = c.Exact.Enabled
	if c.Exact.MaxBytes > 0 {
		cc.Exact.MaxBytes = c.Exact.MaxBytes
	}
	if c.Exact.TTL > 0 {
		cc.Exact.TTL = c.Exact.TTL
	}
	cc.Semantic.Enabled = c.Semantic.Enabled
	if c.Semantic.Threshold > 0 {
		cc.Semantic.Threshold = c.Semantic.Threshold
	}
	if c.Semantic.Verifier != nil {
		cc.Semantic.Verifier = *c.Semantic.Verifier
	}
	if c.Semantic.DifferenceGuard != nil {
		cc.Semantic.DifferenceGuard = *c.Semantic.DifferenceGuard
	}
	e := c.Semantic.Embedder
	cc.Semantic.Embedder = cache.EmbedderConfig{Kind: e.Kind, URL: e.URL, Model: e.Model, APIKeyEnv: e.APIKeyEnv, Timeout: e.Timeout}
	cc.MaxTemperature = c.MaxTemperature // 1.0 when absent (config defaults); an explicit 0 stays 0
	cc.Backend = c.Backend
	password := ""
	if c.Redis.PasswordEnv != "" && getenv != nil {
		password = getenv(c.Redis.PasswordEnv)
	}
	cc.Redis = cache.RedisConfig{Addr: c.Redis.Addr, Password: password, DB: c.Redis.DB, Prefix: c.Redis.Prefix, Timeout: c.Redis.Timeout}
	if s := c.Semantic; s.MaxEntriesPerPartition > 0 {
		cc.Semantic.MaxEntriesPerPartition = s.MaxEntriesPerPartition
	}
	if s := c.Semantic; s.MaxEntries > 0 {
		cc.Semantic.MaxEntries = s.MaxEntries
	}
	if s := c.Semantic; s.MaxBytes > 0 {
		cc.Semantic.MaxBytes = s.MaxBytes
	}
	if messageTimeout <= 0 {
		messageTimeout = config.DefaultMessageTimeout
	}
	t := cache.TimeoutsFor(messageTimeout)
	cc.LookupTimeout = t.Lookup
	if cc.Redis.Timeout == 0 {
		cc.Redis.Timeout = t.Redis
	}
	if cc.Semantic.Embedder.Timeout == 0 {
		cc.Semantic.Embedder.Timeout = t.Embed
	}
	// Explicit per-call timeouts are the operator's choice: the lookup's
	// overall bound does not cut them shorter.
	cc.LookupTimeout = max(cc.LookupTimeout, cc.Semantic.Embedder.Timeout, 2*cc.Redis.Timeout)
	return cc
}
