package extproc

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
)

// ResponseCache is the exact and semantic response cache the request path
// consults. *cache.Cache implements it.
type ResponseCache interface {
	NewRequest(tenant, alias string, body []byte) (*cache.Request, error)
	Lookup(ctx context.Context, r *cache.Request) (cache.Hit, bool)
	Store(ctx context.Context, r *cache.Request, responseJSON []byte) error
}

// CacheConfig maps tollgate.yaml's cache: section to the cache package.
// Timeouts not set in it are derived from messageTimeout (xds.message_timeout,
// how long Envoy waits for each answer; see cache.TimeoutsFor), so a hung
// Redis or embedder makes the lookup a miss before Envoy gives up.
func CacheConfig(c config.Cache, messageTimeout time.Duration, getenv func(string) string) cache.Config {
	cc := cache.DefaultConfig()
	cc.Exact.Enabled = c.Exact.Enabled
	if c.Exact.MaxBytes > 0 {
		cc.Exact.MaxBytes = c.Exact.MaxBytes
	}
	if c.Exact.TTL > 0 {
		cc.Exact.TTL = c.Exact.TTL
	}
	cc.Semantic.Enabled = c.Semantic.Enabled
	if c.Semantic.Threshold > 0 {
		cc.Semantic.Threshold = c.Semantic.Threshold
	}
	if c.Semantic.Verifier != nil {
		cc.Semantic.Verifier = *c.Semantic.Verifier
	}
	if c.Semantic.DifferenceGuard != nil {
		cc.Semantic.DifferenceGuard = *c.Semantic.DifferenceGuard
	}
	e := c.Semantic.Embedder
	cc.Semantic.Embedder = cache.EmbedderConfig{Kind: e.Kind, URL: e.URL, Model: e.Model, APIKeyEnv: e.APIKeyEnv, Timeout: e.Timeout}
	if c.MaxTemperature > 0 {
		cc.MaxTemperature = c.MaxTemperature
	}
	cc.Backend = c.Backend
	password := ""
	if c.Redis.PasswordEnv != "" && getenv != nil {
		password = getenv(c.Redis.PasswordEnv)
	}
	cc.Redis = cache.RedisConfig{Addr: c.Redis.Addr, Password: password, DB: c.Redis.DB, Prefix: c.Redis.Prefix, Timeout: c.Redis.Timeout}
	if s := c.Semantic; s.MaxEntriesPerPartition > 0 {
		cc.Semantic.MaxEntriesPerPartition = s.MaxEntriesPerPartition
	}
	if s := c.Semantic; s.MaxEntries > 0 {
		cc.Semantic.MaxEntries = s.MaxEntries
	}
	if s := c.Semantic; s.MaxBytes > 0 {
		cc.Semantic.MaxBytes = s.MaxBytes
	}
	if messageTimeout <= 0 {
		messageTimeout = config.DefaultMessageTimeout
	}
	t := cache.TimeoutsFor(messageTimeout)
	cc.LookupTimeout = t.Lookup
	if cc.Redis.Timeout == 0 {
		cc.Redis.Timeout = t.Redis
	}
	if cc.Semantic.Embedder.Timeout == 0 {
		cc.Semantic.Embedder.Timeout = t.Embed
	}
	// Explicit per-call timeouts are the operator's choice: the lookup's
	// overall bound does not cut them shorter.
	cc.LookupTimeout = max(cc.LookupTimeout, cc.Semantic.Embedder.Timeout, 2*cc.Redis.Timeout)
	return cc
}

// cacheLookup runs the cache stage: a hit becomes an immediate response
// that Envoy answers without calling the provider.
func (d *downstream) cacheLookup(ctx context.Context) *hitReply {
	c := d.s.cache
	if c == nil || d.op != llm.OpChat {
		return nil
	}
	creq, err := c.NewRequest(d.id.Tenant, d.alias, d.req.Body)
	if err != nil {
		d.cacheState = "bypass"
		return nil
	}
	d.creq = creq
	cc := strings.ToLower(d.headers.get("cache-control"))
	d.noStore = strings.Contains(cc, "no-store") // look up, never store
	if ok, _ := creq.Cacheable(); !ok {
		d.cacheState = "bypass"
		return nil
	}
	if strings.Contains(cc, "no-cache") {
		d.cacheState = "bypass" // skip the lookup, still store the answer
		return nil
	}
	hit, ok := c.Lookup(ctx, creq)
	if !ok {
		d.cacheState = "miss"
		return nil
	}
	return &hitReply{hit: hit}
}

type hitReply struct{ hit cache.Hit }

// answerFromCache builds the immediate response for a hit: the stored JSON,
// or the same answer replayed as an SSE stream for a streaming request.
func (d *downstream) answerFromCache(h *hitReply) (status int, body []byte, m *mutation) {
	m = &mutation{}
	body = h.hit.Body
	m.setHeader("content-type", "application/json")
	if d.req.Stream {
		sse, err := cache.ReplaySSE(h.hit.Body, d.req.IncludeUsage)
		if err == nil {
			body = sse
			m.setHeader("content-type", "text/event-stream")
			m.setHeader("cache-control", "no-cache")
		}
	}
	m.setHeader(HeaderCache, "hit")
	if h.hit.Kind == cache.KindSemantic {
		m.setHeader(HeaderSimilarity, strconv.FormatFloat(h.hit.Similarity, 'f', 4, 64))
	}
	m.setHeader(HeaderCost, "0")
	// The saving: what the cached answer's usage costs at the alias's
	// first target price.
	if resp, err := llm.ParseResponse(h.hit.Body); err == nil && resp.HasUsage {
		tg := d.model.Targets[0]
		if price, ok := d.rt.price(tg.Provider, tg.Model, d.s.now()); ok {
			saved := meter.Cost(price, meter.Usage{InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens, CachedInputTokens: resp.Usage.CachedInputTokens})
			d.s.metrics.CacheSavedUSD.WithLabelValues(d.rt.tenantLabels.Value(d.id.Tenant)).Add(saved.USD())
		}
	}
	return 200, body, m
}

// storeResponse saves a complete, unmodified, successful answer.
func (d *downstream) storeResponse(ctx context.Context, completion []byte) {
	if d.s.cache == nil || d.creq == nil {
		return
	}
	switch {
	case d.noStore:
		d.creq.Bypass("no_store")
	case d.outputModified || d.streamStopped:
		d.creq.Bypass("guardrail_modified")
	case d.outputPII:
		d.creq.Bypass("output_pii")
	case !d.hasUsage:
		d.creq.Bypass("incomplete")
	case d.outputFindings(completion):
		// A streamed answer is stored as the provider sent it, and the
		// stream guard may have redacted (or only logged) findings in what
		// the client saw: never keep such an answer.
		d.creq.Bypass("output_findings")
	}
	if err := d.s.cache.Store(ctx, d.creq, completion); err != nil {
		d.s.log.Debug("response not cached", "alias", d.alias, "err", err)
	}
}

// outputFindings re-checks an answer with the output guard before it is
// stored (for streams the per-chunk scanner reports no findings).
func (d *downstream) outputFindings(completion []byte) bool {
	g := d.rt.outGuard
	if g == nil || d.acc == nil {
		return false
	}
	resp, err := llm.ParseResponse(completion)
	if err != nil {
		return true
	}
	sess := g.NewSession()
	for _, t := range resp.Texts {
		if len(sess.Check(t.Text).Findings) > 0 {
			return true
		}
	}
	return false
}
