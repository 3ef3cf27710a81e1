package extproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// TestRunReloadsConfig: a valid edit of the config file reaches new streams;
// an invalid one is rejected and the running config keeps serving.
func TestRunReloadsConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tollgate.yaml")
	base := "listen: {extproc: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\nbudgets: {ledger: {path: \"" + filepath.Join(dir, "l.jsonl") + "\"}}\n" + testConfig
	require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)

	client, reg, stop := runWatching(t, cfg, path)
	status := func() int {
		out, err := exchange(t, client, nil, request(`{"model":"added","messages":[{"role":"user","content":"x"}]}`, demoHeaders)...)
		require.NoError(t, err)
		if ir := out[len(out)-1].GetImmediateResponse(); ir != nil {
			return int(ir.GetStatus().GetCode())
		}
		return 200
	}
	require.Equal(t, 404, status())

	// An invalid edit is rejected: still 404, still serving.
	require.NoError(t, os.WriteFile(path, []byte(base+"bogus: 1\n"), 0o600))
	rejected := func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "tollgate_failures_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "layer" && l.GetValue() == "config_reload" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	deadline := time.Now().Add(5 * time.Second)
	for rejected() < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, 1.0, rejected(), "the invalid edit is counted")
	require.Equal(t, 404, status(), "and the running config keeps serving")

	added := strings.Replace(base, "models:\n", "models:\n  added:\n    targets: [{provider: fake, model: gpt-4o-mini}]\n", 1)
	require.NoError(t, os.WriteFile(path, []byte(added), 0o600))
	deadline = time.Now().Add(5 * time.Second)
	got := status()
	for got != 200 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = status()
	}
	require.Equal(t, 200, got, "the new alias is served after the reload")
	stop()
}

// runWatching starts Run on cfg, loaded from the file at path, which it
// watches for reloads. It returns a client of the ext_proc listener, the
// registry of Run's metrics, and stop, which cancels Run and requires a
// clean exit.
func runWatching(t *testing.T, cfg *config.Config, path string) (extprocv3.ExternalProcessorClient, *prometheus.Registry, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg := prometheus.NewRegistry()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, RunOptions{ConfigPath: path, Registry: reg, OnListening: func(e, _ string) { addrs <- e }})
	}()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not start")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	stop := func() {
		cancel()
		require.NoError(t, <-done)
	}
	return extprocv3.NewExternalProcessorClient(conn), reg, stop
}

// TestGracefulShutdownFinishesStreamsAndFlushesLedger: after the stop
// signal an in-flight exchange still completes, and its settlement is in
// the ledger file when Run returns.
func TestGracefulShutdownFinishesStreamsAndFlushesLedger(t *testing.T) {
	dir := t.TempDir()
	ledger := filepath.Join(dir, "l.jsonl")
	cfg, err := config.Parse("t.yaml", []byte("listen: {extproc: \"127.0.0.1:0\", admin: \"127.0.0.1:0\", shutdown_grace: 10s}\n"+
		"budgets: {ledger: {path: \""+ledger+"\"}, tenants: {demo: {daily_usd: 100}}}\n"+testConfig))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, RunOptions{OnListening: func(e, _ string) { addrs <- e }}) }()
	addr := <-addrs
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	st, err := extprocv3.NewExternalProcessorClient(conn).Process(sctx)
	require.NoError(t, err)
	send := func(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		require.NoError(t, st.Send(m))
		r, err := st.Recv()
		require.NoError(t, err)
		return r
	}
	for _, m := range request(`{"model":"small","max_tokens":10,"messages":[{"role":"user","content":"x"}]}`, demoHeaders) {
		send(m)
	}

	cancel() // SIGTERM
	select {
	case err := <-done:
		t.Fatalf("Run returned with a stream in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	send(responseHeaders(":status", "200", "content-type", "application/json"))
	r := send(responseBody(`{"choices":[{"message":{"content":"y"}}],"usage":{"prompt_tokens":100,"completion_tokens":100}}`))
	cost, _ := headerValue(r.GetResponseBody().GetResponse().GetHeaderMutation(), contract.HeaderCost)
	require.Equal(t, "0.000075", cost, "gpt-4o-mini: 100*0.15/1e6 + 100*0.60/1e6")
	require.NoError(t, st.CloseSend())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after the last stream ended")
	}
	data, err := os.ReadFile(ledger)
	require.NoError(t, err)
	require.Contains(t, string(data), "75000000", "the settlement (75,000,000 picodollars) was flushed")
}
