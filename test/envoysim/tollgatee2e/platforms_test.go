package tollgatee2e

import (
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/tollgate-dev/tollgate/test/extproctest"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
	"github.com/tollgate-dev/tollgate/test/envoysim/wasmfilter"
	"github.com/tollgate-dev/tollgate/test/fakeprovider"
)

// k8sConfig is the tollgate.yaml of envoy/k8s/configmap.yaml, as the Istio
// and Envoy Gateway quickstarts use it: provider credentials injected by the
// downstream role, the file ledger instead of the cluster's Redis.
func k8sConfig(t *testing.T) *config.Config {
	t.Helper()
	docs := manifests(t, "../../../envoy/k8s/configmap.yaml")
	var data string
	for _, d := range docs {
		if d["kind"] == "ConfigMap" {
			data = d["data"].(map[string]any)["tollgate.yaml"].(string)
		}
	}
	require.NotEmpty(t, data)
	data += "credentials: {inject: downstream}\n"
	cfg, err := config.Parse("configmap.yaml", []byte(data))
	require.NoError(t, err)
	cfg.Budgets.Ledger.Backend, cfg.Budgets.Ledger.Path = "file", t.TempDir()+"/ledger.jsonl"
	cfg.Listen.ExtProc, cfg.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

func manifests(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []map[string]any
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// platform is what a control plane that is not Tollgate's (Istio, Envoy
// Gateway) generates from the shipped manifests: the HTTP connection
// manager with the wasm router and Tollgate's ext_proc filter before the
// router, header-matched routes (alias -> provider host), one cluster per
// provider host reached with TLS, and the ext_proc cluster.
type platform struct {
	wasmConfig json.RawMessage
	extProc    *extprocfilterv3.ExternalProcessor
	routes     map[string]string // x-tollgate-route value -> provider host
}

func (p platform) resources(t *testing.T) envoysim.Resources {
	t.Helper()
	pack := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		require.NoError(t, err)
		return a
	}
	conf := pack(wrapperspb.String(string(p.wasmConfig)))
	wasm := pack(&wasmfilterv3.Wasm{Config: &wasmv3.PluginConfig{Name: "tollgate-router", Configuration: conf}})
	var vhRoutes []*routev3.Route
	clusters := []*clusterv3.Cluster{{Name: p.extProc.GetGrpcService().GetEnvoyGrpc().GetClusterName()}}
	seen := map[string]bool{}
	for alias, host := range p.routes {
		cluster := "outbound|443||" + host
		vhRoutes = append(vhRoutes, &routev3.Route{
			Name: alias,
			Match: &routev3.RouteMatch{
				PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*routev3.HeaderMatcher{{Name: "x-tollgate-route", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
					StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: alias}}}}},
			},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
		})
		if !seen[cluster] {
			seen[cluster] = true
			clusters = append(clusters, &clusterv3.Cluster{
				Name:            cluster,
				TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: pack(&tlsv3.UpstreamTlsContext{Sni: host})}},
				LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{{
					LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
							Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 443}}}},
					}}}},
				}}},
			})
		}
	}
	hcm := &hcmv3.HttpConnectionManager{
		HttpFilters: []*hcmv3.HttpFilter{
			{Name: "istio.tollgate-router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: wasm}},
			{Name: "tollgate.extproc", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(p.extProc)}},
			{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: pack(&routerv3.Router{})}},
		},
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: "http.80", VirtualHosts: []*routev3.VirtualHost{{Name: "*", Domains: []string{"*"}, Routes: vhRoutes}},
		}},
	}
	return envoysim.Resources{
		Listener: &listenerv3.Listener{Name: "0.0.0.0_80", FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: pack(hcm)},
		}}}}},
		Clusters: clusters,
	}
}

// extProcFrom decodes an ext_proc typed_config from a manifest value.
func extProcFrom(t *testing.T, v any) *extprocfilterv3.ExternalProcessor {
	t.Helper()
	m := v.(map[string]any)
	delete(m, "@type")
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	ep := &extprocfilterv3.ExternalProcessor{}
	require.NoError(t, protojson.Unmarshal(raw, ep))
	return ep
}

