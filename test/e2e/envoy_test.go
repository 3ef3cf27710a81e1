package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/controlplane/ads"
	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// TestRealEnvoy runs every scenario of the emulator suite (the same
// `scenarios` table, the same functions) through a real Envoy configured by
// `tollgate xds`:
//
//	openai-go -> Envoy (listener, [tollgate-router wasm], ext_proc, router,
//	aggregate clusters, upstream ext_proc) -> fakeprovider
//	             ^ LDS/RDS/CDS/ECDS over ADS from controlplane/ads
//
// ENVOY_BIN is the Envoy binary (>= 1.33; docs/quickstart-envoy.md says how
// to get one); without it the test skips. ENVOY_WASM=1 also builds the
// proxy-wasm router and puts it in front of ext_proc. Run it with
// `make test-envoy ENVOY_BIN=/path/to/envoy`.
func TestRealEnvoy(t *testing.T) {
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		t.Skip("ENVOY_BIN is not set: this suite needs a real Envoy >= 1.33 (see docs/quickstart-envoy.md); run `make test-envoy ENVOY_BIN=/path/to/envoy`")
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("ENVOY_BIN=%q: %v", bin, err)
	}
	var wasmPath string
	if os.Getenv("ENVOY_WASM") != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		wasmPath = filepath.Join(t.TempDir(), "tollgate-router.wasm")
		if err := wasmhost.Build(ctx, filepath.Join("..", "..", "wasm"), wasmPath); err != nil {
			t.Fatalf("build wasm router: %v", err)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			g := StartEnvoy(t, EnvoyOptions{Bin: bin, WasmPath: wasmPath}, sc.opts)
			sc.run(t, g)
		})
	}
}

// EnvoyOptions locate the Envoy binary and the optional wasm router.
type EnvoyOptions struct {
	// Bin is the Envoy executable.
	Bin string
	// WasmPath is a compiled tollgate-router.wasm; empty leaves it out.
	WasmPath string
}

// StartEnvoy starts fakeprovider, `tollgate extproc` and `tollgate xds` in
// process, and a real Envoy bootstrapped to the xds server; the Gateway's URL
// is Envoy's listener.
func StartEnvoy(t testing.TB, e EnvoyOptions, o Options) *Gateway {
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
		o.LedgerPath = filepath.Join(t.TempDir(), "ledger.jsonl")
	}
	base := ConfigYAML("http://"+p.Addr(), "http://"+b.Addr(), o)
	cfg, err := config.Parse("e2e.yaml", []byte(base))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &Gateway{t: t, Provider: p, Backup: b, Config: cfg}
	extAddr, adminAddr, stopExtProc := runExtProc(t, cfg)
	g.AdminURL = "http://" + adminAddr

	dir := t.TempDir()
	listenerAddr := freeAddr(t)
	wasm := ""
	if e.WasmPath != "" {
		wasm = fmt.Sprintf(", wasm: {enabled: true, path: %q}", e.WasmPath)
	}
	cfgPath := filepath.Join(dir, "tollgate.yaml")
	xdsSection := fmt.Sprintf("\nxds: {listen: \"127.0.0.1:0\", listener: %q, extproc_target: %q%s}\n", listenerAddr, extAddr, wasm)
	if err := os.WriteFile(cfgPath, []byte(base+xdsSection), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv, err := ads.New(ads.Options{ConfigPath: cfgPath, Listen: lis.Addr().String()})
	if err != nil {
		cancel()
		_ = lis.Close()
		t.Fatalf("ads: %v", err)
	}
	adsDone := make(chan error, 1)
	go func() { adsDone <- srv.Serve(ctx, lis) }()

	envoy, err := startEnvoyProcess(ctx, e.Bin, dir, lis.Addr().String())
	if err != nil {
		cancel()
		if err := <-adsDone; err != nil {
			t.Logf("ads: %v", err)
		}
		stopExtProc()
		t.Fatalf("envoy: %v", err)
	}
	var once sync.Once
	g.stop = func() {
		once.Do(func() {
			envoy.stop()
			cancel()
			if err := <-adsDone; err != nil {
				t.Errorf("ads: %v", err)
			}
			stopExtProc()
		})
	}
	t.Cleanup(g.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("envoy log (%s):\n%s", envoy.logPath, tail(envoy.logPath, 60))
		}
	})
	g.URL = "http://" + listenerAddr
	if err := waitForListener(ctx, g.URL, envoy.exited, 60*time.Second); err != nil {
		t.Fatalf("envoy never served the tollgate listener: %v\nenvoy log:\n%s", err, tail(envoy.logPath, 60))
	}
	return g
}

// envoyProcess is a running Envoy.
type envoyProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	stop    func()
}

// startEnvoyProcess writes a bootstrap (translate.Bootstrap: node id and
// the ADS cluster; admin on a loopback ephemeral port) and starts Envoy on it.
func startEnvoyProcess(ctx context.Context, bin, dir, xdsAddr string) (*envoyProcess, error) {
	bp, err := translate.BootstrapProto(translate.BootstrapOptions{NodeID: "tollgate-e2e", XDSAddress: xdsAddr})
	if err != nil {
		return nil, err
	}
	bp.GetAdmin().GetAddress().GetSocketAddress().PortSpecifier = nil // port 0: ephemeral
	boot, err := translate.ToYAML(bp)
	if err != nil {
		return nil, err
	}
	bootPath := filepath.Join(dir, "envoy-bootstrap.yaml")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "envoy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin,
		"--config-path", bootPath,
		"--concurrency", "2",
		"--disable-hot-restart", // several Envoys on one host, no shared memory
		"--admin-address-path", filepath.Join(dir, "envoy-admin-address"),
		"--log-level", "info",
		"--component-log-level", "ext_proc:debug,wasm:debug",
		"--drain-time-s", "1",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	p := &envoyProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	p.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	}
	return p, nil
}

// waitForListener polls until Envoy answers HTTP on url: it binds the
// listener only after LDS, RDS, ECDS and the clusters have arrived.
func waitForListener(ctx context.Context, url string, exited <-chan struct{}, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/tollgate-e2e-readiness", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			return nil
		}
		last = err
		select {
		case <-exited:
			return errors.New("envoy exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// freeAddr reserves a loopback port for Envoy's listener (its address is in
// the pushed config, so it cannot be :0). Another process could take it
// between Close and Envoy's bind; the listener wait then fails loudly.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
