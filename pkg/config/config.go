package config

import (
	"time"
)

// Config is the whole tollgate.yaml.
type Config struct {
	Listen      Listen              `yaml:"listen"`
	Providers   map[string]Provider `yaml:"providers"`
	Models      map[string]Model    `yaml:"models"`
	Pricing     Pricing             `yaml:"pricing"`
	Tenants     Tenants             `yaml:"tenants"`
	Budgets     Budgets             `yaml:"budgets"`
	Limits      Limits              `yaml:"limits"`
	Guardrails  Guardrails          `yaml:"guardrails"`
	Cache       Cache               `yaml:"cache"`
	FailureMode FailureMode         `yaml:"failure_mode"`
	XDS         XDS                 `yaml:"xds"`
	Prompts     Prompts             `yaml:"prompts"`
	Routing     Routing             `yaml:"routing"`
	Audit       Audit               `yaml:"audit"`
	Tracing     Tracing             `yaml:"tracing"`
	Credentials Credentials         `yaml:"credentials"`
	Compression CompressionSettings `yaml:"compression"`
	Admin       Admin               `yaml:"admin"`
	Keys        Keys                `yaml:"keys"`
	Eval        Eval                `yaml:"eval"`

	// Source is the file the config was read from ("<embedded>" for the default).
	Source string `yaml:"-"`
	// lines maps the dotted path of every key in the file to its line.
	lines map[string]int
}

// Listen holds the addresses and request limits of `tollgate extproc`.
type Listen struct {
	// ExtProc is the gRPC address: "host:port" or "unix:/path/to.sock".
	ExtProc string `yaml:"extproc"`
	// Admin serves /metrics, /healthz and /readyz.
	Admin string `yaml:"admin"`
	// MaxBodyBytes caps request bodies the server accepts (413 above it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownGrace bounds how long in-flight streams may take after SIGTERM.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
}

// Provider kinds (Provider.Kind).
const (
	// KindOpenAI is an OpenAI-compatible API: POST {base_url}/v1/...,
	// "Authorization: Bearer <key>", the target model in the body.
	KindOpenAI = "openai"
	// KindAzure is Azure OpenAI: POST
	// /openai/deployments/{deployment}/...?api-version=..., "api-key: <key>".
	KindAzure = "azure"
)

// Provider is an OpenAI-compatible upstream.
type Provider struct {
	// Kind is the provider's API flavour: openai (default) or azure.
	Kind string `yaml:"kind"`
	// BaseURL is scheme://host[:port][/path prefix], e.g. https://api.openai.com.
	// For kind azure it is the resource endpoint without a path, e.g.
	// https://my-resource.openai.azure.com.
	BaseURL string `yaml:"base_url"`
	// APIVersion is the api-version query parameter Azure OpenAI requires
	// (e.g. 2024-10-21); kind azure only, and required there.
	APIVersion string `yaml:"api_version"`
	// APIKeyEnv names the environment variable holding the provider key.
	// The key itself never appears in config, Envoy resources or logs.
	APIKeyEnv string `yaml:"api_key_env"`
	// HTTP2 enables HTTP/2 to the provider (TLS ALPN h2).
	HTTP2 bool `yaml:"http2"`
	// Catalog names the built-in price list whose prices apply to this
	// provider's models (openai, anthropic, google, mistral, groq, deepseek);
	// default: the provider's own key.
	Catalog string `yaml:"catalog"`
	// Timeout is the per-try timeout for one attempt at this provider.
	Timeout time.Duration `yaml:"timeout"`
}

// Model is an alias a client names in "model", served by targets in fallback order.
type Model struct {
	Targets []Target `yaml:"targets"`
	// MaxTokens caps (and defaults) max_tokens for requests to this alias; 0 = no cap.
	MaxTokens int64 `yaml:"max_tokens"`
	// Compression is this alias's prompt compression (off when absent).
	Compression *Compression `yaml:"compression"`
}

// Target is one provider/model pair behind an alias.
type Target struct {
	Provider string `yaml:"provider"`
	// Model is the model the provider runs, the one the catalog prices.
	Model string `yaml:"model"`
	// Deployment is the Azure OpenAI deployment serving Model (kind azure
	// only); default: Model.
	Deployment string `yaml:"deployment"`
}

// Azure reports whether the provider speaks the Azure OpenAI API.
func (p Provider) Azure() bool { return p.Kind == KindAzure }

// DeploymentName is the Azure deployment of the target: Deployment, or
// Model when that is empty.
func (t Target) DeploymentName() string {
	if t.Deployment != "" {
		return t.Deployment
	}
	return t.Model
}

