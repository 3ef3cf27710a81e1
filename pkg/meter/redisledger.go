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

// RedisLedgerOptions configures NewRedisLedger.
type RedisLedgerOptions struct {
	// KeyPrefix defaults to "tollgate:budget:".
	KeyPrefix string
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
//	tollgate:budget:{tenant}:r:<id>         string: the held amount of an open reservation
//
// Reserve and Settle are Lua scripts, so the check-and-hold across both
// windows is atomic. Amounts stay exact: Redis' HINCRBY does the int64
// arithmetic and the scripts compare amounts split into two exact base-1e9
// digits (Lua numbers are doubles). Keys expire a little after their window
// (EXPIREAT window end + grace). A reservation whose replica died before
// settling stays held (counted against the cap, never undercounting) until
// its keys expire. Redis errors are returned; the caller decides whether to
// fail open or closed. Close does not close the client.
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

// KEYS: day, month, reservation. ARGV: amount, day cap, month cap (0 =
// unlimited), day expire-at, month expire-at (unix seconds).
// Returns {0} held, {1|2, spent, held} day|month cap exceeded, {3} duplicate.
var reserveScript = redis.NewScript(luaSplit + `
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
redis.call('SET', KEYS[3], ARGV[1], 'EXAT', ARGV[4])
return {0}
`)

// KEYS: day, month, reservation. ARGV: actual, day expire-at, month expire-at.
// Returns 1 when settled, 0 when the reservation was not open.
var settleScript = redis.NewScript(`
local r = redis.call('GET', KEYS[3])
if not r then return 0 end
redis.call('DEL', KEYS[3])
if r ~= '0' then
  redis.call('HINCRBY', KEYS[1], 'held', '-' .. r)
  redis.call('HINCRBY', KEYS[2], 'held', '-' .. r)
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
		k = append(k, base+"r:"+id)
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

// Reserve implements Store.
func (l *RedisLedger) Reserve(ctx context.Context, r ReserveRequest) error {
	dayExp, monthExp, err := l.expiry(r.Windows)
	if err != nil {
		return err
	}
	res, err := reserveScript.Run(ctx, l.client, l.keys(r.Tenant, r.ID, r.Windows),
		int64(r.Amount), int64(max(r.Caps.Daily, 0)), int64(max(r.Caps.Monthly, 0)), dayExp, monthExp).Slice()
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
	if err := settleScript.Run(ctx, l.client, l.keys(r.Tenant, r.ID, r.Windows), int64(r.Actual), dayExp, monthExp).Err(); err != nil {
		return fmt.Errorf("redis settle: %w", err)
	}
	return nil
}

// Spent implements Store.
func (l *RedisLedger) Spent(ctx context.Context, tenant string, w Windows) (Spend, error) {
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
