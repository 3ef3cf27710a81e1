package translate_test

import (
	"flag"
	fileaccesslogv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/out")

type goldenCase struct {
	name string
	load func(t *testing.T) *config.Config
	tr   func(*config.Config) (*translate.Resources, error)
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", "in", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, ins)
	var cases []goldenCase
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		cases = append(cases, goldenCase{name: name, load: loadFile(in), tr: translate.Envoy})
	}
	cases = append(cases,
		goldenCase{name: "default", tr: translate.Envoy, load: func(t *testing.T) *config.Config {
			c, err := config.Default()
			require.NoError(t, err)
			return c
		}},
		goldenCase{name: "grpc-fallback-three", tr: translate.GRPC, load: loadFile(filepath.Join("testdata", "in", "fallback-three.yaml"))},
	)
	return cases
}

func loadFile(path string) func(t *testing.T) *config.Config {
	return func(t *testing.T) *config.Config {
		t.Helper()
		c, err := config.Load(path)
		require.NoError(t, err)
		return c
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.tr(tc.load(t))
			require.NoError(t, err)
			require.NoError(t, r.Validate())
			snap, err := cachev3.NewSnapshot("1", r.ByType())
			require.NoError(t, err)
			require.NoError(t, snap.Consistent())

			got, err := r.YAML()
			require.NoError(t, err)
			out := filepath.Join("testdata", "out", tc.name+".yaml")
			if *update {
				require.NoError(t, os.WriteFile(out, got, 0o644))
			}
			want, err := os.ReadFile(out)
			require.NoError(t, err, "run go test ./controlplane/... -update to create %s", out)
			assert.Equal(t, string(want), string(got), "golden %s differs; run with -update and review the diff", out)
		})
	}
}

// TestReadmeShowsDefault keeps controlplane/README.md's rendered default
// config equal to the golden file.
func TestReadmeShowsDefault(t *testing.T) {
	const begin, end = "<!-- default.yaml begin -->\n", "<!-- default.yaml end -->"
	golden, err := os.ReadFile(filepath.Join("testdata", "out", "default.yaml"))
	require.NoError(t, err)
	readme := filepath.Join("..", "README.md")
	doc, err := os.ReadFile(readme)
	require.NoError(t, err)
	text := string(doc)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	require.True(t, i >= 0 && j > i, "README.md lacks the default.yaml markers")
	want := "```yaml\n" + string(golden) + "```\n"
	if *update {
		text = text[:i+len(begin)] + want + text[j:]
		require.NoError(t, os.WriteFile(readme, []byte(text), 0o644))
		return
	}
	assert.Equal(t, want, text[i+len(begin):j], "README.md is stale: go test ./controlplane/... -update")
}

func TestTranslateIsDeterministic(t *testing.T) {
	c := loadFile(filepath.Join("testdata", "in", "fallback-three.yaml"))(t)
	a, err := translate.Envoy(c)
	require.NoError(t, err)
	for range 5 {
		b, err := translate.Envoy(c)
		require.NoError(t, err)
		ya, _ := a.YAML()
		yb, _ := b.YAML()
		require.Equal(t, string(ya), string(yb))
	}
}

func hcmOf(t *testing.T, r *translate.Resources) *hcmv3.HttpConnectionManager {
	t.Helper()
	require.Len(t, r.Listeners, 1)
	var h hcmv3.HttpConnectionManager
	require.NoError(t, r.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&h))
	return &h
}

func TestFilterOrder(t *testing.T) {
	tests := []struct {
		in          string
		wantFilters []string
		wantExts    []string
	}{
		{"one-provider.yaml", []string{"tollgate.extproc", "envoy.filters.http.router"}, []string{"tollgate.extproc"}},
		{"wasm-on.yaml", []string{"tollgate-router", "tollgate.extproc", "envoy.filters.http.router"}, []string{"tollgate-router", "tollgate.extproc"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", tt.in))(t))
			require.NoError(t, err)
			h := hcmOf(t, r)
			var names []string
			for _, f := range h.HttpFilters {
				names = append(names, f.Name)
				if f.Name != "envoy.filters.http.router" {
					cd := f.GetConfigDiscovery()
					require.NotNil(t, cd, "%s must come by ECDS", f.Name)
					assert.NotNil(t, cd.ConfigSource.GetAds(), "%s ECDS source must be ADS", f.Name)
				}
			}
			assert.Equal(t, tt.wantFilters, names)
			assert.NotNil(t, h.GetRds().GetConfigSource().GetAds())
			var exts []string
			for _, e := range r.Extensions {
				exts = append(exts, e.Name)
			}
			assert.Equal(t, tt.wantExts, exts)
		})
	}
}

