package eval

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names written by WriteMetrics and kept live by Gauges (labels set,
// model; cases also has result=pass|fail|error).
const (
	MetricScore         = "tollgate_eval_score"
	MetricBaselineScore = "tollgate_eval_baseline_score"
	MetricCases         = "tollgate_eval_cases"
	MetricRegression    = "tollgate_eval_regression"
	MetricLastRun       = "tollgate_eval_last_run_timestamp_seconds"
)

// Gauges are the tollgate_eval_* gauges of the last run per set and model.
// WriteMetrics writes them to a textfile; a long-running process (Tollgate's
// automatic evals) registers them once and records every run.
type Gauges struct {
	Score         *prometheus.GaugeVec // set, model
	BaselineScore *prometheus.GaugeVec // set, model
	Regression    *prometheus.GaugeVec // set, model
	LastRun       *prometheus.GaugeVec // set, model
	Cases         *prometheus.GaugeVec // set, model, result
}

// NewGauges creates the gauges and registers them on reg (nil: not
// registered).
func NewGauges(reg prometheus.Registerer) *Gauges {
	vec := func(name, help string, extra ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append([]string{"set", "model"}, extra...))
	}
	g := &Gauges{
		Score:         vec(MetricScore, "Mean score (0..1) of the last tollgate eval run of the golden set."),
		BaselineScore: vec(MetricBaselineScore, "Mean score of the baseline the last run was compared with."),
		Regression:    vec(MetricRegression, "1 if the last tollgate eval run regressed (the gate failed), else 0."),
		LastRun:       vec(MetricLastRun, "Unix time the last tollgate eval run started."),
		Cases:         vec(MetricCases, "Cases of the last tollgate eval run by result.", "result"),
	}
	if reg != nil {
		reg.MustRegister(g.Score, g.BaselineScore, g.Regression, g.LastRun, g.Cases)
	}
	return g
}

// Record sets the gauges of r's set and model to r's results.
func (g *Gauges) Record(r Report) {
	g.Score.WithLabelValues(r.Set, r.Model).Set(r.MeanScore)
	if r.Baseline != nil {
		g.BaselineScore.WithLabelValues(r.Set, r.Model).Set(r.Baseline.MeanScore)
	} else {
		g.BaselineScore.DeleteLabelValues(r.Set, r.Model)
	}
	regression := 0.0
	if r.Regression {
		regression = 1
	}
	g.Regression.WithLabelValues(r.Set, r.Model).Set(regression)
	g.LastRun.WithLabelValues(r.Set, r.Model).Set(float64(r.StartedAt.UnixNano()) / 1e9)
	g.Cases.WithLabelValues(r.Set, r.Model, "pass").Set(float64(r.Passed))
	g.Cases.WithLabelValues(r.Set, r.Model, "fail").Set(float64(r.Failed))
	g.Cases.WithLabelValues(r.Set, r.Model, "error").Set(float64(r.Errored))
}

// WriteMetrics writes r as gauges in the Prometheus text format to path,
// atomically, for node_exporter's textfile collector (name the file *.prom
// in the collector's directory) or a push to a Pushgateway.
func WriteMetrics(path string, r Report) error {
	reg := prometheus.NewRegistry()
	NewGauges(reg).Record(r)
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("write metrics %s: %w", path, err)
	}
	return nil
}
