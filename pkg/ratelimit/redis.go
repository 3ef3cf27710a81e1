package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store shared by every replica that uses the same Redis and
// prefix.
type Redis struct {
	client  redis.Scripter
	prefix  string
	timeout time.Duration
}

var _ Store = (*Redis)(nil)

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// KeyPrefix starts every key (default "tollgate:rl:"). A counter lives
	// at <prefix>{<group>}:<scope>:<id>:<window>.
	KeyPrefix string
	// Timeout bounds each call (0: the context's deadline only).
	Timeout time.Duration
}

// NewRedis returns a Store on client.
func NewRedis(client redis.Scripter, opts RedisOptions) *Redis {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "tollgate:rl:"
	}
	return &Redis{client: client, prefix: opts.KeyPrefix, timeout: opts.Timeout}
}

// takeScript: KEYS are the subjects' counters, ARGV[1] the tokens, ARGV[2]
// the expiry in seconds, then each subject's RPM and TPM. It returns
// {ok, requests1, tokens1, requests2, tokens2, ...}.
var takeScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local out = {1}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'r', 't')
  local r = tonumber(v[1]) or 0
  local t = tonumber(v[2]) or 0
  local rpm = tonumber(ARGV[1 + 2*i])
  local tpm = tonumber(ARGV[2 + 2*i])
  if (rpm > 0 and r + 1 > rpm) or (tpm > 0 and t + n > tpm) then out[1] = 0 end
  out[2*i] = r
  out[2*i + 1] = t
end
if out[1] == 1 then
  for i, k in ipairs(KEYS) do
    out[2*i] = redis.call('HINCRBY', k, 'r', 1)
    out[2*i + 1] = redis.call('HINCRBY', k, 't', n)
    redis.call('EXPIRE', k, ARGV[2])
  end
end
return out
`)

// addScript moves the token counters that still exist by ARGV[1], never
// below zero.
var addScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    local t = redis.call('HINCRBY', k, 't', ARGV[1])
    if t < 0 then redis.call('HSET', k, 't', 0) end
  end
end
return 0
`)

func (r *Redis) keys(window int64, group string, subjects []Subject) []string {
	w := strconv.FormatInt(window, 10)
	keys := make([]string, len(subjects))
	for i, s := range subjects {
		keys[i] = r.prefix + "{" + group + "}:" + s.Scope + ":" + s.ID + ":" + w
	}
	return keys
}

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.timeout > 0 {
		return context.WithTimeout(ctx, r.timeout)
	}
	return ctx, func() {}
}

// expiry keeps a counter a window past its own, so a replica whose clock
// lags a little still finds it.
var expiry = strconv.Itoa(int(2 * Window / time.Second))

// Take implements Store.
func (r *Redis) Take(ctx context.Context, window int64, group string, subjects []Subject, tokens int64) ([]Usage, bool, error) {
	args := make([]any, 0, 2+2*len(subjects))
	args = append(args, tokens, expiry)
	for _, s := range subjects {
		args = append(args, s.Limits.RPM, s.Limits.TPM)
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	res, err := takeScript.Run(ctx, r.client, r.keys(window, group, subjects), args...).Int64Slice()
	if err != nil {
		return nil, false, fmt.Errorf("ratelimit: redis take: %w", err)
	}
	if len(res) != 1+2*len(subjects) {
		return nil, false, fmt.Errorf("ratelimit: redis take: %d values for %d subjects", len(res), len(subjects))
	}
	used := make([]Usage, len(subjects))
	for i := range used {
		used[i] = Usage{Requests: res[1+2*i], Tokens: res[2+2*i]}
	}
	return used, res[0] == 1, nil
}

// Add implements Store.
func (r *Redis) Add(ctx context.Context, window int64, group string, subjects []Subject, delta int64) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := addScript.Run(ctx, r.client, r.keys(window, group, subjects), delta).Err(); err != nil {
		return fmt.Errorf("ratelimit: redis correct: %w", err)
	}
	return nil
}
