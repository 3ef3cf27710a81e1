package cache

import (
	"errors"
	"fmt"
	"time"
)

// Backends.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"
)

// Embedder kinds.
const (
	EmbedderBuiltin = "builtin"
	EmbedderOpenAI  = "openai"
)

// Shipped defaults. DefaultThreshold (used without the verifier) was chosen
// on the training split of cache-qqp (see README.md) for the built-in
// embedder with the difference guard on; with the verifier the threshold
// defaults to VerifierFloor.
const (
	DefaultThreshold              = 0.94
	DefaultMaxBytes               = 64 << 20
	DefaultTTL                    = time.Hour
	DefaultMaxEntriesPerPartition = 100_000
	DefaultMaxEntries             = 100_000
	DefaultMaxIndexBytes          = 64 << 20
	DefaultEmbedTimeout           = 2 * time.Second
	DefaultRedisPrefix            = "tollgate:cache:"
	DefaultRedisTimeout           = 50 * time.Millisecond
)

// EmbedderConfig selects the embedder for the semantic cache.
type EmbedderConfig struct {
	// Kind is "builtin" (default; local, no network) or "openai" (any
	// OpenAI-compatible /v1/embeddings endpoint).
	Kind string
	// URL is the base URL of the endpoint, e.g. "https://api.openai.com/v1"
	// ("/embeddings" is appended).
	URL string
	// Model is sent as the request's "model".
	Model string
	// APIKeyEnv names the environment variable holding the bearer token.
	APIKeyEnv string
	// Timeout bounds one embeddings call (default 2s).
	Timeout time.Duration
}

// ExactConfig configures the exact cache.
type ExactConfig struct {
	Enabled bool
	// MaxBytes is the in-process byte budget for stored responses (also used
	// by the semantic cache's bodies).
	MaxBytes int64
	// TTL is how long an entry lives (both tiers).
	TTL time.Duration
}

// SemanticConfig configures the semantic cache.
type SemanticConfig struct {
	Enabled bool
	// Threshold is the minimum cosine similarity of a candidate: of a hit
	// without the verifier, of a prompt handed to the verifier with it. 0
	// selects the shipped value for the mode (DefaultThreshold, or
	// VerifierFloor with the verifier).
	Threshold float64
	// Verifier makes the learned pair verifier (verify.go) decide between a
	// query and each candidate at or above Threshold. It needs the built-in
	// embedder: its features include the built-in cosine.
	Verifier bool
	// DifferenceGuard vetoes hits whose prompts differ in numbers, named
	// entities, negation or rare content words.
	DifferenceGuard bool
	Embedder        EmbedderConfig
	// MaxEntriesPerPartition bounds each partition's (tenant and alias)
	// vector index; the partition's oldest entry is evicted first.
	MaxEntriesPerPartition int
	// MaxEntries bounds the whole in-process index across partitions; the
	// oldest entry of any partition is evicted first.
	MaxEntries int
	// MaxBytes bounds the approximate heap bytes of the whole index (prompt
	// text, stored vector and a measured fixed cost per entry); the oldest
	// entry is evicted first. Response bodies are bounded separately by
	// Exact.MaxBytes.
	MaxBytes int64
}

// RedisConfig configures the shared tier.
type RedisConfig struct {
	Addr     string
	Password string
	DB       int
	// Prefix is prepended to every key and channel (default "tollgate:cache:").
	Prefix string
	// Timeout bounds each Redis call on the request path (default 50ms).
	Timeout time.Duration
}

// Config configures a Cache.
type Config struct {
	Exact    ExactConfig
	Semantic SemanticConfig
	// MaxTemperature is the highest temperature that is cached. Requests
	// without a temperature count as 1 (the OpenAI default).
	MaxTemperature float64
	// Backend is "memory" (default) or "redis".
	Backend string
	Redis   RedisConfig
	// LookupTimeout bounds one Lookup as a whole (every Redis and embedder
	// call in it): past it the lookup is a miss. 0 = no overall bound (each
	// call still has its own timeout). See TimeoutsFor.
	LookupTimeout time.Duration
}

// Timeouts are the cache's deadlines on the request path.
type Timeouts struct {
	// Lookup bounds one Lookup as a whole.
	Lookup time.Duration
	// Redis bounds each Redis call.
	Redis time.Duration
	// Embed bounds each embeddings call.
	Embed time.Duration
}

// TimeoutsFor derives the cache's deadlines from the ext_proc message
// timeout (how long Envoy waits for each answer). A lookup runs in the
// request-body phase next to the budget reservation (whose Redis ledger
// gets 40% of the message timeout, see meter.RedisTimeoutsFor), so the
// lookup as a whole gets the other 40%: one embeddings call may use all of
// it, one Redis call half (a lookup makes up to two). A hung Redis or
// embedder then turns the lookup into a miss while Envoy still waits, and
// the request goes upstream instead of failing with an Envoy timeout. At
// least 10ms (5ms per Redis call).
func TimeoutsFor(messageTimeout time.Duration) Timeouts {
	lookup := max(messageTimeout*2/5, 10*time.Millisecond)
	return Timeouts{Lookup: lookup, Redis: max(lookup/2, 5*time.Millisecond), Embed: lookup}
}

