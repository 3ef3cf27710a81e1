package envoysim

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Resources is an Envoy configuration the emulator runs as Envoy would:
// one listener whose first filter chain holds an HTTP connection manager,
// and the route configurations, clusters, endpoints and extension configs
// it refers to (what Envoy holds after LDS, RDS, CDS, EDS and ECDS, or in a
// static bootstrap's static_resources).
type Resources struct {
	Listener   *listenerv3.Listener
	Routes     []*routev3.RouteConfiguration
	Clusters   []*clusterv3.Cluster
	Endpoints  []*endpointv3.ClusterLoadAssignment
	Extensions []*corev3.TypedExtensionConfig
}

// HeaderFilter is a decoder filter that works on request headers only and
// runs in the connection manager's chain before ext_proc: Tollgate's
// proxy-wasm router. DecodeHeaders returns the new header list, or a local
// reply that ends the request (Envoy runs the reply through the encoder
// filters, ext_proc's response phase included), or an error (a broken VM:
// the emulator answers 500, FAIL_CLOSED).
type HeaderFilter interface {
	DecodeHeaders(headers [][2]string) (out [][2]string, reply *LocalReply, err error)
}

// LocalReply is a response a filter generates itself.
type LocalReply struct {
	Status  int
	Headers [][2]string
	Body    []byte
	Details string
}

// WasmFactory builds the HeaderFilter of an envoy.filters.http.wasm filter
// config (tests run the compiled module in wazero).
type WasmFactory func(*wasmfilterv3.Wasm) (HeaderFilter, error)

// Well-known names of the extensions the emulator runs.
const (
	extProcFilterName      = "envoy.filters.http.ext_proc"
	wasmFilterName         = "envoy.filters.http.wasm"
	routerFilterName       = "envoy.filters.http.router"
	upstreamCodecName      = "envoy.filters.http.upstream_codec"
	aggregateClusterType   = "envoy.clusters.aggregate"
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	previousPrioritiesName = "envoy.retry_priorities.previous_priorities"
	defaultMaxRetries      = 3 // CircuitBreakers.Thresholds.max_retries default
	defaultNumRetries      = 1 // RetryPolicy.num_retries default
)

// chain is the connection manager's decoder filter chain as the emulator
// runs it: header-only filters (wasm) first, then one ext_proc filter, then
// the router.
type chain struct {
	header  []HeaderFilter
	extProc *extprocfilterv3.ExternalProcessor // nil: no ext_proc filter
	table   *routeTable
}

// routeTable is a RouteConfiguration's single virtual host.
type routeTable struct {
	entries []*routeEntry
}

// routeEntry is one Route: its match and its action.
type routeEntry struct {
	name     string
	prefix   string // path prefix ("" = any)
	path     string // exact path
	headers  []headerMatch
	metadata []metadataMatch
	// Exactly one of direct and route is set.
	direct *localReply
	route  *route
}

type headerMatch struct {
	name, exact string
	present     bool // present_match
}

type metadataMatch struct {
	filter, key, exact string
}

// host is one upstream endpoint: where to connect and its metadata.
type host struct {
	cluster  string // the cluster the endpoint belongs to (a member of an aggregate)
	url      string
	metadata map[string]*structpb.Struct
}

