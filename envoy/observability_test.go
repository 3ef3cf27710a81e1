package envoy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/envoy/observability"
	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// The operations-as-code files (envoy/observability) and the docs they point
// to (docs/runbooks, docs/model-cards) are checked here against the code:
// every metric and label an alert or panel uses must be registered by
// pkg/telemetry, pkg/cache or written by pkg/eval.

const (
	obsDir       = "observability"
	obsAlerts    = "observability/alerts.yaml"
	obsDashboard = "observability/dashboard.json"
	obsRunbooks  = "../docs/runbooks"
	obsCards     = "../docs/model-cards"
)

// obsPending lists metrics the alerts use before the server exports them,
// with their labels. A name registered by the code is checked against the
// code instead.
var obsPending = map[string][]string{
	"tollgate_model_change_total": {"alias"},
}

// obsBuiltin are series Prometheus itself produces.
var obsBuiltin = map[string][]string{
	"ALERTS": {"alertname", "alertstate", "severity", "incident"},
}

// obsEnvoy are Envoy's own stats as its Prometheus endpoint
// (/stats/prometheus) names them: the cluster manager's per-cluster
// upstream stats (tag envoy_cluster_name) and the ext_proc HTTP filter's
// http.<stat_prefix>.ext_proc.* counters (tag
// envoy_http_conn_manager_prefix).
var obsEnvoy = map[string][]string{
	"envoy_cluster_upstream_cx_connect_fail":   {"envoy_cluster_name"},
	"envoy_cluster_upstream_cx_total":          {"envoy_cluster_name"},
	"envoy_http_ext_proc_streams_started":      {"envoy_http_conn_manager_prefix"},
	"envoy_http_ext_proc_streams_failed":       {"envoy_http_conn_manager_prefix"},
	"envoy_http_ext_proc_failure_mode_allowed": {"envoy_http_conn_manager_prefix"},
	"envoy_http_ext_proc_message_timeouts":     {"envoy_http_conn_manager_prefix"},
}

// obsControlPlane are the metrics of `tollgate xds` (controlplane/ads),
// checked by name against its source: its registry is not exported.
var obsControlPlane = map[string][]string{
	"tollgate_xds_nacks_total":            {"type"},
	"tollgate_config_reload_errors_total": {},
	"tollgate_config_last_reload_success": {},
	"tollgate_xds_snapshots_total":        {},
}

// obsCapture is a Registerer that records the descriptors of what is
// registered on it (no metric values).
type obsCapture struct{ labels map[string][]string }

var obsDescRe = regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)

func (c *obsCapture) Register(col prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { col.Describe(ch); close(ch) }()
	for d := range ch {
		m := obsDescRe.FindStringSubmatch(d.String())
		if m == nil {
			return fmt.Errorf("unparsable descriptor %s", d)
		}
		var labels []string
		for _, lp := range strings.Split(m[2], ",") {
			if name, _, ok := strings.Cut(lp, "="); ok {
				labels = append(labels, name)
			}
		}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
				labels = append(labels, l)
			}
		}
		c.labels[m[1]] = labels
	}
	return nil
}

func (c *obsCapture) MustRegister(cs ...prometheus.Collector) {
	for _, col := range cs {
		if err := c.Register(col); err != nil {
			panic(err) // MustRegister's contract; only reached by a broken test
		}
	}
}

func (c *obsCapture) Unregister(prometheus.Collector) bool { return false }