// DefaultConfig returns the shipped defaults: exact and semantic caching on,
// the built-in embedder with the verifier and the difference guard,
// in-process backend.
func DefaultConfig() Config {
	return Config{
		Exact: ExactConfig{Enabled: true, MaxBytes: DefaultMaxBytes, TTL: DefaultTTL},
		Semantic: SemanticConfig{
			Enabled:                true,
			Verifier:               true,
			DifferenceGuard:        true,
			Embedder:               EmbedderConfig{Kind: EmbedderBuiltin},
			MaxEntriesPerPartition: DefaultMaxEntriesPerPartition,
			MaxEntries:             DefaultMaxEntries,
			MaxBytes:               DefaultMaxIndexBytes,
		},
		MaxTemperature: DefaultMaxTemperature,
		Backend:        BackendMemory,
	}
}

// Validation errors, joined by Validate.
var (
	ErrInvalidConfig = errors.New("invalid cache config")
)

// withDefaults fills zero values that have an obvious default.
func (c Config) withDefaults() Config {
	if c.Exact.MaxBytes == 0 {
		c.Exact.MaxBytes = DefaultMaxBytes
	}
	if c.Exact.TTL == 0 {
		c.Exact.TTL = DefaultTTL
	}
	if c.Semantic.Embedder.Kind == "" {
		c.Semantic.Embedder.Kind = EmbedderBuiltin
	}
	if c.Semantic.Embedder.Timeout == 0 {
		c.Semantic.Embedder.Timeout = DefaultEmbedTimeout
	}
	if c.Semantic.MaxEntriesPerPartition == 0 {
		c.Semantic.MaxEntriesPerPartition = DefaultMaxEntriesPerPartition
	}
	if c.Semantic.MaxEntries == 0 {
		c.Semantic.MaxEntries = DefaultMaxEntries
	}
	if c.Semantic.MaxBytes == 0 {
		c.Semantic.MaxBytes = DefaultMaxIndexBytes
	}
	if c.Backend == "" {
		c.Backend = BackendMemory
	}
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = DefaultRedisPrefix
	}
	if c.Redis.Timeout == 0 {
		c.Redis.Timeout = DefaultRedisTimeout
	}
	if c.Semantic.Threshold == 0 {
		c.Semantic.Threshold = DefaultThreshold
		if c.Semantic.Verifier {
			c.Semantic.Threshold = VerifierFloor
		}
	}
	return c
}

// Validate reports every problem in the config.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Exact.MaxBytes < 0 {
		bad("exact.max_bytes must be positive, got %d", c.Exact.MaxBytes)
	}
	if c.Exact.TTL < 0 {
		bad("exact.ttl must be positive, got %s", c.Exact.TTL)
	}
	if c.Semantic.Threshold < 0 || c.Semantic.Threshold > 1 {
		bad("semantic.threshold must be in [0,1], got %g", c.Semantic.Threshold)
	}
	if c.Semantic.Verifier && c.Semantic.Embedder.Kind != EmbedderBuiltin {
		bad("semantic.verifier needs the builtin embedder (its features include the built-in cosine), got %q", c.Semantic.Embedder.Kind)
	}
	if c.Semantic.MaxEntriesPerPartition < 0 {
		bad("semantic.max_entries_per_partition must be positive, got %d", c.Semantic.MaxEntriesPerPartition)
	}
	if c.Semantic.MaxEntries < 0 {
		bad("semantic.max_entries must be positive, got %d", c.Semantic.MaxEntries)
	}
	if c.Semantic.MaxBytes < 0 {
		bad("semantic.max_bytes must be positive, got %d", c.Semantic.MaxBytes)
	}
	switch c.Semantic.Embedder.Kind {
	case EmbedderBuiltin:
	case EmbedderOpenAI:
		if c.Semantic.Embedder.URL == "" {
			bad("semantic.embedder.url is required for the openai embedder")
		}
		if c.Semantic.Embedder.Model == "" {
			bad("semantic.embedder.model is required for the openai embedder")
		}
	default:
		bad("semantic.embedder.kind must be %q or %q, got %q", EmbedderBuiltin, EmbedderOpenAI, c.Semantic.Embedder.Kind)
	}
	if c.Semantic.Embedder.Timeout < 0 {
		bad("semantic.embedder.timeout must be positive, got %s", c.Semantic.Embedder.Timeout)
	}
	if c.LookupTimeout < 0 {
		bad("lookup timeout must be positive, got %s", c.LookupTimeout)
	}
	if c.Redis.Timeout < 0 {
		bad("redis.timeout must be positive, got %s", c.Redis.Timeout)
	}
	if c.MaxTemperature < 0 {
		bad("max_temperature must be >= 0, got %g", c.MaxTemperature)
	}
	switch c.Backend {
	case BackendMemory:
	case BackendRedis:
		if c.Redis.Addr == "" {
			bad("redis.addr is required for the redis backend")
		}
	default:
		bad("backend must be %q or %q, got %q", BackendMemory, BackendRedis, c.Backend)
	}
	return errors.Join(errs...)
}
