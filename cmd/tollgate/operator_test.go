package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runArgs(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// TestCommandList: bare `tollgate` and `tollgate --help` list the commands
// instead of starting the ext_proc server or printing its flags.
func TestCommandList(t *testing.T) {
	names := []string{"extproc", "xds", "bootstrap", "validate", "render", "prompts", "audit", "eval"}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout bool // the list goes to stdout (else stderr)
	}{
		{"no command", nil, 2, false},
		{"--help", []string{"--help"}, 0, true},
		{"-h", []string{"-h"}, 0, true},
		{"help", []string{"help"}, 0, true},
		{"a flag without a command", []string{"--config", "x.yaml"}, 2, false},
		{"unknown command", []string{"serve"}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runArgs(tt.args...)
			assert.Equal(t, tt.code, code)
			list := errOut
			if tt.stdout {
				list = out
				assert.Empty(t, errOut)
			} else {
				assert.Empty(t, out)
			}
			assert.NotContains(t, list, "-extproc-addr", "extproc's flags are not the top-level help")
			last := -1
			for _, n := range names {
				i := strings.Index(list, "\n  "+n+" ")
				if assert.GreaterOrEqual(t, i, 0, "command %s listed", n) {
					assert.Greater(t, i, last, "%s in order", n)
					last = i
				}
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// TestValidateBuildsWhatStartupBuilds: configs that loaded but failed at
// startup or misbehaved are reported by `tollgate validate` with file:line.
func TestValidateBuildsWhatStartupBuilds(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "t.yaml", `providers:
  oa:
    base_url: https://api.openai.com
    api_key_env: TOLLGATE_TEST_NEVER_SET
    catalog: opneai
models:
  mini:
    targets:
      - {provider: oa, model: gpt-4o-mini}
tenants:
  allow_anonymous: false
budgets:
  ledger: {path: `+filepath.Join(dir, "missing", "ledger.jsonl")+`}
guardrails:
  input:
    enabled: true
    detectors: {piii: block}
`)
	code, out, errOut := runArgs("validate", "--config", cfg)
	assert.Equal(t, 1, code, errOut)
	assert.Empty(t, out)
	// allow_anonymous is a load error: reported first, alone.
	assert.Contains(t, errOut, cfg+":11: tenants.allow_anonymous: got the boolean false")

	data, err := os.ReadFile(cfg)
	require.NoError(t, err)
	fixed := strings.Replace(string(data), "allow_anonymous: false", "allow_anonymous: \"\"", 1)
	writeFile(t, dir, "t.yaml", fixed)
	code, _, errOut = runArgs("validate", "--config", cfg)
	assert.Equal(t, 1, code)
	for _, want := range []string{
		cfg + ":4: providers.oa.api_key_env: environment variable TOLLGATE_TEST_NEVER_SET is not set",
		cfg + `:5: providers.oa.catalog: unknown price catalog "opneai"`,
		cfg + `:9: models.mini.targets[0].model: no price for "gpt-4o-mini"`,
		cfg + ":13: budgets.ledger.path: directory " + filepath.Join(dir, "missing") + " does not exist",
		cfg + `:17: guardrails.input.detectors.piii: unknown detector or type "piii"`,
		"5 problem(s)",
	} {
		assert.Contains(t, errOut, want)
	}

	// --skip-env drops only the environment check.
	code, _, errOut = runArgs("validate", "--skip-env", "--config", cfg)
	assert.Equal(t, 1, code)
	assert.NotContains(t, errOut, "TOLLGATE_TEST_NEVER_SET")
	assert.Contains(t, errOut, "4 problem(s)")
}

// TestExtProcRefusesWhatValidateRejects: startup runs the same checks.
func TestExtProcRefusesWhatValidateRejects(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "t.yaml", `providers:
  oa: {base_url: "https://api.openai.com", catalog: opneai}
models:
  mini: {targets: [{provider: oa, model: gpt-4o-mini}]}
budgets:
  ledger: {path: `+filepath.Join(dir, "l.jsonl")+`}
`)
	code, _, errOut := runArgs("extproc", "--config", cfg, "--extproc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, cfg+`:2: providers.oa.catalog: unknown price catalog "opneai"`)
}

func TestRenderAlerts(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "t.yaml", `providers: {p: {base_url: "http://127.0.0.1:1"}}
models: {m: {targets: [{provider: p, model: x}]}}
tenants:
  keys:
    - {id: a, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: acme}
budgets:
  tenants:
    acme: {daily_usd: 12.5}
`)
	code, out, errOut := runArgs("render", "alerts", "--config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "expr: vector(12.5)\n        labels: {tenant: \"acme\", window: daily}")
	assert.Contains(t, out, "alert: TollgateBudgetNearCap")

	code, _, _ = runArgs("render")
	assert.Equal(t, 2, code)
}
