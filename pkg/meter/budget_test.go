package meter

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/redistest"
)

// fakeClock is a settable clock for window tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// storeFactory builds a fresh, empty store; open returns another handle on the
// same underlying data when the store supports sharing (Redis), else nil.
type storeFactory struct {
	name string
	new  func(t *testing.T) (Store, func(t *testing.T) Store)
}

func storeFactories() []storeFactory {
	return []storeFactory{
		{"file", func(t *testing.T) (Store, func(t *testing.T) Store) {
			l, err := OpenFileLedger(filepath.Join(t.TempDir(), "ledger.jsonl"), FileLedgerOptions{FlushInterval: -1})
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			return l, nil
		}},
		{"redis", func(t *testing.T) (Store, func(t *testing.T) Store) {
			srv := redistest.Start(t)
			open := func(t *testing.T) Store {
				c := redis.NewClient(&redis.Options{Addr: srv.Addr})
				t.Cleanup(func() { _ = c.Close() })
				return NewRedisLedger(c, RedisLedgerOptions{})
			}
			return open(t), open
		}},
	}
}

// t0 is in the future so Redis, which expires window keys by its own clock,
// keeps the test windows alive.
var t0 = time.Date(2031, 11, 27, 12, 0, 0, 0, time.UTC)

func TestBudgetsReserveSettleRelease(t *testing.T) {
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			clock := newFakeClock(t0)
			b := NewBudgets(store, map[string]Caps{"acme": {Daily: 10 * Dollar, Monthly: 100 * Dollar}}, WithClock(clock.Now))

			r1, err := b.Reserve(ctx, "acme", 3*Dollar, "req-1")
			require.NoError(t, err)
			r2, err := b.Reserve(ctx, "acme", 2*Dollar, "req-2")
			require.NoError(t, err)

			// Holds are not spend.
			s, err := b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{}, s)

			require.NoError(t, r1.Settle(ctx, 1*Dollar+25*Cent))
			require.NoError(t, r1.Settle(ctx, 9*Dollar), "second settle is a no-op")
			require.NoError(t, r2.Release(ctx))
			require.NoError(t, r2.Settle(ctx, 5*Dollar), "settle after release is a no-op")

			s, err = b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: Dollar + 25*Cent, Monthly: Dollar + 25*Cent}, s)

			// The holds are gone: the whole remaining daily cap is available.
			r3, err := b.Reserve(ctx, "acme", 10*Dollar-(Dollar+25*Cent), "req-3")
			require.NoError(t, err)
			// Actual above the reservation is recorded in full.
			require.NoError(t, r3.Settle(ctx, 9*Dollar))
			s, err = b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: 10*Dollar + 25*Cent, Monthly: 10*Dollar + 25*Cent}, s)

			_, err = b.Reserve(ctx, "acme", 1, "req-4")
			assert.ErrorIs(t, err, ErrBudgetExceeded)
		})
	}
}

// TestBudgetsCharge: a charge is spend even past the cap (the provider has
// billed it), and it counts against the next reservation.
func TestBudgetsCharge(t *testing.T) {
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			b := NewBudgets(store, map[string]Caps{"acme": {Daily: Dollar}}, WithClock(newFakeClock(t0).Now))
			r, err := b.Reserve(ctx, "acme", 80*Cent, "req-1")
			require.NoError(t, err)
			require.NoError(t, b.Charge(ctx, "acme", 70*Cent, "req-1/attempt"), "a charge is never refused by the cap")
			require.NoError(t, r.Settle(ctx, 80*Cent))
			s, err := b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: 150 * Cent, Monthly: 150 * Cent}, s)
			_, err = b.Reserve(ctx, "acme", 1, "req-2")
			assert.ErrorIs(t, err, ErrBudgetExceeded)
			assert.ErrorIs(t, b.Charge(ctx, "acme", -1, "req-3"), ErrInvalidAmount)
		})
	}
}