// startPlatform starts extproc on the k8s config and the platform's Envoy,
// with one fake provider standing in for api.openai.com.
func startPlatform(t *testing.T, p platform) (*deployment, string, chan envoysim.Exchange) {
	t.Helper()
	provider, _ := fakeprovider.StartTest(t, fakeprovider.Options{APIKey: primaryKey})
	cfg := k8sConfig(t)
	d := &deployment{primary: provider, secondary: fakeprovider.New(fakeprovider.Options{}), cfg: cfg}
	d.extProcAddr = extproctest.Start(t, cfg, map[string]string{"OPENAI_API_KEY": primaryKey})
	sc, err := envoysim.FromResources(p.resources(t), map[string]string{"api.openai.com:443": "http://" + provider.Addr()}, wasmfilter.Factory(routerModule(t)))
	require.NoError(t, err)
	base, _, exchanges := d.start(t, sc)
	return d, base, exchanges
}

// exercisePlatform starts extproc on the k8s config and the platform's
// Envoy, with one fake provider standing in for api.openai.com, and checks
// chat (JSON and SSE) and that no credential crosses.
func exercisePlatform(t *testing.T, p platform) {
	t.Helper()
	d, base, exchanges := startPlatform(t, p)
	provider := d.primary

	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.NotEmpty(t, resp.Header.Get("x-tollgate-cost-usd"))
	<-exchanges
	seen := [][]byte{dump(resp, body)}
	resp, body = chat(t, base, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), "data: [DONE]")
	<-exchanges
	seen = append(seen, dump(resp, body))
	reqs := provider.Requests()
	require.Len(t, reqs, 2)
	assert.Contains(t, string(reqs[0].Body), `"model":"gpt-4o-mini"`)
	assertNoCredentialCrossed(t, d, seen...)
	for _, r := range reqs {
		assert.Empty(t, r.Header.Get("x-api-key"))
	}
}

// TestIstioGateway runs envoy/istio: the EnvoyFilter's ext_proc filter and
// the WasmPlugin ahead of the router, the VirtualService routes on
// x-tollgate-route (set by ext_proc with clear_route_cache, honoured because
// request headers are sent), the ServiceEntry hosts as TLS clusters.
func TestIstioGateway(t *testing.T) {
	exercisePlatform(t, istioPlatform(t, "../../../envoy/istio/extproc-gateway.yaml"))
}

// TestIstioPreviousManifestFails runs the EnvoyFilter Tollgate shipped
// before request headers were sent (request_header_mode SKIP): the wasm
// router's default-model header picks a route at the headers, the body
// reply's header mutations (the client key removed, the provider key set)
// would be dropped, so the server refuses a body it never saw headers for,
// and the client key never reaches the provider.
func TestIstioPreviousManifestFails(t *testing.T) {
	p := istioPlatform(t, "../testdata/shipped-2026-12-06-istio-extproc-gateway.yaml")
	d, base, exchanges := startPlatform(t, p)
	resp, body := chat(t, base, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, string(body))
	<-exchanges
	assertNoCredentialCrossed(t, d)
}

func istioPlatform(t *testing.T, extProcFile string) platform {
	t.Helper()
	var p platform
	p.routes = map[string]string{}
	for _, d := range manifests(t, extProcFile) {
		patch := d["spec"].(map[string]any)["configPatches"].([]any)[0].(map[string]any)["patch"].(map[string]any)
		p.extProc = extProcFrom(t, patch["value"].(map[string]any)["typed_config"])
	}
	for _, d := range manifests(t, "../../../envoy/istio/wasmplugin.yaml") {
		raw, err := json.Marshal(d["spec"].(map[string]any)["pluginConfig"])
		require.NoError(t, err)
		p.wasmConfig = raw
	}
	for _, d := range manifests(t, "../../../envoy/istio/routes.yaml") {
		if d["kind"] != "VirtualService" {
			continue
		}
		for _, h := range d["spec"].(map[string]any)["http"].([]any) {
			h := h.(map[string]any)
			alias := h["match"].([]any)[0].(map[string]any)["headers"].(map[string]any)["x-tollgate-route"].(map[string]any)["exact"].(string)
			host := h["route"].([]any)[0].(map[string]any)["destination"].(map[string]any)["host"].(string)
			p.routes[alias] = host
		}
	}
	require.NotNil(t, p.extProc)
	require.NotEmpty(t, p.routes)
	return p
}

