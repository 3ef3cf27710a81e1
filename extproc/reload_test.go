package extproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

// requestStatus runs the request phase and returns the immediate
// response's status, or 0 when the request goes on to the provider.
func requestStatus(t *testing.T, c extprocv3.ExternalProcessorClient, body string, headers map[string]string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Process(ctx)
	require.NoError(t, err)
	defer func() { _ = st.CloseSend() }()
	for _, m := range request(body, headers) {
		require.NoError(t, st.Send(m))
		r, err := st.Recv()
		require.NoError(t, err)
		if ir := r.GetImmediateResponse(); ir != nil {
			return int(ir.GetStatus().GetCode())
		}
	}
	return 0
}

func withHeader(k, v string) map[string]string {
	h := make(map[string]string, len(demoHeaders)+1)
	for hk, hv := range demoHeaders {
		h[hk] = hv
	}
	h[k] = v
	return h
}

const smallChat = `{"model":"small","messages":[{"role":"user","content":"hi"}]}`

// TestReloadAppliesEachSection: for every section ReloadConfig claims to
// apply, a changed value decides the next stream.
func TestReloadAppliesEachSection(t *testing.T) {
	newKey := sha256.Sum256([]byte("sk-new"))
	status := func(body string, headers map[string]string) func(*testing.T, extprocv3.ExternalProcessorClient) string {
		return func(t *testing.T, c extprocv3.ExternalProcessorClient) string {
			return strconv.Itoa(requestStatus(t, c, body, headers))
		}
	}
	cost := func(t *testing.T, c extprocv3.ExternalProcessorClient) string {
		out, err := exchange(t, c, nil, append(request(smallChat, demoHeaders),
			responseHeaders(":status", "200", "content-type", "application/json"),
			responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"y"}}],"usage":{"prompt_tokens":100,"completion_tokens":100}}`))...)
		require.NoError(t, err)
		v, _ := headerValue(out[len(out)-1].GetResponseBody().GetResponse().GetHeaderMutation(), contract.HeaderCost)
		return v
	}
	auth := func(t *testing.T, c extprocv3.ExternalProcessorClient) string {
		out, err := exchange(t, c, nil, request(smallChat, demoHeaders)...)
		require.NoError(t, err)
		v, _ := headerValue(out[len(out)-1].GetRequestBody().GetResponse().GetHeaderMutation(), "authorization")
		return v
	}
	tests := []struct {
		name          string
		edit          func(string) string
		probe         func(*testing.T, extprocv3.ExternalProcessorClient) string
		before, after string
	}{
		{"tenants", func(y string) string {
			return strings.Replace(y, "  keys:\n", "  keys:\n    - {id: k2, sha256: "+hex.EncodeToString(newKey[:])+", tenant: newco}\n", 1)
		}, status(smallChat, withHeader("authorization", "Bearer sk-new")), "401", "0"},
		{"models", func(y string) string {
			return strings.Replace(y, "models:\n", "models:\n  added:\n    targets: [{provider: fake, model: gpt-4o-mini}]\n", 1)
		}, status(`{"model":"added","messages":[{"role":"user","content":"hi"}]}`, demoHeaders), "404", "0"},
		{"pricing", func(y string) string {
			return strings.Replace(y, "pricing:\n  models:\n", "pricing:\n  models:\n    - {provider: fake, model: gpt-4o-mini, effective: 2024-01-01, input: 10, output: 10}\n", 1)
		}, cost, "0.000075", "0.002"},
		{"guardrails", func(y string) string {
			return y + "guardrails: {input: {enabled: true, detectors: {pii: block}}}\n"
		}, status(`{"model":"small","messages":[{"role":"user","content":"write to jane.doe@example.com"}]}`, demoHeaders), "0", "400"},
		{"budgets.tenants", func(y string) string {
			return y + "budgets: {tenants: {demo: {daily_usd: 0.0000001}}}\n"
		}, status(smallChat, demoHeaders), "0", "429"},
		{"budgets.default", func(y string) string {
			return y + "budgets: {default: {daily_usd: 0.0000001}}\n"
		}, status(smallChat, demoHeaders), "0", "429"},
		{"listen.max_body_bytes lowered", func(y string) string {
			return y + "listen: {max_body_bytes: 16}\n"
		}, status(smallChat, demoHeaders), "0", "413"},
		{"credentials.inject", func(y string) string {
			return y + "credentials: {inject: downstream}\n"
		}, auth, "", "Bearer sk-provider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store, err := meter.OpenFileLedger(filepath.Join(t.TempDir(), "l.jsonl"), meter.FileLedgerOptions{FlushInterval: -1})
			require.NoError(t, err)
			budgets := meter.NewBudgets(store, nil)
			t.Cleanup(func() { budgets.Close() })
			ts := startServer(t, budgets)
			require.Equal(t, tc.before, tc.probe(t, ts.client), "before the reload")
			next, err := config.Parse("t.yaml", []byte(tc.edit(testConfig)))
			require.NoError(t, err)
			require.NoError(t, ts.srv.ReloadConfig(next, budgets))
			assert.Equal(t, tc.after, tc.probe(t, ts.client), "the next stream sees the change")
		})
	}
}

func TestRestartOnlySettings(t *testing.T) {
	base, err := config.Parse("t.yaml", []byte(testConfig))
	require.NoError(t, err)
	tests := []struct {
		yaml string
		want []string
	}{
		{"", nil},
		{"models:\n  other:\n    targets: [{provider: fake, model: x}]\n", nil},
		{"listen: {max_body_bytes: 1024}\n", nil},
		{"listen: {max_body_bytes: 104857600}\n", []string{"listen.max_body_bytes (raised)"}},
		{"listen: {extproc: \"127.0.0.1:6000\", admin: \"127.0.0.1:6001\", shutdown_grace: 3s}\n", []string{"listen.extproc", "listen.admin", "listen.shutdown_grace"}},
		{"budgets: {ledger: {path: other.jsonl}, tenants: {demo: {daily_usd: 5}}}\n", []string{"budgets.ledger"}},
		{"cache: {enabled: true}\n", []string{"cache"}},
		{"cache: {semantic: {max_entries: 10}}\n", []string{"cache"}},
		{"audit: {dir: /tmp/a}\n", []string{"audit"}},
		{"tracing: {endpoint: \"127.0.0.1:4317\"}\n", []string{"tracing"}},
		{"xds: {message_timeout: 1s}\n", []string{"xds.message_timeout"}},
	}
	for _, tc := range tests {
		y := testConfig
		if strings.HasPrefix(tc.yaml, "models:") {
			y = strings.Replace(y, "models:\n", tc.yaml, 1)
		} else {
			y += tc.yaml
		}
		next, err := config.Parse("t.yaml", []byte(y))
		require.NoError(t, err, tc.yaml)
		assert.Equal(t, tc.want, restartOnly(base, next), tc.yaml)
	}
}

// TestReloadOfRestartOnlySettingIsCounted: a file change that touches a
// restart-only setting is still applied for the rest (a new alias is
// served) and is counted as restart_required; a later change back is ok.
func TestReloadOfRestartOnlySettingIsCounted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	base := "listen: {extproc: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\nbudgets: {ledger: {path: \"" + filepath.Join(dir, "l.jsonl") + "\"}}\n" + testConfig
	require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)

	client, reg, stop := runWatching(t, cfg, path)
	reloads := func(result string) float64 {
		v, err := testutil.GatherAndCount(reg, "tollgate_config_reloads_total")
		require.NoError(t, err)
		require.Equal(t, 3, v, "ok, error and restart_required series exist")
		return promtest.Sum(t, reg, "tollgate_config_reloads_total", map[string]string{"result": result})
	}
	// The watch's first read of the file is a reload with nothing to restart.
	require.Eventually(t, func() bool { return reloads(telemetry.ReloadOK) == 1 }, 10*time.Second, 10*time.Millisecond)
	added := `{"model":"added","messages":[{"role":"user","content":"x"}]}`
	require.Equal(t, 404, requestStatus(t, client, added, demoHeaders))

	edited := strings.Replace(base, "models:\n", "models:\n  added:\n    targets: [{provider: fake, model: gpt-4o-mini}]\n", 1) +
		"cache: {enabled: true, semantic: {enabled: true}}\ntracing: {endpoint: \"127.0.0.1:1\"}\n"
	require.NoError(t, os.WriteFile(path, []byte(edited), 0o600))
	require.Eventually(t, func() bool { return reloads(telemetry.ReloadRestartRequired) == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0, requestStatus(t, client, added, demoHeaders), "the reloadable part was applied")
	assert.Equal(t, 1.0, reloads(telemetry.ReloadOK))
	assert.Zero(t, reloads(telemetry.ReloadError))
	assert.Zero(t, promtest.Sum(t, reg, "tollgate_cache_requests_total", nil), "no cache was started by the reload")

	require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
	require.Eventually(t, func() bool { return reloads(telemetry.ReloadOK) == 2 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 404, requestStatus(t, client, added, demoHeaders))
	stop()
}
