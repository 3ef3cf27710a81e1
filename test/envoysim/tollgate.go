package envoysim

import (
	"fmt"
	"net/url"
	"sort"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// DefaultFilter returns the downstream ext_proc filter Tollgate ships:
// translate.DownstreamExtProc for the embedded default config
// (config.Default()). It panics only if that embedded config does not
// parse, which pkg/config's own tests rule out.
func DefaultFilter() *extprocfilterv3.ExternalProcessor {
	cfg, err := config.Default()
	if err != nil {
		panic(fmt.Sprintf("envoysim: embedded default config: %v", err))
	}
	return translate.DownstreamExtProc(cfg)
}

// FromTollgate returns the parts of a Config that Tollgate's control plane
// gives Envoy for c: the downstream filter (translate.DownstreamExtProc),
// the upstream filter (translate.UpstreamExtProc) and dynamic-metadata
// routes on translate.MetadataNamespace/translate.MetadataRoute, one per
// model alias, with the alias's targets in fallback order (cluster names
// from translate.TargetClusterName, URLs from providers.base_url without
// its path: Envoy's clusters only carry the address), the control plane's
// retry policy (translate.RetryOn, retriable status codes 429 and 503,
// targets-1 retries, per-try timeout = the largest provider timeout) and
// translate.NotFoundBody for unmatched requests. The caller sets
// ExtProcAddr and the rest.
func FromTollgate(c *config.Config) (Config, error) {
	aliases := make([]string, 0, len(c.Models))
	for a := range c.Models {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	mr := &MetadataRouting{
		Namespace:    translate.MetadataNamespace,
		Key:          translate.MetadataRoute,
		Routes:       make(map[string]Route, len(aliases)),
		NotFoundBody: translate.NotFoundBody,
	}
	for _, alias := range aliases {
		m := c.Models[alias]
		rt := Route{Cluster: translate.AliasClusterName(alias)}
		var perTry time.Duration
		for i, t := range m.Targets {
			p, ok := c.Providers[t.Provider]
			if !ok {
				return Config{}, fmt.Errorf("models.%s.targets[%d]: unknown provider %q", alias, i, t.Provider)
			}
			u, err := url.Parse(p.BaseURL)
			if err != nil {
				return Config{}, fmt.Errorf("providers.%s.base_url: %w", t.Provider, err)
			}
			rt.Targets = append(rt.Targets, Target{
				ClusterName: translate.TargetClusterName(alias, i),
				URL:         u.Scheme + "://" + u.Host,
			})
			perTry = max(perTry, p.Timeout)
		}
		rt.Retry = RetryPolicy{
			RetryOn: translate.RetryOn,
			// The control plane's retriable_status_codes (route.go);
			// TestFromTollgateMatchesControlPlane checks them against the
			// rendered route configuration.
			RetriableStatusCodes: []int{429, 503},
			NumRetries:           max(len(rt.Targets)-1, 0),
			PerTryTimeout:        perTry,
		}
		mr.Routes[alias] = rt
	}
	return Config{
		Filter:         translate.DownstreamExtProc(c),
		UpstreamFilter: translate.UpstreamExtProc(c),
		MetadataRoutes: mr,
	}, nil
}