func TestFailureMode(t *testing.T) {
	for in, wantAllow := range map[string]bool{"failure-open.yaml": true, "failure-closed.yaml": false, "one-provider.yaml": false} {
		t.Run(in, func(t *testing.T) {
			r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", in))(t))
			require.NoError(t, err)
			var ep extprocv3.ExternalProcessor
			for _, e := range r.Extensions {
				if e.Name == translate.ExtProcFilterName {
					require.NoError(t, e.TypedConfig.UnmarshalTo(&ep))
				}
			}
			assert.Equal(t, wantAllow, ep.FailureModeAllow)
			assert.True(t, proto.Equal(translate.DownstreamProcessingMode(), ep.ProcessingMode))
		})
	}
}

func TestFallbackRoutesAndClusters(t *testing.T) {
	r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", "fallback-three.yaml"))(t))
	require.NoError(t, err)

	routes := r.Routes[0].VirtualHosts[0].Routes
	require.Len(t, routes, 2)
	rt := routes[0]
	assert.Empty(t, rt.Match.Headers, "Envoy routes never trust a header the client could send")
	require.Len(t, rt.Match.DynamicMetadata, 1)
	md := rt.Match.DynamicMetadata[0]
	assert.Equal(t, contract.MetadataNamespace, md.Filter)
	assert.Equal(t, contract.MetadataRoute, md.Path[0].GetKey())
	assert.Equal(t, "chat", md.Value.GetStringMatch().GetExact())
	act := rt.GetRoute()
	assert.Equal(t, translate.AliasClusterName("chat"), act.GetCluster())
	assert.True(t, act.GetAutoHostRewrite().GetValue())
	rp := act.RetryPolicy
	assert.Equal(t, "5xx,reset,connect-failure,retriable-status-codes", rp.RetryOn)
	assert.Equal(t, uint32(2), rp.NumRetries.GetValue())
	assert.Equal(t, []uint32{429, 503}, rp.RetriableStatusCodes)
	assert.Equal(t, "envoy.retry_priorities.previous_priorities", rp.RetryPriority.Name)
	assert.Equal(t, 90*time.Second, rp.PerTryTimeout.AsDuration(), "largest provider timeout of the alias")
	assert.Nil(t, act.GetHedgePolicy(), "no hedging")
	assert.Equal(t, int64(404), int64(routes[1].GetDirectResponse().GetStatus()))

	byName := map[string]*clusterv3.Cluster{}
	for _, c := range r.Clusters {
		byName[c.Name] = c
	}
	agg := byName[translate.AliasClusterName("chat")]
	require.NotNil(t, agg)
	var ac aggregatev3.ClusterConfig
	require.NoError(t, agg.GetClusterType().GetTypedConfig().UnmarshalTo(&ac))
	assert.Equal(t, []string{
		translate.TargetClusterName("chat", 0), translate.TargetClusterName("chat", 1), translate.TargetClusterName("chat", 2),
	}, ac.Clusters)
	// The upstream filter chain and the retry circuit breaker Envoy uses are
	// the router's cluster's: the aggregate.
	var apo httpv3.HttpProtocolOptions
	require.NoError(t, agg.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&apo))
	require.Len(t, apo.HttpFilters, 2)
	assert.Equal(t, "envoy.filters.http.ext_proc", apo.HttpFilters[0].Name)
	assert.Equal(t, "envoy.filters.http.upstream_codec", apo.HttpFilters[1].Name, "upstream codec must be last")
	var ep extprocv3.ExternalProcessor
	require.NoError(t, apo.HttpFilters[0].GetTypedConfig().UnmarshalTo(&ep))
	assert.Equal(t, contract.RoleUpstream, ep.GrpcService.InitialMetadata[0].Value)
	assert.Equal(t, extprocv3.ProcessingMode_SEND, ep.ProcessingMode.RequestHeaderMode)
	assert.Equal(t, contract.UpstreamRequestAttributes(), ep.RequestAttributes)
	require.NotNil(t, agg.CircuitBreakers)
	assert.Equal(t, uint32(1024), agg.CircuitBreakers.Thresholds[0].MaxRetries.GetValue())

	for i, wantTLS := range []bool{true, true, false} {
		c := byName[translate.TargetClusterName("chat", i)]
		require.NotNil(t, c)
		assert.Equal(t, wantTLS, c.TransportSocket != nil, "target %d TLS", i)
		if wantTLS {
			var tc tlsv3.UpstreamTlsContext
			require.NoError(t, c.TransportSocket.GetTypedConfig().UnmarshalTo(&tc))
			assert.NotEmpty(t, tc.Sni)
			assert.Equal(t, c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().Address, tc.Sni)
		}
		var po httpv3.HttpProtocolOptions
		require.NoError(t, c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po))
		assert.Empty(t, po.HttpFilters, "filters on a member cluster never run")
		md := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetMetadata().GetFilterMetadata()[contract.MetadataNamespace]
		require.NotNil(t, md, "target %d endpoint names its target", i)
		assert.NotEmpty(t, md.Fields[contract.HostProvider].GetStringValue())
		assert.NotEmpty(t, md.Fields[contract.HostModel].GetStringValue())
		assert.NotNil(t, c.OutlierDetection)
		assert.NotNil(t, c.CircuitBreakers)
	}
	assert.NotNil(t, byName[translate.ExtProcCluster])
}

