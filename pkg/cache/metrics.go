package cache

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric label values.
const (
	KindExact    = "exact"
	KindSemantic = "semantic"
	kindNone     = "none"

	resultHit    = "hit"
	resultMiss   = "miss"
	resultBypass = "bypass"

	storeStored  = "stored"
	storeBypass  = "bypass"
	storeInvalid = "invalid_response"
)

type metrics struct {
	requests      *prometheus.CounterVec
	vetoes        *prometheus.CounterVec
	stores        *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	embedErrors   prometheus.Counter
	evictions     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, index *semIndex, sc SemanticConfig) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_requests_total",
			Help: "Cache lookups per tier consulted (kind exact|semantic) and result (hit|miss); kind none, result bypass for requests that are not cacheable.",
		}, []string{"kind", "result"}),
		vetoes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_semantic_vetoes_total",
			Help: "Semantic candidates above the threshold that the difference guard rejected, by reason.",
		}, []string{"reason"}),
		stores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_stores_total",
			Help: "Store calls by result (stored|bypass|invalid_response).",
		}, []string{"result"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_backend_errors_total",
			Help: "Shared-tier (Redis) operations that failed; the cache degraded to the local tier.",
		}, []string{"backend", "op"}),
		embedErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_cache_embedder_errors_total",
			Help: "Embedding calls that failed; the semantic tier was skipped for that request.",
		}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_cache_semantic_evictions_total",
			Help: "Entries removed from the in-process semantic index, by reason (partition_cap|entries_cap|bytes_cap|expired).",
		}, []string{"reason"}),
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_cache_semantic_entries",
			Help: "Entries in the in-process semantic index.",
		}, func() float64 { return float64(index.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_cache_semantic_bytes",
			Help: "Approximate heap bytes held by the in-process semantic index (prompts, vectors, graph links, bookkeeping).",
		}, func() float64 { return float64(index.size()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_cache_semantic_max_entries",
			Help: "Configured bound on entries in the in-process semantic index (cache.semantic.max_entries; 0 = none).",
		}, func() float64 { return float64(sc.MaxEntries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollgate_cache_semantic_max_bytes",
			Help: "Configured bound on approximate bytes of the in-process semantic index (cache.semantic.max_bytes; 0 = none).",
		}, func() float64 { return float64(sc.MaxBytes) }),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.vetoes, m.stores, m.backendErrors, m.embedErrors, m.evictions}, gauges...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register cache metrics: %w", err)
		}
	}
	// Pre-create the series dashboards expect, so they read 0 rather than
	// absent.
	for _, k := range []string{KindExact, KindSemantic} {
		for _, r := range []string{resultHit, resultMiss} {
			m.requests.WithLabelValues(k, r)
		}
	}
	m.requests.WithLabelValues(kindNone, resultBypass)
	for _, r := range []string{evictPartitionCap, evictEntriesCap, evictBytesCap, evictExpired} {
		m.evictions.WithLabelValues(r)
	}
	return m, nil
}