// FromResources returns the Config that runs r: the HCM's ext_proc filter
// (downstream), its header filters (wasm, built by wasm), the route
// configuration, and for every route its cluster: the hosts by priority
// (an aggregate's members linearised in order,
// source/extensions/clusters/aggregate/cluster.cc linearizePrioritySet), the
// upstream ext_proc filter of the ROUTE's cluster's HttpProtocolOptions
// (source/common/router/upstream_request.cc: createFilterChain on the
// router's cluster; filters on an aggregate's members never run), the retry
// policy and the cluster's retry circuit breaker.
//
// hosts maps an endpoint address "host:port" to the base URL the emulator
// connects to (tests point provider hosts at fakes); other endpoints are
// reached at http(s)://host:port (https when the cluster has a transport
// socket). The caller sets ExtProcAddr (every envoy_grpc cluster of the
// ext_proc filters must exist in r and is reached there) and the rest.
// Anything the emulator does not model is refused with ErrUnsupported
// rather than run differently from Envoy.
func FromResources(r Resources, hosts map[string]string, wasm WasmFactory) (Config, error) {
	var errs []error
	clusters := make(map[string]*clusterv3.Cluster, len(r.Clusters))
	for _, c := range r.Clusters {
		clusters[c.GetName()] = c
	}
	eds := make(map[string]*endpointv3.ClusterLoadAssignment, len(r.Endpoints))
	for _, e := range r.Endpoints {
		eds[e.GetClusterName()] = e
	}
	exts := make(map[string]*anypb.Any, len(r.Extensions))
	for _, e := range r.Extensions {
		exts[e.GetName()] = e.GetTypedConfig()
	}
	if r.Listener == nil || len(r.Listener.GetFilterChains()) == 0 {
		return Config{}, errors.New("envoysim: resources: a listener with a filter chain is required")
	}
	var hcm hcmv3.HttpConnectionManager
	found := false
	for _, f := range r.Listener.GetFilterChains()[0].GetFilters() {
		if f.GetTypedConfig().MessageIs(&hcm) {
			if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
				return Config{}, fmt.Errorf("envoysim: listener %s: %w", r.Listener.GetName(), err)
			}
			found = true
		}
	}
	if !found {
		return Config{}, fmt.Errorf("envoysim: listener %s: no http_connection_manager", r.Listener.GetName())
	}
	cfg := Config{}
	if bl := r.Listener.GetPerConnectionBufferLimitBytes(); bl != nil {
		cfg.BufferLimit = int(bl.GetValue())
	}
	if mh := hcm.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); mh != nil {
		cfg.MaxHeadersCount = int(mh.GetValue())
	}
	ch := &chain{}
	for i, f := range hcm.GetHttpFilters() {
		tc := f.GetTypedConfig()
		if cd := f.GetConfigDiscovery(); cd != nil {
			tc = exts[f.GetName()]
			if tc == nil {
				tc = cd.GetDefaultConfig()
			}
			if tc == nil {
				errs = append(errs, fmt.Errorf("http_filters[%d] %s: ECDS config not found", i, f.GetName()))
				continue
			}
		}
		switch {
		case tc.MessageIs(&extprocfilterv3.ExternalProcessor{}):
			var ep extprocfilterv3.ExternalProcessor
			if err := tc.UnmarshalTo(&ep); err != nil {
				errs = append(errs, err)
				continue
			}
			if ch.extProc != nil {
				errs = append(errs, fmt.Errorf("http_filters[%d]: a second ext_proc filter: %w", i, ErrUnsupported))
			}
			if err := checkGrpcCluster(&ep, clusters); err != nil {
				errs = append(errs, fmt.Errorf("http_filters[%d]: %w", i, err))
			}
			ch.extProc = &ep
		case tc.MessageIs(&wasmfilterv3.Wasm{}):
			var w wasmfilterv3.Wasm
			if err := tc.UnmarshalTo(&w); err != nil {
				errs = append(errs, err)
				continue
			}
			if ch.extProc != nil {
				errs = append(errs, fmt.Errorf("http_filters[%d]: a wasm filter after ext_proc: %w", i, ErrUnsupported))
			}
			if wasm == nil {
				errs = append(errs, fmt.Errorf("http_filters[%d] %s: a wasm filter needs a WasmFactory: %w", i, f.GetName(), ErrUnsupported))
				continue
			}
			hf, err := wasm(&w)
			if err != nil {
				errs = append(errs, fmt.Errorf("http_filters[%d] %s: %w", i, f.GetName(), err))
				continue
			}
			ch.header = append(ch.header, hf)
		case tc.MessageIs(&routerv3.Router{}):
			if i != len(hcm.GetHttpFilters())-1 {
				errs = append(errs, fmt.Errorf("http_filters[%d]: the router must be the last filter", i))
			}
		default:
			errs = append(errs, fmt.Errorf("http_filters[%d] %s (%s): %w", i, f.GetName(), tc.GetTypeUrl(), ErrUnsupported))
		}
	}
	var rc *routev3.RouteConfiguration
	switch {
	case hcm.GetRouteConfig() != nil:
		rc = hcm.GetRouteConfig()
	case hcm.GetRds() != nil:
		for _, c := range r.Routes {
			if c.GetName() == hcm.GetRds().GetRouteConfigName() {
				rc = c
			}
		}
		if rc == nil {
			errs = append(errs, fmt.Errorf("rds %q: route configuration not found", hcm.GetRds().GetRouteConfigName()))
		}
	default:
		errs = append(errs, fmt.Errorf("http_connection_manager: route_config or rds: %w", ErrUnsupported))
	}
	if rc != nil {
		t, err := buildRouteTable(rc, clusters, eds, hosts)
		if err != nil {
			errs = append(errs, err)
		}
		ch.table = t
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("envoysim: resources: %w", err)
	}
	cfg.Filter = ch.extProc
	cfg.chain = ch
	return cfg, nil
}