func TestSingleTargetHasNoRetries(t *testing.T) {
	r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", "one-provider.yaml"))(t))
	require.NoError(t, err)
	act := r.Routes[0].VirtualHosts[0].Routes[0].GetRoute()
	assert.Equal(t, uint32(0), act.RetryPolicy.NumRetries.GetValue())
	assert.Nil(t, act.GetAutoHostRewrite(), "http provider: no host rewrite")
}

func TestTLSProviderHTTP2(t *testing.T) {
	r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", "tls-provider.yaml"))(t))
	require.NoError(t, err)
	for _, c := range r.Clusters {
		if c.Name != translate.TargetClusterName("claude", 0) {
			continue
		}
		var po httpv3.HttpProtocolOptions
		require.NoError(t, c.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po))
		assert.NotNil(t, po.GetExplicitHttpConfig().GetHttp2ProtocolOptions())
		var tc tlsv3.UpstreamTlsContext
		require.NoError(t, c.TransportSocket.GetTypedConfig().UnmarshalTo(&tc))
		assert.Equal(t, "api.example.com", tc.Sni)
		assert.Equal(t, []string{"h2"}, tc.CommonTlsContext.AlpnProtocols)
		return
	}
	t.Fatal("target cluster not found")
}

func TestParseTargetCluster(t *testing.T) {
	tests := []struct {
		name      string
		wantAlias string
		wantIndex int
		wantOK    bool
	}{
		{translate.TargetClusterName("gpt-4o", 0), "gpt-4o", 0, true},
		{translate.TargetClusterName("meta/llama-3.1", 12), "meta/llama-3.1", 12, true},
		{translate.AliasClusterName("gpt-4o"), "", 0, false},
		{"tollgate/target/x/-1", "", 0, false},
		{"tollgate/target/x/01", "", 0, false},
		{"tollgate/target//1", "", 0, false},
		{"tollgate_extproc", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, i, ok := translate.ParseTargetCluster(tt.name)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.wantAlias, a)
			assert.Equal(t, tt.wantIndex, i)
		})
	}
}

