package meter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClient is the part of go-redis a RedisLedger uses; *redis.Client,
// *redis.ClusterClient and *redis.Ring implement it.
type RedisClient interface {
	redis.Scripter
}

// DefaultHoldTTL is how long a RedisLedger keeps a reservation's hold when
// RedisLedgerOptions.HoldTTL is zero.
const DefaultHoldTTL = 10 * time.Minute

// RedisTimeouts are the socket timeouts of the Redis client behind a
// RedisLedger.
type RedisTimeouts struct {
	Dial, Read, Write time.Duration
}

// RedisTimeoutsFor derives the Redis timeouts from the ext_proc message
// timeout (how long Envoy waits for each answer): 40% of it for each of dial,
// read and write, so a hung or unreachable Redis fails Reserve or Settle
// with an error while Envoy still waits for the reply, and the gateway's
// fail-open or fail-closed policy decides instead of an Envoy timeout. At
// least 10ms each.
func RedisTimeoutsFor(messageTimeout time.Duration) RedisTimeouts {
	d := max(messageTimeout*2/5, 10*time.Millisecond)
	return RedisTimeouts{Dial: d, Read: d, Write: d}
}

// Apply sets the timeouts on go-redis options. It also honours context
// deadlines (ContextTimeoutEnabled) and disables retries (MaxRetries -1):
// go-redis retries a timed-out command up to 3 times by default, which would
// multiply the wait.
func (t RedisTimeouts) Apply(o *redis.Options) {
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = t.Dial, t.Read, t.Write
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
}

// RedisLedgerOptions configures NewRedisLedger.
type RedisLedgerOptions struct {
	// KeyPrefix defaults to "tollgate:budget:".
	KeyPrefix string
	// Timeout bounds each Reserve, Settle and Spent call (a context deadline
	// on top of the caller's); 0 leaves only the caller's context and the
	// client's own timeouts (see RedisTimeouts).
	Timeout time.Duration
	// HoldTTL is how long a reservation holds its amount (default
	// DefaultHoldTTL). A hold older than that (its replica crashed or hung
	// before settling) is released by the next Reserve of the tenant; a late
	// Settle still records the actual cost.
	HoldTTL time.Duration
	// DayGrace and MonthGrace: how long a window's keys outlive the window
	// (defaults 2h and 24h). A reservation settled after its window's keys
	// expired is dropped (Settle is then a no-op).
	DayGrace   time.Duration
	MonthGrace time.Duration
}

// RedisLedger is a Store in Redis, so several ext_proc replicas share one cap
// per tenant. Keys (the {tenant} hash tag keeps a tenant's keys in one
// cluster slot; tenant ids must not contain '{' or '}'):
//
//	tollgate:budget:{tenant}:d:2026-11-27   hash spent, held (picodollars)
//	tollgate:budget:{tenant}:m:2026-11      hash spent, held
//	tollgate:budget:{tenant}:r:<id>         hash amount, d, m (window keys), expired: an open reservation
//	tollgate:budget:{tenant}:holds          sorted set: reservation ids scored by hold expiry (unix ms)
//
// Reserve and Settle are Lua scripts, so the check-and-hold across both
// windows is atomic. Amounts stay exact: Redis' HINCRBY does the int64
// arithmetic and the scripts compare amounts split into two exact base-1e9
// digits (Lua numbers are doubles). Keys expire a little after their window
// (EXPIREAT window end + grace). Every hold expires after HoldTTL: Reserve
// first releases up to 64 of the tenant's expired holds (their amount leaves
// "held"; the reservation stays, marked expired, so a late Settle still adds
// the actual cost to "spent"). A replica that crashed or hung before settling
// therefore blocks its tenant's budget for at most HoldTTL. Redis errors are
// returned; the caller decides whether to fail open or closed. Close does
// not close the client.
type RedisLedger struct {
	client RedisClient
	opts   RedisLedgerOptions
}

var _ Store = (*RedisLedger)(nil)

// NewRedisLedger returns a RedisLedger using client.
func NewRedisLedger(client RedisClient, opts RedisLedgerOptions) *RedisLedger {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "tollgate:budget:"
	}
	if opts.DayGrace <= 0 {
		opts.DayGrace = 2 * time.Hour
	}
	if opts.MonthGrace <= 0 {
		opts.MonthGrace = 24 * time.Hour
	}
	if opts.HoldTTL <= 0 {
		opts.HoldTTL = DefaultHoldTTL
	}
	return &RedisLedger{client: client, opts: opts}
}

