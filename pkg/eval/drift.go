package eval

import (
	"sync"
	"time"
)

// DefaultMaxAliases bounds a ModelTracker built with maxAliases <= 0.
const DefaultMaxAliases = 1024

// Seen is what a provider last reported for an alias.
type Seen struct {
	// Model is the response's model field (e.g. "gpt-4o-mini-2024-07-18").
	Model string
	// Fingerprint is the response's system_fingerprint ("" if never sent).
	Fingerprint string
	// Since is when this model/fingerprint pair was first observed.
	Since time.Time
}

// ModelTracker detects silent model updates: per alias it remembers the
// model and system_fingerprint the provider returned and reports when they
// change. It is safe for concurrent use. Memory is bounded: beyond
// maxAliases entries the alias observed least recently is forgotten (its
// next observation counts as a first one, so eviction can miss a change but
// never invents one).
type ModelTracker struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	tick  uint64
	state map[string]*tracked
}

type tracked struct {
	seen Seen
	used uint64 // tick of the last Observe, for eviction
}

// NewModelTracker returns a tracker for at most maxAliases aliases
// (DefaultMaxAliases if <= 0). now is the clock (time.Now if nil).
func NewModelTracker(maxAliases int, now func() time.Time) *ModelTracker {
	if maxAliases <= 0 {
		maxAliases = DefaultMaxAliases
	}
	if now == nil {
		now = time.Now
	}
	return &ModelTracker{max: maxAliases, now: now, state: make(map[string]*tracked)}
}

// Observe records one response for alias. changed is true when the model
// differs from the last one recorded, or when both the previous and the new
// fingerprint are non-empty and differ; prev is then what was recorded
// before. A missing fingerprint never counts as a change (providers omit it
// on some responses), and a response without a model is ignored. The first
// observation of an alias returns changed false and a zero prev.
func (t *ModelTracker) Observe(alias, model, fingerprint string) (changed bool, prev Seen) {
	if model == "" {
		return false, Seen{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tick++
	e, ok := t.state[alias]
	if !ok {
		if len(t.state) >= t.max {
			t.evictLocked()
		}
		t.state[alias] = &tracked{seen: Seen{Model: model, Fingerprint: fingerprint, Since: t.now()}, used: t.tick}
		return false, Seen{}
	}
	e.used = t.tick
	switch {
	case e.seen.Model != model,
		e.seen.Fingerprint != "" && fingerprint != "" && e.seen.Fingerprint != fingerprint:
		prev = e.seen
		e.seen = Seen{Model: model, Fingerprint: fingerprint, Since: t.now()}
		return true, prev
	case e.seen.Fingerprint == "" && fingerprint != "":
		// First fingerprint for a known model: learn it, not a change.
		e.seen.Fingerprint = fingerprint
	}
	return false, Seen{}
}

// Current returns what was last recorded for alias.
func (t *ModelTracker) Current(alias string) (Seen, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.state[alias]
	if !ok {
		return Seen{}, false
	}
	return e.seen, true
}

// Len returns the number of aliases tracked.
func (t *ModelTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.state)
}

func (t *ModelTracker) evictLocked() {
	var (
		oldest string
		least  uint64
		found  bool
	)
	for a, e := range t.state {
		if !found || e.used < least {
			oldest, least, found = a, e.used, true
		}
	}
	if found {
		delete(t.state, oldest)
	}
}
