package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// Keys of the test tenants (the config stores their SHA-256).
const (
	KeyA = "sk-tenant-a"
	KeyB = "sk-tenant-b"
)

// BackupProviderKey is the credential the backup provider requires; the
// upstream ext_proc role injects it from E2E_BACKUP_KEY.
const BackupProviderKey = "sk-backup-provider"

func providerKeys(name string) string {
	if name == "E2E_BACKUP_KEY" {
		return BackupProviderKey
	}
	return ""
}

// Prices of the test models in USD per million tokens (pricing.models of
// the test config; the built-in catalog is off so nothing else applies).
var Prices = map[string][3]float64{ // input, output, cached input
	"small-1": {0.15, 0.60, 0.075},
	"large-1": {2.50, 10.00, 1.25},
}

// Options shape one gateway.
type Options struct {
	// Budgets caps tenant "a" (USD per day); 0 = no cap.
	DailyCapA float64
	// LedgerPath is the file ledger (default: a temp file).
	LedgerPath string
	// RedisAddr switches the ledger to Redis.
	RedisAddr string
	// Provider is an existing fake provider to share (default: a new one).
	Provider *fakeprovider.Provider
	// Backup is the second provider, the fallback target of alias
	// "fallback" (default: a new one).
	Backup *fakeprovider.Provider
	// Extra is appended to the config: top-level sections such as
	// guardrails: or cache:.
	Extra string
}

// Gateway is one running Envoy + tollgate extproc + fake provider.
type Gateway struct {
	t        testing.TB
	URL      string // Envoy listener base URL
	AdminURL string // tollgate admin base URL
	Provider *fakeprovider.Provider
	Backup   *fakeprovider.Provider
	Config   *config.Config
	Sim      *envoysim.Sim

	stop func()
}

// ConfigYAML is the tollgate.yaml of the e2e gateways.
func ConfigYAML(providerURL, backupURL string, o Options) string {
	ledger := fmt.Sprintf("backend: file\n    path: %q", o.LedgerPath)
	if o.RedisAddr != "" {
		ledger = fmt.Sprintf("backend: redis\n    redis: {addr: %q}", o.RedisAddr)
	}
	return fmt.Sprintf(`
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0", max_body_bytes: 65536, shutdown_grace: 5s}
# The shipped 200ms message_timeout is tested by envoysim's conformance
# cases; here a loaded 2-core CI machine must not turn a GC pause into a 504.
xds: {message_timeout: 5s}
providers:
  fake: {base_url: %q, api_key_env: E2E_FAKE_KEY, timeout: 10s}
  backup: {base_url: %q, api_key_env: E2E_BACKUP_KEY, timeout: 10s}
models:
  small: {targets: [{provider: fake, model: small-1}]}
  large: {targets: [{provider: fake, model: large-1}]}
  embed: {targets: [{provider: fake, model: small-1}]}
  fallback: {targets: [{provider: fake, model: large-1}, {provider: backup, model: small-1}]}
pricing:
  builtin: false
  models:
    - {provider: fake, model: small-1, effective: 2024-01-01, input: 0.15, output: 0.60, cached_input: 0.075, max_output_tokens: 16384}
    - {provider: fake, model: large-1, effective: 2024-01-01, input: 2.50, output: 10.00, cached_input: 1.25, max_output_tokens: 16384}
    - {provider: backup, model: small-1, effective: 2024-01-01, input: 0.15, output: 0.60, cached_input: 0.075, max_output_tokens: 16384}
tenants:
  keys:
    - {id: key-a, sha256: %s, tenant: a, tier: gold}
    - {id: key-b, sha256: %s, tenant: b, tier: free}
budgets:
  ledger:
    %s
  tenants:
    a: {daily_usd: %g}
%s
`, providerURL, backupURL, sha(KeyA), sha(KeyB), ledger, o.DailyCapA, o.Extra)
}

