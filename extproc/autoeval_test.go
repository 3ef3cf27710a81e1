package extproc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/promtest"
)

// autoEvalConfig is a config whose alias small (fake, gpt-4o-mini) has the
// smoke set as its automatic eval, paid by the operator tenant ops.
func autoEvalConfig(t *testing.T, fakeBase, promptsDir string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	y := `
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0"}
budgets:
  ledger: {path: "` + filepath.Join(dir, "ledger.jsonl") + `"}
  tenants:
    ops: {daily_usd: 100}
audit: {dir: "` + filepath.Join(dir, "audit") + `", sync: true}
providers:
  fake: {base_url: "` + fakeBase + `", catalog: openai}
models:
  small:
    targets: [{provider: fake, model: gpt-4o-mini}]
tenants:
  keys:
    - {id: k1, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: demo}
    - {id: ops, sha256: 0000000000000000000000000000000000000000000000000000000000000002, tenant: ops}
eval:
  auto:
    tenant: ops
    min_interval: 1h
    aliases:
      small: {set: ../evals/smoke.yaml, baseline: ../evals/baselines/smoke.fake.json}
`
	if promptsDir != "" {
		y += "prompts: {dir: \"" + promptsDir + "\", poll_interval: 5ms}\n"
	}
	path := filepath.Join(dir, "tollgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(y), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	return cfg
}

// fakeReply is the body the fake provider answers a chat request with,
// with the fault directives fault (e.g. model=<name>).
func fakeReply(t *testing.T, base, fault string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("content-type", "application/json")
	if fault != "" {
		req.Header.Set("x-fake-fault", fault)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

// proxyReply runs one chat request of tenant demo to alias small through
// the ext_proc server, with reply as the provider's response.
func proxyReply(t *testing.T, c extprocv3.ExternalProcessorClient, reply string) {
	t.Helper()
	_, err := exchange(t, c, nil, append(request(`{"model":"small","messages":[{"role":"user","content":"hi"}]}`, demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"), responseBody(reply))...)
	require.NoError(t, err)
}

// evalRecords reads the audit records of automatic evals in dir.
func evalRecords(t *testing.T, dir string) []audit.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	require.NoError(t, err)
	var out []audit.Record
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r audit.Record
			require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
			if r.Outcome == outcomeEval {
				out = append(out, r)
			}
		}
		require.NoError(t, fh.Close())
	}
	return out
}

const (
	evalPoll    = 10 * time.Millisecond
	evalTimeout = 10 * time.Second
)

// TestAutoEvalRunsOnModelChange: the fake provider starts answering with
// another model behind alias small; Tollgate runs the smoke set in the
// background, records its score in tollgate_eval_* and the audit trail,
// meters its calls to the operator tenant, and a second change within
// min_interval runs nothing.
func TestAutoEvalRunsOnModelChange(t *testing.T) {
	prompt, completion := int64(1000), int64(2000)
	fake, base := fakeprovider.StartTest(t, fakeprovider.Options{
		ReplyMode: fakeprovider.ReplyModeEcho, Usage: fakeprovider.Usage{Prompt: &prompt, Completion: &completion},
	})
	cfg := autoEvalConfig(t, base, "")
	client, reg, stop := runWatching(t, cfg, "")
	runs := func() float64 {
		return promtest.Sum(t, reg, "tollgate_eval_auto_runs_total", map[string]string{"alias": "small", "result": "ok"})
	}

	proxyReply(t, client, fakeReply(t, base, ""))
	assert.Equal(t, 1, fake.Calls(), "no eval for the first model seen")
	proxyReply(t, client, fakeReply(t, base, "model=gpt-4o-mini-2026-12-01"))
	require.Eventually(t, func() bool { return runs() == 1 }, evalTimeout, evalPoll, "the model change triggers a run")

	sm := map[string]string{"set": "smoke", "model": "small"}
	assert.Equal(t, 1.0, promtest.Sum(t, reg, "tollgate_eval_score", sm))
	assert.Equal(t, 1.0, promtest.Sum(t, reg, "tollgate_eval_baseline_score", sm))
	assert.Equal(t, 0.0, promtest.Sum(t, reg, "tollgate_eval_regression", sm))
	assert.Equal(t, 4.0, promtest.Sum(t, reg, "tollgate_eval_cases", map[string]string{"set": "smoke", "model": "small", "result": "pass"}))
	assert.Equal(t, 2+4, fake.Calls(), "the eval sent the set's 4 cases to the provider")

	// Metered to the operator tenant: 4 calls of 1000 input and 2000 output
	// tokens at gpt-4o-mini's 0.15 / 0.60 USD per million.
	assert.InDelta(t, 4*(1000*0.15+2000*0.60)/1e6,
		promtest.Sum(t, reg, "tollgate_cost_usd_total", map[string]string{"tenant": "ops", "provider": "fake", "model": "gpt-4o-mini"}), 1e-12)
	assert.InDelta(t, 2*(1000*0.15+2000*0.60)/1e6,
		promtest.Sum(t, reg, "tollgate_cost_usd_total", map[string]string{"tenant": "demo", "provider": "fake", "model": "gpt-4o-mini"}), 1e-12,
		"the client's own requests stay on its tenant")

	// Another change within min_interval: counted, not run.
	proxyReply(t, client, fakeReply(t, base, "model=gpt-4o-mini-2027-01-01"))
	require.Eventually(t, func() bool {
		return promtest.Sum(t, reg, "tollgate_eval_auto_triggers_total", map[string]string{"alias": "small", "outcome": "rate_limited"}) == 1
	}, evalTimeout, evalPoll)
	assert.Equal(t, 1.0, runs())
	assert.Equal(t, 2+4+1, fake.Calls(), "no eval calls within the interval")
	stop()

	// The spend ledger holds the eval's cost on the operator tenant.
	fl, err := meter.OpenFileLedger(cfg.Budgets.Ledger.Path, meter.FileLedgerOptions{})
	require.NoError(t, err)
	spent, err := meter.NewBudgets(fl, nil).Spent(context.Background(), "ops")
	require.NoError(t, err)
	require.NoError(t, fl.Close())
	assert.InDelta(t, 4*(1000*0.15+2000*0.60)/1e6, spent.Daily.USD(), 1e-9)

	recs := evalRecords(t, filepath.Join(filepath.Dir(cfg.Budgets.Ledger.Path), "audit"))
	require.Len(t, recs, 1)
	r := recs[0]
	assert.Equal(t, "ops", r.Tenant)
	assert.Equal(t, "small", r.Alias)
	require.NotNil(t, r.Eval)
	assert.Equal(t, audit.EvalResult{Set: "smoke", Trigger: "model_change", Score: 1, Baseline: r.Eval.Baseline, Passed: 4}, *r.Eval)
	require.NotNil(t, r.Eval.Baseline)
	assert.Equal(t, 1.0, *r.Eval.Baseline)
}

// TestAutoEvalRegressionSetsTheAlertMetric: the provider swaps in a
// degraded model behind the alias; the background run scores below the
// committed baseline and tollgate_eval_regression (the series of the
// TollgateEvalRegression alert) becomes 1.
func TestAutoEvalRegressionSetsTheAlertMetric(t *testing.T) {
	fake := fakeprovider.New(fakeprovider.Options{ReplyMode: fakeprovider.ReplyModeEcho})
	var fault atomic.Value // fault directives the provider applies to every request
	fault.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := fault.Load().(string); f != "" {
			r.Header.Set("x-fake-fault", f)
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := autoEvalConfig(t, srv.URL, "")
	client, reg, stop := runWatching(t, cfg, "")

	proxyReply(t, client, fakeReply(t, srv.URL, ""))
	fault.Store("degraded,model=gpt-4o-mini-degraded")
	proxyReply(t, client, fakeReply(t, srv.URL, ""))
	require.Eventually(t, func() bool {
		return promtest.Sum(t, reg, "tollgate_eval_auto_runs_total", map[string]string{"alias": "small", "result": "regression"}) == 1
	}, evalTimeout, evalPoll)
	sm := map[string]string{"set": "smoke", "model": "small"}
	assert.Equal(t, 1.0, promtest.Sum(t, reg, "tollgate_eval_regression", sm))
	assert.Equal(t, 0.0, promtest.Sum(t, reg, "tollgate_eval_score", sm))
	assert.Equal(t, 4.0, promtest.Sum(t, reg, "tollgate_eval_cases", map[string]string{"set": "smoke", "model": "small", "result": "fail"}))
	stop()
	recs := evalRecords(t, filepath.Join(filepath.Dir(cfg.Budgets.Ledger.Path), "audit"))
	require.Len(t, recs, 1)
	assert.True(t, recs[0].Eval.Regression)
	assert.Equal(t, 4, recs[0].Eval.Failed)
}

// writeAtomic replaces path's content in one rename, as an editor or a
// deploy does.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// TestPromptChangeReloadsRegistryAndTriggersEval: a new prompt version is
// served without a restart and triggers the automatic eval; a broken file
// keeps the running registry and is counted.
func TestPromptChangeReloadsRegistryAndTriggersEval(t *testing.T) {
	_, base := fakeprovider.StartTest(t, fakeprovider.Options{ReplyMode: fakeprovider.ReplyModeEcho})
	dir := t.TempDir()
	orig, err := os.ReadFile("../prompts/support-answer.yaml")
	require.NoError(t, err)
	file := filepath.Join(dir, "support-answer.yaml")
	require.NoError(t, os.WriteFile(file, orig, 0o600))
	cfg := autoEvalConfig(t, base, dir)
	client, reg, stop := runWatching(t, cfg, "")

	status := func(ref string) int {
		h := map[string]string{"x-tollgate-prompt": ref, "x-tollgate-prompt-vars": `{"product":"Acme"}`}
		for k, v := range demoHeaders {
			h[k] = v
		}
		return requestStatus(t, client, `{"model":"small","messages":[{"role":"user","content":"hi"}]}`, h)
	}
	reloads := func(result string) float64 {
		return promtest.Sum(t, reg, "tollgate_prompt_reloads_total", map[string]string{"result": result})
	}
	require.Equal(t, 400, status("support-answer@3"), "no version 3 yet")
	require.Equal(t, 0, status("support-answer@2"))

	writeAtomic(t, file, string(orig)+"  - version: [broken\n")
	require.Eventually(t, func() bool { return reloads("error") >= 1 }, evalTimeout, evalPoll)
	assert.Equal(t, 0, status("support-answer@2"), "a broken file keeps the running registry")
	assert.Equal(t, 0.0, reloads("ok"))

	v3 := strings.Replace(string(orig), "current: 2", "current: 3", 1) + `
  - version: 3
    changelog: Shorter.
    system: You are the support assistant of {{product}}. Be brief.
    variables:
      - name: product
        required: true
`
	writeAtomic(t, file, v3)
	require.Eventually(t, func() bool { return reloads("ok") >= 1 }, evalTimeout, evalPoll)
	assert.Equal(t, 0, status("support-answer@3"), "the new version is served without a restart")
	require.Eventually(t, func() bool {
		return promtest.Sum(t, reg, "tollgate_eval_auto_runs_total", map[string]string{"alias": "small", "result": "ok"}) == 1
	}, evalTimeout, evalPoll, "the prompt change triggers the alias's eval")
	assert.Equal(t, 1.0, promtest.Sum(t, reg, "tollgate_eval_score", map[string]string{"set": "smoke", "model": "small"}))
	stop()
	recs := evalRecords(t, filepath.Join(filepath.Dir(cfg.Budgets.Ledger.Path), "audit"))
	require.Len(t, recs, 1)
	assert.Equal(t, "prompt_change", recs[0].Eval.Trigger)
}
