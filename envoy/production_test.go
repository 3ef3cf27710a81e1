package envoy_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
)

// TestProductionExampleValidates: the commented production example loads,
// passes the checks `tollgate validate --skip-env` runs (every price known,
// guards and caches built), and translates into Envoy resources with TLS and
// an access log.
func TestProductionExampleValidates(t *testing.T) {
	data, err := os.ReadFile("tollgate.production.yaml")
	require.NoError(t, err)
	cfg, err := config.Parse("tollgate.production.yaml", data)
	require.NoError(t, err)
	cfg.Audit.Dir = t.TempDir() // the example's /var/lib path is the server's
	_, warnings, err := preflight.Check(cfg, preflight.Options{Env: preflight.EnvSkip})
	require.NoError(t, err)
	assert.Empty(t, warnings)
	res, err := translate.Envoy(cfg)
	require.NoError(t, err)
	assert.NotNil(t, res.Listeners[0].GetFilterChains()[0].GetTransportSocket())
}
