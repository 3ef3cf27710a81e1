package keys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ErrConflict is returned when a key changed between reading and writing it
// (another replica rotated or revoked it at the same time); retry.
var ErrConflict = errors.New("key changed concurrently")

// Backend stores key records; the latest record of an id replaces earlier
// ones. FileBackend and RedisBackend implement it.
type Backend interface {
	// Put writes k. With prev empty it creates k and fails with ErrExists
	// when k.ID is present. Otherwise it replaces the record of k.ID and
	// fails with ErrNotFound when there is none, ErrRevoked when it is
	// revoked and ErrConflict when its sha256 is not prev.
	Put(ctx context.Context, k Key, prev string) error
	// Load returns every key, the latest record per id.
	Load(ctx context.Context) ([]Key, error)
	// Watch calls changed whenever another writer may have changed the keys,
	// until ctx ends.
	Watch(ctx context.Context, changed func())
	Close() error
}

// RingOptions configure NewRing.
type RingOptions struct {
	// Now is the clock for expiry and timestamps (default time.Now).
	Now func() time.Time
	// OnError receives background refresh failures (the last snapshot stays
	// in use); default: ignored.
	OnError func(error)
	// StartEmpty makes NewRing succeed when the first load fails: the ring
	// starts with no keys (every lookup fails), reports the error to
	// OnError and loads as soon as the backend answers.
	StartEmpty bool
}

// Ring serves key lookups from an in-memory snapshot of a Backend and
// writes changes through to it. It is safe for concurrent use.
type Ring struct {
	b       Backend
	now     func() time.Time
	onError func(error)
	snap    atomic.Pointer[snapshot]
	mu      sync.Mutex // serialises refreshes and writes of this Ring

	cancel context.CancelFunc
	done   chan struct{}
}

type snapshot struct {
	byHash map[[32]byte]*Key // active and expired keys; revoked ones are absent
	byID   map[string]*Key
}

// NewRing loads every key from b and keeps the snapshot current until Close.
func NewRing(ctx context.Context, b Backend, opts RingOptions) (*Ring, error) {
	r := &Ring{b: b, now: opts.Now, onError: opts.OnError, done: make(chan struct{})}
	if r.now == nil {
		r.now = time.Now
	}
	if r.onError == nil {
		r.onError = func(error) {}
	}
	if err := r.Refresh(ctx); err != nil {
		if !opts.StartEmpty {
			return nil, err
		}
		r.snap.Store(&snapshot{byHash: map[[32]byte]*Key{}, byID: map[string]*Key{}})
		r.onError(err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		b.Watch(wctx, func() {
			rctx, cancel := context.WithTimeout(wctx, 5*time.Second)
			defer cancel()
			if err := r.Refresh(rctx); err != nil && wctx.Err() == nil {
				r.onError(err)
			}
		})
	}()
	return r, nil
}

// Close stops watching and closes the backend.
func (r *Ring) Close() error {
	r.cancel()
	<-r.done
	return r.b.Close()
}

// Refresh reloads the snapshot from the backend.
func (r *Ring) Refresh(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refreshLocked(ctx)
}

func (r *Ring) refreshLocked(ctx context.Context) error {
	all, err := r.b.Load(ctx)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	s := &snapshot{byHash: make(map[[32]byte]*Key, len(all)), byID: make(map[string]*Key, len(all))}
	for i := range all {
		k := &all[i]
		s.byID[k.ID] = k
		if !k.Revoked.IsZero() {
			continue
		}
		if sum, ok := sumOf(k.SHA256); ok {
			s.byHash[sum] = k
		}
	}
	r.snap.Store(s)
	return nil
}

// Lookup finds the key whose secret hashes to sum. ok is false when there is
// none, or (with k set) when the key has expired. Revoked keys are not
// found. The returned Key must not be modified.
func (r *Ring) Lookup(sum [32]byte) (k *Key, ok bool) {
	k, found := r.snap.Load().byHash[sum]
	if !found {
		return nil, false
	}
	if !k.Expires.IsZero() && !r.now().Before(k.Expires) {
		return k, false
	}
	return k, true
}

// Get returns the key with id (revoked ones too).
func (r *Ring) Get(id string) (Key, bool) {
	k, ok := r.snap.Load().byID[id]
	if !ok {
		return Key{}, false
	}
	return *k, true
}

// List returns every key, revoked ones too, by id.
func (r *Ring) List() []Key {
	s := r.snap.Load()
	out := make([]Key, 0, len(s.byID))
	for _, k := range s.byID {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Create stores k (k.Created is set to now). The change is visible to this
// Ring's Lookup when Create returns.
func (r *Ring) Create(ctx context.Context, k Key) (Key, error) {
	k.Created = r.now().UTC()
	k.Rotated, k.Revoked = time.Time{}, time.Time{}
	if err := k.Validate(); err != nil {
		return Key{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.b.Put(ctx, k, ""); err != nil {
		return Key{}, err
	}
	return k, r.refreshLocked(ctx)
}

// Rotate replaces the secret hash of key id by sha256: the old secret stops
// authenticating at once.
func (r *Ring) Rotate(ctx context.Context, id, sha256 string) (Key, error) {
	return r.update(ctx, id, func(k *Key) error {
		if !k.Revoked.IsZero() {
			return ErrRevoked
		}
		k.SHA256, k.Rotated = sha256, r.now().UTC()
		return nil
	})
}

// Revoke revokes key id at once. Revoking a revoked key returns it
// unchanged.
func (r *Ring) Revoke(ctx context.Context, id string) (Key, error) {
	k, err := r.update(ctx, id, func(k *Key) error {
		if !k.Revoked.IsZero() {
			return ErrRevoked
		}
		k.Revoked = r.now().UTC()
		return nil
	})
	if errors.Is(err, ErrRevoked) {
		if cur, ok := r.Get(id); ok {
			return cur, nil
		}
	}
	return k, err
}

func (r *Ring) update(ctx context.Context, id string, change func(*Key) error) (Key, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Read the backend's latest record, not a possibly stale snapshot.
	if err := r.refreshLocked(ctx); err != nil {
		return Key{}, err
	}
	cur, ok := r.snap.Load().byID[id]
	if !ok {
		return Key{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	k := *cur
	k.Models = append([]string(nil), cur.Models...)
	if err := change(&k); err != nil {
		return Key{}, err
	}
	if err := k.Validate(); err != nil {
		return Key{}, err
	}
	if err := r.b.Put(ctx, k, cur.SHA256); err != nil {
		return Key{}, err
	}
	return k, r.refreshLocked(ctx)
}
