package preflight

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/eval"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
	"github.com/tollgate-dev/tollgate/pkg/route"
)

// EnvPolicy says how an environment variable the config names but the
// process does not have is reported.
type EnvPolicy int

// Env policies.
const (
	// EnvError: an unset variable is an error (`tollgate validate`: the
	// check is run where the server will run, with its environment).
	EnvError EnvPolicy = iota
	// EnvWarn: an unset variable is a warning (startup: the other
	// providers still serve; requests that need the key fail with 503).
	EnvWarn
	// EnvSkip: environment variables are not checked (`tollgate validate
	// --skip-env`, e.g. in CI without the production secrets).
	EnvSkip
)

// Options are the process dependencies of Check.
type Options struct {
	// Getenv reads environment variables (default os.Getenv).
	Getenv func(string) string
	// Now dates the price lookups (default time.Now).
	Now func() time.Time
	Env EnvPolicy
}

// Built is what Check built: exactly what the server runs with.
type Built struct {
	Catalog *meter.Catalog
	// InGuard and OutGuard are nil when that direction is off.
	InGuard, OutGuard *guard.Guard
	// Prompts is nil without prompts.dir.
	Prompts *prompts.Registry
	// Router is nil without a routing section.
	Router *route.Router
	// Cache is the cache package's config (meaningful when cache.enabled).
	Cache cache.Config
}

// Check builds everything startup builds from c and reports every problem
// found, each with the file and line of its key. err is a config.Problems
// (errors.Is(err, config.ErrInvalid)) listing the errors; warnings are
// problems that do not stop startup. Built is nil when err is not.
func Check(c *config.Config, opts Options) (b *Built, warnings config.Problems, err error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ck := &checker{c: c, opts: opts}
	b = &Built{}
	b.Catalog = ck.catalog()
	var gerr error
	if b.InGuard, gerr = BuildGuardWith(c.Guardrails.Input, c.XDS.MessageTimeout, opts.Getenv); gerr != nil {
		ck.guardProblems("guardrails.input", c.Guardrails.Input, gerr)
	}
	if b.OutGuard, gerr = BuildGuardWith(c.Guardrails.Output, c.XDS.MessageTimeout, opts.Getenv); gerr != nil {
		ck.guardProblems("guardrails.output", c.Guardrails.Output, gerr)
	}
	if c.Prompts.Dir != "" {
		var perr error
		if b.Prompts, perr = LoadPrompts(c.Prompts); perr != nil {
			ck.err("prompts.dir", "%v", perr)
		}
	}
	for _, alias := range slices.Sorted(maps.Keys(c.Eval.Auto.Aliases)) {
		a := c.Eval.Auto.Aliases[alias]
		if a.Set == "" {
			continue // reported by config validation
		}
		if _, err := eval.LoadAutoSet(a.Set, a.Baseline); err != nil {
			for _, e := range unjoin(err) {
				ck.err("eval.auto.aliases."+alias, "%v", e)
			}
		}
	}
	var rerr error
	if b.Router, rerr = BuildRouter(c.Routing); rerr != nil {
		for _, e := range unjoin(rerr) {
			ck.err("routing", "%v", e)
		}
	}
	b.Cache = CacheConfig(c.Cache, c.XDS.MessageTimeout, opts.Getenv)
	if c.Cache.Enabled {
		if cerr := b.Cache.Validate(); cerr != nil {
			for _, e := range unjoin(cerr) {
				ck.err("cache", "%v", e)
			}
		}
	}
	ck.ledger()
	ck.paths()
	ck.addrs()
	ck.env()
	if len(ck.errs) > 0 {
		sortProblems(ck.errs)
		sortProblems(ck.warns)
		return nil, ck.warns, ck.errs
	}
	sortProblems(ck.warns)
	return b, ck.warns, nil
}

type checker struct {
	c           *config.Config
	opts        Options
	errs, warns config.Problems
}

func (ck *checker) err(path, format string, args ...any) {
	ck.errs = append(ck.errs, ck.c.Problem(path, format, args...))
}

func (ck *checker) warn(path, format string, args ...any) {
	ck.warns = append(ck.warns, ck.c.Problem(path, format, args...))
}

