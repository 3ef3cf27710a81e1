package main

import (
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRouteFlags(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantErr bool
	}{
		{"gpt=http://127.0.0.1:1", false},
		{"gpt", true},
		{"=http://x", true},
		{"gpt=", true},
	} {
		r := routeFlags{}
		err := r.Set(tc.in)
		assert.Equal(t, tc.wantErr, err != nil, tc.in)
		if !tc.wantErr {
			assert.Equal(t, "http://127.0.0.1:1", r["gpt"])
		}
	}
}

// writeFile writes content to a temp file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

const filterYAML = `processing_mode: {request_header_mode: SKIP, request_body_mode: BUFFERED}`

func TestRunRejectsBadConfig(t *testing.T) {
	bad := writeFile(t, "filter.yaml", "no_such_field: 1")
	good := writeFile(t, "good.yaml", filterYAML)
	badCfg := writeFile(t, "tollgate.yaml", "providers: {}\nmodels: {}\n")
	for _, args := range [][]string{
		{"-filter", bad},
		{"-filter", filepath.Join(t.TempDir(), "missing.yaml")},
		{"-filter", good, "-upstream", "ftp://x"},
		{"-filter", good, "-listen", "256.0.0.1:99999"},
		{"-config", filepath.Join(t.TempDir(), "missing.yaml")},
		{"-config", badCfg},
		{"-route", "a=http://127.0.0.1:1"},
		{"-no-such-flag"},
	} {
		assert.Error(t, run(args), args)
	}
}

func TestParseArgsModes(t *testing.T) {
	t.Run("embedded default config", func(t *testing.T) {
		o, err := parseArgs(nil)
		require.NoError(t, err)
		assert.Nil(t, o.cfg.MetadataRoutes, "routes come from the translated resources")
		assert.NotNil(t, o.cfg.Filter)
		assert.Equal(t, 5<<20, o.cfg.BufferLimit, "the listener's buffer limit: max_body_bytes + 1 MiB")
		assert.Empty(t, o.cfg.Upstream)
		assert.Equal(t, "127.0.0.1:50051", o.cfg.ExtProcAddr)
		sim, err := envoysim.New(o.cfg)
		require.NoError(t, err)
		require.NoError(t, sim.Close())
	})
	t.Run("filter only: upstream mode", func(t *testing.T) {
		o, err := parseArgs([]string{"-filter", writeFile(t, "f.yaml", filterYAML), "-upstream", "http://127.0.0.1:9", "-route", "a=http://127.0.0.1:8"})
		require.NoError(t, err)
		assert.Nil(t, o.cfg.MetadataRoutes)
		assert.Nil(t, o.cfg.UpstreamFilter)
		assert.Equal(t, "http://127.0.0.1:9", o.cfg.Upstream)
		assert.Equal(t, map[string]string{"a": "http://127.0.0.1:8"}, o.cfg.Routes)
	})
	t.Run("config file, filter override", func(t *testing.T) {
		cfgFile := writeFile(t, "tollgate.yaml", `
listen: {extproc: "127.0.0.1:0", admin: "127.0.0.1:0"}
providers:
  p1: {base_url: "http://127.0.0.1:7001/v1"}
  p2: {base_url: "https://example.invalid"}
models:
  m: {targets: [{provider: p1, model: a}, {provider: p2, model: b}]}
pricing: {builtin: false, models: [{provider: p1, model: a, effective: 2024-01-01, input: 1, output: 1}, {provider: p2, model: b, effective: 2024-01-01, input: 1, output: 1}]}
`)
		o, err := parseArgs([]string{"-config", cfgFile, "-filter", writeFile(t, "f.yaml", filterYAML)})
		require.NoError(t, err)
		assert.Empty(t, o.cfg.Filter.GetResponseAttributes(), "-filter replaced the downstream filter")
		sim, err := envoysim.New(o.cfg)
		require.NoError(t, err)
		require.NoError(t, sim.Close())
	})
}
