package extproc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
	"github.com/tollgate-dev/tollgate/pkg/keys"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

const adminSecret = "admin-secret-for-tests"

func adminSHA() string {
	s := sha256.Sum256([]byte(adminSecret))
	return hex.EncodeToString(s[:])
}

// keysConfig adds a second alias, a tier limited to it and a YAML key id
// k1 (testConfig's) to collide with.
const keysConfig = `
  big:
    targets: [{provider: fake, model: gpt-4o}]
`

// auditRecorder is an AuditLog that keeps its records.
type auditRecorder struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (a *auditRecorder) Append(r audit.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
	return nil
}

func (a *auditRecorder) records() []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Record(nil), a.recs...)
}

// logCapture is a slog.Handler that keeps every message and attribute
// value, so a test can check what a log line carries (never its text).
type logCapture struct {
	mu   *sync.Mutex
	vals *[]string
}

func newLogCapture() logCapture { return logCapture{mu: &sync.Mutex{}, vals: new([]string)} }

func (l logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.vals = append(*l.vals, r.Message)
	r.Attrs(func(a slog.Attr) bool { *l.vals = append(*l.vals, a.Key+"="+a.Value.String()); return true })
	return nil
}
func (l logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range as {
		*l.vals = append(*l.vals, a.Key+"="+a.Value.String())
	}
	return l
}
func (l logCapture) WithGroup(string) slog.Handler { return l }

func (l logCapture) values() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), *l.vals...)
}

// keyHarness is an ext_proc server with virtual keys on a file ring (with a
// clock the test moves) and the key admin API on an httptest server.
type keyHarness struct {
	ts    *testServer
	admin string
	ring  *keys.Ring
	audit *auditRecorder
	logs  logCapture
	clock *stepClock
}

func startKeys(t *testing.T, extra string, budgets Budgets, lim RateLimiter) *keyHarness {
	t.Helper()
	dir := t.TempDir()
	yaml := strings.Replace(testConfig, "models:\n", "models:"+keysConfig, 1) +
		"keys: {enabled: true, path: \"" + filepath.Join(dir, "keys.jsonl") + "\"}\n" +
		"admin: {token_sha256: " + adminSHA() + "}\n" + extra
	cfg, err := config.Parse("t.yaml", []byte(yaml))
	require.NoError(t, err)
	clock := &stepClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	fb, err := keys.OpenFile(cfg.Keys.Path, keys.FileOptions{})
	require.NoError(t, err)
	ring, err := keys.NewRing(context.Background(), fb, keys.RingOptions{Now: clock.now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ring.Close() })
	cat, err := BuildCatalog(cfg)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg)
	logs := newLogCapture()
	rec := &auditRecorder{}
	opts := Options{Config: cfg, Catalog: cat, Metrics: m, Keys: ring, Logger: slog.New(logs), Audit: rec, Now: clock.now,
		Getenv: func(string) string { return "" }}
	if budgets != nil {
		opts.Budgets = budgets
	}
	if lim != nil {
		opts.Limits = lim
	}
	srv, err := New(opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	require.NoError(t, mountKeyAdmin(mux, cfg, ring, srv, rec, opts.Getenv))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &keyHarness{ts: serveForTest(t, srv, reg, m), admin: hs.URL, ring: ring, audit: rec, logs: logs, clock: clock}
}

// adminCall calls the admin API at base with token and returns the status
// and the decoded JSON body.
func adminCall(t *testing.T, base, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	}
	return resp.StatusCode, out
}

// createKey creates a key through the admin API and returns its id and secret.
func createKey(t *testing.T, base string, spec map[string]any) (string, string) {
	t.Helper()
	status, out := adminCall(t, base, adminSecret, "POST", "/v1/admin/keys", spec)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	secret, _ := out["secret"].(string)
	require.True(t, strings.HasPrefix(secret, keys.SecretPrefix))
	return out["key"].(map[string]any)["id"].(string), secret
}

func bearer(secret string) map[string]string {
	h := map[string]string{}
	for k, v := range demoHeaders {
		h[k] = v
	}
	h["authorization"] = "Bearer " + secret
	return h
}