// obsKnownMetrics returns every metric name the code exports, with its
// labels; nil labels (recording rules) skip the label check.
func obsKnownMetrics(t *testing.T) map[string][]string {
	t.Helper()
	reg := &obsCapture{labels: map[string][]string{}}
	telemetry.NewMetrics(reg)
	c, err := cache.New(cache.Config{}, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.Contains(t, reg.labels, "tollgate_cost_usd_total", "telemetry metrics captured")
	require.Contains(t, reg.labels, "tollgate_cache_requests_total", "cache metrics captured")

	// pkg/eval writes its gauges to a textfile; read the names back.
	prom := filepath.Join(t.TempDir(), "eval.prom")
	require.NoError(t, eval.WriteMetrics(prom, eval.Report{Set: "s", Model: "m", Baseline: &eval.Comparison{}}))
	f, err := os.Open(prom)
	require.NoError(t, err)
	defer f.Close()
	sampleRe := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} `)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := sampleRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels []string
		for _, lp := range strings.Split(m[2], ",") {
			name, _, _ := strings.Cut(lp, "=")
			labels = append(labels, name)
		}
		reg.labels[m[1]] = labels
	}
	require.Contains(t, reg.labels, eval.MetricScore)

	known := reg.labels
	for name, labels := range obsBuiltin {
		known[name] = labels
	}
	for name, labels := range obsEnvoy {
		known[name] = labels
	}
	ads, err := os.ReadFile("../controlplane/ads/metrics.go")
	require.NoError(t, err)
	for name, labels := range obsControlPlane {
		require.Contains(t, string(ads), `Name: "`+name+`"`, "controlplane/ads registers %s", name)
		known[name] = labels
	}
	for name, labels := range obsPending {
		if _, ok := known[name]; !ok {
			known[name] = labels
		}
	}
	for _, g := range obsLoadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = nil
			}
		}
	}
	return known
}

// obsLookup resolves name (possibly a histogram's _bucket/_sum/_count
// series) to its labels.
func obsLookup(known map[string][]string, name string) ([]string, bool) {
	if l, ok := known[name]; ok {
		return l, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if l, ok := known[base]; ok {
				if suffix == "_bucket" && l != nil {
					l = append(slices.Clone(l), "le")
				}
				return l, true
			}
		}
	}
	return nil, false
}

// obsSelector is one vector selector in a PromQL expression.
type obsSelector struct {
	Metric   string
	Matchers map[string]string // label -> matched value or regex
}

// obsRefs is what an expression references.
type obsRefs struct {
	Selectors []obsSelector
	Grouping  []string // labels in by/without/on/ignoring/group_*
}

var obsKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"offset": true, "bool": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

var obsGroupers = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// obsParseExpr is a small PromQL scanner: it finds vector selectors (metric
// names and their label matchers) and grouping labels, skipping strings,
// ranges, numbers, durations, Grafana variables and function names. It is
// not a full parser; promtool (when installed) checks the syntax.
func obsParseExpr(expr string) (obsRefs, error) {
	var refs obsRefs
	s := expr
	i := 0
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	skipSpace := func() {
		for i < len(s) && strings.ContainsRune(" \t\r\n", rune(s[i])) {
			i++
		}
	}
	ident := func() string {
		start := i
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		return s[start:i]
	}
	str := func() (string, error) {
		q := s[i]
		i++
		var b strings.Builder
		for i < len(s) && s[i] != q {
			if s[i] == '\\' && q != '`' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
			i++
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated string in %q", expr)
		}
		i++
		return b.String(), nil
	}
	lastMetric := -1 // index in refs.Selectors of a selector that may take {...}
	for i < len(s) {
		skipSpace()
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := str(); err != nil {
				return refs, err
			}
			lastMetric = -1
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return refs, fmt.Errorf("unterminated range in %q", expr)
			}
			i += end + 1
		case c == '{':
			if lastMetric < 0 {
				return refs, fmt.Errorf("selector without a metric name at %d in %q", i, expr)
			}
			i++
			for {
				skipSpace()
				if i < len(s) && s[i] == '}' {
					i++
					break
				}
				name := ident()
				if name == "" {
					return refs, fmt.Errorf("bad label matcher at %d in %q", i, expr)
				}
				skipSpace()
				start := i
				for i < len(s) && strings.ContainsRune("=!~", rune(s[i])) {
					i++
				}
				if i == start {
					return refs, fmt.Errorf("missing matcher operator at %d in %q", i, expr)
				}
				skipSpace()
				if i >= len(s) || !strings.ContainsRune("\"'`", rune(s[i])) {
					return refs, fmt.Errorf("label value is not a string at %d in %q", i, expr)
				}
				v, err := str()
				if err != nil {
					return refs, err
				}
				refs.Selectors[lastMetric].Matchers[name] = v
				skipSpace()
				if i < len(s) && s[i] == ',' {
					i++
				}
			}
			lastMetric = -1
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return refs, fmt.Errorf("unterminated variable in %q", expr)
				}
				i += end + 1
			} else {
				ident()
			}
			lastMetric = -1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
			lastMetric = -1
		case isIdentStart(c):
			name := ident()
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			switch {
			case obsGroupers[name] && next == '(':
				end := strings.IndexByte(s[i:], ')')
				if end < 0 {
					return refs, fmt.Errorf("unterminated %s ( in %q", name, expr)
				}
				for _, l := range strings.Split(s[i+1:i+end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						refs.Grouping = append(refs.Grouping, l)
					}
				}
				i += end + 1
				lastMetric = -1
			case obsKeywords[name] || next == '(':
				lastMetric = -1
			default:
				refs.Selectors = append(refs.Selectors, obsSelector{Metric: name, Matchers: map[string]string{}})
				lastMetric = len(refs.Selectors) - 1
			}
		default:
			i++
			lastMetric = -1
		}
	}
	return refs, nil
}