// AttemptTimeout is the per-try timeout of an alias's route: the largest
// timeout among its targets' providers (one route serves every target).
// The control plane writes it into the route's retry policy, and the
// upstream role reads it to tell an attempt Envoy cut from one that ended
// sooner.
func (c *Config) AttemptTimeout(alias string) time.Duration {
	var limit time.Duration
	for _, t := range c.Models[alias].Targets {
		limit = max(limit, c.Providers[t.Provider].Timeout)
	}
	return limit
}

// Deployment is the Azure deployment of provider's model as the alias
// route lists it; for a route that does not list it (or no route), the
// first alias (by name) that does. Validation keeps it unique per alias.
func (c *Config) Deployment(route, provider, model string) string {
	find := func(m Model) (string, bool) {
		for _, t := range m.Targets {
			if t.Provider == provider && t.Model == model {
				return t.DeploymentName(), true
			}
		}
		return "", false
	}
	if m, ok := c.Models[route]; ok {
		if d, ok := find(m); ok {
			return d
		}
	}
	for _, alias := range sortedKeys(c.Models) {
		if d, ok := find(c.Models[alias]); ok {
			return d
		}
	}
	return model
}

// Pricing configures the price catalog.
type Pricing struct {
	// Builtin includes the catalog compiled into the binary (default true).
	Builtin *bool `yaml:"builtin"`
	// Models add to or override catalog entries.
	Models []Price `yaml:"models"`
	// AllowUnpriced lets targets without a catalog price pass validation.
	// Their requests cost $0, so budgets never stop them; each one counts
	// in tollgate_unpriced_requests_total.
	AllowUnpriced bool `yaml:"allow_unpriced"`
}

// Price is one catalog entry in USD per million tokens.
type Price struct {
	Provider        string    `yaml:"provider"`
	Model           string    `yaml:"model"`
	Effective       time.Time `yaml:"effective"`
	Input           float64   `yaml:"input"`
	Output          float64   `yaml:"output"`
	CachedInput     float64   `yaml:"cached_input"`
	MaxOutputTokens int64     `yaml:"max_output_tokens"`
}

// Tenants maps API keys (by SHA-256) to tenants.
type Tenants struct {
	// TrustHeader makes the server accept x-tollgate-tenant set by an earlier
	// filter (the wasm router) instead of resolving the key itself.
	TrustHeader bool `yaml:"trust_header"`
	// TrustHeaderFrom says which filter in front of the server sets
	// x-tollgate-tenant from the API key and drops a client's own:
	// "wasm-router" (Tollgate's router in an Envoy config you manage) or
	// "other-filter". trust_header without xds.wasm.enabled requires it:
	// otherwise any client picks its tenant by sending the header.
	TrustHeaderFrom string `yaml:"trust_header_from"`
	// AllowAnonymous names the tenant for requests without a key; empty = 401.
	AllowAnonymous string `yaml:"allow_anonymous"`
	// AnonymousTier is the tier of anonymous requests.
	AnonymousTier string `yaml:"anonymous_tier"`
	Keys          []Key  `yaml:"keys"`
	// Tiers limit what a tier's keys may use. The wasm router enforces them
	// from the x-tollgate-model header, the ext_proc server from the body's
	// model, so a client cannot step around the allow-list by not sending
	// the header.
	Tiers map[string]Tier `yaml:"tiers"`
}

// Tier is the model policy of one tier.
type Tier struct {
	// AllowedModels, when non-empty, lists the aliases the tier may name.
	AllowedModels []string `yaml:"allowed_models"`
	// DefaultModel is the wasm router's route for a request without an
	// x-tollgate-model header (informational for ext_proc: the body names
	// the model).
	DefaultModel string `yaml:"default_model"`
}

// Key is one API key, stored only as the hex SHA-256 of the key string.
type Key struct {
	ID     string `yaml:"id"`
	SHA256 string `yaml:"sha256"`
	Tenant string `yaml:"tenant"`
	Tier   string `yaml:"tier"`
}

// Budgets caps spend per tenant.
type Budgets struct {
	Ledger Ledger `yaml:"ledger"`
	// Default applies to tenants without their own entry; zero caps = unlimited.
	Default Budget            `yaml:"default"`
	Tenants map[string]Budget `yaml:"tenants"`
}

// Budget is a pair of USD caps; zero means no cap for that window.
type Budget struct {
	DailyUSD   float64 `yaml:"daily_usd"`
	MonthlyUSD float64 `yaml:"monthly_usd"`
}

// Ledger says where spend is recorded.
type Ledger struct {
	// Backend is "file" (default) or "redis".
	Backend string `yaml:"backend"`
	// Path of the append-only ledger file (backend file).
	Path string `yaml:"path"`
	// Sync is when the file ledger fsyncs (backend file): "interval"
	// (default: every second, a crash loses at most the last second of
	// records) or "always" (before each reserve and settle returns).
	Sync  string      `yaml:"sync"`
	Redis LedgerRedis `yaml:"redis"`
}

