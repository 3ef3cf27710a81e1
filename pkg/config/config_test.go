package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfigIsValid(t *testing.T) {
	c, err := Default()
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:50051", c.Listen.ExtProc)
	assert.Equal(t, Closed, c.FailureMode.ExtProc)
	assert.Equal(t, []string{"user", "tool"}, c.Guardrails.Input.Roles)
	assert.Contains(t, c.Models, "gpt-4o-mini")
	assert.Equal(t, []string{"demo"}, c.TenantIDs())
}

func TestVerifierDefaultFollowsEmbedder(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal))
	require.NoError(t, err)
	require.NotNil(t, c.Cache.Semantic.Verifier)
	assert.True(t, *c.Cache.Semantic.Verifier, "builtin embedder: verifier on")

	c, err = Parse("c.yaml", []byte(minimal+"cache:\n  semantic:\n    embedder: {kind: openai, url: \"http://e\"}\n"))
	require.NoError(t, err)
	require.NotNil(t, c.Cache.Semantic.Verifier)
	assert.False(t, *c.Cache.Semantic.Verifier, "openai embedder: verifier off")
}

const minimal = `
providers:
  p: {base_url: "http://127.0.0.1:1"}
models:
  m:
    targets: [{provider: p, model: x}]
`

func TestProblemsHaveFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error text
	}{
		{"unknown top-level key", minimal + "bogus: 1\n", []string{"c.yaml:7: unknown key \"bogus\""}},
		{"unknown nested key", "listen:\n  extprc: x\n" + minimal, []string{"c.yaml:2: unknown key \"extprc\""}},
		{"wrong type", "listen:\n  max_body_bytes: lots\n" + minimal, []string{"c.yaml:2:", "lots"}},
		{"unknown provider and bad action", `
providers:
  p: {base_url: "ftp://x"}
models:
  m:
    targets:
      - {provider: q, model: x}
guardrails:
  input:
    detectors: {EMAIL: shred}
`, []string{
			"c.yaml:3: providers.p.base_url: scheme must be http or https",
			"c.yaml:7: models.m.targets[0].provider: unknown provider \"q\"",
			"c.yaml:10: guardrails.input.detectors.EMAIL: action must be block, redact or log",
		}},
		{"bad key hash", minimal + "tenants:\n  keys:\n    - {id: a, sha256: nothex, tenant: t}\n", []string{"c.yaml:9: tenants.keys[0].sha256: must be 64 hex"}},
		{"budget for unknown tenant", minimal + "budgets:\n  tenants:\n    ghost: {daily_usd: 1}\n", []string{"c.yaml:9: budgets.tenants.ghost"}},
		{"not yaml", "a: [1, 2\n", []string{"c.yaml"}},
		{"verifier with openai embedder", minimal + "cache:\n  semantic:\n    verifier: true\n    embedder: {kind: openai, url: \"http://e\"}\n",
			[]string{"cache.semantic.verifier: needs the builtin embedder"}},
		{"bad tenant id", minimal + "tenants:\n  keys:\n    - {id: a, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: \"t{x}\"}\n", []string{"c.yaml:9: tenants.keys[0].tenant: must match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid), "errors.Is ErrInvalid")
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEveryProblemReported(t *testing.T) {
	_, err := Parse("c.yaml", []byte(`
providers:
  p: {base_url: ""}
models:
  m: {targets: []}
failure_mode: {cache: sometimes}
`))
	require.Error(t, err)
	var ps Problems
	require.True(t, errors.As(err, &ps))
	assert.Len(t, ps, 3, err.Error())
	for _, p := range ps {
		assert.NotZero(t, p.Line, p.String())
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	c, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, c.Source)
	assert.Equal(t, "file", c.Budgets.Ledger.Backend)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	assert.False(t, strings.Contains(err.Error(), "unknown key"))
}

func TestLedgerRedisAndSync(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.Equal(t, LedgerSyncInterval, c.Budgets.Ledger.Sync)
	assert.Equal(t, DefaultHoldTTL, c.Budgets.Ledger.Redis.HoldTTL)
	assert.Zero(t, c.Budgets.Ledger.Redis.Timeout, "derived from the message timeout by the caller")

	c, err = Parse("c.yaml", []byte(minimal+`budgets:
  ledger:
    backend: redis
    sync: always
    redis: {addr: "127.0.0.1:6379", timeout: 50ms, hold_ttl: 2m}
`))
	require.NoError(t, err)
	l := c.Budgets.Ledger
	assert.Equal(t, "127.0.0.1:6379", l.Redis.Addr)
	assert.Equal(t, "tollgate:", l.Redis.Prefix)
	assert.Equal(t, 50*time.Millisecond, l.Redis.Timeout)
	assert.Equal(t, 2*time.Minute, l.Redis.HoldTTL)
	assert.Equal(t, LedgerSyncAlways, l.Sync)

	_, err = Parse("c.yaml", []byte(minimal+"budgets:\n  ledger:\n    sync: sometimes\n    redis: {timeout: -1s, hold_ttl: -1s}\n"))
	require.Error(t, err)
	for _, want := range []string{"budgets.ledger.sync", "budgets.ledger.redis.timeout", "budgets.ledger.redis.hold_ttl"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestCacheBoundsAndTimeouts(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+`cache:
  redis: {addr: "127.0.0.1:6379", timeout: 30ms}
  semantic:
    max_entries_per_partition: 5000
    max_entries: 20000
    max_bytes: 33554432
    embedder: {timeout: 90ms}
`))
	require.NoError(t, err)
	assert.Equal(t, 5000, c.Cache.Semantic.MaxEntriesPerPartition)
	assert.Equal(t, 20000, c.Cache.Semantic.MaxEntries)
	assert.Equal(t, int64(32<<20), c.Cache.Semantic.MaxBytes)
	assert.Equal(t, 30*time.Millisecond, c.Cache.Redis.Timeout)
	assert.Equal(t, "127.0.0.1:6379", c.Cache.Redis.Addr)
	assert.Equal(t, 90*time.Millisecond, c.Cache.Semantic.Embedder.Timeout)

	_, err = Parse("c.yaml", []byte(minimal+`xds: {message_timeout: 100ms}
cache:
  redis: {timeout: 100ms}
  semantic:
    max_entries: -1
    max_bytes: -1
    max_entries_per_partition: -1
    embedder: {timeout: 2s}
`))
	require.Error(t, err)
	for _, want := range []string{"cache.redis.timeout", "cache.semantic.embedder.timeout", "below xds.message_timeout",
		"cache.semantic.max_entries", "cache.semantic.max_bytes", "cache.semantic.max_entries_per_partition"} {
		assert.Contains(t, err.Error(), want)
	}
}
