package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// ErrInvalidResponse is returned by Store for a body that is not a complete
// chat.completion (an error object, a cut stream, unparsable JSON).
var ErrInvalidResponse = errors.New("response is not a cacheable chat.completion")

// Hit is a cached response.
type Hit struct {
	// Body is the stored chat.completion JSON.
	Body []byte
	// Kind is "exact" or "semantic".
	Kind string
	// Similarity is the cosine similarity of a semantic hit (1 for exact).
	Similarity float64
}

// Option adjusts a Cache built by New.
type Option func(*options)

type options struct {
	now      func() time.Time
	embedder Embedder
	logger   *slog.Logger
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithEmbedder replaces the embedder chosen by the config.
func WithEmbedder(e Embedder) Option { return func(o *options) { o.embedder = e } }

// WithLogger sets the logger for degraded decisions (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Cache is the exact and semantic response cache. It is safe for concurrent
// use.
type Cache struct {
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	bodies   *ristretto.Cache[string, []byte]
	index    *semIndex
	embedder Embedder
	idf      IDF
	metrics  *metrics
	shared   *redisTier // nil for the memory backend
	verifier *Verifier  // nil when the verifier is off
	scratch  sync.Pool  // *keyScratch for NewRequest
	features sync.Pool  // *featureScratch for featurise
	// remoteEmbedder: the embedder may block on the network (not the
	// built-in one), so Lookup needs its overall deadline.
	remoteEmbedder bool
	// builtin is the embedder when it is the built-in one over c.idf: it
	// then embeds from the same analysis of the prompt as the verifier.
	builtin *BuiltinEmbedder
}

// New builds a Cache. reg may be nil (no metrics registered). With the redis
// backend, New connects, subscribes and starts warming the local index in the
// background; an unreachable Redis is not an error (the cache runs on its
// local tier and counts backend errors).
func New(cfg Config, reg prometheus.Registerer, opts ...Option) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	bodies, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
		NumCounters: max(10_000, cfg.Exact.MaxBytes/200),
		MaxCost:     cfg.Exact.MaxBytes,
		BufferItems: 64,
	})
	if err != nil {
		return nil, fmt.Errorf("create in-process store: %w", err)
	}
	c := &Cache{
		cfg:    cfg,
		now:    o.now,
		log:    o.logger,
		bodies: bodies,
		index: newSemIndex(indexLimits{
			perPartition: cfg.Semantic.MaxEntriesPerPartition,
			entries:      cfg.Semantic.MaxEntries,
			bytes:        cfg.Semantic.MaxBytes,
		}, o.now),
		idf: DefaultIDF(),
	}
	c.metrics, err = newMetrics(reg, c.index, cfg.Semantic)
	if err != nil {
		bodies.Close()
		return nil, err
	}
	c.index.evicted = func(reason string) { c.metrics.evictions.WithLabelValues(reason).Inc() }
	switch {
	case o.embedder != nil:
		c.embedder = o.embedder
	case cfg.Semantic.Embedder.Kind == EmbedderOpenAI:
		c.embedder, err = NewOpenAIEmbedder(cfg.Semantic.Embedder)
		if err != nil {
			bodies.Close()
			return nil, err
		}
	default:
		c.embedder = NewBuiltinEmbedder(c.idf)
	}
	be, builtin := c.embedder.(*BuiltinEmbedder)
	c.remoteEmbedder = cfg.Semantic.Enabled && !builtin
	if builtin && be.idf.sameTables(c.idf) {
		c.builtin = be
	}
	if cfg.Semantic.Enabled && cfg.Semantic.Verifier {
		if _, builtin := c.embedder.(*BuiltinEmbedder); !builtin {
			bodies.Close()
			return nil, fmt.Errorf("%w: semantic.verifier needs the builtin embedder", ErrInvalidConfig)
		}
		if c.verifier, err = ParseVerifier(verifierModel, c.idf); err != nil {
			bodies.Close()
			return nil, err
		}
	}
	if cfg.Backend == BackendRedis {
		c.shared = newRedisTier(c, cfg.Redis)
	}
	return c, nil
}