// luaSplit parses a non-negative decimal int64 string into two exact base-1e9
// digits; missing or negative values count as 0.
const luaSplit = `
local B = 1000000000
local function split(s)
  if not s or s == '' or string.sub(s, 1, 1) == '-' then return 0, 0 end
  local n = string.len(s)
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end
`

// luaSweep releases expired holds of the tenant: KEYS[4] is its holds sorted
// set, ARGV[6] the current unix time in ms. The reservation keys and the
// window keys they name share the {tenant} hash tag, hence the cluster slot.
const luaSweep = `
local function sweep(holds, now)
  local ids = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 64)
  for _, id in ipairs(ids) do
    local rk = string.sub(holds, 1, -6) .. 'r:' .. id
    local v = redis.call('HMGET', rk, 'amount', 'd', 'm', 'expired')
    if v[1] and not v[4] then
      if v[1] ~= '0' then
        redis.call('HINCRBY', v[2], 'held', '-' .. v[1])
        redis.call('HINCRBY', v[3], 'held', '-' .. v[1])
      end
      redis.call('HSET', rk, 'expired', '1')
    end
    redis.call('ZREM', holds, id)
  end
end
`

// KEYS: day, month, reservation, holds. ARGV: amount, day cap, month cap (0 =
// unlimited), day expire-at, month expire-at (unix seconds), now and hold
// expiry (unix ms), reservation id, reservation key expire-at (unix
// seconds). Returns {0} held, {1|2, spent, held} day|month cap
// exceeded, {3} duplicate.
var reserveScript = redis.NewScript(luaSplit + luaSweep + `
sweep(KEYS[4], ARGV[6])
if redis.call('EXISTS', KEYS[3]) == 1 then return {3} end
local ah, al = split(ARGV[1])
for i = 1, 2 do
  local cap = ARGV[i + 1]
  if cap ~= '0' then
    local ch, cl = split(cap)
    local v = redis.call('HMGET', KEYS[i], 'spent', 'held')
    local sh, sl = split(v[1])
    local hh, hl = split(v[2])
    local lo = sl + hl + al
    local hi = sh + hh + ah + math.floor(lo / B)
    lo = lo % B
    if hi > ch or (hi == ch and lo > cl) then
      return {i, v[1] or '0', v[2] or '0'}
    end
  end
end
redis.call('HINCRBY', KEYS[1], 'held', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'held', ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[4])
redis.call('EXPIREAT', KEYS[2], ARGV[5])
redis.call('HSET', KEYS[3], 'amount', ARGV[1], 'd', KEYS[1], 'm', KEYS[2])
redis.call('EXPIREAT', KEYS[3], ARGV[9])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8])
redis.call('EXPIREAT', KEYS[4], ARGV[5])
return {0}
`)

// KEYS: day, month, reservation, holds. ARGV: actual, day expire-at, month
// expire-at, reservation id. Returns 1 when settled, 0 when the reservation
// was not open. An expired hold was already released: only the actual cost
// is added. A string reservation key was written by an earlier version (its
// value is the held amount).
var settleScript = redis.NewScript(`
local v
local t = redis.call('TYPE', KEYS[3]).ok
if t == 'string' then
  v = {redis.call('GET', KEYS[3]), false}
elseif t == 'hash' then
  v = redis.call('HMGET', KEYS[3], 'amount', 'expired')
else
  return 0
end
if not v[1] then return 0 end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[4])
if v[1] ~= '0' and not v[2] then
  redis.call('HINCRBY', KEYS[1], 'held', '-' .. v[1])
  redis.call('HINCRBY', KEYS[2], 'held', '-' .. v[1])
end
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'spent', ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
redis.call('EXPIREAT', KEYS[2], ARGV[3])
return 1
`)

// KEYS: day, month. Returns {day spent, month spent} as strings.
var spentScript = redis.NewScript(`
return {redis.call('HGET', KEYS[1], 'spent') or '0', redis.call('HGET', KEYS[2], 'spent') or '0'}
`)

func (l *RedisLedger) keys(tenant, id string, w Windows) []string {
	base := l.opts.KeyPrefix + "{" + tenant + "}:"
	k := []string{base + "d:" + w.Day, base + "m:" + w.Month}
	if id != "" {
		k = append(k, base+"r:"+id, base+"holds")
	}
	return k
}

