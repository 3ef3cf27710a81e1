package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/redistest"
)

// t0 is 10 seconds into a window.
var t0 = time.Unix(1_800_000_000-1_800_000_000%60+10, 0)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func redisStore(t testing.TB, addr string) *Redis {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return NewRedis(c, RedisOptions{Timeout: 2 * time.Second})
}

// backends runs f against each Store.
func backends(t *testing.T, f func(t *testing.T, store Store)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemory()) })
	t.Run("redis", func(t *testing.T) { f(t, redisStore(t, redistest.Start(t).Addr)) })
}

func tenant(rpm, tpm int64) Subject {
	return Subject{Scope: "tenant", ID: "acme", Limits: Limits{RPM: rpm, TPM: tpm}}
}

func TestRPM(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		ctx := testCtx(t)
		c := &clock{t: t0}
		l := New(store, WithClock(c.Now))
		subj := []Subject{tenant(3, 0)}
		for i := range 3 {
			d, _, err := l.Admit(ctx, "acme", subj, 10)
			require.NoError(t, err)
			require.True(t, d.Allowed, "request %d", i+1)
			assert.Equal(t, Quota{Limit: 3, Remaining: int64(2 - i)}, d.Requests)
			assert.Equal(t, Quota{}, d.Tokens, "no TPM configured")
		}
		d, _, err := l.Admit(ctx, "acme", subj, 10)
		require.NoError(t, err)
		assert.False(t, d.Allowed)
		assert.Equal(t, RPM, d.Kind)
		assert.Equal(t, "acme", d.Subject.ID)
		assert.Equal(t, Usage{Requests: 3, Tokens: 30}, d.Used)
		assert.Equal(t, Quota{Limit: 3, Remaining: 0}, d.Requests)
		assert.Equal(t, t0.Add(50*time.Second), d.Reset, "the window ends at the next minute")

		c.Set(t0.Add(50 * time.Second))
		d, _, err = l.Admit(ctx, "acme", subj, 10)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "a new window starts from zero")
		assert.Equal(t, Quota{Limit: 3, Remaining: 2}, d.Requests)
	})
}

func TestTPMCorrection(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		ctx := testCtx(t)
		c := &clock{t: t0}
		l := New(store, WithClock(c.Now))
		subj := []Subject{tenant(0, 100)}
		d, first, err := l.Admit(ctx, "acme", subj, 40)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		d, _, err = l.Admit(ctx, "acme", subj, 40)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		assert.Equal(t, Quota{Limit: 100, Remaining: 20}, d.Tokens)

		d, _, err = l.Admit(ctx, "acme", subj, 40)
		require.NoError(t, err)
		require.False(t, d.Allowed, "80 used + 40 estimated > 100")
		assert.Equal(t, TPM, d.Kind)
		assert.False(t, d.TooLarge)
		assert.Equal(t, Usage{Requests: 2, Tokens: 80}, d.Used, "a refused request charges nothing")

		// The first request used 10 tokens, not 40: the window gives back 30.
		require.NoError(t, l.Correct(ctx, first, 10))
		d, third, err := l.Admit(ctx, "acme", subj, 40)
		require.NoError(t, err)
		require.True(t, d.Allowed, "50 used + 40 fits after the correction")
		assert.Equal(t, Quota{Limit: 100, Remaining: 10}, d.Tokens)

		// More than estimated is charged too.
		require.NoError(t, l.Correct(ctx, third, 50))
		d, _, err = l.Admit(ctx, "acme", subj, 1)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "100 tokens used")
		assert.Equal(t, int64(100), d.Used.Tokens)

		// A correction after its window ended changes nothing.
		c.Set(t0.Add(time.Minute))
		_, next, err := l.Admit(ctx, "acme", subj, 40)
		require.NoError(t, err)
		require.NoError(t, l.Correct(ctx, third, 0))
		require.NoError(t, l.Correct(ctx, next, 40))
		d, _, err = l.Admit(ctx, "acme", subj, 60)
		require.NoError(t, err)
		assert.True(t, d.Allowed)
		assert.Equal(t, Quota{Limit: 100, Remaining: 0}, d.Tokens)
	})
}

func TestTooLarge(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		l := New(store, WithClock((&clock{t: t0}).Now))
		d, _, err := l.Admit(testCtx(t), "acme", []Subject{tenant(10, 100)}, 101)
		require.NoError(t, err)
		assert.False(t, d.Allowed)
		assert.True(t, d.TooLarge)
		assert.Equal(t, TPM, d.Kind)
	})
}