// TestEnvoyGateway runs envoy/gateway with credentials.inject: downstream
// (the quickstart's alternative to Envoy Gateway's credential injector,
// which the emulator does not model): the EnvoyExtensionPolicy's ext_proc
// (request headers sent, buffered bodies, mode override, the tollgate
// metadata namespace) and wasm router, the HTTPRoute rules on
// x-tollgate-route to the Backends.
func TestEnvoyGateway(t *testing.T) {
	var p platform
	p.routes = map[string]string{}
	backends := map[string]string{}
	for _, d := range manifests(t, "../../../envoy/gateway/backends.yaml") {
		if d["kind"] == "Backend" {
			ep := d["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)["fqdn"].(map[string]any)
			backends[d["metadata"].(map[string]any)["name"].(string)] = ep["hostname"].(string)
		}
	}
	for _, d := range manifests(t, "../../../envoy/gateway/extension-policy.yaml") {
		if d["kind"] != "EnvoyExtensionPolicy" {
			continue
		}
		spec := d["spec"].(map[string]any)
		raw, err := json.Marshal(spec["wasm"].([]any)[0].(map[string]any)["config"])
		require.NoError(t, err)
		p.wasmConfig = raw
		ep := spec["extProc"].([]any)[0].(map[string]any)
		pm := ep["processingMode"].(map[string]any)
		mode := &extprocfilterv3.ProcessingMode{
			RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
			RequestTrailerMode: extprocfilterv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		}
		// Envoy Gateway: a present request/response section sends the
		// headers; body Buffered is BUFFERED.
		if r, ok := pm["request"].(map[string]any); ok {
			mode.RequestHeaderMode = extprocfilterv3.ProcessingMode_SEND
			if r["body"] == "Buffered" {
				mode.RequestBodyMode = extprocfilterv3.ProcessingMode_BUFFERED
			}
		}
		var respAttrs []string
		if r, ok := pm["response"].(map[string]any); ok {
			mode.ResponseHeaderMode = extprocfilterv3.ProcessingMode_SEND
			if r["body"] == "Buffered" {
				mode.ResponseBodyMode = extprocfilterv3.ProcessingMode_BUFFERED
			}
			for _, a := range asList(r["attributes"]) {
				respAttrs = append(respAttrs, a.(string))
			}
		}
		var ns []string
		for _, n := range ep["metadata"].(map[string]any)["writableNamespaces"].([]any) {
			ns = append(ns, n.(string))
		}
		p.extProc = &extprocfilterv3.ExternalProcessor{
			GrpcService:        &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "envoyextensionpolicy/default/tollgate/extproc/0"}}},
			ProcessingMode:     mode,
			AllowModeOverride:  pm["allowModeOverride"] == true,
			FailureModeAllow:   ep["failOpen"] == true,
			ResponseAttributes: respAttrs,
			MetadataOptions:    &extprocfilterv3.MetadataOptions{ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: ns}},
		}
	}
	for _, d := range manifests(t, "../../../envoy/gateway/httproute.yaml") {
		if d["kind"] != "HTTPRoute" {
			continue
		}
		for _, r := range d["spec"].(map[string]any)["rules"].([]any) {
			r := r.(map[string]any)
			matches, _ := r["matches"].([]any)
			if len(matches) == 0 {
				continue
			}
			headers, _ := matches[0].(map[string]any)["headers"].([]any)
			if len(headers) == 0 {
				continue
			}
			alias := headers[0].(map[string]any)["value"].(string)
			backend := r["backendRefs"].([]any)[0].(map[string]any)["name"].(string)
			p.routes[alias] = backends[backend]
		}
	}
	require.NotNil(t, p.extProc)
	require.NotEmpty(t, p.routes)
	exercisePlatform(t, p)
}

// asList is a manifest list value, or nil when absent.
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