func TestBuildModelRejectsBadAddresses(t *testing.T) {
	tests := []struct {
		name string
		xds  string
		want string
	}{
		{"listener without port", "xds: {listener: 0.0.0.0}", "xds.listener"},
		{"listener bad port", "xds: {listener: '0.0.0.0:99999'}", "xds.listener"},
		{"extproc no host", "xds: {extproc_target: ':50051'}", "xds.extproc_target"},
		{"extproc empty pipe", "xds: {extproc_target: 'unix:'}", "xds.extproc_target"},
		{"wasm without tenants", "xds: {wasm: {enabled: true, path: /r.wasm}}", "xds.wasm.enabled"},
	}
	base := "providers: {p: {base_url: 'http://127.0.0.1:1'}}\nmodels: {m: {targets: [{provider: p, model: x}]}}\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(base+tt.xds+"\n"))
			require.NoError(t, err)
			_, err = translate.Envoy(c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestGRPCRoutesMatchHeader(t *testing.T) {
	r, err := translate.GRPC(loadFile(filepath.Join("testdata", "in", "fallback-three.yaml"))(t))
	require.NoError(t, err)
	var h hcmv3.HttpConnectionManager
	require.NoError(t, r.Listeners[0].ApiListener.ApiListener.UnmarshalTo(&h))
	rt := h.GetRouteConfig().VirtualHosts[0].Routes[0]
	assert.Equal(t, contract.HeaderRoute, rt.Match.Headers[0].Name)
	assert.Equal(t, "chat", rt.Match.Headers[0].GetStringMatch().GetExact())
	assert.Nil(t, rt.GetRoute().RetryPolicy)
	assert.Len(t, r.Endpoints, 3)
}

func TestRouteMatchesAlias(t *testing.T) {
	r, err := translate.Envoy(loadFile(filepath.Join("testdata", "in", "one-provider.yaml"))(t))
	require.NoError(t, err)
	var got []string
	for _, rt := range r.Routes[0].VirtualHosts[0].Routes {
		if a, ok := rt.Action.(*routev3.Route_Route); ok {
			got = append(got, a.Route.GetCluster())
		}
	}
	assert.Equal(t, []string{translate.AliasClusterName("gpt-4o-mini")}, got)
}

func FuzzTranslate(f *testing.F) {
	ins, _ := filepath.Glob(filepath.Join("testdata", "in", "*.yaml"))
	for _, in := range ins {
		b, err := os.ReadFile(in)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		r, err := translate.Envoy(c)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("emitted invalid resources: %v", err)
		}
		snap, err := cachev3.NewSnapshot("1", r.ByType())
		if err != nil {
			t.Fatal(err)
		}
		if err := snap.Consistent(); err != nil {
			t.Fatalf("inconsistent snapshot: %v", err)
		}
	})
}

func TestWasmPluginConfig(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no keys", "", `{"keys":[],"tiers":{}}`},
		{"keys and anonymous", `tenants:
  allow_anonymous: public
  keys:
    - {id: a, sha256: ABCDEF0000000000000000000000000000000000000000000000000000000001, tenant: t1, tier: gold}
    - {id: b, sha256: abcdef0000000000000000000000000000000000000000000000000000000002, tenant: t2}
`, `{"keys":[{"sha256":"abcdef0000000000000000000000000000000000000000000000000000000001","key_id":"a","tenant":"t1","tier":"gold"},` +
			`{"sha256":"abcdef0000000000000000000000000000000000000000000000000000000002","key_id":"b","tenant":"t2","tier":"default"}],` +
			`"anonymous":{"tenant":"public","tier":"default"},"tiers":{"default":{},"gold":{}}}`},
	}
	base := "providers: {p: {base_url: 'http://127.0.0.1:1'}}\nmodels: {m: {targets: [{provider: p, model: x}]}}\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(base+tt.yaml))
			require.NoError(t, err)
			got, err := translate.WasmPluginConfig(c)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got))
		})
	}
}

// TestListenerTLSAndAccessLog: xds.tls terminates TLS on the LLM listener
// and xds.access_log writes Envoy's file access log (JSON with the route and
// tenant Tollgate chose); both pass Envoy's proto validation.
func TestListenerTLSAndAccessLog(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`
providers:
  p: {base_url: "https://api.example.com"}
models:
  m: {targets: [{provider: p, model: x}]}
xds:
  tls: {cert_file: /etc/envoy/tls/tls.crt, key_file: /etc/envoy/tls/tls.key}
  access_log: {path: /dev/stdout, json: true}
`))
	require.NoError(t, err)
	r, err := translate.Envoy(cfg)
	require.NoError(t, err)
	fc := r.Listeners[0].GetFilterChains()[0]
	require.NotNil(t, fc.GetTransportSocket())
	var tc tlsv3.DownstreamTlsContext
	require.NoError(t, fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tc))
	assert.Equal(t, "/etc/envoy/tls/tls.crt", tc.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename())
	var hcm hcmv3.HttpConnectionManager
	require.NoError(t, fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm))
	require.Len(t, hcm.GetAccessLog(), 1)
	var fal fileaccesslogv3.FileAccessLog
	require.NoError(t, hcm.GetAccessLog()[0].GetTypedConfig().UnmarshalTo(&fal))
	assert.Equal(t, "/dev/stdout", fal.GetPath())
	assert.Equal(t, "%DYNAMIC_METADATA(tollgate:route)%", fal.GetLogFormat().GetJsonFormat().GetFields()["route"].GetStringValue())

	_, err = config.Parse("t.yaml", []byte("providers: {p: {base_url: \"https://a.example\"}}\nmodels: {m: {targets: [{provider: p, model: x}]}}\nxds: {tls: {cert_file: a}}\n"))
	require.Error(t, err, "a certificate without a key")
}
