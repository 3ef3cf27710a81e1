package translate

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	upstreamcodecv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// Extension names used by clusters.
const (
	aggregateClusterType   = "envoy.clusters.aggregate"
	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	tlsSocketName          = "envoy.transport_sockets.tls"
	extProcFilterType      = "envoy.filters.http.ext_proc"
	upstreamCodecName      = "envoy.filters.http.upstream_codec"
)

// Cluster tuning shared by every provider target.
const (
	providerConnectTimeout = 5 * time.Second
	extProcConnectTimeout  = time.Second
	// outlierConsecutive5xx ejects a target after this many 5xx in a row;
	// with one host per target cluster, an ejected target makes the
	// aggregate cluster skip it until base_ejection_time passes.
	outlierConsecutive5xx = 5
	outlierInterval       = 10 * time.Second
	outlierBaseEjection   = 30 * time.Second
	maxConnections        = 1024
	maxRequests           = 1024
	// maxRetries bounds concurrent retries. Envoy checks the retry circuit
	// breaker of the router's cluster, which is the alias's aggregate
	// (router.cc Filter::decodeHeaders creates the retry state with the
	// route's cluster; retry_state_impl.cc checks its resourceManager), so
	// it is set there; Envoy's default of 3 would silently stop fallback
	// under load.
	maxRetries = 1024
)

// clusters is the aggregate cluster per alias and one cluster per target;
// for Envoy also the ext_proc cluster. eds selects the gRPC variant (EDS
// target clusters, no TLS and no upstream filters).
func (m *Model) clusters(eds bool) ([]*clusterv3.Cluster, error) {
	var out []*clusterv3.Cluster
	for _, a := range m.Aliases {
		agg, err := aggregateCluster(a, !eds)
		if err != nil {
			return nil, err
		}
		if !eds {
			if err := m.withUpstreamFilters(agg); err != nil {
				return nil, err
			}
		}
		out = append(out, agg)
		for _, t := range a.Targets {
			var c *clusterv3.Cluster
			if eds {
				c = edsTargetCluster(t)
			} else if c, err = m.targetCluster(t); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	if !eds {
		c, err := m.extProcCluster()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// aggregateCluster lists the alias's target clusters in fallback order: the
// aggregate load balancer gives the i-th cluster priority i, so traffic goes
// to the first healthy target and retries walk down the list. The router's
// cluster is this aggregate: its upstream filter chain and retry circuit
// breaker are the ones Envoy uses (withUpstreamFilters). Envoy's
// examples give it lb_policy CLUSTER_PROVIDED; grpc-go rejects that value and
// wants the default (ROUND_ROBIN), so the gRPC variant leaves it unset.
func aggregateCluster(a Alias, clusterProvided bool) (*clusterv3.Cluster, error) {
	names := make([]string, len(a.Targets))
	for i, t := range a.Targets {
		names[i] = t.Cluster
	}
	cfg, err := toAny(&aggregatev3.ClusterConfig{Clusters: names})
	if err != nil {
		return nil, err
	}
	c := &clusterv3.Cluster{
		Name:           a.Cluster,
		ConnectTimeout: durationpb.New(providerConnectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name:        aggregateClusterType,
			TypedConfig: cfg,
		}},
	}
	if clusterProvided {
		c.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
	}
	return c, nil
}

// targetCluster reaches one provider: DNS resolved, TLS with SNI for https,
// HTTP/2 when asked. Its endpoint carries the target's provider and model as
// metadata, which the upstream ext_proc filter of the aggregate reads per
// attempt. Upstream filters configured here would never run: Envoy builds the
// chain from the route's cluster, the aggregate (envoyproxy/envoy#29318).
// The connection (protocol, TLS) follows the chosen host's cluster, this one
// (cluster_manager_impl.cc ClusterEntry::httpConnPoolImpl).
func (m *Model) targetCluster(t Target) (*clusterv3.Cluster, error) {
	opts, err := protocolOptions(explicitHTTP(t.HTTP2), nil)
	if err != nil {
		return nil, err
	}
	la := loadAssignment(t.Cluster, t.Addr)
	la.Endpoints[0].LbEndpoints[0].Metadata = hostMetadata(t)
	c := &clusterv3.Cluster{
		Name:                 t.Cluster,
		ConnectTimeout:       durationpb.New(providerConnectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS},
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		LoadAssignment:       la,
		OutlierDetection: &clusterv3.OutlierDetection{
			Consecutive_5Xx:    wrapperspb.UInt32(outlierConsecutive5xx),
			Interval:           durationpb.New(outlierInterval),
			BaseEjectionTime:   durationpb.New(outlierBaseEjection),
			MaxEjectionPercent: wrapperspb.UInt32(100),
		},
		CircuitBreakers:               circuitBreakers(),
		TypedExtensionProtocolOptions: opts,
	}
	if t.TLS {
		ts, err := upstreamTLS(t)
		if err != nil {
			return nil, err
		}
		c.TransportSocket = ts
	}
	return c, nil
}

// withUpstreamFilters gives an alias's aggregate cluster the upstream
// ext_proc filter (then the upstream codec, which must come last) and the
// circuit breakers that bound its retries. UpstreamRequest builds the
// upstream filter chain from the router's cluster
// (source/common/router/upstream_request.cc,
// filter_manager_->createFilterChain(*parent_.cluster())), and with an
// aggregate that is the aggregate, on every attempt.
func (m *Model) withUpstreamFilters(agg *clusterv3.Cluster) error {
	ext, err := toAny(UpstreamExtProc(m.cfg))
	if err != nil {
		return err
	}
	codec, err := toAny(&upstreamcodecv3.UpstreamCodec{})
	if err != nil {
		return err
	}
	// The protocol option is required by the proto; connections use the
	// member cluster's own options.
	opts, err := protocolOptions(explicitHTTP(false), []*hcmv3.HttpFilter{
		{Name: extProcFilterType, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: ext}},
		{Name: upstreamCodecName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: codec}},
	})
	if err != nil {
		return err
	}
	agg.TypedExtensionProtocolOptions = opts
	agg.CircuitBreakers = circuitBreakers()
	return nil
}

func protocolOptions(proto *httpv3.HttpProtocolOptions_ExplicitHttpConfig_, filters []*hcmv3.HttpFilter) (map[string]*anypb.Any, error) {
	a, err := toAny(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: proto, HttpFilters: filters})
	if err != nil {
		return nil, err
	}
	return map[string]*anypb.Any{httpProtocolOptionsKey: a}, nil
}