func sortProblems(ps config.Problems) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// catalog builds the price catalog and checks every provider's catalog
// name and every target's price.
func (ck *checker) catalog() *meter.Catalog {
	c := ck.c
	cat, err := BuildCatalog(c)
	if err != nil {
		ck.err("pricing", "%v", err)
		return nil
	}
	known := map[string]bool{}
	for _, e := range cat.Entries() {
		known[e.Provider] = true
	}
	for _, name := range slices.Sorted(maps.Keys(c.Providers)) {
		if cn := c.Providers[name].Catalog; cn != "" && !known[cn] {
			ck.err("providers."+name+".catalog", "unknown price catalog %q (known: %s)%s", cn, strings.Join(slices.Sorted(maps.Keys(known)), ", "), suggest(cn, known))
		}
	}
	now := ck.opts.Now()
	for _, alias := range slices.Sorted(maps.Keys(c.Models)) {
		for i, t := range c.Models[alias].Targets {
			if _, ok := c.Providers[t.Provider]; !ok || t.Model == "" {
				continue // config.Load reported it
			}
			if _, ok := Price(cat, c, t.Provider, t.Model, now); ok {
				continue
			}
			path := fmt.Sprintf("models.%s.targets[%d].model", alias, i)
			where := "catalog " + quoted(catalogOf(c, t.Provider))
			if c.Providers[t.Provider].Catalog == "" && !known[t.Provider] {
				where = fmt.Sprintf("pricing.models, and providers.%s names no catalog (%s)", t.Provider, strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			}
			msg := "no price for %q in %s: its requests would cost $0 and budgets would never stop them; " +
				"add it under pricing.models, fix providers.%s.catalog, or set pricing.allow_unpriced: true"
			if c.Pricing.AllowUnpriced {
				ck.warn(path, "no price for %q in %s: its requests cost $0 (pricing.allow_unpriced is true)", t.Model, where)
			} else {
				ck.err(path, msg, t.Model, where, t.Provider)
			}
		}
	}
	return cat
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

func catalogOf(c *config.Config, provider string) string {
	if cn := c.Providers[provider].Catalog; cn != "" {
		return cn
	}
	return provider
}

// Price finds the price of a provider's model the way the server does:
// under the provider's own key first (pricing.models entries), then under
// its catalog name.
func Price(cat *meter.Catalog, c *config.Config, provider, model string, at time.Time) (meter.Price, bool) {
	if p, ok := cat.Lookup(provider, model, at); ok {
		return p, true
	}
	if pc, ok := c.Providers[provider]; ok && pc.Catalog != "" {
		return cat.Lookup(pc.Catalog, model, at)
	}
	return meter.Price{}, false
}

// suggest proposes the known name closest to s (one or two edits away).
func suggest(s string, known map[string]bool) string {
	best, bestD := "", 3
	for k := range known {
		if d := editDistance(s, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// guardProblems reports guard.New's problems, each at the detector key it
// names when there is one.
func (ck *checker) guardProblems(path string, d config.GuardDirection, err error) {
	for _, e := range unjoin(err) {
		msg := strings.TrimPrefix(e.Error(), guard.ErrInvalidConfig.Error()+": ")
		at := path
		for _, k := range slices.Sorted(maps.Keys(d.Detectors)) {
			if strings.Contains(msg, fmt.Sprintf("%q", k)) {
				at = path + ".detectors." + k
				break
			}
		}
		if strings.Contains(msg, "unknown detector") {
			msg += "; known: " + strings.Join(knownDetectors(), ", ")
		}
		ck.err(at, "%s", msg)
	}
}

func knownDetectors() []string {
	set := map[string]bool{guard.DetectorExternal: true}
	for name, types := range guard.DetectorTypes() {
		set[name] = true
		for _, t := range types {
			set[t] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// ledger checks that the spend ledger can be opened: the file ledger's
// directory exists (the file itself is created on first start).
func (ck *checker) ledger() {
	l := ck.c.Budgets.Ledger
	if l.Backend != "file" || l.Path == "" {
		return
	}
	if fi, err := os.Stat(l.Path); err == nil {
		if !fi.Mode().IsRegular() {
			ck.err("budgets.ledger.path", "%s exists and is not a regular file", l.Path)
		}
		return
	}
	ck.dirExists("budgets.ledger.path", l.Path, "the ledger file is created there on first start")
}

// paths checks the other directories the server writes into or reads.
func (ck *checker) paths() {
	c := ck.c
	if p, ok := strings.CutPrefix(c.Listen.ExtProc, "unix:"); ok {
		ck.dirExists("listen.extproc", strings.TrimPrefix(p, "//"), "the socket is created there")
	}
	if c.Keys.Enabled && c.Keys.Path != "" {
		if fi, err := os.Stat(c.Keys.Path); err == nil {
			if !fi.Mode().IsRegular() {
				ck.err("keys.path", "%s exists and is not a regular file", c.Keys.Path)
			}
		} else {
			ck.dirExists("keys.path", c.Keys.Path, "the key file is created there on first start")
		}
	}
	if c.Audit.Dir != "" { // created (with its parents) at startup when missing
		if fi, err := os.Stat(c.Audit.Dir); err == nil && !fi.IsDir() {
			ck.err("audit.dir", "%s is not a directory", c.Audit.Dir)
		}
	}
}

func (ck *checker) dirExists(path, file, why string) {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		ck.err(path, "directory %s does not exist (%s)", dir, why)
	case err != nil:
		ck.err(path, "%v", err)
	case !fi.IsDir():
		ck.err(path, "%s is not a directory", dir)
	}
}

// addrs checks the addresses `tollgate xds` hands to Envoy and the
// tracing collector.
func (ck *checker) addrs() {
	c := ck.c
	for _, a := range []struct {
		path, addr     string
		unixOK, listen bool
	}{
		{"xds.listen", c.XDS.Listen, false, true},
		{"xds.listener", c.XDS.Listener, false, true},
		{"xds.extproc_target", c.XDS.ExtProcTarget, true, false},
	} {
		err := config.CheckAddr(a.addr, a.unixOK, a.listen)
		switch {
		case err == nil:
		case a.path == "xds.extproc_target" && !c.Set(a.path):
			// Derived from listen.extproc (e.g. ":50051"): only `tollgate
			// xds` needs it, so the server still starts.
			ck.warn("listen.extproc", "tollgate xds would point Envoy at %q: %v; set xds.extproc_target", a.addr, err)
		default:
			ck.err(a.path, "%v", err)
		}
	}
	if e := c.Tracing.Endpoint; e != "" {
		if err := config.CheckHostPort(e, false); err != nil {
			ck.err("tracing.endpoint", "%v", err)
		}
	}
}

// env checks every environment variable the config names.
func (ck *checker) env() {
	if ck.opts.Env == EnvSkip {
		return
	}
	c := ck.c
	report := func(path, name, what string) {
		if name == "" || ck.opts.Getenv(name) != "" {
			return
		}
		if ck.opts.Env == EnvWarn {
			ck.warn(path, "environment variable %s is not set (%s)", name, what)
		} else {
			ck.err(path, "environment variable %s is not set (%s)", name, what)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Providers)) {
		report("providers."+name+".api_key_env", c.Providers[name].APIKeyEnv, "requests to "+name+" would fail with 503")
	}
	if e := c.Guardrails.Input.External; c.Guardrails.Input.Enabled && e != nil {
		report("guardrails.input.external.api_key_env", e.APIKeyEnv, "the moderation endpoint's key")
	}
	report("admin.token_env", c.Admin.TokenEnv, "the admin API's token; the server refuses to start without it")
	if c.Budgets.Ledger.Backend == "redis" {
		report("budgets.ledger.redis.password_env", c.Budgets.Ledger.Redis.PasswordEnv, "the ledger's Redis password")
	}
	if c.Cache.Enabled {
		if c.Cache.Backend == "redis" {
			report("cache.redis.password_env", c.Cache.Redis.PasswordEnv, "the cache's Redis password")
		}
		if e := c.Cache.Semantic.Embedder; c.Cache.Semantic.Enabled && e.Kind == "openai" {
			report("cache.semantic.embedder.api_key_env", e.APIKeyEnv, "the embedder's key")
		}
	}
}
