package meter

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/test/netfault"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/redistest"
)

// TestRedisLedgerHoldsExpire: a reservation that is never settled (its
// replica crashed or hung) stops counting against the cap after HoldTTL; a
// late settle still records the actual cost.
func TestRedisLedgerHoldsExpire(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	clock := newFakeClock(t0)
	b := NewBudgets(NewRedisLedger(c, RedisLedgerOptions{HoldTTL: 10 * time.Minute}),
		map[string]Caps{"acme": {Daily: 10 * Dollar}}, WithClock(clock.Now))

	stuck, err := b.Reserve(ctx, "acme", 8*Dollar, "stuck")
	require.NoError(t, err)
	_, err = b.Reserve(ctx, "acme", 5*Dollar, "blocked")
	require.ErrorIs(t, err, ErrBudgetExceeded, "the hold counts while it is fresh")

	clock.Set(t0.Add(10*time.Minute + time.Second))
	r, err := b.Reserve(ctx, "acme", 9*Dollar, "after")
	require.NoError(t, err, "the expired hold was released")
	s, err := b.Spent(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, Spend{}, s, "an expired hold is not spend")
	held, err := c.HGet(ctx, "tollgate:budget:{acme}:d:"+r.Windows().Day, "held").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(9*Dollar), held)

	// The late settle of the expired reservation records its cost once,
	// without releasing its hold a second time.
	require.NoError(t, stuck.Settle(ctx, 2*Dollar))
	require.NoError(t, r.Settle(ctx, Dollar))
	s, err = b.Spent(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, Spend{Daily: 3 * Dollar, Monthly: 3 * Dollar}, s)
	held, err = c.HGet(ctx, "tollgate:budget:{acme}:d:"+r.Windows().Day, "held").Int64()
	require.NoError(t, err)
	assert.Zero(t, held)
	n, err := c.ZCard(ctx, "tollgate:budget:{acme}:holds").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no hold left behind")
}

// TestRedisLedgerSettlesLegacyReservation: a reservation written by an
// earlier version (a string key holding the amount) still settles.
func TestRedisLedgerSettlesLegacyReservation(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	w := WindowsAt(t0)
	day, month := "tollgate:budget:{acme}:d:"+w.Day, "tollgate:budget:{acme}:m:"+w.Month
	require.NoError(t, c.HSet(ctx, day, "held", int64(Dollar)).Err())
	require.NoError(t, c.HSet(ctx, month, "held", int64(Dollar)).Err())
	require.NoError(t, c.Set(ctx, "tollgate:budget:{acme}:r:old", int64(Dollar), time.Hour).Err())
	l := NewRedisLedger(c, RedisLedgerOptions{})
	require.NoError(t, l.Settle(ctx, SettleRequest{Tenant: "acme", ID: "old", Windows: w, Actual: Cent, At: t0}))
	got, err := c.HMGet(ctx, day, "held", "spent").Result()
	require.NoError(t, err)
	assert.Equal(t, []any{"0", "10000000000"}, got)
}

func TestRedisTimeoutsFor(t *testing.T) {
	assert.Equal(t, RedisTimeouts{Dial: 80 * time.Millisecond, Read: 80 * time.Millisecond, Write: 80 * time.Millisecond},
		RedisTimeoutsFor(200*time.Millisecond))
	assert.Equal(t, 10*time.Millisecond, RedisTimeoutsFor(0).Read)
	var o redis.Options
	RedisTimeoutsFor(time.Second).Apply(&o)
	assert.Equal(t, 400*time.Millisecond, o.ReadTimeout)
	assert.True(t, o.ContextTimeoutEnabled)
	assert.Equal(t, -1, o.MaxRetries)
}

// TestRedisLedgerFrozenPeer: with timeouts derived from the message timeout,
// Reserve against a Redis that accepts but never answers fails with an error
// well within the message timeout (go-redis' defaults wait 3s per try, with
// retries), so the gateway answers before Envoy gives up.
func TestRedisLedgerFrozenPeer(t *testing.T) {
	const messageTimeout = time.Second
	addr := netfault.FrozenPeer(t)
	opts := &redis.Options{Addr: addr}
	RedisTimeoutsFor(messageTimeout).Apply(opts)
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	b := NewBudgets(NewRedisLedger(c, RedisLedgerOptions{}), map[string]Caps{"acme": {Daily: Dollar}})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.Reserve(ctx, "acme", Cent, "r1")
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrBudgetExceeded)
	assert.Less(t, elapsed, messageTimeout, "Reserve must fail before Envoy's message timeout")

	// The ledger's own Timeout bounds a call even on a client with default
	// (3 s) timeouts, as long as it honours context deadlines.
	c2 := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c2.Close() })
	l := NewRedisLedger(c2, RedisLedgerOptions{Timeout: 200 * time.Millisecond})
	start = time.Now()
	err = l.Reserve(ctx, ReserveRequest{Tenant: "acme", ID: "r2", Windows: WindowsAt(t0), Amount: Cent, At: t0})
	elapsed = time.Since(start)
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded) || isTimeout(err), "got %v", err)
	assert.Less(t, elapsed, messageTimeout)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestRedisLedgerReservationOutlivesHold: the reservation key lives at least
// as long as its hold, even past its day window, so the sweep can still
// release the amount it names.
func TestRedisLedgerReservationOutlivesHold(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	const hold = 48 * time.Hour // longer than any day window plus its grace
	b := NewBudgets(NewRedisLedger(c, RedisLedgerOptions{HoldTTL: hold}), nil)
	_, err := b.Reserve(ctx, "acme", Dollar, "long")
	require.NoError(t, err)
	ttl, err := c.TTL(ctx, "tollgate:budget:{acme}:r:long").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, hold)
}
