package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults used when a key is absent.
const (
	DefaultExtProcAddr    = "127.0.0.1:50051"
	DefaultAdminAddr      = "127.0.0.1:9090"
	DefaultXDSAddr        = "127.0.0.1:18000"
	DefaultListener       = "0.0.0.0:10000"
	DefaultMaxBodyBytes   = 4 << 20
	DefaultShutdownGrace  = 20 * time.Second
	DefaultMessageTimeout = 200 * time.Millisecond
	DefaultLedgerPath     = "tollgate-ledger.jsonl"
	DefaultProviderTimout = 60 * time.Second
	// DefaultMaxTemperature is cache.max_temperature when the key is absent.
	DefaultMaxTemperature = 1.0
)

// Values of tenants.trust_header_from.
const (
	TrustWasmRouter  = "wasm-router"
	TrustOtherFilter = "other-filter"
)

func applyDefaults(c *Config) {
	applyEvalDefaults(c)
	if c.Listen.ExtProc == "" {
		c.Listen.ExtProc = DefaultExtProcAddr
	}
	if c.Listen.Admin == "" {
		c.Listen.Admin = DefaultAdminAddr
	}
	if c.Listen.MaxBodyBytes == 0 {
		c.Listen.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Listen.ShutdownGrace == 0 {
		c.Listen.ShutdownGrace = DefaultShutdownGrace
	}
	for name, p := range c.Providers {
		if p.Timeout == 0 {
			p.Timeout = DefaultProviderTimout
		}
		if p.Kind == "" {
			p.Kind = KindOpenAI
		}
		c.Providers[name] = p
	}
	if c.Pricing.Builtin == nil {
		t := true
		c.Pricing.Builtin = &t
	}
	if c.Budgets.Ledger.Backend == "" {
		c.Budgets.Ledger.Backend = "file"
	}
	if c.Budgets.Ledger.Backend == "file" && c.Budgets.Ledger.Path == "" {
		c.Budgets.Ledger.Path = DefaultLedgerPath
	}
	if c.Budgets.Ledger.Redis.Prefix == "" {
		c.Budgets.Ledger.Redis.Prefix = "tollgate:"
	}
	if c.Keys.Enabled && c.Keys.Path == "" && c.Budgets.Ledger.Backend == "file" {
		c.Keys.Path = DefaultKeysPath(c.Budgets.Ledger.Path)
	}
	if c.Budgets.Ledger.Sync == "" {
		c.Budgets.Ledger.Sync = LedgerSyncInterval
	}
	if c.Budgets.Ledger.Redis.HoldTTL == 0 {
		c.Budgets.Ledger.Redis.HoldTTL = DefaultHoldTTL
	}
	for _, d := range []*GuardDirection{&c.Guardrails.Input, &c.Guardrails.Output} {
		if len(d.Roles) == 0 {
			d.Roles = []string{"user", "tool"}
		}
	}
	if !c.Set("cache.max_temperature") {
		c.Cache.MaxTemperature = DefaultMaxTemperature
	}
	if c.Cache.Backend == "" {
		c.Cache.Backend = "memory"
	}
	if c.Cache.Redis.Prefix == "" {
		c.Cache.Redis.Prefix = "tollgate:cache:"
	}
	if c.Cache.Semantic.Embedder.Kind == "" {
		c.Cache.Semantic.Embedder.Kind = "builtin"
	}
	if c.Cache.Semantic.DifferenceGuard == nil {
		t := true
		c.Cache.Semantic.DifferenceGuard = &t
	}
	if c.Cache.Semantic.Verifier == nil {
		on := c.Cache.Semantic.Embedder.Kind == "builtin"
		c.Cache.Semantic.Verifier = &on
	}
	fm := &c.FailureMode
	for _, m := range []*Mode{&fm.ExtProc, &fm.Guardrails, &fm.Budgets} {
		if *m == "" {
			*m = Closed
		}
	}
	if fm.Cache == "" {
		fm.Cache = Open
	}
	if fm.RateLimits == "" {
		fm.RateLimits = Open
	}
	if c.Limits.Backend == "" {
		c.Limits.Backend = "memory"
	}
	if c.Limits.Redis.Prefix == "" {
		c.Limits.Redis.Prefix = "tollgate:"
	}
	if c.Limits.DefaultOutputTokens == 0 {
		c.Limits.DefaultOutputTokens = DefaultRateLimitOutputTokens
	}
	if c.Credentials.Inject == "" {
		c.Credentials.Inject = "upstream"
	}
	if c.XDS.Listen == "" {
		c.XDS.Listen = DefaultXDSAddr
	}
	if c.XDS.Listener == "" {
		c.XDS.Listener = DefaultListener
	}
	if c.XDS.ExtProcTarget == "" {
		c.XDS.ExtProcTarget = c.Listen.ExtProc
	}
	if c.XDS.MessageTimeout == 0 {
		c.XDS.MessageTimeout = DefaultMessageTimeout
	}
}

// validator collects problems by dotted path.
type validator struct{ ps Problems }

func (v *validator) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func validate(c *Config) Problems {
	v := &validator{}
	v.listen(c)
	v.providers(c)
	v.models(c)
	v.pricing(c)
	v.tenants(c)
	v.budgets(c)
	v.limits(c)
	v.guardrails(c)
	v.cache(c)
	v.failureMode(c)
	v.routing(c)
	v.compression(c)
	v.keys(c)
	v.eval(c)
	if i := c.Credentials.Inject; i != "upstream" && i != "downstream" {
		v.add("credentials.inject", "must be upstream or downstream, got %q", i)
	}
	if r := c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.add("tracing.sample_ratio", "must be within [0,1]")
	}
	v.addrs(c)
	if c.XDS.MessageTimeout < 0 {
		v.add("xds.message_timeout", "must be positive")
	}
	if c.XDS.Wasm.Enabled && c.XDS.Wasm.Path == "" {
		v.add("xds.wasm.path", "required when xds.wasm.enabled is true")
	}
	if t := c.XDS.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		v.add("xds.tls", "cert_file and key_file are both required")
	}
	if a := c.XDS.AccessLog; a != nil && a.Path == "" {
		v.add("xds.access_log.path", "required")
	}
	return v.ps
}