// expiry returns the unix times at which the day and month keys expire.
func (l *RedisLedger) expiry(w Windows) (day, month int64, err error) {
	d, err := time.Parse(time.DateOnly, w.Day)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: day window %q", ErrInvalidReservation, w.Day)
	}
	m, err := time.Parse("2006-01", w.Month)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: month window %q", ErrInvalidReservation, w.Month)
	}
	return d.AddDate(0, 0, 1).Add(l.opts.DayGrace).Unix(), m.AddDate(0, 1, 0).Add(l.opts.MonthGrace).Unix(), nil
}

// callContext applies Timeout to one call.
func (l *RedisLedger) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.opts.Timeout > 0 {
		return context.WithTimeout(ctx, l.opts.Timeout)
	}
	return ctx, func() {}
}

// Reserve implements Store.
func (l *RedisLedger) Reserve(ctx context.Context, r ReserveRequest) error {
	dayExp, monthExp, err := l.expiry(r.Windows)
	if err != nil {
		return err
	}
	ctx, cancel := l.callContext(ctx)
	defer cancel()
	now := r.At
	if now.IsZero() {
		now = time.Now()
	}
	res, err := reserveScript.Run(ctx, l.client, l.keys(r.Tenant, r.ID, r.Windows),
		int64(r.Amount), int64(max(r.Caps.Daily, 0)), int64(max(r.Caps.Monthly, 0)), dayExp, monthExp,
		now.UnixMilli(), now.Add(l.opts.HoldTTL).UnixMilli(), r.ID,
		// The reservation key must outlive its hold so the sweep can
		// release the amount it names.
		max(dayExp, now.Add(l.opts.HoldTTL+time.Hour).Unix())).Slice()
	if err != nil {
		return fmt.Errorf("redis reserve: %w", err)
	}
	if len(res) == 0 {
		return errors.New("redis reserve: empty script reply")
	}
	status, _ := res[0].(int64)
	switch status {
	case 0:
		return nil
	case 3:
		return ErrDuplicateReservation
	case 1, 2:
		if len(res) != 3 {
			return fmt.Errorf("redis reserve: malformed script reply %v", res)
		}
		spent, err1 := parseMoney(res[1])
		held, err2 := parseMoney(res[2])
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("redis reserve: %w", err)
		}
		e := &ExceededError{Tenant: r.Tenant, Spent: spent, Outstanding: held, Requested: r.Amount}
		if status == 1 {
			e.Window, e.WindowKey, e.Cap = WindowDaily, r.Windows.Day, r.Caps.Daily
		} else {
			e.Window, e.WindowKey, e.Cap = WindowMonthly, r.Windows.Month, r.Caps.Monthly
		}
		return e
	default:
		return fmt.Errorf("redis reserve: unexpected script status %d", status)
	}
}

// Settle implements Store.
func (l *RedisLedger) Settle(ctx context.Context, r SettleRequest) error {
	dayExp, monthExp, err := l.expiry(r.Windows)
	if err != nil {
		return err
	}
	ctx, cancel := l.callContext(ctx)
	defer cancel()
	if err := settleScript.Run(ctx, l.client, l.keys(r.Tenant, r.ID, r.Windows), int64(r.Actual), dayExp, monthExp, r.ID).Err(); err != nil {
		return fmt.Errorf("redis settle: %w", err)
	}
	return nil
}

// Spent implements Store.
func (l *RedisLedger) Spent(ctx context.Context, tenant string, w Windows) (Spend, error) {
	ctx, cancel := l.callContext(ctx)
	defer cancel()
	res, err := spentScript.Run(ctx, l.client, l.keys(tenant, "", w)).Slice()
	if err != nil {
		return Spend{}, fmt.Errorf("redis spent: %w", err)
	}
	if len(res) != 2 {
		return Spend{}, fmt.Errorf("redis spent: malformed script reply %v", res)
	}
	d, err1 := parseMoney(res[0])
	m, err2 := parseMoney(res[1])
	if err := errors.Join(err1, err2); err != nil {
		return Spend{}, fmt.Errorf("redis spent: %w", err)
	}
	return Spend{Daily: d, Monthly: m}, nil
}

// Close implements Store; the client is owned by the caller and stays open.
func (l *RedisLedger) Close() error { return nil }

func parseMoney(v any) (Money, error) {
	switch x := v.(type) {
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse amount %q: %w", x, err)
		}
		return Money(n), nil
	case int64:
		return Money(x), nil
	default:
		return 0, fmt.Errorf("unexpected amount %T", v)
	}
}