// Ledger sync modes.
const (
	LedgerSyncInterval = "interval"
	LedgerSyncAlways   = "always"
)

// DefaultHoldTTL is how long a Redis ledger reservation holds its amount
// when budgets.ledger.redis.hold_ttl is not set.
const DefaultHoldTTL = 10 * time.Minute

// LedgerRedis is the Redis connection of the spend ledger.
type LedgerRedis struct {
	Redis `yaml:",inline"`
	// Timeout is the dial, read and write timeout of each ledger call. Zero
	// derives it from xds.message_timeout (40% of it), so a hung Redis fails
	// the call while Envoy still waits for the answer.
	Timeout time.Duration `yaml:"timeout"`
	// HoldTTL is how long an unsettled reservation holds budget (default
	// DefaultHoldTTL): a crashed or hung request blocks its tenant's budget
	// for at most this long.
	HoldTTL time.Duration `yaml:"hold_ttl"`
}

// Limits are requests-per-minute and tokens-per-minute caps per tenant and
// per API key, counted in fixed one-minute windows. A request must fit both
// its tenant's and its key's limits.
type Limits struct {
	// Backend is "memory" (default: counters per replica) or "redis"
	// (counters shared by every replica on the same Redis and prefix).
	Backend string `yaml:"backend"`
	// Default applies to tenants without their own entry; zero = no limit.
	Default RateLimit `yaml:"default"`
	// Tenants maps a tenant id to its limits.
	Tenants map[string]RateLimit `yaml:"tenants"`
	// Keys maps an API key id (tenants.keys[].id) to its limits.
	Keys map[string]RateLimit `yaml:"keys"`
	// DefaultOutputTokens is the output a request without max_tokens is
	// assumed to produce when its tokens are checked against a TPM (default
	// DefaultRateLimitOutputTokens); the response corrects it.
	DefaultOutputTokens int64       `yaml:"default_output_tokens"`
	Redis               LimitsRedis `yaml:"redis"`
}

// RateLimit is a pair of per-minute caps; zero means no cap.
type RateLimit struct {
	RPM int64 `yaml:"rpm"`
	TPM int64 `yaml:"tpm"`
}

// DefaultRateLimitOutputTokens is limits.default_output_tokens when unset.
const DefaultRateLimitOutputTokens = 1024

// LimitsRedis is the Redis connection of the rate limiter.
type LimitsRedis struct {
	Redis `yaml:",inline"`
	// Timeout is the dial, read and write timeout of each call; zero
	// derives it from xds.message_timeout as for the spend ledger.
	Timeout time.Duration `yaml:"timeout"`
}

// Redis is a Redis connection.
type Redis struct {
	Addr        string `yaml:"addr"`
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	Prefix      string `yaml:"prefix"`
}

// Guardrails configures input and output screening.
type Guardrails struct {
	Input  GuardDirection `yaml:"input"`
	Output GuardDirection `yaml:"output"`
}

// GuardDirection configures one direction's detectors.
type GuardDirection struct {
	Enabled bool `yaml:"enabled"`
	// Roles are the message roles inspected on input (default user, tool).
	Roles []string `yaml:"roles"`
	// Detectors maps a detector or finding type to block|redact|log.
	Detectors map[string]string `yaml:"detectors"`
	// InjectionThreshold overrides the shipped prompt-injection threshold.
	InjectionThreshold float64 `yaml:"injection_threshold"`
	// StreamWindow is the hold-back window in bytes for streamed output.
	StreamWindow int `yaml:"stream_window"`
	// External is an OpenAI-compatible moderation endpoint consulted after
	// the built-in detectors (input only); detectors.external says what its
	// flags do. When it fails, failure_mode.guardrails decides.
	External *GuardExternal `yaml:"external"`
}

// GuardExternal is the moderation endpoint of the external detector.
type GuardExternal struct {
	// URL is the full endpoint, e.g. https://api.openai.com/v1/moderations.
	URL string `yaml:"url"`
	// APIKeyEnv names the environment variable holding its bearer key.
	APIKeyEnv string `yaml:"api_key_env"`
	// Model is sent as "model" (e.g. omni-moderation-latest); empty = omitted.
	Model string `yaml:"model"`
	// Timeout bounds one moderation call. Zero derives it from
	// xds.message_timeout (20% of it, guard.ExternalTimeoutFor), so a hung
	// endpoint fails the call while Envoy still waits for the answer.
	Timeout time.Duration `yaml:"timeout"`
	// Threshold is a category score that counts as a flag even when the
	// endpoint does not flag it; 0 = only what the endpoint flags.
	Threshold float64 `yaml:"threshold"`
}