// NewRequest derives cache keys like the package-level NewRequest, with the
// configured temperature ceiling.
func (c *Cache) NewRequest(tenant, alias string, body []byte) (*Request, error) {
	sc, _ := c.scratch.Get().(*keyScratch)
	if sc == nil {
		sc = new(keyScratch)
	}
	r, err := newRequest(tenant, alias, body, c.cfg.MaxTemperature, sc)
	sc.reset()
	c.scratch.Put(sc)
	return r, err
}

func (c *Cache) cacheable(r *Request) bool {
	ok, _ := r.Cacheable()
	return ok && r.temperature <= c.cfg.MaxTemperature
}

// Lookup returns a cached response for r. A miss, a non-cacheable request and
// every internal failure (embedder, Redis) all return false: the caller then
// forwards the request upstream.
//
// The lookup as a whole is bounded by the configured LookupTimeout.
func (c *Cache) Lookup(ctx context.Context, r *Request) (Hit, bool) {
	if !c.cacheable(r) {
		c.metrics.requests.WithLabelValues(kindNone, resultBypass).Inc()
		return Hit{}, false
	}
	if c.cfg.LookupTimeout > 0 && (c.shared != nil || c.remoteEmbedder) {
		// Only remote calls can outlast the budget; the in-process path
		// saves the timer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.LookupTimeout)
		defer cancel()
	}
	if c.cfg.Exact.Enabled {
		if body, ok := c.body(ctx, r.exact); ok {
			c.metrics.requests.WithLabelValues(KindExact, resultHit).Inc()
			return Hit{Body: body, Kind: KindExact, Similarity: 1}, true
		}
		c.metrics.requests.WithLabelValues(KindExact, resultMiss).Inc()
	}
	if !c.cfg.Semantic.Enabled || r.prompt == "" {
		return Hit{}, false
	}
	hit, ok := c.semantic(ctx, r)
	if ok {
		c.metrics.requests.WithLabelValues(KindSemantic, resultHit).Inc()
	} else {
		c.metrics.requests.WithLabelValues(KindSemantic, resultMiss).Inc()
	}
	return hit, ok
}

// semanticCandidates is how many neighbours are checked against the
// threshold and the guard before giving up, in cosine-only mode.
const semanticCandidates = 4

// verifierCandidates is the same with the verifier: only the nearest entry.
// With all of a corpus in one partition, letting the verifier try the 4
// nearest raised the non-duplicate hit rate on the cache-qqp held-out split
// from 0.8% to 1.3%; the nearest alone keeps it at 0.8%, the cosine-only
// level, for 10.7% correct duplicate hits instead of 11.5% (cosine-only:
// 7.8%). See cmd/trainverify's shared-partition table.
const verifierCandidates = 1

func (c *Cache) semantic(ctx context.Context, r *Request) (Hit, bool) {
	q, err := c.prepare(ctx, r)
	if err != nil {
		c.metrics.embedErrors.Inc()
		c.log.Warn("cache: embedding failed, semantic lookup skipped", "err", err)
		return Hit{}, false
	}
	k := semanticCandidates
	if c.verifier != nil {
		k = verifierCandidates
	}
	cands := c.index.search(r.partition, q.vec, k)
	for _, cand := range cands {
		if cand.similarity < c.cfg.Semantic.Threshold {
			break
		}
		if cand.entry.prompt == r.prompt {
			// Same text, other key (e.g. a whitespace variant): nothing to check.
		} else if reason := c.veto(q, cand); reason != "" {
			c.metrics.vetoes.WithLabelValues(reason).Inc()
			continue
		}
		if body, ok := c.body(ctx, cand.entry.key); ok {
			return Hit{Body: body, Kind: KindSemantic, Similarity: cand.similarity}, true
		}
	}
	return Hit{}, false
}

