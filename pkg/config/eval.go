package config

import (
	"fmt"
	"time"
)

// Defaults of the eval: section.
const (
	// DefaultEvalMinInterval is eval.auto.min_interval when absent.
	DefaultEvalMinInterval = time.Hour
	// DefaultEvalTimeout is eval.auto.timeout when absent.
	DefaultEvalTimeout = 60 * time.Second
	// DefaultPromptsPollInterval is prompts.poll_interval when absent.
	DefaultPromptsPollInterval = 5 * time.Second
)

// Eval configures evaluations Tollgate runs itself.
type Eval struct {
	// Auto runs an alias's golden set in the background when the model
	// behind it changes or the prompt registry changes. Off unless at least
	// one alias is listed.
	Auto EvalAuto `yaml:"auto"`
}

// EvalAuto is eval.auto. Runs are sent straight to the alias's first target
// (never through the request path), one run at a time, and every reply's
// usage is priced with the catalog and charged to Tenant's budget.
type EvalAuto struct {
	// Tenant is the operator tenant whose budget pays for the runs
	// (required when Aliases is set).
	Tenant string `yaml:"tenant"`
	// MinInterval is the shortest time between two runs of one alias's set;
	// a trigger within it is dropped (default 1h).
	MinInterval time.Duration `yaml:"min_interval"`
	// Timeout bounds each eval request (default 60s).
	Timeout time.Duration `yaml:"timeout"`
	// Threshold is the largest tolerated drop of the mean score against
	// the baseline (default that of tollgate eval, 0.05).
	Threshold float64 `yaml:"threshold"`
	// Aliases maps a model alias to its golden set. A change of the prompt
	// registry (prompts.dir) triggers a run of every alias listed here.
	Aliases map[string]EvalAlias `yaml:"aliases"`
}

// EvalAlias is the golden set of one alias.
type EvalAlias struct {
	// Set is the golden set file (as for tollgate eval --set). Cases must
	// have deterministic checks: automatic runs use no judge.
	Set string `yaml:"set"`
	// Baseline is the committed report the run is compared with; empty
	// means every case must pass.
	Baseline string `yaml:"baseline"`
}

// Enabled reports whether any alias has an automatic eval.
func (a EvalAuto) Enabled() bool { return len(a.Aliases) > 0 }

func applyEvalDefaults(c *Config) {
	a := &c.Eval.Auto
	if a.MinInterval == 0 {
		a.MinInterval = DefaultEvalMinInterval
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultEvalTimeout
	}
	if c.Prompts.PollInterval == 0 {
		c.Prompts.PollInterval = DefaultPromptsPollInterval
	}
}

func (v *validator) eval(c *Config) {
	a := c.Eval.Auto
	const p = "eval.auto"
	if a.MinInterval < 0 {
		v.add(p+".min_interval", "must be positive")
	}
	if a.Timeout < 0 {
		v.add(p+".timeout", "must be positive")
	}
	if c.Prompts.PollInterval < 0 {
		v.add("prompts.poll_interval", "must be positive")
	}
	if a.Threshold < 0 || a.Threshold > 1 {
		v.add(p+".threshold", "must be within [0,1]")
	}
	if !a.Enabled() {
		return
	}
	if a.Tenant == "" {
		v.add(p+".tenant", "required: the operator tenant whose budget pays for automatic evals")
	} else if !c.tenantIDs()[a.Tenant] {
		v.add(p+".tenant", "tenant %q has no API key and is not the anonymous tenant", a.Tenant)
	}
	for _, alias := range sortedKeys(a.Aliases) {
		path := fmt.Sprintf("%s.aliases.%s", p, alias)
		m, ok := c.Models[alias]
		if !ok {
			v.add(path, "unknown model alias %q", alias)
		} else if len(m.Targets) == 0 {
			v.add(path, "alias %q has no targets", alias)
		} else if c.Providers[m.Targets[0].Provider].Azure() {
			// Runs call the first target straight, with OpenAI's paths
			// and bearer key.
			v.add(path, "alias %q: automatic evals do not support a first target of kind: azure (%s) yet", alias, m.Targets[0].Provider)
		}
		if a.Aliases[alias].Set == "" {
			v.add(path+".set", "required")
		}
	}
}
