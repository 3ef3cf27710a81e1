package tollgatee2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/extproctest"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// testTimeout bounds every wait.
const testTimeout = 10 * time.Second

// slowClock is a real clock whose timers run factor times longer.
type slowClock struct{ factor int }

func (c slowClock) Timer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d * time.Duration(c.factor))
	return t.C, func() { t.Stop() }
}

func post(t *testing.T, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), testTimeout)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestTollgateEndToEnd runs Tollgate's real ext_proc server in both roles
// behind the emulator configured by FromTollgate: the downstream role
// admits the request and routes it by dynamic metadata, the first target
// answers 429, the router retries on target 2, and the upstream role
// rewrites "model" for each attempt from xds.cluster_name.
func TestTollgateEndToEnd(t *testing.T) {
	busy, _ := fakeprovider.StartTest(t, fakeprovider.Options{Fault: "429"})
	ok, _ := fakeprovider.StartTest(t, fakeprovider.Options{})

	yaml := fmt.Sprintf(`
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0", max_body_bytes: 65536, shutdown_grace: 2s}
providers:
  busy: {base_url: "http://%s"}
  ok: {base_url: "http://%s"}
models:
  m: {targets: [{provider: busy, model: first-model}, {provider: ok, model: second-model}]}
pricing:
  builtin: false
  models:
    - {provider: busy, model: first-model, effective: 2024-01-01, input: 1, output: 1, max_output_tokens: 100}
    - {provider: ok, model: second-model, effective: 2024-01-01, input: 1, output: 1, max_output_tokens: 100}
tenants:
  keys:
    - {id: key-a, sha256: %s, tenant: a, tier: gold}
budgets:
  ledger:
    backend: file
    path: %q
`, busy.Addr(), ok.Addr(), sha("sk-a"), t.TempDir()+"/ledger.jsonl")
	cfg, err := config.Parse("envoysim-e2e.yaml", []byte(yaml))
	require.NoError(t, err)

	addr := extproctest.Start(t, cfg, nil)

	simCfg, err := envoysim.FromTollgate(cfg, nil, nil)
	require.NoError(t, err)
	simCfg.ExtProcAddr = addr
	exchanges := make(chan envoysim.Exchange, 4)
	simCfg.OnExchange = func(x envoysim.Exchange) { exchanges <- x }
	// The shipped 200ms message_timeout, stretched so a loaded machine
	// cannot turn a slow reply into a 504.
	simCfg.Clock = slowClock{factor: 25}
	sim, err := envoysim.New(simCfg)
	require.NoError(t, err)
	base, err := sim.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = sim.Close() })

	send := func(key, model string) (*http.Response, []byte, envoysim.Exchange) {
		req := post(t, base+"/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, body := do(t, req)
		select {
		case x := <-exchanges:
			return resp, body, x
		case <-time.After(testTimeout):
			t.Fatal("no exchange")
			return nil, nil, envoysim.Exchange{}
		}
	}

	resp, body, x := send("sk-a", "m")
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var out struct {
		Model string `json:"model"`
	}
	require.NoError(t, json.Unmarshal(body, &out))
	assert.Equal(t, "second-model", out.Model)
	assert.Equal(t, "m", x.Route)
	assert.Equal(t, map[string]any{"route": "m", "tenant": "a"}, x.DynamicMetadata.AsMap()["tollgate"])
	require.Len(t, x.Attempts, 2)
	assert.Equal(t, 429, x.Attempts[0].Status)
	assert.Equal(t, 200, x.Attempts[1].Status)
	assert.Equal(t, translate.TargetClusterName("m", 0), x.Attempts[0].Cluster)
	assert.Equal(t, translate.TargetClusterName("m", 1), x.Attempts[1].Cluster)

	reqs := busy.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, string(reqs[0].Body), `"model":"first-model"`, "the upstream role rewrote model for target 1")
	assert.Empty(t, reqs[0].Header.Get("Authorization"), "the client key never reaches a provider")
	reqs = ok.Requests()
	require.Len(t, reqs, 1)
	assert.Contains(t, string(reqs[0].Body), `"model":"second-model"`, "and for target 2, from the downstream body")

	// A streamed completion after the retry: the downstream role switches
	// the response to STREAMED on the second attempt's headers.
	req := post(t, base+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	req.Header.Set("Authorization", "Bearer sk-a")
	resp, body = do(t, req)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Equal(t, "text/event-stream", strings.Split(resp.Header.Get("Content-Type"), ";")[0])
	assert.Contains(t, string(body), "data: [DONE]")
	assert.Contains(t, string(body), `"model":"second-model"`)
	x = <-exchanges
	assert.Len(t, x.Attempts, 2)
	busy.Reset()
	ok.Reset()

	// An unknown key is answered by the server itself; a known key with an
	// unknown model never reaches a provider either.
	resp, _, x = send("sk-nope", "m")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Empty(t, x.Attempts)
	resp, _, x = send("sk-a", "no-such-alias")
	assert.GreaterOrEqual(t, resp.StatusCode, 400)
	assert.Empty(t, x.Attempts)
	assert.Empty(t, busy.Requests())
	assert.Empty(t, ok.Requests())
}