// addrs checks the addresses `tollgate extproc` listens on (the xds.*
// addresses are checked where the Envoy resources are built, and by
// `tollgate validate`).
func (v *validator) addrs(c *Config) {
	if err := CheckAddr(c.Listen.ExtProc, true, true); err != nil {
		v.add("listen.extproc", "%v", err)
	}
	if err := CheckAddr(c.Listen.Admin, false, true); err != nil {
		v.add("listen.admin", "%v", err)
	}
}

// CheckAddr checks a host:port address, or, when unixOK, unix:/path too.
// listen is as in CheckHostPort.
func CheckAddr(addr string, unixOK, listen bool) error {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if !unixOK {
			return fmt.Errorf("must be host:port, got %q", addr)
		}
		if strings.TrimPrefix(p, "//") == "" {
			return fmt.Errorf("unix: needs a socket path, e.g. unix:/run/tollgate/extproc.sock")
		}
		return nil
	}
	return CheckHostPort(addr, listen)
}

// CheckHostPort reports whether addr is host:port with a numeric port in
// 1-65535 (0 too when listen is true: any free port). A listen address may
// leave the host empty (all interfaces); an address to connect to may not.
func CheckHostPort(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, got %q", addr)
	}
	if host == "" && !listen {
		return fmt.Errorf("needs a host, got %q", addr)
	}
	n, err := strconv.Atoi(port)
	lo := 1
	if listen {
		lo = 0
	}
	if err != nil || n < lo || n > 65535 {
		return fmt.Errorf("port must be a number from %d to 65535, got %q", lo, port)
	}
	return nil
}

