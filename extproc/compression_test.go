package extproc

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// paddedJSON is a chat request whose user message is a JSON document padded
// with n spaces: compression minifies it to {"a":1}.
func paddedJSON(n int) string {
	content := `{"a":` + strings.Repeat(" ", n) + `1}`
	b, _ := json.Marshal(map[string]any{"model": "small", "max_tokens": 10,
		"messages": []map[string]string{{"role": "system", "content": "Be   brief."}, {"role": "user", "content": content}}})
	return string(b)
}

func TestCompressionThroughServer(t *testing.T) {
	body := paddedJSON(4000)
	// Uncompressed the prompt estimates to ~1000 tokens, over the TPM of
	// 200; compressed it is a few tokens, under it. The limiter must see
	// the compressed prompt.
	ts := startLimited(t, "limits:\n  tenants:\n    demo: {tpm: 200}\ncompression:\n  tenants:\n    demo: {enabled: true}\n", fixedLimiter())
	out, err := exchange(t, ts.client, nil, append(request(body, demoHeaders),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"yo"}}],"usage":{"prompt_tokens":5,"completion_tokens":1}}`),
	)...)
	require.NoError(t, err)
	require.Len(t, out, 4)
	require.Nil(t, out[1].GetImmediateResponse(), "rejected: %s", out[1].GetImmediateResponse().GetBody())

	rb := out[1].GetRequestBody().GetResponse()
	sent := rb.GetBodyMutation().GetBody()
	assert.Equal(t, `{"a":1}`, gjson.GetBytes(sent, "messages.1.content").Str)
	assert.Equal(t, "Be brief.", gjson.GetBytes(sent, "messages.0.content").Str)
	cl, _ := headerValue(rb.GetHeaderMutation(), "content-length")
	assert.Equal(t, strconv.Itoa(len(sent)), cl)

	before := meter.EstimateTokens("Be   brief.\n" + `{"a":` + strings.Repeat(" ", 4000) + "1}\n")
	after := meter.EstimateTokens("Be brief.\n" + `{"a":1}` + "\n")
	want := before - after
	saved, ok := headerValue(out[2].GetResponseHeaders().GetResponse().GetHeaderMutation(), contract.HeaderTokensSaved)
	require.True(t, ok, "x-tollgate-tokens-saved on the response")
	assert.Equal(t, strconv.FormatInt(want, 10), saved)
	assert.Equal(t, float64(want), testutil.ToFloat64(ts.metrics.PromptTokensSaved.WithLabelValues("demo", "small")))
}

func TestCompressionOffByDefault(t *testing.T) {
	body := paddedJSON(4000)
	ts := startLimited(t, "limits:\n  tenants:\n    demo: {tpm: 200}\n", fixedLimiter())
	rateError(t, send(t, ts, body)) // the whole padded prompt counts

	ts = startLimited(t, "", fixedLimiter())
	m := forward(t, ts, body, 5, 1)
	_, ok := headerValue(m, contract.HeaderTokensSaved)
	assert.False(t, ok, "no header without compression")
	assert.Equal(t, 0, testutil.CollectAndCount(ts.metrics.PromptTokensSaved))
}

func TestCompressionAliasSettingAndBudget(t *testing.T) {
	// The alias opts in with a history budget; nothing to shorten gives a
	// zero saving that is still reported.
	cfg := strings.Replace(testConfig, "      - {provider: backup, model: other-model}\n",
		"      - {provider: backup, model: other-model}\n    compression: {enabled: true, max_prompt_tokens: 1000}\n", 1)
	require.NotEqual(t, testConfig, cfg)
	ts := startWithConfig(t, cfg)
	m := forward(t, ts, `{"model":"small","messages":[{"role":"user","content":"hi"}]}`, 5, 1)
	saved, ok := headerValue(m, contract.HeaderTokensSaved)
	require.True(t, ok)
	assert.Equal(t, "0", saved)
}

// startWithConfig starts a server on the whole YAML y.
func startWithConfig(t testing.TB, y string) *testServer {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(y))
	require.NoError(t, err)
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	srv, err := New(Options{Config: cfg, Catalog: cat, Metrics: m, Getenv: func(string) string { return "" }})
	require.NoError(t, err)
	return serveForTest(t, srv, reg, m)
}

func TestCompressionBudgetReservation(t *testing.T) {
	// Uncompressed, the padded prompt reserves ~1000 input tokens at the
	// dearest target's $1/M: over a $0.0001 daily cap. Compressed it
	// reserves a few tokens: under it.
	body := paddedJSON(4000)
	budgets := func() Budgets {
		store, err := meter.OpenFileLedger(t.TempDir()+"/l.jsonl", meter.FileLedgerOptions{FlushInterval: -1})
		require.NoError(t, err)
		b := meter.NewBudgets(store, nil, meter.WithDefaultCaps(meter.Caps{Daily: meter.MoneyFromUSD(0.0001)}))
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
	ts := startLimitedBudgets(t, "", nil, budgets())
	ir := send(t, ts, body)
	require.NotNil(t, ir, "uncompressed: over the cap")
	assert.Equal(t, 429, int(ir.GetStatus().GetCode()))

	ts = startLimitedBudgets(t, "compression:\n  tenants:\n    demo: {enabled: true}\n", nil, budgets())
	ir = send(t, ts, body)
	assert.Nil(t, ir, "compressed: the reservation fits: %s", ir.GetBody())
}