// promptFeatures are what the semantic tier derives from a prompt: its
// embedding, and the verifier's side (verifier on) or the guard's facts
// (guard only). A request's are computed once and shared by Lookup and
// Store; a stored entry keeps its own.
type promptFeatures struct {
	owner *Cache // the cache that computed them
	vec   []float32
	side  *verifierSide
	facts *promptFacts
}

// prepare returns r's prompt features, computing them on first use.
func (c *Cache) prepare(ctx context.Context, r *Request) (*promptFeatures, error) {
	if r.sem.owner == c {
		return &r.sem, nil
	}
	f, err := c.featurise(ctx, r.prompt, nil)
	if err != nil {
		return nil, err
	}
	r.sem = f
	return &r.sem, nil
}

// featurise computes a prompt's features; vec, when given, is its
// embedding (learnt from the shared tier). The built-in embedder and the
// verifier read one analysis of the prompt when it fits the verifier's
// window.
func (c *Cache) featurise(ctx context.Context, prompt string, vec []float32) (promptFeatures, error) {
	f := promptFeatures{owner: c, vec: vec}
	sc, _ := c.features.Get().(*featureScratch)
	if sc == nil {
		sc = new(featureScratch)
	}
	defer func() {
		if sc.fits() {
			c.features.Put(sc)
		}
	}()
	var a *analysis
	if c.builtin != nil && len(prompt) <= verifierMaxBytes && (vec == nil || c.verifier != nil || c.cfg.Semantic.DifferenceGuard) {
		a = analyse(prompt, c.idf, sc)
	}
	if f.vec == nil {
		if a != nil {
			f.vec = make([]float32, builtinDims)
			c.builtin.embedAnalysis(f.vec, a)
		} else {
			var err error
			if f.vec, err = c.embedder.Embed(ctx, prompt); err != nil {
				return promptFeatures{}, err
			}
		}
	}
	switch {
	case c.verifier != nil && a != nil:
		f.side = sideOf(a, c.idf, sc)
	case c.verifier != nil:
		f.side = newVerifierSide(prompt, c.idf)
	case c.cfg.Semantic.DifferenceGuard && a != nil:
		facts := factsFrom(a, c.idf, defaultGuardParams())
		f.facts = &facts
	case c.cfg.Semantic.DifferenceGuard:
		facts := factsOf(prompt, c.idf)
		f.facts = &facts
	}
	return f, nil
}

// entry returns the index entry of a prompt with features f.
func (f *promptFeatures) entry(key [32]byte, prompt string, expires time.Time) semEntry {
	return semEntry{key: key, prompt: prompt, expires: expires, side: f.side, facts: f.facts}
}

// veto runs the difference guard and then the verifier on a candidate and
// returns why it may not be served ("" when it may). Both read the query's
// features and those the candidate was stored with; with the verifier on,
// the guard reads the facts the verifier computes.
func (c *Cache) veto(q *promptFeatures, cand candidate) string {
	e := cand.entry
	if c.verifier != nil {
		side := e.side
		if side == nil {
			side = newVerifierSide(e.prompt, c.idf)
		}
		vq := VerifierQuery{v: c.verifier, side: q.side}
		return vq.check(side, cand.similarity, c.cfg.Semantic.DifferenceGuard)
	}
	if c.cfg.Semantic.DifferenceGuard {
		facts := e.facts
		if facts == nil {
			f := factsOf(e.prompt, c.idf)
			facts = &f
		}
		if reason := differ(*q.facts, *facts); reason != "" {
			return reason
		}
	}
	return ""
}

