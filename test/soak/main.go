// Command soak drives unique prompts at a fixed rate through the Envoy
// emulator into `tollgate extproc` (run in this process, the same Run as the
// binary) with the response cache and guardrails on, against the fake
// provider, for a bounded duration. It samples the process's RSS and
// goroutine count at the start, every -every and at the end, and prints a
// table. Everything listens on and talks to 127.0.0.1 only; it stops by
// itself.
//
//	go run ./test/soak -duration 2m -rate 100
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

const apiKey = "sk-soak"

var (
	heapProfile   string
	exactMaxBytes int64
)

func main() {
	duration := flag.Duration("duration", 3*time.Minute, "how long to drive traffic")
	rate := flag.Int("rate", 100, "new prompts per second")
	every := flag.Duration("every", 30*time.Second, "sampling interval")
	messageTimeout := flag.Duration("message-timeout", 200*time.Millisecond, "xds.message_timeout (Envoy's wait for each ext_proc answer)")
	maxEntries := flag.Int("max-entries", 0, "cache.semantic.max_entries (0 = the shipped bound)")
	maxBytes := flag.Int64("max-bytes", 0, "cache.semantic.max_bytes (0 = the shipped bound)")
	flag.Int64Var(&exactMaxBytes, "exact-max-bytes", 0, "cache.exact.max_bytes, the response bodies' budget (0 = the shipped one)")
	concurrency := flag.Int("concurrency", 256, "most requests in flight; a tick with all busy is counted as skipped")
	flag.StringVar(&heapProfile, "heap-profile", "", "write a heap profile here at the end (after GC, before shutdown)")
	flag.Parse()
	if *rate <= 0 || *duration <= 0 || *every <= 0 || *concurrency <= 0 {
		fmt.Fprintln(os.Stderr, "soak: -rate, -duration, -every and -concurrency must be positive")
		os.Exit(2)
	}
	if err := run(*duration, *rate, *every, *messageTimeout, *maxEntries, *maxBytes, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func configYAML(providerURL, ledger string, messageTimeout time.Duration, maxEntries int, maxBytes int64) string {
	sum := sha256.Sum256([]byte(apiKey))
	return fmt.Sprintf(`
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0"}
xds: {message_timeout: %s}
providers:
  fake: {base_url: %q, timeout: 10s}
models:
  small: {targets: [{provider: fake, model: small-1}]}
pricing:
  builtin: false
  models:
    - {provider: fake, model: small-1, effective: 2024-01-01, input: 0.15, output: 0.60, max_output_tokens: 16384}
tenants:
  keys:
    - {id: soak, sha256: %s, tenant: soak}
budgets:
  ledger: {backend: file, path: %q}
  tenants:
    soak: {daily_usd: 1000000}
guardrails:
  input: {enabled: true}
  output: {enabled: true}
cache:
  enabled: true
  exact: {enabled: true, max_bytes: %d}
  semantic: {enabled: true, max_entries: %d, max_bytes: %d}
`, messageTimeout, providerURL, hex.EncodeToString(sum[:]), ledger, exactMaxBytes, maxEntries, maxBytes)
}

type sample struct {
	label      string
	at         time.Duration
	rssKB      int64
	heapMB     float64
	goroutines int
	sent, ok   int64
	failed     int64
	skipped    int64
	entries    float64
	indexMB    float64
	evictions  float64
}

func run(duration time.Duration, rate int, every, messageTimeout time.Duration, maxEntries int, maxBytes int64, concurrency int) error {
	dir, err := os.MkdirTemp("", "tollgate-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	provider := fakeprovider.New(fakeprovider.Options{NoRecording: true})
	providerURL, err := provider.Start()
	if err != nil {
		return fmt.Errorf("fake provider: %w", err)
	}
	closeProvider := sync.OnceValue(provider.Close)
	defer func() { _ = closeProvider() }()

	cfg, err := config.Parse("soak.yaml", []byte(configYAML(providerURL, filepath.Join(dir, "ledger.jsonl"), messageTimeout, maxEntries, maxBytes)))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- extproc.Run(ctx, cfg, extproc.RunOptions{
			Registry:    reg,
			Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			OnListening: func(e, _ string) { ready <- e },
			Getenv:      func(string) string { return "" },
		})
	}()
	var extAddr string
	select {
	case extAddr = <-ready:
	case err := <-done:
		return fmt.Errorf("extproc: %w", err)
	case <-time.After(30 * time.Second):
		return errors.New("extproc did not start")
	}
	stopServer := func() error {
		cancel()
		return <-done
	}

	sc, err := envoysim.FromTollgate(cfg, nil, nil)
	if err != nil {
		_ = stopServer()
		return fmt.Errorf("envoysim config: %w", err)
	}
	sc.ExtProcAddr = extAddr
	sim, err := envoysim.New(sc)
	if err != nil {
		_ = stopServer()
		return fmt.Errorf("envoysim: %w", err)
	}
	url, err := sim.Start()
	if err != nil {
		_ = stopServer()
		return fmt.Errorf("envoysim start: %w", err)
	}

	d := &driver{
		url:    url + "/v1/chat/completions",
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}},
		slots:  make(chan struct{}, concurrency),
	}
	fmt.Printf("soak: %d new prompts/s for %s (message_timeout %s, cache and guardrails on, GOMAXPROCS %d)\n",
		rate, duration, messageTimeout, runtime.GOMAXPROCS(0))
	fmt.Printf("soak: cache.semantic.max_entries %d, max_bytes %d, cache.exact.max_bytes %d (0 = shipped default)\n",
		maxEntries, maxBytes, exactMaxBytes)

	start := time.Now()
	samples := []sample{d.sample("start", 0, reg)}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sampler := time.NewTicker(every)
	defer sampler.Stop()
	end := time.After(duration)
	var n int64
loop:
	for {
		select {
		case <-tick.C:
			n++
			d.fire(n)
		case <-sampler.C:
			s := d.sample("", time.Since(start), reg)
			samples = append(samples, s)
			fmt.Fprintf(os.Stderr, "soak: %s rss %d MB, goroutines %d, index entries %.0f\n", s.at.Round(time.Second), s.rssKB/1024, s.goroutines, s.entries)
		case <-end:
			break loop
		}
	}
	d.wg.Wait()
	d.client.CloseIdleConnections()
	samples = append(samples, d.sample("end", time.Since(start), reg))
	runtime.GC()
	samples = append(samples, d.sample("end, after GC", time.Since(start), reg))
	if heapProfile != "" {
		if err := writeHeapProfile(heapProfile); err != nil {
			fmt.Fprintln(os.Stderr, "soak: heap profile:", err)
		}
	}

	simErr := sim.Close()
	runErr := stopServer()
	provErr := closeProvider()
	// With everything stopped, what is left over: goroutines still running
	// here would be leaks.
	samples = append(samples, d.sample("after shutdown", time.Since(start), nil))
	printSamples(samples)
	for why, n := range d.statuses {
		fmt.Printf("failed: %d x %s\n", n, why)
	}
	return errors.Join(simErr, runErr, provErr)
}

