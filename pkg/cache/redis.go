package cache

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The shared tier keeps every entry in Redis so that all replicas share hits:
//
//   - {prefix}e:{hex key} is a hash: b = body, p = partition (32 bytes),
//     t = prompt, v = vector (float32 little endian), m = embedder id,
//     x = expiry (unix ms). The key itself expires at x (PEXPIREAT).
//   - {prefix}announce is a pub/sub channel; Store publishes the hex key of
//     every new entry.
//
// Each replica keeps its in-process vector index warm: a background loop
// subscribes to the channel, and every time the subscription is (re)
// established it SCANs {prefix}e:* and indexes what it does not have. Pub/sub
// is fire-and-forget, so announcements sent while a replica was disconnected
// are lost; the SCAN after each resubscribe closes that gap. (Streams would
// give replay without a rescan, at the cost of trimming policy and per-
// replica cursors; a rescan of the keyspace is cheap next to that at the
// sizes this cache holds.) Exact lookups that miss locally read Redis
// directly, so they never depend on the announcements.
//
// Redis being down never fails a client request: each call has a short
// deadline, a failure opens a circuit for redisBackoff during which the
// request path uses the local tier only, and every failure or skip is
// counted in tollgate_cache_backend_errors_total{backend="redis",op}.

const (
	redisBackoff      = time.Second
	redisScanCount    = 500
	redisSubBackoff   = 500 * time.Millisecond
	redisWarmTimeout  = 30 * time.Second
	redisFieldBody    = "b"
	redisFieldPart    = "p"
	redisFieldPrompt  = "t"
	redisFieldVec     = "v"
	redisFieldModel   = "m"
	redisFieldExpires = "x"
)

// sharedEntry is one cache entry as the shared tier sees it.
type sharedEntry struct {
	key, part  [32]byte
	prompt     string
	body       []byte
	vec        []float32
	embedderID string
	expires    time.Time
}

type redisTier struct {
	c       *Cache
	client  *redis.Client
	prefix  string
	timeout time.Duration

	downUntil atomic.Int64 // unix nanos; request path skips Redis before this

	ps     *redis.PubSub
	cancel context.CancelFunc
	done   chan struct{}
	warmed chan struct{}
	once   sync.Once
}

func newRedisTier(c *Cache, cfg RedisConfig) *redisTier {
	client := redis.NewClient(&redis.Options{
		Addr:         cfg.Addr,
		Password:     cfg.Password,
		DB:           cfg.DB,
		DialTimeout:  max(cfg.Timeout, 100*time.Millisecond),
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		PoolTimeout:  cfg.Timeout,
		MaxRetries:   -1, // no retries on the request path
		// The client must not block a request past its deadline.
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	})
	ctx, cancel := context.WithCancel(context.Background())
	t := &redisTier{
		c:       c,
		client:  client,
		prefix:  cfg.Prefix,
		timeout: cfg.Timeout,
		cancel:  cancel,
		done:    make(chan struct{}),
		warmed:  make(chan struct{}),
	}
	t.ps = client.Subscribe(ctx, t.channel())
	go t.syncLoop(ctx)
	return t
}

func (t *redisTier) entryKey(key [32]byte) string {
	return t.prefix + "e:" + hex.EncodeToString(key[:])
}

func (t *redisTier) channel() string { return t.prefix + "announce" }

func (t *redisTier) failed(op string, err error) {
	t.c.metrics.backendErrors.WithLabelValues(BackendRedis, op).Inc()
	t.downUntil.Store(t.c.now().Add(redisBackoff).UnixNano())
	t.c.log.Warn("cache: redis unavailable, using the local tier", "op", op, "err", err)
}

// available reports whether the request path may call Redis now; while the
// circuit is open, the skip is counted.
func (t *redisTier) available(op string) bool {
	if t.c.now().UnixNano() < t.downUntil.Load() {
		t.c.metrics.backendErrors.WithLabelValues(BackendRedis, op+"_skipped").Inc()
		return false
	}
	return true
}

