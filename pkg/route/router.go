package route

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/tollgate-dev/tollgate/pkg/llm"
)

// Tier is one step of the complexity ladder: requests scoring at least
// MinScore (and less than the next tier's) belong to it.
type Tier struct {
	Name     string
	MinScore float64
}

// DefaultTiers is the ladder used when Config.Tiers is empty.
func DefaultTiers() []Tier {
	return []Tier{{Name: "simple", MinScore: 0}, {Name: "complex", MinScore: 0.35}}
}

// Limits are max_tokens settings: Default is set when the request names
// none, Cap lowers larger values. 0 means unset.
type Limits struct {
	Default int64
	Cap     int64
}

// Target is where one tier of a virtual alias goes.
type Target struct {
	Alias  string
	Limits Limits // overrides Config.AliasLimits[Alias] field by field
}

// Virtual is the routing of one alias a client may name.
type Virtual struct {
	// Tiers maps tier names to targets; every tier of the ladder needs one.
	Tiers map[string]Target
	// Shadow only records the decision: the request goes to Fallback.
	Shadow bool
	// Fallback is the alias used in shadow mode; default: the virtual alias
	// itself (so shadow mode on a real alias leaves requests untouched).
	Fallback string
}

// Tenant overrides routing for one tenant.
type Tenant struct {
	// Virtual replaces Config.Virtual entries by alias name.
	Virtual map[string]Virtual
	// Disabled lists aliases not routed for this tenant (sent as named).
	Disabled []string
	// Shadow, when set, forces shadow mode on (true) or off (false) for
	// every virtual alias of this tenant.
	Shadow *bool
}

// Config configures a Router.
type Config struct {
	Tiers       []Tier             // ascending MinScore, first at 0; default DefaultTiers
	Weights     Weights            // zero: DefaultWeights
	Virtual     map[string]Virtual // by alias name, e.g. "auto"
	Tenants     map[string]Tenant
	AliasLimits map[string]Limits // max_tokens per real alias
}

// Decision is the routing of one request.
type Decision struct {
	// Alias is the alias to send the request to: Chosen, or the fallback
	// in shadow mode.
	Alias string
	// Chosen is the alias the tier maps to (what routing would do).
	Chosen string
	Tier   string
	Score  float64
	// Shadow is true when the decision is only recorded.
	Shadow           bool
	MaxTokensDefault int64
	MaxTokensCap     int64
}

// Router routes requests. It is immutable and safe for concurrent use;
// build a new one on reload.
type Router struct {
	tiers   []Tier
	weights Weights
	virtual map[string]*virtual
	tenants map[string]map[string]*virtual // tenant -> alias -> routing (nil = disabled)
	scorer  scorer
}

type virtual struct {
	name    string
	targets []Decision // per tier index, Alias/Chosen/Tier/limits filled
	shadow  bool
	fallbk  Decision
}

// Validation errors of New (joined, each wrapped with its location).
var (
	ErrBadTiers  = errors.New("route: tiers must start at score 0 and ascend, with unique names")
	ErrNoTarget  = errors.New("route: tier has no target alias")
	ErrBadLimits = errors.New("route: max_tokens default must be positive and not above the cap")
)