type driver struct {
	url    string
	client *http.Client
	slots  chan struct{}
	wg     sync.WaitGroup

	sent, ok, failed, skipped atomic.Int64

	mu       sync.Mutex
	statuses map[string]int64 // failures by status or error
}

func (d *driver) fail(why string) {
	d.failed.Add(1)
	d.mu.Lock()
	if d.statuses == nil {
		d.statuses = map[string]int64{}
	}
	d.statuses[why]++
	d.mu.Unlock()
}

// fire sends request n in the background: a prompt no earlier request
// used, so every request misses the cache and adds an entry.
func (d *driver) fire(n int64) {
	select {
	case d.slots <- struct{}{}:
	default:
		d.skipped.Add(1)
		return
	}
	d.sent.Add(1)
	d.wg.Add(1)
	go func() {
		defer func() { <-d.slots; d.wg.Done() }()
		body := `{"model":"small","temperature":0,"max_tokens":64,"messages":[{"role":"user","content":"` + prompt(n) + `"}]}`
		req, err := http.NewRequest(http.MethodPost, d.url, strings.NewReader(body))
		if err != nil {
			d.fail("build request")
			return
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set("authorization", "Bearer "+apiKey)
		resp, err := d.client.Do(req)
		if err != nil {
			d.fail("transport error")
			return
		}
		reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			d.ok.Add(1)
		} else {
			d.fail(strconv.Itoa(resp.StatusCode) + " " + errorCode(reply))
		}
	}()
}

var words = strings.Fields("budget invoice report contract server network database query index cache latency memory garden recipe travel weather history physics music poem story meeting schedule river mountain bicycle coffee library museum harbour orchard planet engine bridge tomato violin")

// prompt is a unique, chat-sized question (~200 bytes) for request n.
func prompt(n int64) string {
	var b strings.Builder
	b.WriteString("Could you compare these topics for me: ")
	x := uint64(n)*0x9E3779B97F4A7C15 + 1
	for i := 0; i < 24; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b.WriteString(words[x%uint64(len(words))])
		b.WriteByte(' ')
	}
	b.WriteString("request ")
	b.WriteString(strconv.FormatInt(n, 10))
	b.WriteByte('?')
	return b.String()
}

func (d *driver) sample(label string, at time.Duration, reg *prometheus.Registry) sample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := sample{
		label: label, at: at, rssKB: rssKB(), heapMB: float64(ms.HeapInuse) / (1 << 20), goroutines: runtime.NumGoroutine(),
		sent: d.sent.Load(), ok: d.ok.Load(), failed: d.failed.Load(), skipped: d.skipped.Load(),
	}
	if reg == nil {
		return s
	}
	s.entries = gauge(reg, "tollgate_cache_semantic_entries")
	s.indexMB = gauge(reg, "tollgate_cache_semantic_bytes") / (1 << 20)
	s.evictions = gauge(reg, "tollgate_cache_semantic_evictions_total")
	return s
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// errorCode is the OpenAI error code of a reply, or its first bytes.
func errorCode(reply []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(reply, &e) == nil && e.Error.Code != "" {
		return e.Error.Code
	}
	return string(reply[:min(len(reply), 80)])
}

// rssKB reads VmRSS from /proc/self/status (0 where there is none).
func rssKB() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// gauge sums every series of a family (counter or gauge).
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

func printSamples(samples []sample) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "at\tRSS MB\theap MB\tgoroutines\tsent\tok\tfailed\tskipped\tindex entries\tindex MB (approx)\tevictions\t")
	for _, s := range samples {
		at := s.at.Round(time.Second).String()
		if s.label != "" {
			at = s.label + " " + at
		}
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.0f\t\n",
			at, float64(s.rssKB)/1024, s.heapMB, s.goroutines, s.sent, s.ok, s.failed, s.skipped, s.entries, s.indexMB, s.evictions)
	}
	w.Flush()
}