func TestObsParseExpr(t *testing.T) {
	tests := []struct {
		expr     string
		metrics  []string
		matchers map[string]string
		grouping []string
		wantErr  bool
	}{
		{expr: `sum by (tenant) (rate(tollgate_cost_usd_total{tenant=~"$tenant", model!="x"}[$__rate_interval] offset 1d)) * 3600 > 2`,
			metrics: []string{"tollgate_cost_usd_total"}, matchers: map[string]string{"tenant": "$tenant", "model": "x"}, grouping: []string{"tenant"}},
		{expr: "histogram_quantile(0.95, sum by (le) (rate(gen_ai_server_request_duration_seconds_bucket[5m])))",
			metrics: []string{"gen_ai_server_request_duration_seconds_bucket"}, grouping: []string{"le"}},
		{expr: "a / on (tenant, window) group_left b and c unless time() - d > 2 * 86400",
			metrics: []string{"a", "b", "c", "d"}, grouping: []string{"tenant", "window"}},
		{expr: "up {job = 'x'}", metrics: []string{"up"}, matchers: map[string]string{"job": "x"}},
		{expr: `{__name__="x"}`, wantErr: true},
		{expr: `x{a=1}`, wantErr: true},
		{expr: `x{a="1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			refs, err := obsParseExpr(tt.expr)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var metrics []string
			matchers := map[string]string{}
			for _, s := range refs.Selectors {
				metrics = append(metrics, s.Metric)
				for k, v := range s.Matchers {
					matchers[k] = v
				}
			}
			assert.Equal(t, tt.metrics, metrics)
			if tt.matchers == nil {
				tt.matchers = map[string]string{}
			}
			assert.Equal(t, tt.matchers, matchers)
			assert.Equal(t, tt.grouping, refs.Grouping)
		})
	}
}

// obsLabelValues are the label values the code emits, where the set is
// closed; a matcher on these labels must use known values.
func obsLabelValues(t *testing.T) map[string][]string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `tollgate_requests_total` \\|[^|]*\\|(.*)\\|$").FindSubmatch(readme)
	require.NotNil(t, row, "README metrics table has tollgate_requests_total")
	outcomes := regexp.MustCompile("`([a-z_]+)`").FindAllSubmatch(row[1], -1)
	vals := map[string][]string{
		"detector": {guard.DetectorPII, guard.DetectorSecrets, guard.DetectorInjection, guard.DetectorExternal},
		"result":   {"hit", "miss", "bypass", "stored", "invalid_response"},
		"kind":     {cache.KindExact, cache.KindSemantic, "none"},
		"window":   {"daily", "monthly"},
	}
	for _, o := range outcomes {
		vals["outcome"] = append(vals["outcome"], string(o[1]))
	}
	require.Contains(t, vals["outcome"], "provider_error")
	return vals
}

// obsCheckExpr checks every metric, label and closed label value in expr.
func obsCheckExpr(t *testing.T, where, expr string, known, values map[string][]string) {
	t.Helper()
	refs, err := obsParseExpr(expr)
	if !assert.NoError(t, err, where) {
		return
	}
	if len(refs.Selectors) == 0 {
		// Only constant series (the recorded budget caps) may use no metric.
		assert.Regexp(t, `^vector\([0-9.]+\)$`, strings.TrimSpace(expr), "%s: no metric in %q", where, expr)
		return
	}
	allLabels := map[string]bool{"le": true}
	anyUnchecked := false
	for _, sel := range refs.Selectors {
		labels, ok := obsLookup(known, sel.Metric)
		if !assert.True(t, ok, "%s: metric %s is not exported by the code", where, sel.Metric) {
			continue
		}
		if labels == nil {
			anyUnchecked = true
			continue
		}
		for _, l := range labels {
			allLabels[l] = true
		}
		for name, v := range sel.Matchers {
			assert.Contains(t, labels, name, "%s: %s has no label %s", where, sel.Metric, name)
			if vs, ok := values[name]; ok && !strings.HasPrefix(v, "$") {
				for _, alt := range strings.Split(v, "|") {
					assert.Contains(t, vs, alt, "%s: %s{%s} value %q is never emitted", where, sel.Metric, name, alt)
				}
			}
		}
	}
	if !anyUnchecked {
		for _, g := range refs.Grouping {
			assert.True(t, allLabels[g], "%s: grouping label %s is on none of the metrics", where, g)
		}
	}
}

type obsRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type obsRuleFile struct {
	Groups []struct {
		Name  string    `yaml:"name"`
		Rules []obsRule `yaml:"rules"`
	} `yaml:"groups"`
}

func obsLoadRules(t *testing.T) obsRuleFile {
	t.Helper()
	data, err := os.ReadFile(obsAlerts)
	require.NoError(t, err)
	var f obsRuleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&f))
	return f
}

type obsDashboardFile struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func obsLoadDashboard(t *testing.T) obsDashboardFile {
	t.Helper()
	data, err := os.ReadFile(obsDashboard)
	require.NoError(t, err)
	var d obsDashboardFile
	require.NoError(t, json.Unmarshal(data, &d))
	return d
}

func TestObservabilityAlertRules(t *testing.T) {
	known := obsKnownMetrics(t)
	values := obsLabelValues(t)
	rules := obsLoadRules(t)
	dash := obsLoadDashboard(t)
	panels := map[string]bool{}
	for _, p := range dash.Panels {
		panels[p.Title] = true
	}
	require.NotEmpty(t, rules.Groups)
	groups := map[string]bool{}
	alerts := map[string]bool{}
	incidents := map[string]bool{}
	for _, g := range rules.Groups {
		assert.NotEmpty(t, g.Name)
		assert.False(t, groups[g.Name], "duplicate group %s", g.Name)
		groups[g.Name] = true
		assert.NotEmpty(t, g.Rules, g.Name)
		for _, r := range g.Rules {
			where := g.Name + "/" + r.Alert + r.Record
			assert.True(t, (r.Alert == "") != (r.Record == ""), "%s: exactly one of alert and record", where)
			assert.NotEmpty(t, strings.TrimSpace(r.Expr), where)
			obsCheckExpr(t, where, r.Expr, known, values)
			if r.For != "" {
				_, err := time.ParseDuration(r.For)
				assert.NoError(t, err, where)
			}
			if r.Record != "" {
				assert.Regexp(t, `^tollgate:[a-z_]+(:[a-z_]+)*$`, r.Record, "recording rule naming (level:metric:operations)")
				continue
			}
			assert.Regexp(t, `^Tollgate[A-Z][A-Za-z]+$`, r.Alert)
			assert.False(t, alerts[r.Alert], "duplicate alert %s", r.Alert)
			alerts[r.Alert] = true
			assert.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], where)
			incidents[r.Labels["incident"]] = true
			assert.NotEmpty(t, r.Annotations["summary"], where)
			assert.True(t, panels[r.Annotations["dashboard_panel"]], "%s: dashboard panel %q not in dashboard.json", where, r.Annotations["dashboard_panel"])
			rb := r.Annotations["runbook"]
			if assert.Regexp(t, `^docs/runbooks/[a-z-]+\.md$`, rb, where) {
				body, err := os.ReadFile(filepath.Join("..", rb))
				if assert.NoError(t, err, where) {
					assert.Contains(t, string(body), r.Alert, "%s: the runbook names its alert", where)
					assert.Contains(t, string(body), r.Annotations["dashboard_panel"], "%s: the runbook names the panel", where)
				}
			}
		}
	}
	// Every incident class has an alert, Tollgate's own health included.
	for _, inc := range []string{"cost", "quality", "pii", "injection", "model_change", "budget", "errors", "tollgate"} {
		assert.True(t, incidents[inc], "no alert for incident %s", inc)
	}
}

// TestObservabilityBudgetCaps: the caps recorded in alerts.yaml are the
// ones the server enforces for envoy/tollgate.yaml (its own entry, else
// budgets.default, per tenant).
func TestObservabilityBudgetCaps(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	want := map[string]float64{}
	for _, c := range observability.BudgetCaps(cfg) {
		v, err := strconv.ParseFloat(c.USD, 64)
		require.NoError(t, err)
		want[c.Tenant+"/"+c.Window] = v
	}
	require.NotEmpty(t, want)
	got := map[string]float64{}
	vecRe := regexp.MustCompile(`^vector\(([0-9.]+)\)$`)
	for _, g := range obsLoadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "tollgate:budget_cap_usd" {
				continue
			}
			m := vecRe.FindStringSubmatch(strings.TrimSpace(r.Expr))
			require.NotNil(t, m, "cap rule expr %q", r.Expr)
			v, err := strconv.ParseFloat(m[1], 64)
			require.NoError(t, err)
			got[r.Labels["tenant"]+"/"+r.Labels["window"]] = v
		}
	}
	assert.Equal(t, want, got)
}

func TestObservabilityDashboard(t *testing.T) {
	known := obsKnownMetrics(t)
	values := obsLabelValues(t)
	d := obsLoadDashboard(t)
	assert.NotEmpty(t, d.UID)
	assert.NotEmpty(t, d.Title)
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if m := regexp.MustCompile(`^label_values\(([a-z_:]+), *([a-z_]+)\)$`).FindStringSubmatch(v.Definition); m != nil {
			labels, ok := obsLookup(known, m[1])
			if assert.True(t, ok, "variable %s: metric %s", v.Name, m[1]) {
				assert.Contains(t, labels, m[2], "variable %s", v.Name)
			}
		}
	}
	require.True(t, vars["datasource"], "a datasource variable")
	require.NotEmpty(t, d.Panels)
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "duplicate panel id %d", p.ID)
		ids[p.ID] = true
		assert.False(t, titles[p.Title], "duplicate panel title %q", p.Title)
		titles[p.Title] = true
		assert.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		assert.Positive(t, p.GridPos.W, p.Title)
		assert.Positive(t, p.GridPos.H, p.Title)
		assert.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			assert.False(t, refs[tg.RefID], "%s: duplicate refId", p.Title)
			refs[tg.RefID] = true
			for _, v := range regexp.MustCompile(`\$\{?([a-zA-Z_]+)`).FindAllStringSubmatch(tg.Expr, -1) {
				assert.True(t, vars[v[1]] || strings.HasPrefix(v[1], "__"), "%s: undefined variable $%s", p.Title, v[1])
			}
			obsCheckExpr(t, "panel "+p.Title, tg.Expr, known, values)
		}
	}
	for _, a := range d.Annotations.List {
		obsCheckExpr(t, "annotation", a.Expr, known, values)
	}
	// The panels the runbooks rely on.
	for _, want := range []string{"Cost per tenant (USD/h)", "Cost per model (USD/h)", "Request latency P50/P95/P99", "Error rate", "Cache hit rate", "Guardrail findings by detector"} {
		assert.True(t, titles[want], "panel %q", want)
	}
}

// TestObservabilityPromtool runs promtool (Debian package prometheus,
// installed by scripts/deps.sh): rule syntax, the rule unit tests, and the
// syntax of every dashboard query (as recording rules, Grafana variables
// replaced). Without promtool it is skipped, except in CI (CI=true), where
// it fails.
func TestObservabilityPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed: CI must run scripts/deps.sh (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (scripts/deps.sh, or apt-get install prometheus)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		assert.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
	run("check", "rules", obsAlerts)
	run("test", "rules", filepath.Join(obsDir, "alerts_test.yaml"), filepath.Join(obsDir, "alerts_cost_test.yaml"))

	d := obsLoadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	repl := strings.NewReplacer("$__rate_interval", "5m", "${datasource}", "prometheus", "$tenant", ".*")
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d:%s", p.ID, strings.ToLower(tg.RefID)), Expr: repl.Replace(tg.Expr)})
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Record < rules[j].Record })
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	run("check", "rules", path)
}

// TestObservabilityDocs checks the runbooks and model cards exist and cover
// what they must.
func TestObservabilityDocs(t *testing.T) {
	rb, err := filepath.Glob(filepath.Join(obsRunbooks, "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, rb)
	for _, p := range rb {
		if filepath.Base(p) == "README.md" {
			continue
		}
		body, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, section := range []string{"## Alert", "## Dashboard", "## Diagnose", "## Mitigate"} {
			assert.Contains(t, string(body), section, p)
		}
		assert.Contains(t, string(body), "tollgate.yaml", "%s names the config switch", p)
	}

	var cfg struct {
		Models map[string]struct {
			Targets []struct{ Provider, Model string } `yaml:"targets"`
		} `yaml:"models"`
	}
	data, err := os.ReadFile("tollgate.yaml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	require.NotEmpty(t, cfg.Models)
	for alias, m := range cfg.Models {
		p := filepath.Join(obsCards, alias+".md")
		body, err := os.ReadFile(p)
		if !assert.NoError(t, err, "model card for alias %s", alias) {
			continue
		}
		for _, section := range []string{"## Why chosen", "## Limits", "## Prohibited uses", "## Fallback", "## Evaluation"} {
			assert.Contains(t, string(body), section, p)
		}
		for _, tg := range m.Targets {
			assert.Contains(t, string(body), tg.Provider+"/"+tg.Model, "%s names target %s/%s", p, tg.Provider, tg.Model)
		}
	}
}
