package ads

import "github.com/prometheus/client_golang/prometheus"

// metrics are the control plane's Prometheus series.
type metrics struct {
	nacks         *prometheus.CounterVec
	reloadErrors  prometheus.Counter
	reloadSuccess prometheus.Gauge
	snapshots     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_xds_nacks_total",
			Help: "xDS responses an Envoy rejected (NACKed), by resource type.",
		}, []string{"type"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_config_reload_errors_total",
			Help: "Config reloads rejected (invalid file or translation failure); the last good snapshot stays.",
		}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tollgate_config_last_reload_success",
			Help: "1 if the last config (re)load was applied, 0 if it was rejected.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_xds_snapshots_total",
			Help: "Snapshots set in the cache (each one is a push to connected proxies).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.nacks, m.reloadErrors, m.reloadSuccess, m.snapshots} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
