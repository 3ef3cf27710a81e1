package validate

import (
	"errors"
	"fmt"
	"strings"
)

// Prometheus rule files (`rule_files:` of prometheus.yml, or the groups of a
// prometheus-operator PrometheusRule) and promtool rule unit tests, as a
// strict schema of Prometheus' formats (rulefmt and promtool's unittest
// format): a misspelt key is an error. PromQL itself is not parsed here
// (`promtool check rules` does that).

type promRuleFile struct {
	Groups []struct {
		Name        string            `json:"name"`
		Interval    *string           `json:"interval,omitempty"`
		QueryOffset *string           `json:"query_offset,omitempty"`
		Limit       *int              `json:"limit,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Rules       []promRule        `json:"rules"`
	} `json:"groups"`
}

type promRule struct {
	Record        *string           `json:"record,omitempty"`
	Alert         *string           `json:"alert,omitempty"`
	Expr          string            `json:"expr"`
	For           *string           `json:"for,omitempty"`
	KeepFiringFor *string           `json:"keep_firing_for,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func (f promRuleFile) check() error {
	var errs []error
	if len(f.Groups) == 0 {
		errs = append(errs, errors.New("groups is empty"))
	}
	for i, g := range f.Groups {
		if g.Name == "" {
			errs = append(errs, fmt.Errorf("groups[%d].name is required", i))
		}
		for j, r := range g.Rules {
			if (r.Record == nil) == (r.Alert == nil) {
				errs = append(errs, fmt.Errorf("groups[%d].rules[%d]: exactly one of record, alert", i, j))
			}
			if strings.TrimSpace(r.Expr) == "" {
				errs = append(errs, fmt.Errorf("groups[%d].rules[%d].expr is required", i, j))
			}
			if r.Record != nil && (r.For != nil || r.Annotations != nil || r.KeepFiringFor != nil) {
				errs = append(errs, fmt.Errorf("groups[%d].rules[%d]: a recording rule has no for/keep_firing_for/annotations", i, j))
			}
		}
	}
	return errors.Join(errs...)
}

type promRuleTests struct {
	RuleFiles          []string `json:"rule_files"`
	EvaluationInterval *string  `json:"evaluation_interval,omitempty"`
	GroupEvalOrder     []string `json:"group_eval_order,omitempty"`
	Tests              []struct {
		Name           *string           `json:"name,omitempty"`
		Interval       *string           `json:"interval,omitempty"`
		ExternalLabels map[string]string `json:"external_labels,omitempty"`
		ExternalURL    *string           `json:"external_url,omitempty"`
		InputSeries    []struct {
			Series string `json:"series"`
			Values string `json:"values"`
		} `json:"input_series"`
		AlertRuleTest []struct {
			EvalTime  string `json:"eval_time"`
			Alertname string `json:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `json:"exp_labels,omitempty"`
				ExpAnnotations map[string]string `json:"exp_annotations,omitempty"`
			} `json:"exp_alerts,omitempty"`
		} `json:"alert_rule_test,omitempty"`
		PromQLExprTest []struct {
			Expr       string `json:"expr"`
			EvalTime   string `json:"eval_time"`
			ExpSamples []struct {
				Labels    string   `json:"labels"`
				Value     *float64 `json:"value,omitempty"`
				Histogram *string  `json:"histogram,omitempty"`
			} `json:"exp_samples,omitempty"`
		} `json:"promql_expr_test,omitempty"`
	} `json:"tests"`
}

func (t promRuleTests) check() error {
	var errs []error
	if len(t.RuleFiles) == 0 {
		errs = append(errs, errors.New("rule_files is empty"))
	}
	if len(t.Tests) == 0 {
		errs = append(errs, errors.New("tests is empty"))
	}
	return errors.Join(errs...)
}