// checkGrpcCluster requires the ext_proc filter's envoy_grpc cluster to
// exist (the emulator connects every ext_proc filter to ExtProcAddr).
func checkGrpcCluster(ep *extprocfilterv3.ExternalProcessor, clusters map[string]*clusterv3.Cluster) error {
	name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if name == "" {
		return fmt.Errorf("ext_proc grpc_service: only envoy_grpc: %w", ErrUnsupported)
	}
	if _, ok := clusters[name]; !ok {
		return fmt.Errorf("ext_proc grpc_service: unknown cluster %q", name)
	}
	return nil
}

// buildRouteTable resolves a RouteConfiguration with one virtual host.
func buildRouteTable(rc *routev3.RouteConfiguration, clusters map[string]*clusterv3.Cluster, eds map[string]*endpointv3.ClusterLoadAssignment, hosts map[string]string) (*routeTable, error) {
	if len(rc.GetVirtualHosts()) != 1 {
		return nil, fmt.Errorf("route %s: %d virtual hosts, only one is modelled: %w", rc.GetName(), len(rc.GetVirtualHosts()), ErrUnsupported)
	}
	vh := rc.GetVirtualHosts()[0]
	var errs []error
	t := &routeTable{}
	built := map[string]*resolvedCluster{}
	for i, r := range vh.GetRoutes() {
		e, err := buildRouteEntry(r, clusters, eds, hosts, built)
		if err != nil {
			errs = append(errs, fmt.Errorf("route %s virtual host %s routes[%d] %s: %w", rc.GetName(), vh.GetName(), i, r.GetName(), err))
			continue
		}
		t.entries = append(t.entries, e)
	}
	return t, errors.Join(errs...)
}

