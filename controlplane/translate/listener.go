package translate

import (
	"fmt"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	fileaccesslogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// bufferHeadroom is how far above listen.max_body_bytes Envoy still
// buffers a request body for Tollgate to reject it itself.
const bufferHeadroom = 1 << 20

// BufferLimit is the per-connection buffer limit Envoy needs for c: the
// largest body Tollgate accepts plus headroom, capped below 4 GiB.
func BufferLimit(c *config.Config) uint32 {
	n := c.Listen.MaxBodyBytes
	if n <= 0 {
		n = config.DefaultMaxBodyBytes
	}
	n += bufferHeadroom
	if n > 1<<32-1 {
		n = 1<<32 - 1
	}
	return uint32(n)
}

// Well-known Envoy extension names.
const (
	hcmFilterName    = "envoy.filters.network.http_connection_manager"
	routerFilterName = "envoy.filters.http.router"
)

// adsSource is a ConfigSource that says "over the same ADS stream".
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func toAny(m proto.Message) (*anypb.Any, error) {
	a, err := anypb.New(m)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", proto.MessageName(m), err)
	}
	return a, nil
}

// httpFilters decides the downstream filter order, in one place: the wasm
// router (headers only, cheapest rejections first), ext_proc in the
// downstream role, then the router. The first two are ECDS references, so a
// config change updates them without touching (and draining) the listener.
func (m *Model) httpFilters() ([]*hcmv3.HttpFilter, error) {
	exts, err := m.discoveredFilters()
	if err != nil {
		return nil, err
	}
	var out []*hcmv3.HttpFilter
	for _, ext := range exts {
		out = append(out, &hcmv3.HttpFilter{
			Name: ext.name,
			ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
				ConfigSource: adsSource(),
				TypeUrls:     []string{"type.googleapis.com/" + string(proto.MessageName(ext.config))},
			}},
		})
	}
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	return append(out, router), nil
}

func routerFilter() (*hcmv3.HttpFilter, error) {
	a, err := toAny(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: routerFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

type discovered struct {
	name   string
	config proto.Message
}

// discoveredFilters are the filters delivered by ECDS, in filter-chain order.
func (m *Model) discoveredFilters() ([]discovered, error) {
	var out []discovered
	if m.WasmPath != "" {
		w, err := m.wasmFilter()
		if err != nil {
			return nil, err
		}
		out = append(out, discovered{WasmFilterName, w})
	}
	return append(out, discovered{ExtProcFilterName, DownstreamExtProc(m.cfg)}), nil
}

// extensionConfigs are the ECDS resources the listener's filters reference.
func (m *Model) extensionConfigs() ([]*corev3.TypedExtensionConfig, error) {
	exts, err := m.discoveredFilters()
	if err != nil {
		return nil, err
	}
	var out []*corev3.TypedExtensionConfig
	for _, ext := range exts {
		a, err := toAny(ext.config)
		if err != nil {
			return nil, err
		}
		out = append(out, &corev3.TypedExtensionConfig{Name: ext.name, TypedConfig: a})
	}
	return out, nil
}

func (m *Model) hcm(filters []*hcmv3.HttpFilter) *hcmv3.HttpConnectionManager {
	h := &hcmv3.HttpConnectionManager{
		StatPrefix: "tollgate",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			ConfigSource:    adsSource(),
			RouteConfigName: RouteConfigName,
		}},
		HttpFilters: filters,
	}
	return h
}