func circuitBreakers() *clusterv3.CircuitBreakers {
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		Priority:           corev3.RoutingPriority_DEFAULT,
		MaxConnections:     wrapperspb.UInt32(maxConnections),
		MaxPendingRequests: wrapperspb.UInt32(maxRequests),
		MaxRequests:        wrapperspb.UInt32(maxRequests),
		MaxRetries:         wrapperspb.UInt32(maxRetries),
	}}}
}

// hostMetadata names the target an endpoint serves, for the ext_proc
// attributes built with contract.HostAttribute.
func hostMetadata(t Target) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		contract.MetadataNamespace: {Fields: map[string]*structpb.Value{
			contract.HostProvider: structpb.NewStringValue(t.Provider),
			contract.HostModel:    structpb.NewStringValue(t.Model),
		}},
	}}
}

func explicitHTTP(h2 bool) *httpv3.HttpProtocolOptions_ExplicitHttpConfig_ {
	e := &httpv3.HttpProtocolOptions_ExplicitHttpConfig{}
	if h2 {
		e.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}
	} else {
		e.ProtocolConfig = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}}
	}
	return &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: e}
}

// upstreamTLS verifies the provider against the system roots and its host
// name, with SNI set to the host.
func upstreamTLS(t Target) (*corev3.TransportSocket, error) {
	alpn := []string{"http/1.1"}
	if t.HTTP2 {
		alpn = []string{"h2"}
	}
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: t.Addr.Host,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: alpn,
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				SystemRootCerts: &tlsv3.CertificateValidationContext_SystemRootCerts{},
				MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
					SanType: tlsv3.SubjectAltNameMatcher_DNS,
					Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.Addr.Host}},
				}},
			}},
		},
	}
	a, err := toAny(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

func loadAssignment(cluster string, addr HostPort) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address:  socketAddress(addr),
					Hostname: addr.Host,
				}},
			}},
		}},
	}
}

// extProcCluster reaches `tollgate extproc` over HTTP/2 (gRPC), by TCP or a
// unix socket.
func (m *Model) extProcCluster() (*clusterv3.Cluster, error) {
	po, err := toAny(&httpv3.HttpProtocolOptions{UpstreamProtocolOptions: explicitHTTP(true)})
	if err != nil {
		return nil, err
	}
	c := &clusterv3.Cluster{
		Name:                          ExtProcCluster,
		ConnectTimeout:                durationpb.New(extProcConnectTimeout),
		LbPolicy:                      clusterv3.Cluster_ROUND_ROBIN,
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpProtocolOptionsKey: po},
	}
	if m.ExtProc.Pipe != "" {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
		c.LoadAssignment = &endpointv3.ClusterLoadAssignment{
			ClusterName: ExtProcCluster,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: m.ExtProc.Pipe}}},
				}},
			}}}},
		}
		return c, nil
	}
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
	c.LoadAssignment = loadAssignment(ExtProcCluster, m.ExtProc.HostPort)
	return c, nil
}

// edsTargetCluster is the gRPC variant of a target: endpoints come by EDS.
func edsTargetCluster(t Target) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 t.Cluster,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		LbPolicy:             clusterv3.Cluster_ROUND_ROBIN,
		ConnectTimeout:       durationpb.New(providerConnectTimeout),
	}
}

// endpoints are the EDS assignments of the gRPC variant, one per target.
func (m *Model) endpoints() []*endpointv3.ClusterLoadAssignment {
	var out []*endpointv3.ClusterLoadAssignment
	for _, a := range m.Aliases {
		for _, t := range a.Targets {
			la := loadAssignment(t.Cluster, t.Addr)
			// grpc-go rejects localities without an id and drops those
			// without a weight.
			la.Endpoints[0].Locality = &corev3.Locality{Region: "tollgate", Zone: t.Provider}
			la.Endpoints[0].LoadBalancingWeight = wrapperspb.UInt32(1)
			out = append(out, la)
		}
	}
	return out
}

// String names a target for logs.
func (t Target) String() string { return fmt.Sprintf("%s/%s@%s", t.Provider, t.Model, t.Addr) }
