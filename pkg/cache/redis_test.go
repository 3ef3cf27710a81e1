package cache

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/redistest"
)

func newRedisCache(t *testing.T, addr, prefix string) *Cache {
	t.Helper()
	c, _ := newTestCache(t, func(cfg *Config) {
		cfg.Backend = BackendRedis
		cfg.Redis.Addr = addr
		cfg.Redis.Prefix = prefix
		cfg.Redis.Timeout = 200 * time.Millisecond
		cfg.Semantic.Threshold = 0.5
	})
	return c
}

func redisErrors(c *Cache) float64 {
	var sum float64
	for _, op := range []string{"get", "put", "get_skipped", "put_skipped", "subscribe", "scan", "load"} {
		sum += testutil.ToFloat64(c.metrics.backendErrors.WithLabelValues(BackendRedis, op))
	}
	return sum
}

func TestRedisSharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisCache(t, srv.Addr, "t1:")
	b := newRedisCache(t, srv.Addr, "t1:")
	require.NoError(t, a.WaitWarm(ctxT(t)))
	require.NoError(t, b.WaitWarm(ctxT(t)))

	store(t, a, "acme", chatBody("What is the capital of France?"), "Paris")

	// Exact: b reads Redis directly on a local miss.
	hit, ok := lookup(t, b, "acme", chatBody("What is the capital of France?"))
	require.True(t, ok)
	assert.Equal(t, KindExact, hit.Kind)
	assert.Contains(t, string(hit.Body), "Paris")

	// Semantic: b learns the vector from a's announcement.
	require.Eventually(t, func() bool {
		r, err := b.NewRequest("acme", "gpt", []byte(chatBody("what's the capital of France")))
		require.NoError(t, err)
		return b.index.has(r.partition, mustRequest(t, "acme", "gpt", chatBody("What is the capital of France?")).exact)
	}, 5*time.Second, 5*time.Millisecond)
	hit, ok = lookup(t, b, "acme", chatBody("what's the capital of France"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)
	assert.Contains(t, string(hit.Body), "Paris")

	// Tenants stay apart in the shared tier too.
	_, ok = lookup(t, b, "globex", chatBody("What is the capital of France?"))
	assert.False(t, ok)
	// The guard applies to entries learnt from peers.
	_, ok = lookup(t, b, "acme", chatBody("What is the capital of Germany?"))
	assert.False(t, ok)
	assert.Zero(t, redisErrors(a))
	assert.Zero(t, redisErrors(b))
}

func TestRedisWarmUpFromScan(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisCache(t, srv.Addr, "t2:")
	require.NoError(t, a.WaitWarm(ctxT(t)))
	store(t, a, "acme", chatBody("How do I reverse a linked list in Go?"), "code")
	store(t, a, "acme", chatBody("What is the capital of France?"), "Paris")

	// A replica started later finds the entries by scanning.
	c := newRedisCache(t, srv.Addr, "t2:")
	require.NoError(t, c.WaitWarm(ctxT(t)))
	assert.Equal(t, 2, c.index.len())
	hit, ok := lookup(t, c, "acme", chatBody("how do i reverse a linked list in go"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)

	// Another prefix sees nothing.
	other := newRedisCache(t, srv.Addr, "other:")
	require.NoError(t, other.WaitWarm(ctxT(t)))
	assert.Zero(t, other.index.len())
}

func TestRedisDownDegradesToLocal(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisCache(t, srv.Addr, "t3:")
	b := newRedisCache(t, srv.Addr, "t3:")
	require.NoError(t, a.WaitWarm(ctxT(t)))
	require.NoError(t, b.WaitWarm(ctxT(t)))
	store(t, a, "acme", chatBody("What is the capital of France?"), "Paris")

	srv.Stop()

	// a still serves what it holds locally.
	hit, ok := lookup(t, a, "acme", chatBody("What is the capital of France?"))
	require.True(t, ok)
	assert.Contains(t, string(hit.Body), "Paris")

	// Storing works (locally) and never returns the Redis error.
	store(t, a, "acme", chatBody("What is the capital of Italy?"), "Rome")
	hit, ok = lookup(t, a, "acme", chatBody("What is the capital of Italy?"))
	require.True(t, ok)
	assert.Contains(t, string(hit.Body), "Rome")
	assert.Positive(t, redisErrors(a))

	// b misses the exact entry it never saw, without an error for the client.
	_, ok = lookup(t, b, "acme", chatBody("What is the capital of Italy?"))
	assert.False(t, ok)
	assert.Positive(t, redisErrors(b))
}

func TestRedisUnreachableAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	c := newRedisCache(t, addr, "t4:")
	store(t, c, "acme", chatBody("What is the capital of France?"), "Paris")
	hit, ok := lookup(t, c, "acme", chatBody("What is the capital of France?"))
	require.True(t, ok)
	assert.Equal(t, KindExact, hit.Kind)
	hit, ok = lookup(t, c, "acme", chatBody("what's the capital of France"))
	require.True(t, ok)
	assert.Equal(t, KindSemantic, hit.Kind)
	assert.Positive(t, redisErrors(c))

	ctx, cancel := contextWithTimeout(t, 50*time.Millisecond)
	defer cancel()
	assert.Error(t, c.WaitWarm(ctx))
}
