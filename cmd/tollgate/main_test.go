package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen:\n  extprc: x\nproviders:\n  p: {base_url: \"ftp://h\"}\nmodels:\n  m: {targets: [{provider: q, model: x}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"embedded default", []string{"validate"}, 0, []string{"<embedded envoy/tollgate.yaml>: ok"}},
		{"broken file", []string{"validate", "--config", bad}, 1, []string{
			bad + ":2: unknown key \"extprc\"",
			bad + ":4: providers.p.base_url: scheme must be http or https",
			bad + ":6: models.m.targets[0].provider: unknown provider \"q\"",
			"3 problem(s)",
		}},
		{"missing file", []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, 1, []string{"no such file"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{"unknown command"}},
		{"envoy file", []string{"validate", "--envoy", "../../envoy/bootstrap.yaml"}, 0, []string{"bootstrap.yaml: ok"}},
		{"broken envoy file", []string{"validate", "--envoy", bad}, 1, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			assert.Equal(t, tt.code, code, "stderr: %s", stderr.String())
			for _, o := range tt.out {
				assert.Contains(t, stdout.String()+stderr.String(), o)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestExtProcDefaultConfig: `tollgate extproc` on the embedded default
// config serves ext_proc and /metrics, and stops cleanly on cancellation
// (SIGTERM in main).
func TestExtProcDefaultConfig(t *testing.T) {
	t.Chdir(t.TempDir()) // the default ledger file is relative
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"extproc", "--extproc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`ext_proc on (\S+), admin on (http://\S+)`)
	var m []string
	deadline := time.Now().Add(20 * time.Second)
	for m == nil && time.Now().Before(deadline) {
		m = re.FindStringSubmatch(stdout.String())
		if m == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	require.NotNil(t, m, "stdout: %s stderr: %s", stdout.String(), stderr.String())

	resp, err := http.Get(m[2] + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), "tollgate_budget_spent_usd{tenant=\"demo\",window=\"daily\"}")

	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	st, err := extprocv3.NewExternalProcessorClient(conn).Process(sctx)
	require.NoError(t, err)
	require.NoError(t, st.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{}}}))
	r, err := st.Recv()
	require.NoError(t, err)
	assert.NotNil(t, r.GetResponseHeaders(), "a pass-through exchange is answered")

	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("extproc did not stop")
	}
	assert.FileExists(t, "tollgate-ledger.jsonl")
}

func TestBootstrapMatchesCheckedInFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"bootstrap"}, &stdout, &stderr), stderr.String())
	want, err := os.ReadFile("../../envoy/bootstrap.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(want), stdout.String())
}

func TestXDSServesAndStops(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tollgate.yaml")
	def, err := os.ReadFile("../../envoy/tollgate.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, def, 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"xds", "--config", cfg, "--listen", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stdout.String(), "tollgate xds: serving") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Contains(t, stdout.String(), "(version ")
	// The admin port dumps the snapshot being served.
	_, adminURL, ok := strings.Cut(strings.TrimSpace(stdout.String()), ", admin on ")
	require.True(t, ok, stdout.String())
	resp, err := http.Get(adminURL + "/config_dump")
	require.NoError(t, err)
	var dump struct {
		Version   string                       `json:"version"`
		Resources map[string][]json.RawMessage `json:"resources"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&dump))
	_ = resp.Body.Close()
	assert.Contains(t, stdout.String(), "(version "+dump.Version+")")
	assert.NotEmpty(t, dump.Resources["clusters"])
	cancel()
	select {
	case code := <-done:
		assert.Equal(t, 0, code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("xds did not stop")
	}
	// A broken config is refused with file:line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("providers: {}\nbogus: 1\n"), 0o600))
	var out, errb bytes.Buffer
	assert.Equal(t, 1, run(context.Background(), []string{"xds", "--config", bad, "--listen", "127.0.0.1:0", "--admin-addr", ""}, &out, &errb))
	assert.Contains(t, errb.String(), bad+":2: unknown key \"bogus\"")
}

func TestPromptsDiffAndAuditVerify(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"prompts", "diff", "--dir", "../../prompts", "support-answer@1", "support-answer@2"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "+Never promise refunds")
	out.Reset()
	assert.Equal(t, 1, run(context.Background(), []string{"prompts", "diff", "--dir", "../../prompts", "nope@1", "nope@2"}, &out, &errb))
	assert.Equal(t, 2, run(context.Background(), []string{"audit", "verify", "--dir", filepath.Join(t.TempDir(), "missing")}, &out, &errb))
}
