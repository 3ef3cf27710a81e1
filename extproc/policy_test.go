package extproc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/pkg/config"
)

// TestCanaryBucketMatchesWasmRouter pins the values the wasm router's own
// test pins (wasm/router TestBucketStableAndSpread): both filters must put
// a request on the same side of a split.
func TestCanaryBucketMatchesWasmRouter(t *testing.T) {
	for k, want := range map[string]uint32{"req-1": 26, "req-2": 7, "req-3": 88, "acme": 86} {
		assert.Equal(t, want, canaryBucket("gpt-4o", k), k)
	}
}

func TestModelPolicy(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
providers:
  fake: {base_url: "http://127.0.0.1:1", catalog: openai}
models:
  small: {targets: [{provider: fake, model: gpt-4o-mini}]}
  big: {targets: [{provider: fake, model: gpt-4o}]}
tenants:
  keys:
    - {id: k1, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: demo, tier: free}
  tiers:
    free: {allowed_models: [small]}
routing:
  canaries:
    - {alias: small, canary: big, weight: 30}
`))
	require.NoError(t, err)
	p := newModelPolicy(cfg)
	assert.Nil(t, p.allow("free", "small"))
	rej := p.allow("free", "big")
	require.NotNil(t, rej)
	assert.Equal(t, 403, rej.status)
	assert.Nil(t, p.allow("gold", "big"), "a tier without an allow-list may use any alias")

	moved := 0
	for i := range 1000 {
		if a, ok := p.route("small", "req-"+itoa(i), "t"); ok {
			assert.Equal(t, "big", a)
			moved++
		}
	}
	assert.InDelta(t, 300, moved, 60, "weight 30: about 30%% of request ids")
	a, ok := p.route("big", "req-1", "t")
	assert.Equal(t, "big", a)
	assert.False(t, ok)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