// chat runs a request phase with secret for model; it returns the status
// (200 when forwarded), the error code and, when forwarded, the tenant the
// request was admitted for.
func chat(t *testing.T, c extprocv3.ExternalProcessorClient, secret, model string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Process(ctx)
	require.NoError(t, err)
	defer func() { _ = st.CloseSend() }()
	var last *extprocv3.ProcessingResponse
	for _, m := range request(`{"model":"`+model+`","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, bearer(secret)) {
		require.NoError(t, st.Send(m))
		last, err = st.Recv()
		require.NoError(t, err)
		if ir := last.GetImmediateResponse(); ir != nil {
			var e openAIError
			_ = json.Unmarshal(ir.GetBody(), &e)
			return int(ir.GetStatus().GetCode()), e.Error.Code, ""
		}
	}
	tenant := last.GetDynamicMetadata().GetFields()["tollgate"].GetStructValue().GetFields()["tenant"].GetStringValue()
	return 200, "", tenant
}

// TestVirtualKeyLifecycle: a created key authenticates a chat request for
// its tenant; after rotation only the new secret works; after revocation
// the key is refused at once. Every change is audited with the key id and
// neither the audit trail nor the logs ever hold a secret.
func TestVirtualKeyLifecycle(t *testing.T) {
	h := startKeys(t, "", nil, nil)
	id, secret := createKey(t, h.admin, map[string]any{"tenant": "acme"})
	status, _, tenant := chat(t, h.ts.client, secret, "small")
	require.Equal(t, 200, status)
	assert.Equal(t, "acme", tenant)

	st, out := adminCall(t, h.admin, adminSecret, "GET", "/v1/admin/keys", nil)
	require.Equal(t, 200, st)
	data := out["data"].([]any)
	require.Len(t, data, 1)
	assert.Equal(t, "active", data[0].(map[string]any)["status"])
	raw, _ := json.Marshal(out)
	assert.NotContains(t, string(raw), secret, "a list never holds secrets")
	assert.NotContains(t, string(raw), keys.Hash(secret), "nor their hashes")

	st, out = adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys/"+id+"/rotate", nil)
	require.Equal(t, 200, st)
	rotated := out["secret"].(string)
	require.NotEqual(t, secret, rotated)
	status, code, _ := chat(t, h.ts.client, secret, "small")
	assert.Equal(t, 401, status, "the old secret stops at once")
	assert.Equal(t, "invalid_api_key", code)
	status, _, _ = chat(t, h.ts.client, rotated, "small")
	assert.Equal(t, 200, status)

	st, out = adminCall(t, h.admin, adminSecret, "DELETE", "/v1/admin/keys/"+id, nil)
	require.Equal(t, 200, st)
	assert.Equal(t, "revoked", out["status"])
	status, code, _ = chat(t, h.ts.client, rotated, "small")
	assert.Equal(t, 401, status, "revoked at once")
	assert.Equal(t, "invalid_api_key", code)
	st, _ = adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys/"+id+"/rotate", nil)
	assert.Equal(t, http.StatusConflict, st, "a revoked key cannot be rotated back")
	st, _ = adminCall(t, h.admin, adminSecret, "DELETE", "/v1/admin/keys/nope", nil)
	assert.Equal(t, http.StatusNotFound, st)

	var outcomes []string
	for _, r := range h.audit.records() {
		raw, _ := json.Marshal(r)
		assert.NotContains(t, string(raw), secret, "no secret in the audit trail")
		assert.NotContains(t, string(raw), rotated, "no secret in the audit trail")
		if strings.HasPrefix(r.Outcome, "key_") {
			assert.Equal(t, id, r.KeyID)
			assert.Equal(t, "acme", r.Tenant)
			outcomes = append(outcomes, r.Outcome)
		}
	}
	assert.Equal(t, []string{keys.OutcomeCreated, keys.OutcomeRotated, keys.OutcomeRevoked}, outcomes)
	vals := h.logs.values()
	require.NotEmpty(t, vals)
	for _, v := range vals {
		assert.NotContains(t, v, secret, "no secret in the logs")
		assert.NotContains(t, v, rotated, "no secret in the logs")
	}
}

func TestVirtualKeyExpiry(t *testing.T) {
	h := startKeys(t, "", nil, nil)
	_, secret := createKey(t, h.admin, map[string]any{"tenant": "acme", "expires_in": "1h"})
	status, _, _ := chat(t, h.ts.client, secret, "small")
	require.Equal(t, 200, status)
	h.clock.advance(time.Hour)
	status, code, _ := chat(t, h.ts.client, secret, "small")
	assert.Equal(t, 401, status)
	assert.Equal(t, "invalid_api_key", code)
	_, out := adminCall(t, h.admin, adminSecret, "GET", "/v1/admin/keys", nil)
	assert.Equal(t, "expired", out["data"].([]any)[0].(map[string]any)["status"])
}

// TestVirtualKeyModels: a key's alias list narrows what its tenant may use,
// answered like a tier's allow-list (403 model_not_allowed, also for an
// alias that does not exist); without a list, an unknown alias is 404.
func TestVirtualKeyModels(t *testing.T) {
	h := startKeys(t, "", nil, nil)
	_, limited := createKey(t, h.admin, map[string]any{"tenant": "acme", "models": []string{"small"}})
	_, open := createKey(t, h.admin, map[string]any{"tenant": "acme"})
	for _, tc := range []struct {
		secret, model string
		status        int
		code          string
	}{
		{limited, "small", 200, ""},
		{limited, "big", 403, "model_not_allowed"},
		{limited, "nope", 403, "model_not_allowed"},
		{open, "big", 200, ""},
		{open, "nope", 404, "model_not_found"},
	} {
		status, code, _ := chat(t, h.ts.client, tc.secret, tc.model)
		assert.Equal(t, tc.status, status, tc.model)
		assert.Equal(t, tc.code, code, tc.model)
	}
	st, out := adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys", map[string]any{"tenant": "acme", "models": []string{"bgi"}})
	assert.Equal(t, http.StatusBadRequest, st, "a misspelt alias is refused at creation")
	assert.Contains(t, out["error"].(map[string]any)["message"], `"bgi" is not a configured alias`)
}

// TestVirtualKeyBudget: a key over its own cap gets 429 while its tenant
// still has room (another key of the tenant is admitted).
func TestVirtualKeyBudget(t *testing.T) {
	store, err := meter.OpenFileLedger(filepath.Join(t.TempDir(), "l.jsonl"), meter.FileLedgerOptions{FlushInterval: -1})
	require.NoError(t, err)
	budgets := meter.NewBudgets(store, map[string]meter.Caps{"acme": {Daily: meter.MoneyFromUSD(100)}})
	t.Cleanup(func() { _ = budgets.Close() })
	h := startKeys(t, "", budgets, nil)
	id, capped := createKey(t, h.admin, map[string]any{"tenant": "acme", "daily_usd": 0.001})
	_, other := createKey(t, h.admin, map[string]any{"tenant": "acme"})

	// One request of the capped key, settled at $0.0012 (gpt-4o-mini:
	// 2000 output tokens at $0.60/M), spends the key's whole cap.
	out, err := exchange(t, h.ts.client, nil, append(request(`{"model":"small","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, bearer(capped)),
		responseHeaders(":status", "200", "content-type", "application/json"),
		responseBody(`{"model":"gpt-4o-mini","choices":[{"message":{"content":"yo"}}],"usage":{"prompt_tokens":0,"completion_tokens":2000}}`))...)
	require.NoError(t, err)
	require.Len(t, out, 4)
	md := out[1].GetDynamicMetadata().GetFields()[contract.MetadataNamespace].GetStructValue().GetFields()
	assert.Equal(t, KeyAccount(id), md[contract.MetadataAccount].GetStringValue(),
		"the upstream role learns the key's account, to charge it for a timed-out attempt")
	spent, err := budgets.Spent(context.Background(), KeyAccount(id))
	require.NoError(t, err)
	assert.Equal(t, meter.MoneyFromUSD(0.0012), spent.Daily, "the key's account is charged with its tenant")

	st, view := adminCall(t, h.admin, adminSecret, "GET", "/v1/admin/keys/"+id, nil)
	require.Equal(t, 200, st)
	assert.Equal(t, map[string]any{"daily_usd": 0.0012, "monthly_usd": 0.0012}, view["spent"], "the key's own spend")

	status, code, _ := chat(t, h.ts.client, capped, "small")
	assert.Equal(t, 429, status)
	assert.Equal(t, "budget_exceeded", code)
	status, _, _ = chat(t, h.ts.client, other, "small")
	assert.Equal(t, 200, status, "the tenant still has room")
}