func buildRouteEntry(r *routev3.Route, clusters map[string]*clusterv3.Cluster, eds map[string]*endpointv3.ClusterLoadAssignment, hosts map[string]string, built map[string]*resolvedCluster) (*routeEntry, error) {
	e := &routeEntry{name: r.GetName()}
	m := r.GetMatch()
	switch ps := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		e.prefix = ps.Prefix
	case *routev3.RouteMatch_Path:
		e.path = ps.Path
	default:
		return nil, fmt.Errorf("path specifier %T: %w", ps, ErrUnsupported)
	}
	for _, h := range m.GetHeaders() {
		hm := headerMatch{name: strings.ToLower(h.GetName())}
		switch {
		case h.GetStringMatch().GetExact() != "":
			hm.exact = h.GetStringMatch().GetExact()
		case h.GetExactMatch() != "":
			hm.exact = h.GetExactMatch()
		case h.GetPresentMatch():
			hm.present = true
		default:
			return nil, fmt.Errorf("header matcher %s: %w", h.GetName(), ErrUnsupported)
		}
		if h.GetInvertMatch() {
			return nil, fmt.Errorf("header matcher %s: invert_match: %w", h.GetName(), ErrUnsupported)
		}
		e.headers = append(e.headers, hm)
	}
	for _, md := range m.GetDynamicMetadata() {
		if len(md.GetPath()) != 1 || md.GetValue().GetStringMatch().GetExact() == "" || md.GetInvert() {
			return nil, fmt.Errorf("dynamic_metadata matcher: only one key with string exact: %w", ErrUnsupported)
		}
		e.metadata = append(e.metadata, metadataMatch{filter: md.GetFilter(), key: md.GetPath()[0].GetKey(), exact: md.GetValue().GetStringMatch().GetExact()})
	}
	if m.GetQueryParameters() != nil || m.GetGrpc() != nil || m.GetRuntimeFraction() != nil {
		return nil, fmt.Errorf("route match (query/grpc/runtime): %w", ErrUnsupported)
	}
	if len(r.GetTypedPerFilterConfig()) > 0 {
		return nil, fmt.Errorf("typed_per_filter_config: %w", ErrUnsupported)
	}
	switch a := r.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		h := &headerMap{}
		for _, hv := range r.GetResponseHeadersToAdd() {
			v := hv.GetHeader().GetValue()
			if len(hv.GetHeader().GetRawValue()) > 0 {
				v = string(hv.GetHeader().GetRawValue())
			}
			h.set(strings.ToLower(hv.GetHeader().GetKey()), v)
		}
		e.direct = &localReply{status: int(a.DirectResponse.GetStatus()), headers: h,
			body: []byte(a.DirectResponse.GetBody().GetInlineString()), details: "direct_response"}
	case *routev3.Route_Route:
		rt, err := buildRoute(e.name, a.Route, clusters, eds, hosts, built)
		if err != nil {
			return nil, err
		}
		e.route = rt
	default:
		return nil, fmt.Errorf("action %T: %w", a, ErrUnsupported)
	}
	return e, nil
}

// resolvedCluster is a route's cluster: hosts by priority, its upstream
// ext_proc filter, its retry circuit breaker.
type resolvedCluster struct {
	name          string
	priorities    [][]host
	upFilter      *extprocfilterv3.ExternalProcessor
	maxRetries    int
	activeRetries *atomic.Int64 // the retries resource of the cluster's circuit breaker
}

