package extproc

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
	"github.com/tollgate-dev/tollgate/pkg/contract"
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
	return preflight.CacheConfig(c, messageTimeout, getenv)
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
		sse, err := llm.ReplaySSE(h.hit.Body, d.req.IncludeUsage)
		if err == nil {
			body = sse
			m.setHeader("content-type", "text/event-stream")
			m.setHeader("cache-control", "no-cache")
		}
	}
	m.setHeader(contract.HeaderCache, "hit")
	if h.hit.Kind == cache.KindSemantic {
		m.setHeader(contract.HeaderSimilarity, strconv.FormatFloat(h.hit.Similarity, 'f', 4, 64))
	}
	m.setHeader(contract.HeaderCost, "0")
	d.setGuardrailsHeader(m) // a cached answer was screened before it was stored
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
