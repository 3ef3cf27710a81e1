package observability

import (
	"bytes"
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"text/template"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// alertsTemplate is alerts.yaml with the budget caps as a Go template
// ([[ ]] delimiters: {{ }} belongs to Prometheus' own templates).
//
//go:embed alerts.yaml.tmpl
var alertsTemplate string

// Cap is one recorded budget cap.
type Cap struct {
	Tenant string
	Window string // daily or monthly
	USD    string // the cap, formatted for PromQL
}

// BudgetCaps lists the caps the server enforces for c: each known tenant's
// own budgets.tenants entry, or budgets.default; zero caps (no cap) are
// left out. Sorted by tenant, then window.
func BudgetCaps(c *config.Config) []Cap {
	tenants := map[string]bool{}
	for _, t := range c.TenantIDs() {
		tenants[t] = true
	}
	for t := range c.Budgets.Tenants {
		tenants[t] = true
	}
	names := make([]string, 0, len(tenants))
	for t := range tenants {
		names = append(names, t)
	}
	sort.Strings(names)
	var out []Cap
	for _, t := range names {
		b, ok := c.Budgets.Tenants[t]
		if !ok {
			b = c.Budgets.Default
		}
		if b.DailyUSD > 0 {
			out = append(out, Cap{Tenant: t, Window: "daily", USD: usd(b.DailyUSD)})
		}
		if b.MonthlyUSD > 0 {
			out = append(out, Cap{Tenant: t, Window: "monthly", USD: usd(b.MonthlyUSD)})
		}
	}
	return out
}

func usd(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Alerts renders alerts.yaml for c.
func Alerts(c *config.Config) ([]byte, error) {
	tmpl, err := template.New("alerts.yaml").Delims("[[", "]]").Parse(alertsTemplate)
	if err != nil {
		return nil, fmt.Errorf("alerts template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct{ Caps []Cap }{BudgetCaps(c)}); err != nil {
		return nil, fmt.Errorf("render alerts: %w", err)
	}
	return buf.Bytes(), nil
}