func TestBudgetsExceeded(t *testing.T) {
	tests := []struct {
		name       string
		caps       Caps
		monthSpent Money // settled earlier this month, on another day
		reserve    Money
		wantWindow string
		wantCap    Money
	}{
		{"daily", Caps{Daily: 5 * Dollar, Monthly: 100 * Dollar}, 0, 5*Dollar + 1, WindowDaily, 5 * Dollar},
		{"monthly", Caps{Daily: 50 * Dollar, Monthly: 20 * Dollar}, 15 * Dollar, 5*Dollar + 1, WindowMonthly, 20 * Dollar},
		{"monthly only cap", Caps{Monthly: 20 * Dollar}, 15 * Dollar, 5*Dollar + 1, WindowMonthly, 20 * Dollar},
		{"daily only cap", Caps{Daily: Dollar}, 1000 * Dollar, Dollar + 1, WindowDaily, Dollar},
	}
	for _, sf := range storeFactories() {
		for _, tt := range tests {
			t.Run(sf.name+"/"+tt.name, func(t *testing.T) {
				ctx := testCtx(t)
				store, _ := sf.new(t)
				clock := newFakeClock(t0.AddDate(0, 0, -1))
				b := NewBudgets(store, map[string]Caps{"acme": tt.caps}, WithClock(clock.Now))
				if tt.monthSpent > 0 {
					b.SetCaps(nil) // unlimited while seeding
					r, err := b.Reserve(ctx, "acme", tt.monthSpent, "seed")
					require.NoError(t, err)
					require.NoError(t, r.Settle(ctx, tt.monthSpent))
					b.SetCaps(map[string]Caps{"acme": tt.caps})
				}
				clock.Set(t0)

				// Exactly up to the cap is allowed ...
				fit := tt.reserve - 1
				r, err := b.Reserve(ctx, "acme", fit, "fit")
				require.NoError(t, err)
				require.NoError(t, r.Release(ctx))

				// ... one picodollar more is not.
				_, err = b.Reserve(ctx, "acme", tt.reserve, "over")
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrBudgetExceeded)
				var ee *ExceededError
				require.ErrorAs(t, err, &ee)
				assert.Equal(t, tt.wantWindow, ee.Window)
				assert.Equal(t, tt.wantCap, ee.Cap)
				assert.Equal(t, tt.reserve, ee.Requested)
				if tt.wantWindow == WindowMonthly {
					assert.Equal(t, "2031-11", ee.WindowKey)
					assert.Equal(t, tt.monthSpent, ee.Spent)
				} else {
					assert.Equal(t, "2031-11-27", ee.WindowKey)
				}
				assert.Contains(t, err.Error(), tt.wantWindow)

				// A failed reservation holds nothing.
				s, err := b.Spent(ctx, "acme")
				require.NoError(t, err)
				assert.Equal(t, Money(0), s.Daily)
			})
		}
	}
}

func TestBudgetsOutstandingCountsAgainstCap(t *testing.T) {
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			b := NewBudgets(store, nil, WithDefaultCaps(Caps{Daily: 10 * Dollar}), WithClock(newFakeClock(t0).Now))
			_, err := b.Reserve(ctx, "t1", 6*Dollar, "a")
			require.NoError(t, err)
			_, err = b.Reserve(ctx, "t1", 5*Dollar, "b")
			var ee *ExceededError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 6*Dollar, ee.Outstanding)
			// Another tenant has its own budget.
			_, err = b.Reserve(ctx, "t2", 5*Dollar, "b")
			require.NoError(t, err)
			// Duplicate open id for the same tenant.
			_, err = b.Reserve(ctx, "t1", 1, "a")
			assert.ErrorIs(t, err, ErrDuplicateReservation)
		})
	}
}

func TestBudgetsInvalidInput(t *testing.T) {
	store, _ := storeFactories()[0].new(t)
	b := NewBudgets(store, nil)
	ctx := testCtx(t)
	_, err := b.Reserve(ctx, "t", -1, "id")
	assert.ErrorIs(t, err, ErrInvalidAmount)
	_, err = b.Reserve(ctx, "", 1, "id")
	assert.ErrorIs(t, err, ErrInvalidReservation)
	_, err = b.Reserve(ctx, "t", 1, "")
	assert.ErrorIs(t, err, ErrInvalidReservation)
	r, err := b.Reserve(ctx, "t", 1, "id")
	require.NoError(t, err)
	assert.ErrorIs(t, r.Settle(ctx, -1), ErrInvalidAmount)
}

