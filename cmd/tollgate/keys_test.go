package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// TestKeysCommand drives `tollgate keys` against a running extproc's admin
// API: create shows the secret once, list shows the key without it, rotate
// and revoke change it, and a wrong token fails with the API's message.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse("t.yaml", []byte(`
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0"}
providers:
  p: {base_url: "http://127.0.0.1:1", catalog: openai}
models:
  small: {targets: [{provider: p, model: gpt-4o-mini}]}
budgets: {ledger: {path: "`+filepath.Join(dir, "l.jsonl")+`"}}
keys: {enabled: true}
admin: {token_env: TEST_ADMIN_TOKEN}
`))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	admin := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- extproc.Run(ctx, cfg, extproc.RunOptions{
			Getenv:      func(k string) string { return map[string]string{"TEST_ADMIN_TOKEN": "tok"}[k] },
			OnListening: func(_, a string) { admin <- "http://" + a },
		})
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	var url string
	select {
	case url = <-admin:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not start")
	}
	t.Setenv("MY_ADMIN_TOKEN", "tok")
	keys := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"keys"}, append(args, "--admin-url", url, "--token-env", "MY_ADMIN_TOKEN")...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := keys("create", "--tenant", "acme", "--id", "ci-bot", "--models", "small", "--daily-usd", "5", "--expires-in", "720h")
	require.Equal(t, 0, code, errOut)
	secret := regexp.MustCompile(`tgk-\S+`).FindString(out)
	require.NotEmpty(t, secret, out)
	assert.Contains(t, out, "created key ci-bot for tenant acme")

	code, out, errOut = keys("list")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `ci-bot\s+acme\s+-\s+active\s+\S+\s+small\s+5\s+-`, out)
	assert.NotContains(t, out, secret)

	code, out, errOut = keys("rotate", "ci-bot")
	require.Equal(t, 0, code, errOut)
	rotated := regexp.MustCompile(`tgk-\S+`).FindString(out)
	assert.NotEqual(t, secret, rotated)

	code, out, errOut = keys("revoke", "ci-bot")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "revoked key ci-bot")
	code, out, _ = keys("list")
	require.Equal(t, 0, code)
	assert.Regexp(t, `ci-bot\s+acme\s+-\s+revoked`, out)

	code, _, errOut = keys("rotate", "ci-bot")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "key_revoked")

	t.Setenv("MY_ADMIN_TOKEN", "wrong")
	code, _, errOut = keys("list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "invalid_admin_token")

	t.Setenv("MY_ADMIN_TOKEN", "")
	code, _, errOut = keys("list")
	assert.Equal(t, 2, code)
	assert.True(t, strings.Contains(errOut, "MY_ADMIN_TOKEN is empty"), errOut)
}
