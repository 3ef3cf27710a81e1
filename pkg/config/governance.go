package config

import (
	"io/fs"
	"time"
)

// Prompts locates the prompt registry: a directory of versioned YAML
// templates selected per request with x-tollgate-prompt.
type Prompts struct {
	// Dir is the registry directory; empty = prompts off (a request naming
	// a prompt gets 400).
	Dir string `yaml:"dir"`
	// FS, when set, holds the registry's files at its root and Dir only
	// names it in messages. The embedded default config sets it to the
	// prompt files compiled into the binary (envoy/prompts).
	FS fs.FS `yaml:"-"`
	// PollInterval is how often Dir is checked for changed files (default
	// 5s); a change reloads the registry without a restart, a broken file
	// keeps the running one.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// Routing is complexity routing: a request to a virtual alias (e.g. auto)
// is scored and sent to the alias of its tier.
type Routing struct {
	// Tiers in ascending min_score, the first at 0 (default simple 0,
	// complex 0.35).
	Tiers   []RoutingTier             `yaml:"tiers"`
	Virtual map[string]VirtualAlias   `yaml:"virtual"`
	Tenants map[string]TenantRouting  `yaml:"tenants"`
	Limits  map[string]MaxTokenLimits `yaml:"alias_limits"`
	// Canaries send a share of an alias's traffic to another alias.
	Canaries []Canary `yaml:"canaries"`
}

// Canary moves Weight percent of the requests for Alias to Canary. The
// split is by request id (hash_on: request_id, the default) or by tenant
// (hash_on: tenant, every request of a tenant on one side), with the same
// hash in the wasm router and the ext_proc server (32-bit FNV-1a of
// alias, a zero byte and the key, mod 100).
type Canary struct {
	Alias  string `yaml:"alias"`
	Canary string `yaml:"canary"`
	Weight int    `yaml:"weight"`
	HashOn string `yaml:"hash_on"`
}

// RoutingTier is one rung of the complexity ladder.
type RoutingTier struct {
	Name     string  `yaml:"name"`
	MinScore float64 `yaml:"min_score"`
}

// VirtualAlias maps tiers to real aliases.
type VirtualAlias struct {
	Tiers map[string]RoutingTarget `yaml:"tiers"`
	// Shadow only records the decision; requests go to Fallback.
	Shadow   bool   `yaml:"shadow"`
	Fallback string `yaml:"fallback"`
}

// RoutingTarget is the alias of a tier, with optional max_tokens limits.
type RoutingTarget struct {
	Alias            string `yaml:"alias"`
	MaxTokensDefault int64  `yaml:"max_tokens_default"`
	MaxTokensCap     int64  `yaml:"max_tokens_cap"`
}

// TenantRouting overrides routing for one tenant.
type TenantRouting struct {
	Virtual  map[string]VirtualAlias `yaml:"virtual"`
	Disabled []string                `yaml:"disabled"`
	Shadow   *bool                   `yaml:"shadow"`
}

// MaxTokenLimits are max_tokens default and cap for an alias.
type MaxTokenLimits struct {
	Default int64 `yaml:"default"`
	Cap     int64 `yaml:"cap"`
}

// Audit configures the append-only, hash-chained audit trail.
type Audit struct {
	// Dir holds audit-NNNNNN.jsonl files; empty = audit off.
	Dir           string        `yaml:"dir"`
	MaxFileBytes  int64         `yaml:"max_file_bytes"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	Sync          bool          `yaml:"sync"`
}

// Tracing exports OpenTelemetry spans (GenAI semantic conventions) over
// OTLP/gRPC. Off when Endpoint is empty, and then costs nothing per request.
type Tracing struct {
	// Endpoint is the OTLP/gRPC collector, host:port.
	Endpoint string `yaml:"endpoint"`
	// Insecure disables TLS to the collector.
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of new traces sampled (parent-based: an
	// incoming sampled traceparent is always followed); default 1.
	SampleRatio float64 `yaml:"sample_ratio"`
}