// accessLog is the listener's file access log (xds.access_log): Envoy's
// default text format, or JSON with the fields an LLM gateway operator
// looks for (the route Tollgate chose, the upstream host, the response
// flags and details, timings).
func accessLog(a *config.AccessLog) ([]*accesslogv3.AccessLog, error) {
	fal := &fileaccesslogv3.FileAccessLog{Path: a.Path}
	if a.JSON {
		fal.AccessLogFormat = &fileaccesslogv3.FileAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
			Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: &structpb.Struct{Fields: map[string]*structpb.Value{
				"start_time":     structpb.NewStringValue("%START_TIME%"),
				"method":         structpb.NewStringValue("%REQ(:METHOD)%"),
				"path":           structpb.NewStringValue("%REQ(:PATH)%"),
				"status":         structpb.NewStringValue("%RESPONSE_CODE%"),
				"details":        structpb.NewStringValue("%RESPONSE_CODE_DETAILS%"),
				"flags":          structpb.NewStringValue("%RESPONSE_FLAGS%"),
				"duration_ms":    structpb.NewStringValue("%DURATION%"),
				"route":          structpb.NewStringValue("%DYNAMIC_METADATA(" + contract.MetadataNamespace + ":" + contract.MetadataRoute + ")%"),
				"tenant":         structpb.NewStringValue("%DYNAMIC_METADATA(" + contract.MetadataNamespace + ":" + contract.MetadataTenant + ")%"),
				"upstream_host":  structpb.NewStringValue("%UPSTREAM_HOST%"),
				"upstream_retry": structpb.NewStringValue("%UPSTREAM_REQUEST_ATTEMPT_COUNT%"),
				"request_id":     structpb.NewStringValue("%REQ(X-REQUEST-ID)%"),
			}}},
		}}
	}
	tc, err := toAny(fal)
	if err != nil {
		return nil, err
	}
	return []*accesslogv3.AccessLog{{Name: "envoy.access_loggers.file", ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: tc}}}, nil
}

// downstreamTLS is the listener's transport socket for xds.tls.
func downstreamTLS(t *config.ListenerTLS) (*corev3.TransportSocket, error) {
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificates: []*tlsv3.TlsCertificate{{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: t.CertFile}},
			PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: t.KeyFile}},
		}},
		AlpnProtocols: []string{"h2", "http/1.1"},
	}}
	a, err := toAny(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{Name: tlsSocketName, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}, nil
}

// listener is the LLM listener Envoy binds at xds.listener.
func (m *Model) listener() (*listenerv3.Listener, error) {
	filters, err := m.httpFilters()
	if err != nil {
		return nil, err
	}
	hc := m.hcm(filters)
	if a := m.cfg.XDS.AccessLog; a != nil {
		if hc.AccessLog, err = accessLog(a); err != nil {
			return nil, err
		}
	}
	h, err := toAny(hc)
	if err != nil {
		return nil, err
	}
	var ts *corev3.TransportSocket
	if t := m.cfg.XDS.TLS; t != nil {
		if ts, err = downstreamTLS(t); err != nil {
			return nil, err
		}
	}
	return &listenerv3.Listener{
		Name:    ListenerName,
		Address: socketAddress(m.Listener),
		// The ext_proc filter buffers the request body up to the stream's
		// buffer limit, which starts at this value (conn_manager_impl.cc;
		// a route entry may only raise it, and the catch-all route that is
		// cached before ext_proc answers is a direct response). Over it
		// Envoy answers a plain-text 413 before Tollgate sees the body, so
		// the limit leaves room above listen.max_body_bytes for Tollgate's
		// own OpenAI-shaped 413.
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(BufferLimit(m.cfg)),
		FilterChains: []*listenerv3.FilterChain{{
			TransportSocket: ts,
			Filters: []*listenerv3.Filter{{
				Name:       hcmFilterName,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: h},
			}},
		}},
	}, nil
}

// apiListener is the gRPC client variant: no address, an HCM api_listener
// with only the router filter and the route configuration inline
// (go-control-plane's Consistent() does not follow api_listener RDS names).
func (m *Model) apiListener(rc *routev3.RouteConfiguration) (*listenerv3.Listener, error) {
	router, err := routerFilter()
	if err != nil {
		return nil, err
	}
	hcm := m.hcm([]*hcmv3.HttpFilter{router})
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	h, err := toAny(hcm)
	if err != nil {
		return nil, err
	}
	return &listenerv3.Listener{
		Name:        ListenerName,
		ApiListener: &listenerv3.ApiListener{ApiListener: h},
	}, nil
}

func socketAddress(hp HostPort) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       hp.Host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: hp.Port},
	}}}
}