// Cache configures the response cache.
type Cache struct {
	Enabled bool   `yaml:"enabled"`
	Backend string `yaml:"backend"`
	// MaxTemperature is the highest request temperature that is cached
	// (default 1.0 when the key is absent); 0 caches only requests with
	// temperature 0.
	MaxTemperature float64       `yaml:"max_temperature"`
	Exact          ExactCache    `yaml:"exact"`
	Semantic       SemanticCache `yaml:"semantic"`
	Redis          CacheRedis    `yaml:"redis"`
}

// CacheRedis is the Redis connection of the shared cache tier.
type CacheRedis struct {
	Redis `yaml:",inline"`
	// Timeout bounds each Redis call of the cache. Zero derives it from
	// xds.message_timeout (20% of it, half the cache lookup's 40% budget),
	// so a hung Redis degrades a lookup to a miss while Envoy still waits.
	Timeout time.Duration `yaml:"timeout"`
}

// ExactCache configures the exact-match tier.
type ExactCache struct {
	Enabled  bool          `yaml:"enabled"`
	MaxBytes int64         `yaml:"max_bytes"`
	TTL      time.Duration `yaml:"ttl"`
}

// SemanticCache configures the similarity tier.
type SemanticCache struct {
	Enabled bool `yaml:"enabled"`
	// Threshold is the minimum cosine similarity of a candidate (of a hit
	// without the verifier); 0 = the shipped one for the mode (0.30 with the
	// verifier, 0.94 without).
	Threshold float64 `yaml:"threshold"`
	// Verifier lets the learned pair verifier decide each candidate; default
	// on with the builtin embedder, and only allowed with it.
	Verifier        *bool    `yaml:"verifier"`
	DifferenceGuard *bool    `yaml:"difference_guard"`
	Embedder        Embedder `yaml:"embedder"`
	// MaxEntriesPerPartition bounds the in-process index of one tenant and
	// alias; 0 = the shipped bound. The oldest entries are evicted first.
	MaxEntriesPerPartition int `yaml:"max_entries_per_partition"`
	// MaxEntries bounds the whole in-process index; 0 = the shipped bound.
	MaxEntries int `yaml:"max_entries"`
	// MaxBytes bounds the approximate heap bytes of the whole in-process
	// index (prompts, vectors, graph); 0 = the shipped bound. Response
	// bodies are bounded by cache.exact.max_bytes.
	MaxBytes int64 `yaml:"max_bytes"`
}

// Embedder selects the embedding model of the semantic cache.
type Embedder struct {
	// Kind is "builtin" (default, no network) or "openai".
	Kind      string `yaml:"kind"`
	URL       string `yaml:"url"`
	Model     string `yaml:"model"`
	APIKeyEnv string `yaml:"api_key_env"`
	// Timeout bounds one embeddings call. Zero derives it from
	// xds.message_timeout (40% of it: the cache lookup's whole budget).
	Timeout time.Duration `yaml:"timeout"`
}

// Mode is a failure mode: what happens to traffic when a layer fails.
type Mode string

// Failure modes.
const (
	Open   Mode = "open"
	Closed Mode = "closed"
)

// FailureMode decides per layer whether a failure lets traffic through
// (open, counted and logged) or rejects it (closed).
type FailureMode struct {
	// ExtProc is what Envoy does when this server is slow or down
	// (failure_mode_allow in the filter config).
	ExtProc Mode `yaml:"extproc"`
	// Guardrails applies when a detector fails (the external moderation
	// endpoint is down, slow or answers garbage): closed answers 503
	// guardrails_unavailable, open lets the request through unmoderated.
	Guardrails Mode `yaml:"guardrails"`
	// Cache must be open: a failing cache tier (Redis) makes the lookup a
	// miss and the request goes to the provider; there is nothing to close.
	Cache Mode `yaml:"cache"`
	// Budgets applies when the spend ledger cannot be reached.
	Budgets Mode `yaml:"budgets"`
	// RateLimits applies when the rate limiter's Redis cannot be reached
	// (default open: a limiter protects capacity, not money).
	RateLimits Mode `yaml:"ratelimits"`
}

// Credentials says which ext_proc role talks to providers on the client's
// behalf.
type Credentials struct {
	// Inject is "upstream" (default: the per-attempt upstream role rewrites
	// model and sets the provider key for the target it serves; what
	// `tollgate xds` configures) or "downstream" (the downstream role does it
	// for the alias's first target: for Istio and Envoy Gateway, whose
	// clusters are not Tollgate's, at the price of no cross-provider
	// fallback).
	Inject string `yaml:"inject"`
}