func (t *redisTier) get(ctx context.Context, key [32]byte) ([]byte, time.Time, bool) {
	if !t.available("get") {
		return nil, time.Time{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	vals, err := t.client.HMGet(ctx, t.entryKey(key), redisFieldBody, redisFieldExpires).Result()
	if err != nil {
		t.failed("get", err)
		return nil, time.Time{}, false
	}
	body, _ := vals[0].(string)
	expStr, _ := vals[1].(string)
	if body == "" {
		return nil, time.Time{}, false
	}
	ms, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil {
		return nil, time.Time{}, false
	}
	expires := time.UnixMilli(ms)
	if !expires.After(t.c.now()) {
		return nil, time.Time{}, false
	}
	return []byte(body), expires, true
}

func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func decodeVec(b string) []float32 {
	if len(b)%4 != 0 {
		return nil
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32([]byte(b[4*i : 4*i+4])))
	}
	return v
}

func (t *redisTier) put(ctx context.Context, e sharedEntry) {
	if !t.available("put") {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	k := t.entryKey(e.key)
	fields := []any{
		redisFieldBody, e.body,
		redisFieldPart, e.part[:],
		redisFieldExpires, strconv.FormatInt(e.expires.UnixMilli(), 10),
	}
	if e.prompt != "" {
		fields = append(fields,
			redisFieldPrompt, e.prompt,
			redisFieldVec, encodeVec(e.vec),
			redisFieldModel, e.embedderID)
	}
	_, err := t.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, fields...)
		p.PExpireAt(ctx, k, e.expires)
		if e.prompt != "" {
			p.Publish(ctx, t.channel(), hex.EncodeToString(e.key[:]))
		}
		return nil
	})
	if err != nil {
		t.failed("put", err)
	}
}

// syncLoop keeps the local index warm; see the comment at the top.
func (t *redisTier) syncLoop(ctx context.Context) {
	defer close(t.done)
	for {
		msg, err := t.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.c.metrics.backendErrors.WithLabelValues(BackendRedis, "subscribe").Inc()
			t.c.log.Warn("cache: redis subscription lost, retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(redisSubBackoff):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			// (Re)subscribed: Redis is reachable again.
			t.downUntil.Store(0)
			if err := t.scan(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				t.c.metrics.backendErrors.WithLabelValues(BackendRedis, "scan").Inc()
				t.c.log.Warn("cache: redis warm-up scan failed", "err", err)
				continue
			}
			t.once.Do(func() { close(t.warmed) })
		case *redis.Message:
			raw, err := hex.DecodeString(m.Payload)
			if err != nil || len(raw) != 32 {
				continue
			}
			var key [32]byte
			copy(key[:], raw)
			if err := t.load(ctx, []string{t.entryKey(key)}); err != nil && ctx.Err() == nil {
				t.c.metrics.backendErrors.WithLabelValues(BackendRedis, "load").Inc()
			}
		}
	}
}

// scan indexes every entry in Redis.
func (t *redisTier) scan(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisWarmTimeout)
	defer cancel()
	iter := t.client.Scan(ctx, 0, t.prefix+"e:*", redisScanCount).Iterator()
	batch := make([]string, 0, redisScanCount)
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == redisScanCount {
			if err := t.load(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	return t.load(ctx, batch)
}

// load fetches the index fields of the given entry keys and indexes them.
func (t *redisTier) load(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	_, err := t.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, redisFieldPart, redisFieldPrompt, redisFieldVec, redisFieldModel, redisFieldExpires)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("load entries: %w", err)
	}
	for i, cmd := range cmds {
		vals, err := cmd.Result()
		if err != nil || len(vals) != 5 {
			continue
		}
		part, _ := vals[0].(string)
		prompt, _ := vals[1].(string)
		vec, _ := vals[2].(string)
		model, _ := vals[3].(string)
		exp, _ := vals[4].(string)
		raw, err := hex.DecodeString(keys[i][len(t.prefix)+2:])
		if err != nil || len(raw) != 32 || len(part) != 32 || prompt == "" {
			continue
		}
		ms, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			continue
		}
		e := sharedEntry{prompt: prompt, vec: decodeVec(vec), embedderID: model, expires: time.UnixMilli(ms)}
		copy(e.key[:], raw)
		copy(e.part[:], part)
		t.c.addShared(ctx, e)
	}
	return nil
}

func (t *redisTier) close() error {
	t.cancel()
	psErr := t.ps.Close()
	<-t.done
	err := errors.Join(psErr, t.client.Close())
	if err != nil {
		return fmt.Errorf("close redis client: %w", err)
	}
	return nil
}

// WaitWarm blocks until the local index has been filled from the shared
// tier once (immediately for the memory backend), or ctx ends.
func (c *Cache) WaitWarm(ctx context.Context) error {
	if c.shared == nil {
		return nil
	}
	select {
	case <-c.shared.warmed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache warm-up: %w", ctx.Err())
	}
}