// Store saves the response to r. Requests that are not cacheable (including
// those marked with Bypass) are skipped without error. A response that is not
// a complete chat.completion returns ErrInvalidResponse. Failures of the
// shared tier are counted, never returned.
func (c *Cache) Store(ctx context.Context, r *Request, responseJSON []byte) error {
	if !c.cacheable(r) {
		c.metrics.stores.WithLabelValues(storeBypass).Inc()
		return nil
	}
	if !c.cfg.Exact.Enabled && (!c.cfg.Semantic.Enabled || r.prompt == "") {
		c.metrics.stores.WithLabelValues(storeBypass).Inc()
		return nil
	}
	if err := llm.ValidateCompletion(responseJSON); err != nil {
		c.metrics.stores.WithLabelValues(storeInvalid).Inc()
		return fmt.Errorf("%w: %w", ErrInvalidResponse, err)
	}
	body := append([]byte(nil), responseJSON...)
	expires := c.now().Add(c.cfg.Exact.TTL)
	c.putLocal(r.exact, body, expires)

	e := sharedEntry{key: r.exact, part: r.partition, body: body, expires: expires}
	if c.cfg.Semantic.Enabled && r.prompt != "" {
		f, err := c.prepare(ctx, r)
		if err != nil {
			c.metrics.embedErrors.Inc()
			c.log.Warn("cache: embedding failed, stored for exact lookup only", "err", err)
		} else {
			c.index.add(r.partition, f.entry(r.exact, r.prompt, expires), f.vec)
			e.prompt, e.vec, e.embedderID = r.prompt, f.vec, c.embedder.ID()
		}
	}
	if c.shared != nil {
		c.shared.put(ctx, e)
	}
	c.metrics.stores.WithLabelValues(storeStored).Inc()
	return nil
}

// Local entries are stored as key (32 bytes) | expiry (unix nanos, 8 bytes)
// | body, so that a hash collision in the store can never serve another
// key's body, and TTL follows the injected clock.
const localHeader = 40

func (c *Cache) putLocal(key [32]byte, body []byte, expires time.Time) {
	ttl := expires.Sub(c.now())
	if ttl <= 0 {
		return
	}
	v := make([]byte, 0, localHeader+len(body))
	v = append(v, key[:]...)
	v = binary.BigEndian.AppendUint64(v, uint64(expires.UnixNano()))
	v = append(v, body...)
	c.bodies.SetWithTTL(string(key[:]), v, int64(len(v)), ttl)
	c.bodies.Wait()
}

func (c *Cache) getLocal(key [32]byte) ([]byte, bool) {
	v, ok := c.bodies.Get(string(key[:]))
	if !ok || len(v) < localHeader || string(v[:32]) != string(key[:]) {
		return nil, false
	}
	if exp := int64(binary.BigEndian.Uint64(v[32:40])); c.now().UnixNano() >= exp {
		return nil, false
	}
	return v[localHeader:], true
}

// body finds a stored response locally, then in the shared tier.
func (c *Cache) body(ctx context.Context, key [32]byte) ([]byte, bool) {
	if b, ok := c.getLocal(key); ok {
		return b, true
	}
	if c.shared == nil {
		return nil, false
	}
	b, expires, ok := c.shared.get(ctx, key)
	if !ok {
		return nil, false
	}
	c.putLocal(key, b, expires)
	return b, true
}

// addShared indexes an entry learnt from the shared tier (warm-up or a peer's
// announcement).
func (c *Cache) addShared(ctx context.Context, e sharedEntry) {
	if !e.expires.After(c.now()) || !c.cfg.Semantic.Enabled || e.prompt == "" {
		return
	}
	if c.index.has(e.part, e.key) {
		return
	}
	vec := e.vec
	if e.embedderID != c.embedder.ID() || len(vec) == 0 {
		vec = nil // re-embedded
	}
	f, err := c.featurise(ctx, e.prompt, vec)
	if err != nil {
		c.metrics.embedErrors.Inc()
		return
	}
	c.index.add(e.part, f.entry(e.key, e.prompt, e.expires), f.vec)
}

// Close stops background work and releases the stores.
func (c *Cache) Close() error {
	var err error
	if c.shared != nil {
		err = c.shared.close()
	}
	c.index.wait()
	c.bodies.Close()
	return err
}
