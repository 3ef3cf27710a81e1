package extproc

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
	"github.com/tollgate-dev/tollgate/pkg/guard"
	"github.com/tollgate-dev/tollgate/pkg/llm"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
	"github.com/tollgate-dev/tollgate/pkg/route"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// runtime is everything derived from one configuration. Streams take a
// snapshot at start, so a reload never changes a request mid-flight.
type runtime struct {
	cfg     *config.Config
	tenants *tenants
	catalog *meter.Catalog
	aliases []string
	getenv  func(string) string

	inGuard  *guard.Guard // nil: input guardrails off
	outGuard *guard.Guard // nil: output guardrails off
	prompts  *prompts.Registry
	router   *route.Router

	promptLabels telemetry.Labels

	prices sync.Map // priceKey -> priceEntry: resolved lookups, per UTC day

	tenantLabels   telemetry.Labels
	modelLabels    telemetry.Labels
	providerLabels telemetry.Labels
	targetLabels   telemetry.Labels
	modelList      []byte // GET /v1/models: the aliases clients may name
	policy         *modelPolicy
}

func newRuntime(c *config.Config, catalog *meter.Catalog, getenv func(string) string) (*runtime, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	rt := &runtime{
		cfg:     c,
		tenants: newTenants(c.Tenants),
		policy:  newModelPolicy(c),
		catalog: catalog,
		getenv:  getenv,
	}
	var err error
	if rt.inGuard, err = preflight.BuildGuardWith(c.Guardrails.Input, c.XDS.MessageTimeout, getenv); err != nil {
		return nil, fmt.Errorf("guardrails.input: %w", err)
	}
	if rt.outGuard, err = preflight.BuildGuardWith(c.Guardrails.Output, c.XDS.MessageTimeout, getenv); err != nil {
		return nil, fmt.Errorf("guardrails.output: %w", err)
	}
	if rt.prompts, err = buildPrompts(c.Prompts); err != nil {
		return nil, fmt.Errorf("prompts: %w", err)
	}
	if rt.router, err = preflight.BuildRouter(c.Routing); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	var refs []string
	if rt.prompts != nil {
		for _, n := range rt.prompts.Names() {
			for _, v := range rt.prompts.Versions(n) {
				refs = append(refs, n+"@"+strconv.Itoa(v))
			}
		}
	}
	rt.promptLabels = telemetry.NewLabels(refs...)
	var providers, targets []string
	for alias := range c.Routing.Virtual {
		rt.aliases = append(rt.aliases, alias) // virtual aliases are metric labels too
	}
	for alias, m := range c.Models {
		rt.aliases = append(rt.aliases, alias)
		for _, t := range m.Targets {
			targets = append(targets, t.Model)
		}
	}
	sort.Strings(rt.aliases)
	rt.modelList = llm.ModelList(rt.aliases, "tollgate")
	for p := range c.Providers {
		providers = append(providers, p)
	}
	rt.tenantLabels = telemetry.NewLabels(c.TenantIDs()...)
	rt.modelLabels = telemetry.NewLabels(rt.aliases...)
	rt.providerLabels = telemetry.NewLabels(providers...)
	rt.targetLabels = telemetry.NewLabels(targets...)
	return rt, nil
}

type priceKey struct {
	provider, model string
	day             int64 // prices change on effective dates, so a day is the finest grain
}

type priceEntry struct {
	p  meter.Price
	ok bool
}

// price finds the catalog price of a provider's model (cached per day;
// the catalog's name resolution is not free on the per-request path).
func (rt *runtime) price(provider, model string, at time.Time) (meter.Price, bool) {
	k := priceKey{provider, model, at.UTC().Unix() / 86400}
	if e, ok := rt.prices.Load(k); ok {
		pe := e.(priceEntry)
		return pe.p, pe.ok
	}
	p, ok := rt.lookupPrice(provider, model, at)
	rt.prices.Store(k, priceEntry{p, ok})
	return p, ok
}

// lookupPrice finds the catalog price of a provider's model: first under the
// provider's own key (config overrides), then under its catalog name.
func (rt *runtime) lookupPrice(provider, model string, at time.Time) (meter.Price, bool) {
	if p, ok := rt.catalog.Lookup(provider, model, at); ok {
		return p, true
	}
	if pc, ok := rt.cfg.Providers[provider]; ok && pc.Catalog != "" {
		return rt.catalog.Lookup(pc.Catalog, model, at)
	}
	return meter.Price{}, false
}

// unpriced counts usage that has no catalog price (metered as $0).
func (rt *runtime) unpriced(m *telemetry.Metrics, provider, model string) {
	m.Unpriced.WithLabelValues(rt.providerLabels.Value(provider), rt.targetLabels.Value(model)).Inc()
}

func (rt *runtime) maxOutput(provider, model string) int64 {
	if n := rt.catalog.MaxOutputTokens(provider, model); n > 0 {
		return int64(n)
	}
	if pc, ok := rt.cfg.Providers[provider]; ok && pc.Catalog != "" {
		return int64(rt.catalog.MaxOutputTokens(pc.Catalog, model))
	}
	return 0
}

// BuildCatalog is the price catalog a config asks for (the same build
// `tollgate validate` checks, preflight.BuildCatalog).
func BuildCatalog(c *config.Config) (*meter.Catalog, error) { return preflight.BuildCatalog(c) }
