package eval

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names written by WriteMetrics (labels set, model; cases also has
// result=pass|fail|error).
const (
	MetricScore         = "tollgate_eval_score"
	MetricBaselineScore = "tollgate_eval_baseline_score"
	MetricCases         = "tollgate_eval_cases"
	MetricRegression    = "tollgate_eval_regression"
	MetricLastRun       = "tollgate_eval_last_run_timestamp_seconds"
)

// WriteMetrics writes r as gauges in the Prometheus text format to path,
// atomically, for node_exporter's textfile collector (name the file *.prom
// in the collector's directory) or a push to a Pushgateway.
func WriteMetrics(path string, r Report) error {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"set": r.Set, "model": r.Model}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels})
		reg.MustRegister(g)
		return g
	}
	gauge(MetricScore, "Mean score (0..1) of the last tollgate eval run of the golden set.").Set(r.MeanScore)
	if r.Baseline != nil {
		gauge(MetricBaselineScore, "Mean score of the baseline the last run was compared with.").Set(r.Baseline.MeanScore)
	}
	regression := 0.0
	if r.Regression {
		regression = 1
	}
	gauge(MetricRegression, "1 if the last tollgate eval run regressed (the gate failed), else 0.").Set(regression)
	gauge(MetricLastRun, "Unix time the last tollgate eval run started.").Set(float64(r.StartedAt.UnixNano()) / 1e9)
	cases := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: MetricCases, Help: "Cases of the last tollgate eval run by result.", ConstLabels: labels,
	}, []string{"result"})
	reg.MustRegister(cases)
	cases.WithLabelValues("pass").Set(float64(r.Passed))
	cases.WithLabelValues("fail").Set(float64(r.Failed))
	cases.WithLabelValues("error").Set(float64(r.Errored))
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("write metrics %s: %w", path, err)
	}
	return nil
}