// TestVirtualKeyRateLimit: a key's own rpm applies with its tenant's.
func TestVirtualKeyRateLimit(t *testing.T) {
	h := startKeys(t, "", nil, fixedLimiter())
	_, secret := createKey(t, h.admin, map[string]any{"tenant": "acme", "rpm": 1})
	_, other := createKey(t, h.admin, map[string]any{"tenant": "acme"})
	status, _, _ := chat(t, h.ts.client, secret, "small")
	require.Equal(t, 200, status)
	status, code, _ := chat(t, h.ts.client, secret, "small")
	assert.Equal(t, 429, status)
	assert.Equal(t, "rate_limit_exceeded", code)
	status, _, _ = chat(t, h.ts.client, other, "small")
	assert.Equal(t, 200, status, "the limit is the key's, not the tenant's")
}

func TestAdminAPIAuth(t *testing.T) {
	h := startKeys(t, "", nil, nil)
	for _, tok := range []string{"", "wrong"} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/admin/keys"}, {"POST", "/v1/admin/keys"},
			{"POST", "/v1/admin/keys/x/rotate"}, {"DELETE", "/v1/admin/keys/x"},
		} {
			st, out := adminCall(t, h.admin, tok, c.method, c.path, map[string]any{"tenant": "acme"})
			assert.Equal(t, http.StatusUnauthorized, st, "%s %s with %q", c.method, c.path, tok)
			assert.Equal(t, "invalid_admin_token", out["error"].(map[string]any)["code"])
		}
	}
	assert.Empty(t, h.ring.List(), "nothing was created")

	st, out := adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys", map[string]any{"id": "k1", "tenant": "acme"})
	assert.Equal(t, http.StatusConflict, st, "k1 is a key of tenants.keys")
	assert.Equal(t, "key_id_conflict", out["error"].(map[string]any)["code"])
	createKey(t, h.admin, map[string]any{"id": "mine", "tenant": "acme"})
	st, _ = adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys", map[string]any{"id": "mine", "tenant": "acme"})
	assert.Equal(t, http.StatusConflict, st)
	st, _ = adminCall(t, h.admin, adminSecret, "POST", "/v1/admin/keys", map[string]any{"tenant": "acme", "secret": "x"})
	assert.Equal(t, http.StatusBadRequest, st, "unknown fields are refused")
}