// TestAllOrNothing: a request refused by its key's limit charges neither
// the key nor its tenant.
func TestAllOrNothing(t *testing.T) {
	backends(t, func(t *testing.T, store Store) {
		ctx := testCtx(t)
		l := New(store, WithClock((&clock{t: t0}).Now))
		bot := []Subject{tenant(10, 1000), {Scope: "key", ID: "bot", Limits: Limits{RPM: 1}}}
		other := []Subject{tenant(10, 1000), {Scope: "key", ID: "other"}}
		d, _, err := l.Admit(ctx, "acme", bot, 5)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		assert.Equal(t, Quota{Limit: 1, Remaining: 0}, d.Requests, "the tightest limit is reported")
		d, _, err = l.Admit(ctx, "acme", bot, 5)
		require.NoError(t, err)
		require.False(t, d.Allowed)
		assert.Equal(t, RPM, d.Kind)
		assert.Equal(t, "key", d.Subject.Scope)
		d, _, err = l.Admit(ctx, "acme", other, 5)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		assert.Equal(t, Quota{Limit: 10, Remaining: 8}, d.Requests, "the refused request did not count for the tenant")
		assert.Equal(t, Quota{Limit: 1000, Remaining: 990}, d.Tokens)
	})
}

func TestNoLimitsNoCall(t *testing.T) {
	l := New(failing{}, WithClock((&clock{t: t0}).Now))
	d, tk, err := l.Admit(testCtx(t), "acme", []Subject{tenant(0, 0)}, 5)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	require.NoError(t, l.Correct(testCtx(t), tk, 100))
}

type failing struct{}

func (failing) Take(context.Context, int64, string, []Subject, int64) ([]Usage, bool, error) {
	panic("no call expected")
}
func (failing) Add(context.Context, int64, string, []Subject, int64) error { panic("no call expected") }

// TestRedisReplicas: two limiters (two replicas) on one Redis share the
// counters, also under concurrency: exactly RPM requests are admitted.
func TestRedisReplicas(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := &clock{t: t0}
	a := New(redisStore(t, srv.Addr), WithClock(c.Now))
	b := New(redisStore(t, srv.Addr), WithClock(c.Now))
	subj := []Subject{tenant(50, 0)}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for i := range 80 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, _, err := l.Admit(ctx, "acme", subj, 1)
			assert.NoError(t, err)
			if d.Allowed {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, admitted)

	// A correction on one replica is seen by the other.
	c.Set(t0.Add(time.Minute))
	tpm := []Subject{tenant(0, 100)}
	_, tk, err := a.Admit(ctx, "acme", tpm, 90)
	require.NoError(t, err)
	d, _, err := b.Admit(ctx, "acme", tpm, 20)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.NoError(t, a.Correct(ctx, tk, 30))
	d, _, err = b.Admit(ctx, "acme", tpm, 20)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	assert.Equal(t, Quota{Limit: 100, Remaining: 50}, d.Tokens)
}

func TestRedisKeysExpire(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = client.Close() })
	l := New(NewRedis(client, RedisOptions{KeyPrefix: "p:"}), WithClock((&clock{t: t0}).Now))
	_, _, err := l.Admit(ctx, "acme", []Subject{tenant(5, 0)}, 1)
	require.NoError(t, err)
	keys, err := client.Keys(ctx, "p:*").Result()
	require.NoError(t, err)
	require.Equal(t, []string{"p:{acme}:tenant:acme:" + strconv.FormatInt(t0.Unix()/60, 10)}, keys)
	ttl, err := client.TTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Minute)
	assert.LessOrEqual(t, ttl, 2*time.Minute)
}

func TestRedisErrorReturned(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	l := New(redisStore(t, srv.Addr), WithClock((&clock{t: t0}).Now))
	srv.Stop()
	_, _, err := l.Admit(ctx, "acme", []Subject{tenant(5, 0)}, 1)
	require.Error(t, err)
}

func BenchmarkAdmitMemory(b *testing.B) {
	benchAdmit(b, NewMemory())
}

func BenchmarkAdmitRedis(b *testing.B) {
	benchAdmit(b, redisStore(b, redistest.Start(b).Addr))
}

// benchAdmit: one request charged to a tenant and a key, then corrected.
func benchAdmit(b *testing.B, store Store) {
	ctx := context.Background()
	l := New(store)
	subj := []Subject{
		{Scope: "tenant", ID: "acme", Limits: Limits{RPM: 1 << 40, TPM: 1 << 50}},
		{Scope: "key", ID: "bot", Limits: Limits{RPM: 1 << 40, TPM: 1 << 50}},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d, tk, err := l.Admit(ctx, "acme", subj, 500)
		if err != nil || !d.Allowed {
			b.Fatal(err, d)
		}
		if err := l.Correct(ctx, tk, 300); err != nil {
			b.Fatal(err)
		}
	}
}
