package guard

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Action is what the guard does with a finding.
type Action uint8

// Actions. The zero Action is invalid so that a missing value is caught.
const (
	ActionLog    Action = iota + 1 // report the finding, pass the text unchanged
	ActionRedact                   // replace the span by a typed placeholder
	ActionBlock                    // reject the whole text
)

func (a Action) String() string {
	switch a {
	case ActionLog:
		return "log"
	case ActionRedact:
		return "redact"
	case ActionBlock:
		return "block"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction parses "log", "redact" or "block".
func ParseAction(s string) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "log":
		return ActionLog, nil
	case "redact":
		return ActionRedact, nil
	case "block":
		return ActionBlock, nil
	}
	return 0, fmt.Errorf("%w: %q (want log, redact or block)", ErrInvalidConfig, s)
}

// Detector names, usable as keys of Config.Rules.
const (
	DetectorPII       = "pii"
	DetectorSecrets   = "secrets"
	DetectorInjection = "injection"
	DetectorExternal  = "external"
)

// Finding types reported by the built-in detectors, usable as keys of
// Config.Rules. Secret rules report more specific types (see DetectorTypes).
const (
	TypeEmail           = "EMAIL"
	TypePhone           = "PHONE"
	TypeCreditCard      = "CREDIT_CARD"
	TypeSSN             = "US_SSN"
	TypeIBAN            = "IBAN"
	TypeIPAddress       = "IP_ADDRESS"
	TypePromptInjection = "PROMPT_INJECTION"
	TypeHiddenText      = "HIDDEN_TEXT"
)

// ErrInvalidConfig is wrapped by every configuration error from New.
var ErrInvalidConfig = errors.New("guard: invalid config")

// Config configures one Guard (one direction).
type Config struct {
	// Rules maps a finding type (e.g. "EMAIL", "AWS_ACCESS_KEY") or a
	// detector name ("pii", "secrets", "injection") to an action. A type
	// entry wins over its detector's entry. A detector runs only when its
	// name or one of its types has an entry; findings whose type resolves
	// to no entry are dropped (not run, not logged).
	Rules map[string]Action
	// InjectionThreshold is the score in (0,1] at or above which text is
	// reported as PROMPT_INJECTION. 0 means the threshold shipped with the
	// embedded model (DefaultInjectionThreshold).
	InjectionThreshold float64
	// StreamWindow is how many bytes a Stream holds back at least; 0 means
	// DefaultStreamWindow. Tokens without white space are never split,
	// whatever the window.
	StreamWindow int
	// Roles lists the chat message roles an input guard inspects
	// (InspectsRole); nil means user and tool.
	Roles []string
	// External configures the optional external classifier; nil = off.
	External *ExternalConfig
}

// ExternalConfig configures an OpenAI-compatible moderation endpoint
// (POST {URL} with {"model","input"}, reading results[0].flagged and
// category_scores).
type ExternalConfig struct {
	URL       string        // full endpoint URL, e.g. https://api.openai.com/v1/moderations
	APIKey    string        // sent as "Authorization: Bearer"; empty = none
	Model     string        // e.g. "omni-moderation-latest"; empty = omitted
	Timeout   time.Duration // per call deadline; 0 = 2s
	Threshold float64       // category score that counts as a finding when the endpoint does not flag; 0 = only flagged results
	Client    *http.Client  // nil = a client with Timeout
}

// DefaultStreamWindow is the default hold-back window of a Stream in bytes.
const DefaultStreamWindow = 64

// DefaultConfig is a reasonable input-direction configuration: PII
// redacted, secrets redacted, prompt injection blocked.
func DefaultConfig() Config {
	return Config{Rules: map[string]Action{
		DetectorPII:       ActionRedact,
		DetectorSecrets:   ActionRedact,
		DetectorInjection: ActionBlock,
	}}
}

func (c *Config) validate(known map[string]bool) error {
	var errs []error
	for k, a := range c.Rules {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%w: unknown detector or type %q", ErrInvalidConfig, k))
		}
		if a < ActionLog || a > ActionBlock {
			errs = append(errs, fmt.Errorf("%w: rule %q has invalid action %d", ErrInvalidConfig, k, a))
		}
		if a == ActionRedact && (k == DetectorInjection || k == TypePromptInjection || k == DetectorExternal) {
			errs = append(errs, fmt.Errorf("%w: rule %q: redact is not supported for whole-text findings", ErrInvalidConfig, k))
		}
	}
	if c.InjectionThreshold < 0 || c.InjectionThreshold > 1 {
		errs = append(errs, fmt.Errorf("%w: injection threshold %v outside [0,1]", ErrInvalidConfig, c.InjectionThreshold))
	}
	if c.StreamWindow < 0 {
		errs = append(errs, fmt.Errorf("%w: negative stream window %d", ErrInvalidConfig, c.StreamWindow))
	}
	if e := c.External; e != nil {
		if !strings.HasPrefix(e.URL, "http://") && !strings.HasPrefix(e.URL, "https://") {
			errs = append(errs, fmt.Errorf("%w: external URL %q is not http(s)", ErrInvalidConfig, e.URL))
		}
		if e.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%w: negative external timeout", ErrInvalidConfig))
		}
	}
	return errors.Join(errs...)
}