func (v *validator) listen(c *Config) {
	if c.Listen.MaxBodyBytes < 0 {
		v.add("listen.max_body_bytes", "must be positive, got %d", c.Listen.MaxBodyBytes)
	}
	if c.Listen.ShutdownGrace < 0 {
		v.add("listen.shutdown_grace", "must be positive")
	}
}

func (v *validator) providers(c *Config) {
	if len(c.Providers) == 0 {
		v.add("providers", "at least one provider is required")
	}
	for _, name := range sortedKeys(c.Providers) {
		p := c.Providers[name]
		path := "providers." + name
		u, err := url.Parse(p.BaseURL)
		switch {
		case p.BaseURL == "":
			v.add(path+".base_url", "required")
		case err != nil:
			v.add(path+".base_url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			v.add(path+".base_url", "scheme must be http or https, got %q", u.Scheme)
		case u.Host == "":
			v.add(path+".base_url", "missing host")
		}
		if p.Timeout < 0 {
			v.add(path+".timeout", "must be positive")
		}
		v.providerKind(path, p, u)
	}
}

// apiVersion is the shape of Azure OpenAI's api-version (2024-10-21,
// 2025-01-01-preview).
var apiVersion = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$`)

// deploymentName is what an Azure deployment name may contain: it becomes a
// path segment.
var deploymentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (v *validator) providerKind(path string, p Provider, u *url.URL) {
	switch p.Kind {
	case KindOpenAI:
		if p.APIVersion != "" {
			v.add(path+".api_version", "only for kind: azure")
		}
	case KindAzure:
		switch {
		case p.APIVersion == "":
			v.add(path+".api_version", "required for kind: azure (e.g. 2024-10-21)")
		case !apiVersion.MatchString(p.APIVersion):
			v.add(path+".api_version", "%q is not an Azure OpenAI api-version (YYYY-MM-DD or YYYY-MM-DD-preview)", p.APIVersion)
		}
		if u != nil && strings.TrimSuffix(u.Path, "/") != "" {
			v.add(path+".base_url", "kind azure takes the resource endpoint without a path (https://NAME.openai.azure.com), got path %q", u.Path)
		}
	default:
		v.add(path+".kind", "must be openai or azure, got %q", p.Kind)
	}
}

func (v *validator) models(c *Config) {
	if len(c.Models) == 0 {
		v.add("models", "at least one model alias is required")
	}
	for _, alias := range sortedKeys(c.Models) {
		m := c.Models[alias]
		path := "models." + alias
		if len(m.Targets) == 0 {
			v.add(path+".targets", "at least one target is required")
		}
		for i, t := range m.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", path, i)
			if t.Provider == "" {
				v.add(tp+".provider", "required")
			} else if _, ok := c.Providers[t.Provider]; !ok {
				v.add(tp+".provider", "unknown provider %q (known: %s)", t.Provider, strings.Join(sortedKeys(c.Providers), ", "))
			}
			if t.Model == "" {
				v.add(tp+".model", "required")
			}
			v.deployment(c, m, i, tp)
		}
		if m.MaxTokens < 0 {
			v.add(path+".max_tokens", "must be positive")
		}
	}
}

// deployment checks target i's Azure deployment: only for an azure
// provider, a path segment, and one per provider/model within the alias
// (an attempt knows its target by provider and model).
func (v *validator) deployment(c *Config, m Model, i int, tp string) {
	t := m.Targets[i]
	p, known := c.Providers[t.Provider]
	if t.Deployment != "" {
		switch {
		case known && !p.Azure():
			v.add(tp+".deployment", "only for a provider of kind: azure (%s is %s)", t.Provider, p.Kind)
		case !deploymentName.MatchString(t.Deployment):
			v.add(tp+".deployment", "%q is not a deployment name (letters, digits, '.', '_', '-'; at most 64)", t.Deployment)
		}
	} else if known && p.Azure() && t.Model != "" && !deploymentName.MatchString(t.Model) {
		v.add(tp+".deployment", "required: the model name %q cannot be a deployment name", t.Model)
	}
	for j, o := range m.Targets[:i] {
		if o.Provider == t.Provider && o.Model == t.Model && o.DeploymentName() != t.DeploymentName() {
			v.add(tp+".deployment", "targets[%d] has the same provider and model with deployment %q: an attempt knows its target by provider and model", j, o.DeploymentName())
		}
	}
}

func (v *validator) pricing(c *Config) {
	for i, p := range c.Pricing.Models {
		path := fmt.Sprintf("pricing.models[%d]", i)
		if p.Provider == "" {
			v.add(path+".provider", "required")
		}
		if p.Model == "" {
			v.add(path+".model", "required")
		}
		if p.Effective.IsZero() {
			v.add(path+".effective", "required (a date, e.g. 2025-01-01)")
		}
		if p.Input < 0 || p.Output < 0 || p.CachedInput < 0 {
			v.add(path, "prices must not be negative")
		}
	}
}

func (v *validator) tenants(c *Config) {
	switch from := c.Tenants.TrustHeaderFrom; {
	case from != "" && from != TrustWasmRouter && from != TrustOtherFilter:
		v.add("tenants.trust_header_from", "must be %s or %s, got %q", TrustWasmRouter, TrustOtherFilter, from)
	case from != "" && !c.Tenants.TrustHeader:
		v.add("tenants.trust_header_from", "has no effect unless tenants.trust_header is true")
	case c.Tenants.TrustHeader && from == "" && !c.XDS.Wasm.Enabled:
		v.add("tenants.trust_header", "true without the wasm router (xds.wasm.enabled is false) lets any client pick its tenant by sending x-tollgate-tenant; "+
			"enable xds.wasm, or, if a filter in your own Envoy config sets the header from the key and drops the client's, say so with tenants.trust_header_from: %s or %s", TrustWasmRouter, TrustOtherFilter)
	}
	if a := c.Tenants.AllowAnonymous; a != "" && !validID(a) {
		v.add("tenants.allow_anonymous", "must match [A-Za-z0-9][A-Za-z0-9._:-]*, got %q", a)
	}
	seen := map[string]int{}
	ids := map[string]int{}
	for i, k := range c.Tenants.Keys {
		path := fmt.Sprintf("tenants.keys[%d]", i)
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
			v.add(path+".sha256", "must be 64 hex characters (the SHA-256 of the key, never the key itself)")
		}
		if j, dup := seen[strings.ToLower(k.SHA256)]; dup {
			v.add(path+".sha256", "duplicate of tenants.keys[%d]", j)
		}
		seen[strings.ToLower(k.SHA256)] = i
		if k.Tenant == "" {
			v.add(path+".tenant", "required")
		} else if !validID(k.Tenant) {
			v.add(path+".tenant", "must match [A-Za-z0-9][A-Za-z0-9._:-]* (it is a metric label and a ledger key), got %q", k.Tenant)
		}
		if k.ID == "" {
			v.add(path+".id", "required (a non-secret key id for logs and metrics)")
		} else if j, dup := ids[k.ID]; dup {
			v.add(path+".id", "duplicate of tenants.keys[%d]", j)
		} else {
			ids[k.ID] = i
		}
	}
}

func (v *validator) budgets(c *Config) {
	l := c.Budgets.Ledger
	switch l.Backend {
	case "file":
		if l.Path == "" {
			v.add("budgets.ledger.path", "required for backend file")
		}
	case "redis":
		if l.Redis.Addr == "" {
			v.add("budgets.ledger.redis.addr", "required for backend redis")
		}
	default:
		v.add("budgets.ledger.backend", "must be file or redis, got %q", l.Backend)
	}
	if l.Sync != LedgerSyncInterval && l.Sync != LedgerSyncAlways {
		v.add("budgets.ledger.sync", "must be interval or always, got %q", l.Sync)
	}
	if l.Redis.Timeout < 0 {
		v.add("budgets.ledger.redis.timeout", "must not be negative, got %s", l.Redis.Timeout)
	}
	if l.Redis.HoldTTL < 0 {
		v.add("budgets.ledger.redis.hold_ttl", "must not be negative, got %s", l.Redis.HoldTTL)
	}
	check := func(path string, b Budget) {
		if b.DailyUSD < 0 {
			v.add(path+".daily_usd", "must not be negative")
		}
		if b.MonthlyUSD < 0 {
			v.add(path+".monthly_usd", "must not be negative")
		}
	}
	check("budgets.default", c.Budgets.Default)
	known := c.tenantIDs()
	for _, t := range sortedKeys(c.Budgets.Tenants) {
		check("budgets.tenants."+t, c.Budgets.Tenants[t])
		if !known[t] {
			v.add("budgets.tenants."+t, "tenant %q has no API key and is not the anonymous tenant", t)
		}
	}
}

func (v *validator) limits(c *Config) {
	l := c.Limits
	switch l.Backend {
	case "memory":
	case "redis":
		if l.Redis.Addr == "" {
			v.add("limits.redis.addr", "required for backend redis")
		}
	default:
		v.add("limits.backend", "must be memory or redis, got %q", l.Backend)
	}
	if l.Redis.Timeout < 0 {
		v.add("limits.redis.timeout", "must not be negative, got %s", l.Redis.Timeout)
	}
	if l.DefaultOutputTokens < 0 {
		v.add("limits.default_output_tokens", "must not be negative, got %d", l.DefaultOutputTokens)
	}
	check := func(path string, r RateLimit) {
		if r.RPM < 0 {
			v.add(path+".rpm", "must not be negative, got %d", r.RPM)
		}
		if r.TPM < 0 {
			v.add(path+".tpm", "must not be negative, got %d", r.TPM)
		}
	}
	check("limits.default", l.Default)
	tenants := c.tenantIDs()
	for _, t := range sortedKeys(l.Tenants) {
		check("limits.tenants."+t, l.Tenants[t])
		if !tenants[t] {
			v.add("limits.tenants."+t, "tenant %q has no API key and is not the anonymous tenant", t)
		}
	}
	keys := map[string]bool{}
	for _, k := range c.Tenants.Keys {
		keys[k.ID] = true
	}
	for _, id := range sortedKeys(l.Keys) {
		check("limits.keys."+id, l.Keys[id])
		if !keys[id] && !c.Keys.Enabled { // with virtual keys, any key id
			v.add("limits.keys."+id, "no entry in tenants.keys has id %q", id)
		}
	}
}

// tenantIDs is the set of tenants named by keys or anonymous access.
func (c *Config) tenantIDs() map[string]bool {
	out := map[string]bool{}
	for _, k := range c.Tenants.Keys {
		out[k.Tenant] = true
	}
	if c.Tenants.AllowAnonymous != "" {
		out[c.Tenants.AllowAnonymous] = true
	}
	if c.Keys.Enabled {
		for _, t := range c.Keys.Tenants {
			out[t] = true
		}
	}
	return out
}

// TenantIDs lists every tenant the config knows, sorted. Metric labels use
// only these values (anything else is reported as "other").
func (c *Config) TenantIDs() []string { return sortedKeys(c.tenantIDs()) }

var actions = map[string]bool{"block": true, "redact": true, "log": true}

func (v *validator) guardrails(c *Config) {
	for dir, d := range map[string]GuardDirection{"input": c.Guardrails.Input, "output": c.Guardrails.Output} {
		path := "guardrails." + dir
		for _, det := range sortedKeys(d.Detectors) {
			if !actions[d.Detectors[det]] {
				v.add(path+".detectors."+det, "action must be block, redact or log, got %q", d.Detectors[det])
			}
		}
		if d.InjectionThreshold < 0 || d.InjectionThreshold > 1 {
			v.add(path+".injection_threshold", "must be within [0,1]")
		}
		if d.StreamWindow < 0 {
			v.add(path+".stream_window", "must be positive")
		}
		for i, r := range d.Roles {
			switch r {
			case "system", "developer", "user", "assistant", "tool", "function":
			default:
				v.add(fmt.Sprintf("%s.roles[%d]", path, i), "unknown role %q", r)
			}
		}
		v.guardExternal(c, dir, d)
	}
}

// guardExternal checks the external moderation detector of one direction:
// a section without a rule, or a rule without a section, would be parsed
// and do nothing.
func (v *validator) guardExternal(c *Config, dir string, d GuardDirection) {
	path := "guardrails." + dir
	_, rule := d.Detectors["external"]
	e := d.External
	switch {
	case e == nil && rule:
		v.add(path+".detectors.external", "needs %s.external.url (the moderation endpoint to call)", path)
		return
	case e == nil:
		return
	case dir == "output":
		v.add(path+".external", "the external detector screens input only (a streamed answer cannot wait for a moderation call per chunk)")
		return
	case !rule:
		v.add(path+".external", "add detectors.external: block (or log) to say what a flag does; without it the endpoint is never called")
	}
	u, err := url.Parse(e.URL)
	switch {
	case e.URL == "":
		v.add(path+".external.url", "required")
	case err != nil:
		v.add(path+".external.url", "not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path+".external.url", "scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		v.add(path+".external.url", "missing host")
	}
	if t := e.Threshold; t < 0 || t > 1 {
		v.add(path+".external.threshold", "must be within [0,1] (0 = only what the endpoint flags)")
	}
	mt := c.XDS.MessageTimeout
	switch {
	case e.Timeout < 0:
		v.add(path+".external.timeout", "must be positive (0 = derived from xds.message_timeout)")
	case e.Timeout > 0 && mt > 0 && e.Timeout >= mt:
		v.add(path+".external.timeout", "must be below xds.message_timeout (%s): Envoy stops waiting for the answer then", mt)
	}
}

func (v *validator) cache(c *Config) {
	switch c.Cache.Backend {
	case "memory":
	case "redis":
		if c.Cache.Redis.Addr == "" {
			v.add("cache.redis.addr", "required for backend redis")
		}
	default:
		v.add("cache.backend", "must be memory or redis, got %q", c.Cache.Backend)
	}
	if t := c.Cache.Semantic.Threshold; t < 0 || t > 1 {
		v.add("cache.semantic.threshold", "must be within [0,1] (0 = the shipped threshold)")
	}
	switch e := c.Cache.Semantic.Embedder; e.Kind {
	case "builtin":
	case "openai":
		if e.URL == "" {
			v.add("cache.semantic.embedder.url", "required for kind openai")
		}
		if vf := c.Cache.Semantic.Verifier; vf != nil && *vf {
			v.add("cache.semantic.verifier", "needs the builtin embedder (its features include the built-in cosine); set it to false with kind openai")
		}
	default:
		v.add("cache.semantic.embedder.kind", "must be builtin or openai, got %q", e.Kind)
	}
	if c.Cache.Exact.MaxBytes < 0 {
		v.add("cache.exact.max_bytes", "must be positive")
	}
	if c.Cache.Exact.TTL < 0 {
		v.add("cache.exact.ttl", "must be positive (leave it out for the default)")
	}
	if t := c.Cache.MaxTemperature; t < 0 || t > 2 {
		v.add("cache.max_temperature", "must be within [0,2] (0 caches only temperature-0 requests), got %g", t)
	}
	sc := c.Cache.Semantic
	if sc.MaxEntriesPerPartition < 0 {
		v.add("cache.semantic.max_entries_per_partition", "must be positive (0 = the shipped bound)")
	}
	if sc.MaxEntries < 0 {
		v.add("cache.semantic.max_entries", "must be positive (0 = the shipped bound)")
	}
	if sc.MaxBytes < 0 {
		v.add("cache.semantic.max_bytes", "must be positive (0 = the shipped bound)")
	}
	// A call that may outlast Envoy's wait can only end in an Envoy error.
	mt := c.XDS.MessageTimeout
	for _, t := range []struct {
		path string
		d    time.Duration
	}{
		{"cache.redis.timeout", c.Cache.Redis.Timeout},
		{"cache.semantic.embedder.timeout", sc.Embedder.Timeout},
	} {
		path, d := t.path, t.d
		switch {
		case d < 0:
			v.add(path, "must be positive (0 = derived from xds.message_timeout)")
		case d > 0 && mt > 0 && d >= mt:
			v.add(path, "must be below xds.message_timeout (%s): Envoy stops waiting for the answer then", mt)
		}
	}
}

func (v *validator) failureMode(c *Config) {
	fm := c.FailureMode
	for path, m := range map[string]Mode{
		"failure_mode.extproc": fm.ExtProc, "failure_mode.guardrails": fm.Guardrails,
		"failure_mode.cache": fm.Cache, "failure_mode.budgets": fm.Budgets,
		"failure_mode.ratelimits": fm.RateLimits,
	} {
		if m != Open && m != Closed {
			v.add(path, "must be open or closed, got %q", m)
		}
	}
	if fm.Cache == Closed {
		v.add("failure_mode.cache", "must be open: a failing cache tier makes the lookup a miss and the request goes to the provider "+
			"(counted in tollgate_cache_backend_errors_total); closed would turn a cache outage into an API outage")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validID reports whether s is a safe identifier for labels and keys.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func (v *validator) routing(c *Config) {
	check := func(path string, va VirtualAlias) {
		for _, tier := range sortedKeys(va.Tiers) {
			if a := va.Tiers[tier].Alias; a == "" {
				v.add(path+".tiers."+tier+".alias", "required")
			} else if _, ok := c.Models[a]; !ok {
				v.add(path+".tiers."+tier+".alias", "unknown model alias %q", a)
			}
		}
		if va.Fallback != "" {
			if _, ok := c.Models[va.Fallback]; !ok {
				v.add(path+".fallback", "unknown model alias %q", va.Fallback)
			}
		}
	}
	for _, name := range sortedKeys(c.Routing.Virtual) {
		check("routing.virtual."+name, c.Routing.Virtual[name])
	}
	for _, t := range sortedKeys(c.Routing.Tenants) {
		for _, name := range sortedKeys(c.Routing.Tenants[t].Virtual) {
			check("routing.tenants."+t+".virtual."+name, c.Routing.Tenants[t].Virtual[name])
		}
	}
	seen := map[string]bool{}
	for i, cn := range c.Routing.Canaries {
		path := fmt.Sprintf("routing.canaries[%d]", i)
		for _, a := range []struct{ key, alias string }{{"alias", cn.Alias}, {"canary", cn.Canary}} {
			if _, ok := c.Models[a.alias]; !ok {
				v.add(path+"."+a.key, "unknown model alias %q", a.alias)
			}
		}
		if seen[cn.Alias] {
			v.add(path+".alias", "%q has a canary already", cn.Alias)
		}
		seen[cn.Alias] = true
		if cn.Weight < 0 || cn.Weight > 100 {
			v.add(path+".weight", "must be 0..100, got %d", cn.Weight)
		}
		if cn.HashOn != "" && cn.HashOn != "request_id" && cn.HashOn != "tenant" {
			v.add(path+".hash_on", "must be request_id or tenant, got %q", cn.HashOn)
		}
	}
	for _, name := range sortedKeys(c.Tenants.Tiers) {
		t := c.Tenants.Tiers[name]
		for _, a := range t.AllowedModels {
			if _, ok := c.Models[a]; !ok {
				v.add("tenants.tiers."+name+".allowed_models", "unknown model alias %q", a)
			}
		}
		if t.DefaultModel != "" {
			if _, ok := c.Models[t.DefaultModel]; !ok {
				v.add("tenants.tiers."+name+".default_model", "unknown model alias %q", t.DefaultModel)
			} else if len(t.AllowedModels) > 0 && !slices.Contains(t.AllowedModels, t.DefaultModel) {
				v.add("tenants.tiers."+name+".default_model", "%q is not in allowed_models", t.DefaultModel)
			}
		}
	}
}
