package preflight_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
)

// base is a config that passes every check once LEDGER is replaced.
const base = `providers:
  oa:
    base_url: https://api.openai.com
    catalog: openai
models:
  mini:
    targets:
      - {provider: oa, model: gpt-4o-mini}
budgets:
  ledger: {path: LEDGER}
`

func parse(t *testing.T, y string) *config.Config {
	t.Helper()
	y = strings.ReplaceAll(y, "LEDGER", filepath.Join(t.TempDir(), "ledger.jsonl"))
	c, err := config.Parse("c.yaml", []byte(y))
	require.NoError(t, err)
	return c
}

func noEnv(string) string { return "" }

func TestBasePasses(t *testing.T) {
	b, warns, err := preflight.Check(parse(t, base), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)
	assert.Empty(t, warns)
	require.NotNil(t, b.Catalog)
	assert.Nil(t, b.InGuard)
}

func TestDefaultConfigPasses(t *testing.T) {
	c, err := config.Default()
	require.NoError(t, err)
	_, _, err = preflight.Check(c, preflight.Options{Getenv: noEnv})
	assert.NoError(t, err)
}

// Each case loads with config.Load and used to start (or be reported ok by
// `tollgate validate`) while failing at startup or misbehaving.
func TestTraps(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown detector", base + "guardrails:\n  input:\n    enabled: true\n    detectors: {piii: block}\n",
			[]string{`c.yaml:14: guardrails.input.detectors.piii: unknown detector or type "piii"; known:`}},
		{"ledger directory missing", strings.Replace(base, "LEDGER", "/nonexistent-tollgate/ledger.jsonl", 1),
			[]string{"c.yaml:10: budgets.ledger.path: directory /nonexistent-tollgate does not exist"}},
		{"misspelt catalog", strings.Replace(base, "catalog: openai", "catalog: opneai", 1),
			[]string{`c.yaml:4: providers.oa.catalog: unknown price catalog "opneai"`, `did you mean "openai"?`,
				`c.yaml:8: models.mini.targets[0].model: no price for "gpt-4o-mini" in catalog "opneai"`}},
		{"unpriced target", strings.Replace(base, "gpt-4o-mini", "my-finetune", 1),
			[]string{`c.yaml:8: models.mini.targets[0].model: no price for "my-finetune"`, "pricing.allow_unpriced"}},
		{"api_key_env unset", strings.Replace(base, "catalog: openai", "catalog: openai\n    api_key_env: TOLLGATE_TEST_UNSET", 1),
			[]string{"c.yaml:5: providers.oa.api_key_env: environment variable TOLLGATE_TEST_UNSET is not set"}},
		{"extproc target port", base + "xds:\n  extproc_target: tollgate:500510\n",
			[]string{`c.yaml:12: xds.extproc_target: port must be a number from 1 to 65535, got "500510"`}},
		{"prompts dir missing", base + "prompts:\n  dir: /nonexistent-tollgate-prompts\n",
			[]string{"c.yaml:12: prompts.dir:"}},
		{"key file directory missing", base + "keys:\n  enabled: true\n  path: /nonexistent-tollgate/keys.jsonl\n",
			[]string{"keys.path: directory /nonexistent-tollgate does not exist"}},
		{"admin token_env unset", base + "keys: {enabled: true}\nadmin:\n  token_env: TOLLGATE_TEST_UNSET\n",
			[]string{"admin.token_env: environment variable TOLLGATE_TEST_UNSET is not set"}},
		{"unix socket directory missing", "listen:\n  extproc: unix:/nonexistent-tollgate/x.sock\n" + base,
			[]string{"c.yaml:2: listen.extproc: directory /nonexistent-tollgate does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _, err := preflight.Check(parse(t, tt.yaml), preflight.Options{Getenv: noEnv})
			require.Error(t, err)
			assert.Nil(t, b)
			assert.True(t, errors.Is(err, config.ErrInvalid))
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	y := strings.Replace(base, "catalog: openai", "catalog: opneai\n    api_key_env: TOLLGATE_TEST_UNSET", 1) +
		"guardrails:\n  output:\n    enabled: true\n    detectors: {piii: block}\n"
	_, _, err := preflight.Check(parse(t, y), preflight.Options{Getenv: noEnv})
	var ps config.Problems
	require.True(t, errors.As(err, &ps))
	assert.Len(t, ps, 4, err.Error()) // catalog, price, detector, env
	for _, p := range ps {
		assert.NotZero(t, p.Line, p.String())
		assert.Equal(t, "c.yaml", p.File)
	}
}

func TestAllowUnpricedIsAWarning(t *testing.T) {
	y := strings.Replace(base, "gpt-4o-mini", "my-finetune", 1) + "pricing:\n  allow_unpriced: true\n"
	b, warns, err := preflight.Check(parse(t, y), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Len(t, warns, 1)
	assert.Equal(t, "models.mini.targets[0].model", warns[0].Path)
}

func TestPricingModelsPriceATarget(t *testing.T) {
	y := strings.Replace(base, "gpt-4o-mini", "my-finetune", 1) +
		"pricing:\n  models:\n    - {provider: oa, model: my-finetune, effective: 2024-01-01, input: 1, output: 2}\n"
	_, _, err := preflight.Check(parse(t, y), preflight.Options{Getenv: noEnv})
	assert.NoError(t, err)
}

func TestEnvPolicy(t *testing.T) {
	y := strings.Replace(base, "catalog: openai", "catalog: openai\n    api_key_env: OA_KEY", 1)
	c := parse(t, y)

	_, warns, err := preflight.Check(c, preflight.Options{Getenv: noEnv, Env: preflight.EnvWarn})
	require.NoError(t, err, "startup: an unset key is a warning")
	require.Len(t, warns, 1)
	assert.Equal(t, "providers.oa.api_key_env", warns[0].Path)

	_, warns, err = preflight.Check(c, preflight.Options{Getenv: noEnv, Env: preflight.EnvSkip})
	require.NoError(t, err)
	assert.Empty(t, warns)

	set := func(k string) string {
		if k == "OA_KEY" {
			return "sk-x"
		}
		return ""
	}
	_, warns, err = preflight.Check(c, preflight.Options{Getenv: set})
	require.NoError(t, err)
	assert.Empty(t, warns)
}

func TestCacheMaxTemperatureAsWritten(t *testing.T) {
	b, _, err := preflight.Check(parse(t, base+"cache:\n  enabled: true\n  max_temperature: 0\n"), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)
	assert.Zero(t, b.Cache.MaxTemperature, "0 caches only temperature-0 requests, not the default 1.0")

	b, _, err = preflight.Check(parse(t, base+"cache:\n  enabled: true\n"), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)
	assert.Equal(t, config.DefaultMaxTemperature, b.Cache.MaxTemperature)
}

func TestGuardBuilt(t *testing.T) {
	b, _, err := preflight.Check(parse(t, base+"guardrails:\n  input:\n    enabled: true\n    detectors: {EMAIL: redact}\n"), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)
	require.NotNil(t, b.InGuard)
	assert.Len(t, b.InGuard.Scan("write to bob@example.com"), 1)
}

func TestDerivedExtProcTargetIsAWarning(t *testing.T) {
	c := parse(t, "listen:\n  extproc: \":50051\"\n"+base)
	_, warns, err := preflight.Check(c, preflight.Options{Getenv: noEnv})
	require.NoError(t, err, "the server listens on all interfaces; only tollgate xds needs a host")
	require.Len(t, warns, 1)
	assert.Contains(t, warns[0].String(), "c.yaml:2: listen.extproc: tollgate xds would point Envoy at \":50051\"")
}

func TestUnpricedWithoutCatalogSaysSo(t *testing.T) {
	y := strings.Replace(base, "    catalog: openai\n", "", 1)
	_, _, err := preflight.Check(parse(t, y), preflight.Options{Getenv: noEnv})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `c.yaml:7: models.mini.targets[0].model: no price for "gpt-4o-mini" in pricing.models, and providers.oa names no catalog (anthropic, `)
}

// TestExternalGuardBuilt: the external detector gets its key from the
// environment and a timeout derived from xds.message_timeout unless it
// sets its own.
func TestExternalGuardBuilt(t *testing.T) {
	c := parse(t, base+"guardrails:\n  input:\n    enabled: true\n    detectors: {external: block}\n    external: {url: \"http://127.0.0.1:1/v1/moderations\", api_key_env: MOD_KEY}\nxds: {message_timeout: 500ms}\n")
	b, _, err := preflight.Check(c, preflight.Options{Getenv: func(k string) string { return map[string]string{"MOD_KEY": "sk-mod"}[k] }})
	require.NoError(t, err)
	require.True(t, b.InGuard.HasExternal())
	_, warns, err := preflight.Check(c, preflight.Options{Getenv: noEnv, Env: preflight.EnvWarn})
	require.NoError(t, err)
	require.Len(t, warns, 1)
	assert.Contains(t, warns[0].String(), "guardrails.input.external.api_key_env: environment variable MOD_KEY is not set")
}

// TestEvalAutoSetsAreChecked: a set with a judge-only case, a baseline of
// another set and a missing file are reported by tollgate validate.
func TestEvalAutoSetsAreChecked(t *testing.T) {
	ok := base + `tenants:
  keys:
    - {id: ops, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: ops}
eval:
  auto:
    tenant: ops
    aliases:
      mini: {set: ../../../evals/smoke.yaml, baseline: ../../../evals/baselines/smoke.fake.json}
`
	_, _, err := preflight.Check(parse(t, ok), preflight.Options{Getenv: noEnv})
	require.NoError(t, err)

	dir := t.TempDir()
	judged := filepath.Join(dir, "judged.yaml")
	require.NoError(t, os.WriteFile(judged, []byte("name: judged\ncases:\n  - {id: a, prompt: hi, expected: hello}\n"), 0o600))
	bad := strings.Replace(ok, "../../../evals/smoke.yaml", judged, 1)
	_, _, err = preflight.Check(parse(t, bad), preflight.Options{Getenv: noEnv})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `eval.auto.aliases.mini: `+judged+`: case "a" has no checks`)
	assert.Contains(t, err.Error(), `is for set "smoke", not "judged"`)

	missing := strings.Replace(ok, "../../../evals/smoke.yaml", filepath.Join(dir, "nope.yaml"), 1)
	_, _, err = preflight.Check(parse(t, missing), preflight.Options{Getenv: noEnv})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nope.yaml")
}