func TestBudgetsWindowRollover(t *testing.T) {
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			lastSecond := time.Date(2031, 11, 30, 23, 59, 59, 0, time.UTC)
			clock := newFakeClock(lastSecond)
			b := NewBudgets(store, map[string]Caps{"acme": {Daily: 10 * Dollar, Monthly: 12 * Dollar}}, WithClock(clock.Now))

			r, err := b.Reserve(ctx, "acme", 8*Dollar, "late")
			require.NoError(t, err)
			assert.Equal(t, Windows{Day: "2031-11-30", Month: "2031-11"}, r.Windows())

			// Midnight: new day and new month; the old hold does not count.
			clock.Set(lastSecond.Add(2 * time.Second))
			r2, err := b.Reserve(ctx, "acme", 10*Dollar, "early")
			require.NoError(t, err)

			// Settling after midnight counts in the reservation's windows.
			require.NoError(t, r.Settle(ctx, 7*Dollar))
			s, err := b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{}, s, "December has no settled spend yet")
			require.NoError(t, r2.Settle(ctx, 4*Dollar))
			s, err = b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: 4 * Dollar, Monthly: 4 * Dollar}, s)

			clock.Set(lastSecond)
			s, err = b.Spent(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, Spend{Daily: 7 * Dollar, Monthly: 7 * Dollar}, s)

			// Next day, same month: the daily window resets, the month does not.
			clock.Set(time.Date(2031, 12, 2, 8, 0, 0, 0, time.UTC))
			_, err = b.Reserve(ctx, "acme", 10*Dollar, "next-day")
			var ee *ExceededError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, WindowMonthly, ee.Window)
			_, err = b.Reserve(ctx, "acme", 10*Dollar+1, "too-big")
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, WindowDaily, ee.Window, "daily is checked first")
			_, err = b.Reserve(ctx, "acme", 8*Dollar+1, "over-month")
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, WindowMonthly, ee.Window)
			_, err = b.Reserve(ctx, "acme", 8*Dollar, "fits")
			require.NoError(t, err, "4 spent in December + 8 = the monthly cap")
		})
	}
}

// TestBudgetsConcurrentNeverOvershoot: 50 goroutines race for a cap that fits
// exactly 10 reservations. For Redis, half of them go through a second Budgets
// with its own client, as a second replica would.
func TestBudgetsConcurrentNeverOvershoot(t *testing.T) {
	const (
		workers = 50
		amount  = 3*Dollar + 7
		fits    = 10
	)
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, open := sf.new(t)
			caps := map[string]Caps{"acme": {Daily: fits * amount, Monthly: fits*amount + amount/2}}
			clock := newFakeClock(t0)
			instances := []*Budgets{NewBudgets(store, caps, WithClock(clock.Now))}
			if open != nil {
				instances = append(instances, NewBudgets(open(t), caps, WithClock(clock.Now)))
			}
			var (
				ok, exceeded atomic.Int64
				wg           sync.WaitGroup
				start        = make(chan struct{})
				unexpected   = make(chan error, workers)
			)
			for i := 0; i < workers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					b := instances[i%len(instances)]
					_, err := b.Reserve(ctx, "acme", amount, fmt.Sprintf("r-%d", i))
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, ErrBudgetExceeded):
						exceeded.Add(1)
					default:
						unexpected <- err
					}
				}(i)
			}
			close(start)
			wg.Wait()
			close(unexpected)
			for err := range unexpected {
				t.Error(err)
			}
			assert.Equal(t, int64(fits), ok.Load())
			assert.Equal(t, int64(workers-fits), exceeded.Load())
		})
	}
}

func TestBudgetsLargeAmountsStayExact(t *testing.T) {
	// Amounts above 2^53 picodollars (~$9000) must compare exactly, which
	// matters for Redis, whose Lua numbers are doubles.
	for _, sf := range storeFactories() {
		t.Run(sf.name, func(t *testing.T) {
			ctx := testCtx(t)
			store, _ := sf.new(t)
			capAmount := 5_000_000*Dollar + 123_456_789
			b := NewBudgets(store, map[string]Caps{"big": {Monthly: capAmount}}, WithClock(newFakeClock(t0).Now))
			r, err := b.Reserve(ctx, "big", 4_000_000*Dollar+1, "a")
			require.NoError(t, err)
			require.NoError(t, r.Settle(ctx, 4_000_000*Dollar+1))
			_, err = b.Reserve(ctx, "big", 1_000_000*Dollar+123_456_789, "b")
			var ee *ExceededError
			require.ErrorAs(t, err, &ee, "one picodollar over")
			assert.Equal(t, 4_000_000*Dollar+1, ee.Spent)
			_, err = b.Reserve(ctx, "big", 1_000_000*Dollar+123_456_788, "c")
			require.NoError(t, err, "exactly at the cap")
			s, err := b.Spent(ctx, "big")
			require.NoError(t, err)
			assert.Equal(t, 4_000_000*Dollar+1, s.Monthly)
		})
	}
}

