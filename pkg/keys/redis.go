package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPoll is how often a RedisBackend compares the version counter
// with the one it loaded, as a backstop for missed pub/sub messages.
const DefaultRedisPoll = 250 * time.Millisecond

// RedisBackend keeps each key in a hash (<prefix>key:<id>: id, tenant,
// sha256, revoked and the full record), the ids in a set (<prefix>ids) and a
// version counter (<prefix>version) that every change increments and
// publishes on <prefix>changed. Other replicas reload on the message, and
// also whenever a poll of the counter shows a version they have not loaded.
type RedisBackend struct {
	c      redis.UniversalClient
	prefix string
	poll   time.Duration

	loaded atomic.Int64 // version counter value of the last Load; -1 before the first
}

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// Prefix starts every Redis key (e.g. "tollgate:vkeys:").
	Prefix string
	// Poll is the version poll interval (default DefaultRedisPoll).
	Poll time.Duration
}

// NewRedis returns a Backend on c. It does not close c.
func NewRedis(c redis.UniversalClient, opts RedisOptions) *RedisBackend {
	b := &RedisBackend{c: c, prefix: opts.Prefix, poll: opts.Poll}
	b.loaded.Store(-1)
	if b.poll <= 0 {
		b.poll = DefaultRedisPoll
	}
	return b
}

func (b *RedisBackend) keyOf(id string) string { return b.prefix + "key:" + id }

// putScript: KEYS = hash, id set, version counter; ARGV = id, sha256,
// revoked (0|1), record, prev sha256 ("" = create), channel, tenant.
// Returns 1, or 0 exists, -1 not found, -2 revoked, -3 conflict.
var putScript = redis.NewScript(`
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[5] == '' then
  if exists then return 0 end
else
  if not exists then return -1 end
  if redis.call('HGET', KEYS[1], 'revoked') == '1' then return -2 end
  if redis.call('HGET', KEYS[1], 'sha256') ~= ARGV[5] then return -3 end
end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'sha256', ARGV[2], 'revoked', ARGV[3], 'record', ARGV[4], 'tenant', ARGV[7])
redis.call('SADD', KEYS[2], ARGV[1])
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[6], v)
return 1
`)

// Put implements Backend.
func (b *RedisBackend) Put(ctx context.Context, k Key, prev string) error {
	rec, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	revoked := "0"
	if !k.Revoked.IsZero() {
		revoked = "1"
	}
	n, err := putScript.Run(ctx, b.c, []string{b.keyOf(k.ID), b.prefix + "ids", b.prefix + "version"},
		k.ID, k.SHA256, revoked, rec, prev, b.prefix+"changed", k.Tenant).Int()
	if err != nil {
		return fmt.Errorf("redis put key: %w", err)
	}
	switch n {
	case 0:
		return fmt.Errorf("%w: %q", ErrExists, k.ID)
	case -1:
		return fmt.Errorf("%w: %q", ErrNotFound, k.ID)
	case -2:
		return fmt.Errorf("%w: %q", ErrRevoked, k.ID)
	case -3:
		return fmt.Errorf("%w: %q", ErrConflict, k.ID)
	}
	return nil
}

// Load implements Backend.
func (b *RedisBackend) Load(ctx context.Context) ([]Key, error) {
	// The version is read first: a change after it is loaded again later.
	v, err := b.version(ctx)
	if err != nil {
		return nil, err
	}
	ids, err := b.c.SMembers(ctx, b.prefix+"ids").Result()
	if err != nil {
		return nil, fmt.Errorf("redis key ids: %w", err)
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = b.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, b.keyOf(id), "record")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis keys: %w", err)
	}
	out := make([]Key, 0, len(ids))
	for i, c := range cmds {
		raw, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redis key %q: %w", ids[i], err)
		}
		var k Key
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("redis key %q: bad record: %w", ids[i], err)
		}
		out = append(out, k)
	}
	b.loaded.Store(v)
	return out, nil
}

func (b *RedisBackend) version(ctx context.Context) (int64, error) {
	v, err := b.c.Get(ctx, b.prefix+"version").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redis key version: %w", err)
	}
	return v, nil
}

// Watch implements Backend: a pub/sub subscription, and a poll of the
// version counter every Poll for messages lost while disconnected.
func (b *RedisBackend) Watch(ctx context.Context, changed func()) {
	sub := b.c.Subscribe(ctx, b.prefix+"changed")
	defer sub.Close()
	// Wait for the subscription, then reload once: a change made between
	// the first Load and the subscription has no message of ours.
	if _, err := sub.Receive(ctx); err == nil {
		changed()
	}
	msgs := sub.Channel()
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-msgs:
			changed()
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, b.poll)
			v, err := b.version(pctx)
			cancel()
			if err != nil || v != b.loaded.Load() {
				changed() // Load reports the error
			}
		}
	}
}

// Close implements Backend (the client is the caller's).
func (b *RedisBackend) Close() error { return nil }
