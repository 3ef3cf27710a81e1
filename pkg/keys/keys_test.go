package keys

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/redistest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func fileRing(t *testing.T, path string, now func() time.Time) *Ring {
	t.Helper()
	b, err := OpenFile(path, FileOptions{Poll: 10 * time.Millisecond})
	require.NoError(t, err)
	r, err := NewRing(ctxT(t), b, RingOptions{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func redisRing(t *testing.T, addr string) *Ring {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	r, err := NewRing(ctxT(t), NewRedis(c, RedisOptions{Prefix: "t:vkeys:"}), RingOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func sumHex(h string) [32]byte {
	s, _ := sumOf(h)
	return s
}

func newKey(t *testing.T, id, tenant string) (Key, string) {
	t.Helper()
	secret, sum, err := NewSecret()
	require.NoError(t, err)
	return Key{ID: id, Tenant: tenant, SHA256: sum}, secret
}

// exercise runs the lifecycle every backend must support.
func exercise(t *testing.T, r *Ring) {
	ctx := ctxT(t)
	k, secret := newKey(t, "k-a", "acme")
	created, err := r.Create(ctx, k)
	require.NoError(t, err)
	assert.False(t, created.Created.IsZero())
	got, ok := r.Lookup(sha256.Sum256([]byte(secret)))
	require.True(t, ok)
	assert.Equal(t, "acme", got.Tenant)

	_, err = r.Create(ctx, k)
	require.ErrorIs(t, err, ErrExists)

	secret2, sum2, err := NewSecret()
	require.NoError(t, err)
	_, err = r.Rotate(ctx, "k-a", sum2)
	require.NoError(t, err)
	_, ok = r.Lookup(sha256.Sum256([]byte(secret)))
	assert.False(t, ok, "the old secret stops at once")
	_, ok = r.Lookup(sha256.Sum256([]byte(secret2)))
	assert.True(t, ok)

	rk, err := r.Revoke(ctx, "k-a")
	require.NoError(t, err)
	assert.False(t, rk.Revoked.IsZero())
	_, ok = r.Lookup(sha256.Sum256([]byte(secret2)))
	assert.False(t, ok, "revoked at once on this ring")
	again, err := r.Revoke(ctx, "k-a")
	require.NoError(t, err, "revoking twice is not an error")
	assert.Equal(t, rk.Revoked, again.Revoked)
	_, err = r.Rotate(ctx, "k-a", sum2)
	require.ErrorIs(t, err, ErrRevoked)
	_, err = r.Revoke(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)

	list := r.List()
	require.Len(t, list, 1)
	assert.Equal(t, "k-a", list[0].ID)
}

func TestFileRing(t *testing.T) {
	exercise(t, fileRing(t, filepath.Join(t.TempDir(), "keys.jsonl"), nil))
}

func TestRedisRing(t *testing.T) {
	exercise(t, redisRing(t, redistest.Start(t).Addr))
}

func TestValidation(t *testing.T) {
	r := fileRing(t, filepath.Join(t.TempDir(), "keys.jsonl"), nil)
	for _, k := range []Key{
		{ID: "", Tenant: "a", SHA256: Hash("x")},
		{ID: "a/b", Tenant: "a", SHA256: Hash("x")},
		{ID: "ok", Tenant: "", SHA256: Hash("x")},
		{ID: "ok", Tenant: "a", SHA256: "abc"},
		{ID: "ok", Tenant: "a", SHA256: Hash("x"), DailyUSD: -1},
		{ID: "ok", Tenant: "a", SHA256: Hash("x"), RPM: -1},
	} {
		_, err := r.Create(ctxT(t), k)
		require.ErrorIs(t, err, ErrInvalid, "%+v", k)
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := fileRing(t, filepath.Join(t.TempDir(), "keys.jsonl"), clock)
	k, secret := newKey(t, "k-exp", "acme")
	k.Expires = now.Add(time.Hour)
	_, err := r.Create(ctxT(t), k)
	require.NoError(t, err)
	_, ok := r.Lookup(sha256.Sum256([]byte(secret)))
	require.True(t, ok)
	now = now.Add(time.Hour)
	got, ok := r.Lookup(sha256.Sum256([]byte(secret)))
	assert.False(t, ok, "expired")
	require.NotNil(t, got, "an expired key is still named (the caller says why it failed)")
}

// TestFileReplicas: a second process on the same file sees a create and a
// revoke within a second, and the file survives a reopen.
func TestFileReplicas(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	a, b := fileRing(t, path, nil), fileRing(t, path, nil)
	seesChange(t, a, b)

	c := fileRing(t, path, nil)
	assert.Len(t, c.List(), 1, "reopened from the file")
}

func TestRedisReplicas(t *testing.T) {
	addr := redistest.Start(t).Addr
	seesChange(t, redisRing(t, addr), redisRing(t, addr))
}

func seesChange(t *testing.T, a, b *Ring) {
	t.Helper()
	k, secret := newKey(t, "k-rep", "acme")
	sum := sha256.Sum256([]byte(secret))
	_, err := a.Create(ctxT(t), k)
	require.NoError(t, err)
	start := time.Now()
	require.Eventually(t, func() bool { _, ok := b.Lookup(sum); return ok }, time.Second, 5*time.Millisecond,
		"the other replica sees the new key within 1s")
	t.Logf("create seen after %v", time.Since(start))
	_, err = a.Revoke(ctxT(t), "k-rep")
	require.NoError(t, err)
	_, ok := a.Lookup(sum)
	require.False(t, ok, "revoked at once where it was revoked")
	start = time.Now()
	require.Eventually(t, func() bool { _, ok := b.Lookup(sum); return !ok }, time.Second, 5*time.Millisecond,
		"the other replica stops accepting it within 1s")
	t.Logf("revoke seen after %v", time.Since(start))
}

// TestConcurrentRotate: a write based on a stale record is refused.
func TestConcurrentRotate(t *testing.T) {
	for name, b := range map[string]func() Backend{
		"file": func() Backend {
			fb, err := OpenFile(filepath.Join(t.TempDir(), "k.jsonl"), FileOptions{})
			require.NoError(t, err)
			return fb
		},
		"redis": func() Backend {
			c := redis.NewClient(&redis.Options{Addr: redistest.Start(t).Addr})
			t.Cleanup(func() { _ = c.Close() })
			return NewRedis(c, RedisOptions{Prefix: "t:"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			be := b()
			defer be.Close()
			ctx := ctxT(t)
			k, _ := newKey(t, "k", "acme")
			require.NoError(t, be.Put(ctx, k, ""))
			first := k
			first.SHA256 = Hash("one")
			require.NoError(t, be.Put(ctx, first, k.SHA256))
			second := k
			second.SHA256 = Hash("two")
			require.ErrorIs(t, be.Put(ctx, second, k.SHA256), ErrConflict)
			missing := k
			missing.ID = "other"
			require.ErrorIs(t, be.Put(ctx, missing, k.SHA256), ErrNotFound)
		})
	}
}

func TestFileTornTailIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	r := fileRing(t, path, nil)
	k, _ := newKey(t, "k1", "acme")
	_, err := r.Create(ctxT(t), k)
	require.NoError(t, err)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"half`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	r2 := fileRing(t, path, nil)
	assert.Len(t, r2.List(), 1)
}

func TestFileNeverHoldsSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	r := fileRing(t, path, nil)
	k, secret := newKey(t, "k1", "acme")
	_, err := r.Create(ctxT(t), k)
	require.NoError(t, err)
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), secret)
	assert.Contains(t, string(raw), k.SHA256)
}

// TestStartEmpty: with StartEmpty a ring whose backend is down at start
// serves no keys instead of failing, and reports why.
func TestStartEmpty(t *testing.T) {
	rs := redistest.Start(t)
	addr := rs.Addr
	rs.Stop()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	_, err := NewRing(ctxT(t), NewRedis(c, RedisOptions{Prefix: "t:"}), RingOptions{})
	require.Error(t, err, "without StartEmpty the start fails")
	errs := make(chan error, 100)
	r, err := NewRing(ctxT(t), NewRedis(c, RedisOptions{Prefix: "t:"}), RingOptions{StartEmpty: true,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	assert.Empty(t, r.List())
	_, ok := r.Lookup(sumHex(Hash("anything")))
	assert.False(t, ok)
	require.Error(t, <-errs)
}
