package config

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const evalTenants = `
tenants:
  keys:
    - {id: ops, sha256: 179510ee3e248a7bfae1a518d344461ddef0e32bbf53b40845f2d3e157c5973f, tenant: ops}
`

func TestEvalAutoOffByDefault(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal))
	require.NoError(t, err)
	assert.False(t, c.Eval.Auto.Enabled())
	assert.Equal(t, DefaultEvalMinInterval, c.Eval.Auto.MinInterval)
	assert.Equal(t, DefaultPromptsPollInterval, c.Prompts.PollInterval)

	c, err = Parse("c.yaml", []byte(minimal+evalTenants+"eval:\n  auto:\n    tenant: ops\n    min_interval: 10m\n    aliases:\n      m: {set: evals/smoke.yaml}\n"))
	require.NoError(t, err)
	assert.True(t, c.Eval.Auto.Enabled())
	assert.Equal(t, 10*time.Minute, c.Eval.Auto.MinInterval)
	assert.Equal(t, EvalAlias{Set: "evals/smoke.yaml"}, c.Eval.Auto.Aliases["m"])
}

func TestEvalAutoProblems(t *testing.T) {
	tests := []struct {
		name string
		eval string
		want []string
	}{
		{"no tenant", "eval:\n  auto:\n    aliases:\n      m: {set: s.yaml}\n", []string{"eval.auto.tenant: required"}},
		{"unknown tenant", "eval:\n  auto:\n    tenant: ghost\n    aliases:\n      m: {set: s.yaml}\n", []string{`eval.auto.tenant: tenant "ghost"`}},
		{"unknown alias, no set", "eval:\n  auto:\n    tenant: ops\n    aliases:\n      nope: {baseline: b.json}\n", []string{
			`eval.auto.aliases.nope: unknown model alias "nope"`, "eval.auto.aliases.nope.set: required",
		}},
		{"bad numbers", "eval:\n  auto:\n    min_interval: -1s\n    threshold: 2\n", []string{
			"eval.auto.min_interval: must be positive", "eval.auto.threshold: must be within [0,1]",
		}},
		{"bad poll interval", "prompts: {dir: p, poll_interval: -5s}\n", []string{"prompts.poll_interval: must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(minimal+evalTenants+tt.eval))
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid))
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