func buildRoute(name string, a *routev3.RouteAction, clusters map[string]*clusterv3.Cluster, eds map[string]*endpointv3.ClusterLoadAssignment, hosts map[string]string, built map[string]*resolvedCluster) (*route, error) {
	cn, ok := a.GetClusterSpecifier().(*routev3.RouteAction_Cluster)
	if !ok {
		return nil, fmt.Errorf("cluster specifier %T: %w", a.GetClusterSpecifier(), ErrUnsupported)
	}
	if a.GetPrefixRewrite() != "" || a.GetRegexRewrite() != nil {
		return nil, fmt.Errorf("path rewrite: %w", ErrUnsupported)
	}
	rc, ok := built[cn.Cluster]
	if !ok {
		var err error
		rc, err = resolveCluster(cn.Cluster, clusters, eds, hosts)
		if err != nil {
			return nil, err
		}
		built[cn.Cluster] = rc
	}
	rt := &route{name: name, cluster: rc.name, maxRetries: rc.maxRetries, activeRetries: rc.activeRetries, upFilterConfig: rc.upFilter}
	for _, p := range rc.priorities {
		if len(p) != 1 {
			return nil, fmt.Errorf("cluster %s: %d hosts in one priority (load balancing within a priority): %w", rc.name, len(p), ErrUnsupported)
		}
		u, err := parseBase(p[0].url)
		if err != nil {
			return nil, fmt.Errorf("cluster %s host %s: %w", p[0].cluster, p[0].url, err)
		}
		rt.targets = append(rt.targets, target{cluster: p[0].cluster, url: u, metadata: p[0].metadata})
	}
	if rp := a.GetRetryPolicy(); rp != nil {
		on, err := parseRetryOn(rp.GetRetryOn())
		if err != nil {
			return nil, err
		}
		rt.retryOn = on
		rt.retries = defaultNumRetries
		if n := rp.GetNumRetries(); n != nil {
			rt.retries = int(n.GetValue())
		}
		rt.perTry = rp.GetPerTryTimeout().AsDuration()
		if len(rp.GetRetriableStatusCodes()) > 0 {
			rt.codes = map[int]bool{}
			for _, c := range rp.GetRetriableStatusCodes() {
				rt.codes[int(c)] = true
			}
		}
		if pr := rp.GetRetryPriority(); pr != nil {
			if pr.GetName() != previousPrioritiesName {
				return nil, fmt.Errorf("retry_priority %s: %w", pr.GetName(), ErrUnsupported)
			}
			var pp previouspriorities.PreviousPrioritiesConfig
			if err := pr.GetTypedConfig().UnmarshalTo(&pp); err != nil {
				return nil, err
			}
			if pp.GetUpdateFrequency() != 1 {
				return nil, fmt.Errorf("previous_priorities update_frequency %d: %w", pp.GetUpdateFrequency(), ErrUnsupported)
			}
			rt.prevPriorities = true
		}
		if len(rp.GetRetryHostPredicate()) > 0 {
			return nil, fmt.Errorf("retry_host_predicate: %w", ErrUnsupported)
		}
	}
	return rt, nil
}

func resolveCluster(name string, clusters map[string]*clusterv3.Cluster, eds map[string]*endpointv3.ClusterLoadAssignment, hosts map[string]string) (*resolvedCluster, error) {
	c, ok := clusters[name]
	if !ok {
		// Envoy answers 503 (cluster_not_found) at run time; a config that
		// names a missing cluster is a bug worth failing loudly.
		return nil, fmt.Errorf("cluster %q not found", name)
	}
	rc := &resolvedCluster{name: name, maxRetries: maxRetriesOf(c), activeRetries: new(atomic.Int64)}
	filters, err := upstreamFilters(c)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	rc.upFilter = filters
	if ct := c.GetClusterType(); ct != nil {
		if ct.GetName() != aggregateClusterType {
			return nil, fmt.Errorf("cluster %s type %s: %w", name, ct.GetName(), ErrUnsupported)
		}
		var agg aggregatev3.ClusterConfig
		if err := ct.GetTypedConfig().UnmarshalTo(&agg); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		for _, m := range agg.GetClusters() {
			mc, ok := clusters[m]
			if !ok {
				return nil, fmt.Errorf("aggregate %s: member cluster %q not found", name, m)
			}
			ps, err := priorities(mc, eds, hosts)
			if err != nil {
				return nil, fmt.Errorf("aggregate %s member %s: %w", name, m, err)
			}
			rc.priorities = append(rc.priorities, ps...)
		}
	} else {
		ps, err := priorities(c, eds, hosts)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		rc.priorities = ps
	}
	if len(rc.priorities) == 0 {
		return nil, fmt.Errorf("cluster %s: no endpoints", name)
	}
	return rc, nil
}