// TestYAMLKeyIDWins: a virtual key whose id a later config gives to a
// tenants.keys entry stops authenticating; the YAML key keeps working.
func TestYAMLKeyIDWins(t *testing.T) {
	h := startKeys(t, "", nil, nil)
	_, secret := createKey(t, h.admin, map[string]any{"id": "later", "tenant": "acme"})
	status, _, _ := chat(t, h.ts.client, secret, "small")
	require.Equal(t, 200, status)
	rt := h.ts.srv.rt.Load()
	cfg := *rt.cfg
	cfg.Tenants.Keys = append(append([]config.Key(nil), cfg.Tenants.Keys...), config.Key{ID: "later", SHA256: keys.Hash("other"), Tenant: "demo"})
	require.NoError(t, h.ts.srv.Reload(&cfg, rt.catalog))
	status, code, _ := chat(t, h.ts.client, secret, "small")
	assert.Equal(t, 401, status)
	assert.Equal(t, "invalid_api_key", code)
	status, _, tenant := chat(t, h.ts.client, "sk-tollgate-demo", "small")
	assert.Equal(t, 200, status, "YAML keys keep working")
	assert.Equal(t, "demo", tenant)
}

// BenchmarkKeyLookup: authentication of one request on the request path
// (header parse, SHA-256, the tenants.keys map, then for a virtual key the
// ring's in-memory snapshot), with 10,000 virtual keys in the ring.
func BenchmarkKeyLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys.jsonl")
	var file []byte
	var secret string
	for i := range 10000 {
		s, sum, err := keys.NewSecret()
		if err != nil {
			b.Fatal(err)
		}
		line, _ := json.Marshal(keys.Key{ID: "k" + strconv.Itoa(i), Tenant: "t", SHA256: sum})
		file = append(append(file, line...), '\n')
		secret = s
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		b.Fatal(err)
	}
	fb, err := keys.OpenFile(path, keys.FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ring, err := keys.NewRing(context.Background(), fb, keys.RingOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer ring.Close()
	cfg, err := config.Parse("t.yaml", []byte(testConfig))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		secret  string
		virtual KeyLookup
	}{
		{"yaml_key", "sk-tollgate-demo", nil},
		{"yaml_key_with_ring", "sk-tollgate-demo", ring},
		{"virtual_key", secret, ring},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tn := newTenants(cfg.Tenants)
			tn.virtual = tc.virtual
			h := headerMap{"authorization": "Bearer " + tc.secret}
			b.ReportAllocs()
			for b.Loop() {
				if id, rej := tn.resolve(h); rej != nil || id.Tenant == "" {
					b.Fatal("not resolved")
				}
			}
		})
	}
}

// TestRestartOnlyKeys: the key store and the admin token are read at start.
func TestRestartOnlyKeys(t *testing.T) {
	base, err := config.Parse("t.yaml", []byte(testConfig))
	require.NoError(t, err)
	next, err := config.Parse("t.yaml", []byte(testConfig+"keys: {enabled: true}\nadmin: {token_env: T}\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"keys", "admin"}, restartOnly(base, next))
}
