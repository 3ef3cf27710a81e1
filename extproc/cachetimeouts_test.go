package extproc

import (
	"context"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/netfault"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

func TestCacheConfigDerivesTimeouts(t *testing.T) {
	tests := []struct {
		name                 string
		cache                config.Cache
		mt                   time.Duration
		lookup, redis, embed time.Duration
	}{
		{"derived from the default", config.Cache{}, 200 * time.Millisecond, 80 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond},
		{"derived from a short one", config.Cache{}, 50 * time.Millisecond, 20 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond},
		{"unset message timeout", config.Cache{}, 0, 80 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond},
		{"explicit values win", config.Cache{
			Redis:    config.CacheRedis{Timeout: 70 * time.Millisecond},
			Semantic: config.SemanticCache{Embedder: config.Embedder{Timeout: 120 * time.Millisecond}},
		}, 200 * time.Millisecond, 140 * time.Millisecond, 70 * time.Millisecond, 120 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cc := CacheConfig(tc.cache, tc.mt, nil)
			assert.Equal(t, tc.lookup, cc.LookupTimeout)
			assert.Equal(t, tc.redis, cc.Redis.Timeout)
			assert.Equal(t, tc.embed, cc.Semantic.Embedder.Timeout)
			assert.Less(t, cc.LookupTimeout, max(tc.mt, config.DefaultMessageTimeout), "below Envoy's wait")
		})
	}
}

// TestCacheLookupAgainstFrozenPeer: with the timeouts extproc derives from
// the default message timeout, a lookup against a Redis or an embeddings
// endpoint that accepts and never answers is a miss well before Envoy's
// 200ms wait ends, and the failure is counted.
func TestCacheLookupAgainstFrozenPeer(t *testing.T) {
	const messageTimeout = 200 * time.Millisecond
	budget := cache.TimeoutsFor(messageTimeout).Lookup
	off := false
	tests := []struct {
		name   string
		cfg    func(addr string) config.Cache
		metric string
	}{
		{"redis", func(addr string) config.Cache {
			return config.Cache{Backend: "redis", Exact: config.ExactCache{Enabled: true}, Redis: config.CacheRedis{Redis: config.Redis{Addr: addr}}}
		}, "tollgate_cache_backend_errors_total"},
		{"embedder", func(addr string) config.Cache {
			return config.Cache{Backend: "memory", Semantic: config.SemanticCache{Enabled: true, Verifier: &off,
				Embedder: config.Embedder{Kind: "openai", URL: "http://" + addr + "/v1", Model: "text-embedding-3-small"}}}
		}, "tollgate_cache_embedder_errors_total"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, err := cache.New(CacheConfig(tc.cfg(netfault.FrozenPeer(t)), messageTimeout, nil), reg)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			req, err := c.NewRequest("acme", "gpt", []byte(`{"model":"gpt","temperature":0,"messages":[{"role":"user","content":"What is the capital of France?"}]}`))
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, hit := c.Lookup(ctx, req)
			elapsed := time.Since(start)
			assert.False(t, hit)
			assert.GreaterOrEqual(t, elapsed, budget/2, "the lookup did wait on the peer")
			assert.Less(t, elapsed, messageTimeout, "a miss before Envoy stops waiting (budget %s)", budget)
			assert.Positive(t, promtest.Sum(t, reg, tc.metric, nil), "the failure is counted")
		})
	}
}