// StartEmulated starts fakeprovider, `tollgate extproc` (in process, the
// same Run as the binary) and the Envoy emulator with the shipped filter.
func StartEmulated(t testing.TB, o Options) *Gateway {
	t.Helper()
	p := o.Provider
	if p == nil {
		p = fakeprovider.New(fakeprovider.Options{})
	}
	startProvider(t, p)
	b := o.Backup
	if b == nil {
		b = fakeprovider.New(fakeprovider.Options{APIKey: BackupProviderKey})
	}
	startProvider(t, b)
	if o.LedgerPath == "" {
		o.LedgerPath = t.TempDir() + "/ledger.jsonl"
	}
	cfg, err := config.Parse("e2e.yaml", []byte(ConfigYAML("http://"+p.Addr(), "http://"+b.Addr(), o)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &Gateway{t: t, Provider: p, Backup: b, Config: cfg}
	extAddr, adminAddr, stopServer := runExtProc(t, cfg)
	g.AdminURL = "http://" + adminAddr

	// What `tollgate xds` pushes for this config: both ext_proc roles,
	// routes on the tollgate.route metadata, fallback across targets.
	sc, err := envoysim.FromTollgate(cfg, nil, nil)
	if err != nil {
		t.Fatalf("envoysim config: %v", err)
	}
	sc.ExtProcAddr = extAddr
	sim, err := envoysim.New(sc)
	if err != nil {
		t.Fatalf("envoysim: %v", err)
	}
	g.Sim = sim
	g.URL, err = sim.Start()
	if err != nil {
		t.Fatalf("envoysim start: %v", err)
	}
	g.stop = func() {
		_ = sim.Close()
		stopServer()
	}
	t.Cleanup(g.Stop)
	return g
}

// runExtProc runs extproc.Run until the returned stop is called.
func runExtProc(t testing.TB, cfg *config.Config) (extAddr, adminAddr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- extproc.Run(ctx, cfg, extproc.RunOptions{
			OnListening: func(e, a string) { ready <- [2]string{e, a} },
			Getenv:      providerKeys,
		})
	}()
	select {
	case addrs := <-ready:
		var once sync.Once
		return addrs[0], addrs[1], func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("extproc.Run: %v", err)
				}
			})
		}
	case err := <-done:
		cancel()
		t.Fatalf("extproc.Run exited early: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("extproc did not start")
	}
	return "", "", nil
}

// Stop shuts the gateway down (idempotent); the ledger is flushed.
func (g *Gateway) Stop() {
	if g.stop != nil {
		g.stop()
		g.stop = nil
	}
}

// Client is an OpenAI SDK client for the gateway with the given key.
func (g *Gateway) Client(key string, opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{
		option.WithBaseURL(g.URL + "/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithRequestTimeout(30 * time.Second),
	}
	return openai.NewClient(append(base, opts...)...)
}

// Metrics scrapes the tollgate admin endpoint.
func (g *Gateway) Metrics() map[string]*dto.MetricFamily {
	g.t.Helper()
	resp, err := http.Get(g.AdminURL + "/metrics")
	if err != nil {
		g.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		g.t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// Sum adds the values of every series of a counter/gauge (or the sample
// sums of a histogram) whose labels include want.
func (g *Gateway) Sum(name string, want map[string]string) float64 {
	fam := g.Metrics()[name]
	if fam == nil {
		return 0
	}
	var total float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

// Eventually polls a metric until cond holds (streams are metered when the
// side stream ends, which can trail the client's last read).
func (g *Gateway) Eventually(name string, want map[string]string, cond func(float64) bool) float64 {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := g.Sum(name, want)
		if cond(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Post sends a raw request (for bodies the SDK would never produce).
func (g *Gateway) Post(path, key, body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	if key != "" {
		req.Header.Set("authorization", "Bearer "+key)
	}
	return http.DefaultClient.Do(req)
}

type rawResponse struct {
	status int
	header http.Header
	body   string
}

// postWithHeaders sends a raw chat request with tenant a's key and extra headers.
func postWithHeaders(g *Gateway, body string, headers map[string]string) (rawResponse, error) {
	req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return rawResponse{}, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+KeyA)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rawResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// sseData returns the data of each event of an SSE body.
func sseData(body string) []string {
	var out []string
	for _, ev := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// startProvider starts p unless it already has an address (shared or
// deliberately stopped providers keep theirs).
func startProvider(t testing.TB, p *fakeprovider.Provider) {
	t.Helper()
	if p.Addr() != "" {
		return
	}
	if _, err := p.Start(); err != nil {
		t.Fatalf("fakeprovider: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
}