// New validates cfg and builds a Router, reporting every problem.
func New(cfg Config) (*Router, error) {
	r := &Router{tiers: cfg.Tiers, weights: cfg.Weights, virtual: map[string]*virtual{}, tenants: map[string]map[string]*virtual{}}
	if len(r.tiers) == 0 {
		r.tiers = DefaultTiers()
	}
	if r.weights == (Weights{}) {
		r.weights = defaultWeights
	}
	r.scorer.table = buildTable()
	var errs []error
	seen := map[string]bool{}
	for i, t := range r.tiers {
		if t.Name == "" || seen[t.Name] || (i == 0 && t.MinScore != 0) || (i > 0 && !(t.MinScore > r.tiers[i-1].MinScore)) || math.IsNaN(t.MinScore) {
			errs = append(errs, fmt.Errorf("tier %d (%q): %w", i, t.Name, ErrBadTiers))
		}
		seen[t.Name] = true
	}
	for alias, l := range cfg.AliasLimits {
		if err := checkLimits(l); err != nil {
			errs = append(errs, fmt.Errorf("alias_limits %s: %w", alias, err))
		}
	}
	for _, name := range sortedKeys(cfg.Virtual) {
		v, err := r.compile(name, cfg.Virtual[name], cfg.AliasLimits)
		if err != nil {
			errs = append(errs, err)
		}
		r.virtual[name] = v
	}
	for _, tenant := range sortedKeys(cfg.Tenants) {
		tc := cfg.Tenants[tenant]
		m := map[string]*virtual{}
		for name, v := range r.virtual {
			m[name] = v
		}
		for _, name := range sortedKeys(tc.Virtual) {
			v, err := r.compile(name, tc.Virtual[name], cfg.AliasLimits)
			if err != nil {
				errs = append(errs, fmt.Errorf("tenant %s: %w", tenant, err))
			}
			m[name] = v
		}
		if tc.Shadow != nil {
			for name, v := range m {
				if v != nil && v.shadow != *tc.Shadow {
					cp := *v
					cp.shadow = *tc.Shadow
					m[name] = &cp
				}
			}
		}
		for _, name := range tc.Disabled {
			m[name] = nil
		}
		r.tenants[tenant] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func (r *Router) compile(name string, v Virtual, aliasLimits map[string]Limits) (*virtual, error) {
	out := &virtual{name: name, shadow: v.Shadow}
	var errs []error
	for _, t := range r.tiers {
		tg, ok := v.Tiers[t.Name]
		if !ok || tg.Alias == "" {
			errs = append(errs, fmt.Errorf("virtual %s tier %s: %w", name, t.Name, ErrNoTarget))
			continue
		}
		lim := merge(tg.Limits, aliasLimits[tg.Alias])
		if err := checkLimits(lim); err != nil {
			errs = append(errs, fmt.Errorf("virtual %s tier %s: %w", name, t.Name, err))
		}
		out.targets = append(out.targets, Decision{Alias: tg.Alias, Chosen: tg.Alias, Tier: t.Name, MaxTokensDefault: lim.Default, MaxTokensCap: lim.Cap})
	}
	for tier := range v.Tiers {
		known := false
		for _, t := range r.tiers {
			known = known || t.Name == tier
		}
		if !known {
			errs = append(errs, fmt.Errorf("virtual %s: tier %q is not in the ladder: %w", name, tier, ErrBadTiers))
		}
	}
	fb := v.Fallback
	if fb == "" {
		fb = name
	}
	lim := aliasLimits[fb]
	out.fallbk = Decision{Alias: fb, MaxTokensDefault: lim.Default, MaxTokensCap: lim.Cap}
	return out, errors.Join(errs...)
}

func merge(a, b Limits) Limits {
	if a.Default == 0 {
		a.Default = b.Default
	}
	if a.Cap == 0 {
		a.Cap = b.Cap
	}
	return a
}

func checkLimits(l Limits) error {
	if l.Default < 0 || l.Cap < 0 || (l.Cap > 0 && l.Default > l.Cap) {
		return fmt.Errorf("default %d cap %d: %w", l.Default, l.Cap, ErrBadLimits)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Route decides where a request for alias goes. The second result is false
// when alias is not routed for tenant: send the request as named.
func (r *Router) Route(tenant, alias string, req *llm.Request) (Decision, bool) {
	v, ok := r.lookup(tenant, alias)
	if !ok {
		return Decision{}, false
	}
	score := Score(r.scorer.Extract(req), r.weights)
	i := len(r.tiers) - 1
	for i > 0 && score < r.tiers[i].MinScore {
		i--
	}
	d := v.targets[i]
	d.Score = score
	if v.shadow {
		d.Shadow = true
		d.Alias = v.fallbk.Alias
		d.MaxTokensDefault, d.MaxTokensCap = v.fallbk.MaxTokensDefault, v.fallbk.MaxTokensCap
	}
	return d, true
}

func (r *Router) lookup(tenant, alias string) (*virtual, bool) {
	if m, ok := r.tenants[tenant]; ok {
		v, ok := m[alias]
		return v, ok && v != nil
	}
	v, ok := r.virtual[alias]
	return v, ok
}

// Score returns the complexity score of req in [0,1] with the router's weights.
func (r *Router) Score(req *llm.Request) float64 {
	return Score(r.scorer.Extract(req), r.weights)
}

// Features returns the scorer's features of req (for explanations and tests).
func (r *Router) Features(req *llm.Request) Features { return r.scorer.Extract(req) }

// Apply sets max_tokens on req from d: the default when the request names
// none, the cap when it asks for more. It is a no-op without limits.
func (d Decision) Apply(req *llm.Request) error {
	if req.MaxTokens == 0 && d.MaxTokensDefault > 0 {
		if err := req.CapMaxTokens(d.MaxTokensDefault); err != nil {
			return err
		}
	}
	return req.CapMaxTokens(d.MaxTokensCap)
}

// Aliases lists, sorted and deduplicated, every alias a Decision.Alias can
// name (tier targets and shadow fallbacks, tenant overrides included), so
// the caller can check each one is a configured model alias at load.
func (r *Router) Aliases() []string {
	set := map[string]bool{}
	add := func(v *virtual) {
		if v == nil {
			return
		}
		for _, d := range v.targets {
			set[d.Alias] = true
		}
		if v.shadow {
			set[v.fallbk.Alias] = true
		}
	}
	for _, v := range r.virtual {
		add(v)
	}
	for _, m := range r.tenants {
		for _, v := range m {
			add(v)
		}
	}
	return sortedKeys(set)
}