func TestRedisLedgerSharedAcrossInstances(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	newBudgets := func() *Budgets {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { _ = c.Close() })
		return NewBudgets(NewRedisLedger(c, RedisLedgerOptions{}), map[string]Caps{"acme": {Daily: 10 * Dollar}},
			WithClock(newFakeClock(t0).Now))
	}
	a, b := newBudgets(), newBudgets()
	r, err := a.Reserve(ctx, "acme", 6*Dollar, "x")
	require.NoError(t, err)
	_, err = b.Reserve(ctx, "acme", 5*Dollar, "y")
	assert.ErrorIs(t, err, ErrBudgetExceeded, "b sees a's hold")
	require.NoError(t, r.Settle(ctx, 2*Dollar))
	_, err = b.Reserve(ctx, "acme", 8*Dollar, "y")
	require.NoError(t, err, "b sees a's settle")
	s, err := b.Spent(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, Spend{Daily: 2 * Dollar, Monthly: 2 * Dollar}, s)
}

func TestRedisLedgerKeysAndTTL(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	// Use the real clock: Redis expires keys by its own clock.
	now := time.Now().UTC()
	b := NewBudgets(NewRedisLedger(c, RedisLedgerOptions{}), nil)
	r, err := b.Reserve(ctx, "acme", Dollar, "req-1")
	require.NoError(t, err)
	w := r.Windows()
	dayKey := "tollgate:budget:{acme}:d:" + w.Day
	monthKey := "tollgate:budget:{acme}:m:" + w.Month
	resKey := "tollgate:budget:{acme}:r:req-1"

	held, err := c.HGet(ctx, dayKey, "held").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(Dollar), held)
	for key, maxTTL := range map[string]time.Duration{dayKey: 26 * time.Hour, monthKey: 32 * 24 * time.Hour, resKey: 26 * time.Hour} {
		ttl, err := c.TTL(ctx, key).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, key)
		assert.LessOrEqual(t, ttl, maxTTL, key)
	}
	dayEnd := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	ttl, err := c.TTL(ctx, dayKey).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Until(dayEnd), "outlives the window")

	require.NoError(t, r.Settle(ctx, Dollar/2))
	n, err := c.Exists(ctx, resKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "settled reservation key is deleted")
	spent, err := c.HGet(ctx, monthKey, "spent").Int64()
	require.NoError(t, err)
	assert.Equal(t, int64(Dollar/2), spent)
}

func TestRedisLedgerErrorsAreReturned(t *testing.T) {
	ctx := testCtx(t)
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	b := NewBudgets(NewRedisLedger(c, RedisLedgerOptions{}), map[string]Caps{"acme": {Daily: Dollar}})
	r, err := b.Reserve(ctx, "acme", Cent, "a")
	require.NoError(t, err)
	srv.Stop()

	_, err = b.Reserve(ctx, "acme", Cent, "b")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrBudgetExceeded)
	assert.Error(t, r.Settle(ctx, Cent))
	_, err = b.Spent(ctx, "acme")
	assert.Error(t, err)
}

func BenchmarkReserveSettle(b *testing.B) {
	type bench struct {
		name  string
		store func(b *testing.B) Store
	}
	benches := []bench{
		{"file-buffered", func(b *testing.B) Store {
			l, err := OpenFileLedger(filepath.Join(b.TempDir(), "l.jsonl"), FileLedgerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}},
		{"file-sync-every-write", func(b *testing.B) Store {
			l, err := OpenFileLedger(filepath.Join(b.TempDir(), "l.jsonl"), FileLedgerOptions{SyncEveryWrite: true})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}},
		{"redis", func(b *testing.B) Store {
			srv := redistest.Start(b)
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			b.Cleanup(func() { _ = c.Close() })
			return NewRedisLedger(c, RedisLedgerOptions{})
		}},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			ctx := testCtx(b)
			store := bb.store(b)
			defer store.Close()
			budgets := NewBudgets(store, map[string]Caps{"acme": {Daily: 1_000_000 * Dollar, Monthly: 1_000_000 * Dollar}})
			ids := make([]string, 0, 1024)
			for i := 0; i < cap(ids); i++ {
				ids = append(ids, fmt.Sprintf("req-%d", i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r, err := budgets.Reserve(ctx, "acme", Cent, ids[i%len(ids)])
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Settle(ctx, Cent/2); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
