package observability_test

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/envoy/observability"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

var update = flag.Bool("update", false, "rewrite alerts.yaml from alerts.yaml.tmpl and the embedded default config")

// TestShippedAlertsAreGenerated: alerts.yaml is what `tollgate render
// alerts` prints for the embedded default config.
func TestShippedAlertsAreGenerated(t *testing.T) {
	c, err := config.Default()
	require.NoError(t, err)
	got, err := observability.Alerts(c)
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile("alerts.yaml", got, 0o644))
	}
	want, err := os.ReadFile("alerts.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "alerts.yaml is stale: go test ./envoy/... -update")
}

func TestBudgetCapsFollowTheConfig(t *testing.T) {
	c, err := config.Parse("c.yaml", []byte(`
providers: {p: {base_url: "http://127.0.0.1:1"}}
models: {m: {targets: [{provider: p, model: x}]}}
tenants:
  allow_anonymous: public
  keys:
    - {id: a, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: acme}
    - {id: b, sha256: 0000000000000000000000000000000000000000000000000000000000000001, tenant: free.tier}
budgets:
  default: {daily_usd: 1.5}
  tenants:
    acme: {daily_usd: 20, monthly_usd: 400}
    free.tier: {}
`))
	require.NoError(t, err)
	assert.Equal(t, []observability.Cap{
		{Tenant: "acme", Window: "daily", USD: "20"},
		{Tenant: "acme", Window: "monthly", USD: "400"},
		{Tenant: "public", Window: "daily", USD: "1.5"}, // budgets.default applies
	}, observability.BudgetCaps(c))
	out, err := observability.Alerts(c)
	require.NoError(t, err)
	assert.Contains(t, string(out), "expr: vector(400)\n        labels: {tenant: \"acme\", window: monthly}")
	assert.NotContains(t, string(out), "demo")
}