// upstreamFilters returns the ext_proc filter of a cluster's upstream filter
// chain (HttpProtocolOptions.http_filters), nil when it has none.
func upstreamFilters(c *clusterv3.Cluster) (*extprocfilterv3.ExternalProcessor, error) {
	a, ok := c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey]
	if !ok {
		return nil, nil
	}
	var po httpv3.HttpProtocolOptions
	if err := a.UnmarshalTo(&po); err != nil {
		return nil, err
	}
	var ep *extprocfilterv3.ExternalProcessor
	fs := po.GetHttpFilters()
	for i, f := range fs {
		tc := f.GetTypedConfig()
		switch {
		case tc.MessageIs(&upstreamcodecv3.UpstreamCodec{}):
			if i != len(fs)-1 {
				return nil, errors.New("upstream_codec must be the last upstream filter")
			}
		case tc.MessageIs(&extprocfilterv3.ExternalProcessor{}):
			ep = &extprocfilterv3.ExternalProcessor{}
			if err := tc.UnmarshalTo(ep); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("upstream filter %s: %w", f.GetName(), ErrUnsupported)
		}
	}
	if len(fs) > 0 {
		if !fs[len(fs)-1].GetTypedConfig().MessageIs(&upstreamcodecv3.UpstreamCodec{}) {
			return nil, errors.New("upstream http_filters must end with the upstream_codec filter")
		}
	}
	return ep, nil
}

func maxRetriesOf(c *clusterv3.Cluster) int {
	for _, t := range c.GetCircuitBreakers().GetThresholds() {
		if t.GetPriority() == corev3.RoutingPriority_DEFAULT && t.GetMaxRetries() != nil {
			return int(t.GetMaxRetries().GetValue())
		}
	}
	return defaultMaxRetries
}

// priorities lists a (non-aggregate) cluster's hosts by locality priority.
func priorities(c *clusterv3.Cluster, eds map[string]*endpointv3.ClusterLoadAssignment, hosts map[string]string) ([][]host, error) {
	if c.GetClusterType() != nil {
		return nil, fmt.Errorf("nested aggregate %s: %w", c.GetName(), ErrUnsupported)
	}
	la := c.GetLoadAssignment()
	if c.GetType() == clusterv3.Cluster_EDS {
		la = eds[c.GetName()]
		if la == nil {
			return nil, fmt.Errorf("EDS cluster %s: no endpoints", c.GetName())
		}
	}
	scheme := "http"
	if c.GetTransportSocket() != nil {
		scheme = "https"
	}
	byPrio := map[uint32][]host{}
	for _, l := range la.GetEndpoints() {
		for _, le := range l.GetLbEndpoints() {
			sa := le.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				return nil, fmt.Errorf("endpoint without a socket address: %w", ErrUnsupported)
			}
			addr := net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
			u, ok := hosts[addr]
			if !ok {
				u = scheme + "://" + addr
			}
			h := host{cluster: c.GetName(), url: u}
			if md := le.GetMetadata().GetFilterMetadata(); len(md) > 0 {
				h.metadata = make(map[string]*structpb.Struct, len(md))
				for k, v := range md {
					h.metadata[k] = proto.Clone(v).(*structpb.Struct)
				}
			}
			byPrio[l.GetPriority()] = append(byPrio[l.GetPriority()], h)
		}
	}
	keys := make([]int, 0, len(byPrio))
	for p := range byPrio {
		keys = append(keys, int(p))
	}
	sort.Ints(keys)
	out := make([][]host, 0, len(keys))
	for _, p := range keys {
		out = append(out, byPrio[uint32(p)])
	}
	return out, nil
}

// match is the route matcher (config_impl.cc RouteEntryImplBase::matchRoute:
// path, headers, dynamic metadata; all must hold).
func (e *routeEntry) match(h *headerMap, md map[string]*structpb.Struct) bool {
	path, _ := h.get(":path")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case e.path != "" && path != e.path:
		return false
	case e.prefix != "" && !strings.HasPrefix(path, e.prefix):
		return false
	}
	for _, hm := range e.headers {
		v, ok := h.getJoined(hm.name)
		if !ok || (!hm.present && v != hm.exact) {
			return false
		}
	}
	for _, mm := range e.metadata {
		if v, ok := metadataString(md, mm.filter, mm.key); !ok || v != mm.exact {
			return false
		}
	}
	return true
}

// pick returns the first matching entry (nil: no route).
func (t *routeTable) pick(h *headerMap, md map[string]*structpb.Struct) *routeEntry {
	for _, e := range t.entries {
		if e.match(h, md) {
			return e
		}
	}
	return nil
}
