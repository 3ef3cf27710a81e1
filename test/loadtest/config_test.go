package main

import (
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func TestTollgateConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"shipped default", string(envoy.DefaultConfig)},
		{"minimal", "budgets:\n  ledger:\n    path: x.jsonl\n  tenants:\n    demo: {daily_usd: 5}\nlisten: {extproc: 1.2.3.4:5}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tollgateConfig([]byte(tt.in), "/tmp/lt", false)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, yaml.Unmarshal(out, &got))
			var want map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(tt.in), &want))
			budgets := got["budgets"].(map[string]any)
			assert.Equal(t, "/tmp/lt/ledger.jsonl", budgets["ledger"].(map[string]any)["path"])
			assert.Empty(t, budgets["tenants"])
			assert.Equal(t, want["listen"], got["listen"], "other sections untouched")
			cfg, err := config.Parse("loadtest.yaml", out)
			if tt.name == "shipped default" {
				require.NoError(t, err)
				assert.False(t, cfg.Guardrails.Input.Enabled || cfg.Guardrails.Output.Enabled || cfg.Cache.Enabled, "layers off")
				assert.Empty(t, cfg.Prompts.Dir, "no registry: the load test runs in a temp dir")
				assert.Empty(t, cfg.Audit.Dir)
			}
		})
	}
	_, err := tollgateConfig([]byte("- a list"), "/tmp", false)
	assert.Error(t, err)

	// Every layer on: the shipped layers stay, the audit trail moves into
	// the run's directory, the prompt registry (relative to the repo) goes.
	out, err := tollgateConfig(envoy.DefaultConfig, "/tmp/lt", true)
	require.NoError(t, err)
	cfg, err := config.Parse("loadtest.yaml", out)
	require.NoError(t, err)
	assert.True(t, cfg.Guardrails.Input.Enabled && cfg.Guardrails.Output.Enabled && cfg.Cache.Enabled)
	assert.True(t, cfg.Cache.Semantic.Enabled)
	assert.Equal(t, "/tmp/lt/audit", cfg.Audit.Dir)
	assert.Empty(t, cfg.Prompts.Dir)
	assert.Empty(t, cfg.Budgets.Tenants)
}

func TestFilters(t *testing.T) {
	naive := naiveFilter()
	pm := naive.GetProcessingMode()
	assert.Equal(t, extprocfilterv3.ProcessingMode_SEND, pm.GetRequestHeaderMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, pm.GetRequestBodyMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_SEND, pm.GetResponseHeaderMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, pm.GetResponseBodyMode())
	assert.Empty(t, naive.GetRequestAttributes())

	cfgBytes, err := tollgateConfig(envoy.DefaultConfig, t.TempDir(), false)
	require.NoError(t, err)
	cfg, err := config.Parse("loadtest.yaml", cfgBytes)
	require.NoError(t, err)
	shipped := shippedFilter(cfg)
	pm = shipped.GetProcessingMode()
	assert.Equal(t, extprocfilterv3.ProcessingMode_SEND, pm.GetRequestHeaderMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, pm.GetRequestBodyMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_SEND, pm.GetResponseHeaderMode())
	assert.Equal(t, extprocfilterv3.ProcessingMode_BUFFERED, pm.GetResponseBodyMode())
	assert.True(t, shipped.GetAllowModeOverride())
	assert.Empty(t, shipped.GetRequestAttributes(), "headers arrive in the request_headers message")
	for _, f := range []*extprocfilterv3.ExternalProcessor{naive, shipped} {
		assert.Equal(t, loadMessageTimeout, f.GetMessageTimeout().AsDuration())
	}
}
