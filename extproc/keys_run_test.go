package extproc

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/redistest"
)

// runReplica runs Run on yaml (testConfig appended) and returns a client of
// its ext_proc listener and the base URL of its admin listener.
func runReplica(t *testing.T, yaml string, getenv func(string) string) (extprocv3.ExternalProcessorClient, string) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("listen: {extproc: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n"+yaml+testConfig))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	type addrs struct{ extproc, admin string }
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, RunOptions{Getenv: getenv, OnListening: func(e, a string) { ready <- addrs{e, a} }})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not start")
	}
	conn, err := grpc.NewClient(a.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn), "http://" + a.admin
}

func adminEnv(k string) string {
	if k == "TOLLGATE_ADMIN_TOKEN" {
		return adminSecret
	}
	return ""
}

// TestAdminAPIOffWithoutToken: with virtual keys on but no admin token the
// admin API is not served (404), and a token variable that is empty stops
// the start instead of leaving the API open.
func TestAdminAPIOffWithoutToken(t *testing.T) {
	dir := t.TempDir()
	ledger := "budgets: {ledger: {path: \"" + filepath.Join(dir, "l.jsonl") + "\"}}\nkeys: {enabled: true}\n"
	_, admin := runReplica(t, ledger, adminEnv)
	for _, tok := range []string{"", adminSecret} {
		st, _ := adminCall(t, admin, tok, "GET", "/v1/admin/keys", nil)
		assert.Equal(t, http.StatusNotFound, st)
	}

	ledger = "budgets: {ledger: {path: \"" + filepath.Join(t.TempDir(), "l.jsonl") + "\"}}\nkeys: {enabled: true}\n"
	cfg, err := config.Parse("t.yaml", []byte("listen: {extproc: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n"+ledger+
		"admin: {token_env: TOLLGATE_ADMIN_TOKEN}\n"+testConfig))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = Run(ctx, cfg, RunOptions{Getenv: func(string) string { return "" }})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TOLLGATE_ADMIN_TOKEN")
}

// TestVirtualKeysFileRun: through Run, a key created on the admin listener
// authenticates on the ext_proc listener, and the key file sits next to
// the ledger.
func TestVirtualKeysFileRun(t *testing.T) {
	dir := t.TempDir()
	client, admin := runReplica(t, "budgets: {ledger: {path: \""+filepath.Join(dir, "l.jsonl")+"\"}}\n"+
		"keys: {enabled: true}\nadmin: {token_env: TOLLGATE_ADMIN_TOKEN}\n", adminEnv)
	_, secret := createKey(t, admin, map[string]any{"tenant": "acme"})
	status, _, tenant := chat(t, client, secret, "small")
	require.Equal(t, 200, status)
	assert.Equal(t, "acme", tenant)
	assert.FileExists(t, filepath.Join(dir, "l.keys.jsonl"))
}

// TestVirtualKeysAcrossReplicas: two replicas on one Redis. A key created
// on one authenticates on the other within a second; revoked on the first,
// it is refused there at once and on the other within a second.
func TestVirtualKeysAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	yaml := "budgets: {ledger: {backend: redis, redis: {addr: \"" + rs.Addr + "\"}}}\nkeys: {enabled: true}\nadmin: {token_env: TOLLGATE_ADMIN_TOKEN}\n"
	a, adminA := runReplica(t, yaml, adminEnv)
	b, _ := runReplica(t, yaml, adminEnv)

	id, secret := createKey(t, adminA, map[string]any{"tenant": "acme"})
	status, _, _ := chat(t, a, secret, "small")
	require.Equal(t, 200, status, "at once where it was created")
	start := time.Now()
	require.Eventually(t, func() bool { s, _, _ := chat(t, b, secret, "small"); return s == 200 },
		time.Second, 10*time.Millisecond, "the other replica accepts it within 1s")
	t.Logf("create seen by the other replica after %v", time.Since(start))

	st, _ := adminCall(t, adminA, adminSecret, "DELETE", "/v1/admin/keys/"+id, nil)
	require.Equal(t, http.StatusOK, st)
	status, _, _ = chat(t, a, secret, "small")
	require.Equal(t, 401, status, "revoked at once where it was revoked")
	start = time.Now()
	require.Eventually(t, func() bool { s, _, _ := chat(t, b, secret, "small"); return s == 401 },
		time.Second, 10*time.Millisecond, "the other replica refuses it within 1s")
	t.Logf("revoke seen by the other replica after %v", time.Since(start))
	assert.False(t, strings.Contains(id, secret))
}
