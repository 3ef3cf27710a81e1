package envoy_test

import (
	"encoding/json"
	"flag"
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3" // resolves the bootstrap's Any
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
)

var updateBootstrap = flag.Bool("update-bootstrap", false, "rewrite envoy/bootstrap.yaml from translate.Bootstrap")

// bootstrapOpts are the options envoy/bootstrap.yaml is generated with.
var bootstrapOpts = translate.BootstrapOptions{NodeID: "tollgate-envoy", XDSAddress: "127.0.0.1:18000"}

// parseBootstrap reads Envoy bootstrap YAML strictly: YAML -> JSON ->
// protojson with unknown fields rejected and Any types resolved.
func parseBootstrap(t *testing.T, data []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	js, err := json.Marshal(v)
	require.NoError(t, err)
	var b bootstrapv3.Bootstrap
	require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(js, &b))
	return &b
}

func TestBootstrapFileIsGenerated(t *testing.T) {
	want, err := translate.Bootstrap(bootstrapOpts)
	require.NoError(t, err)
	if *updateBootstrap {
		require.NoError(t, os.WriteFile("bootstrap.yaml", want, 0o644))
	}
	got, err := os.ReadFile("bootstrap.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "envoy/bootstrap.yaml is stale: go test ./envoy/ -run Bootstrap -update-bootstrap")
}

func TestBootstrapFileParsesAndValidates(t *testing.T) {
	data, err := os.ReadFile("bootstrap.yaml")
	require.NoError(t, err)
	b := parseBootstrap(t, data)
	require.NoError(t, b.ValidateAll())

	assert.Equal(t, "tollgate-envoy", b.Node.Id)
	assert.Equal(t, "127.0.0.1", b.Admin.Address.GetSocketAddress().Address)
	assert.Equal(t, uint32(9901), b.Admin.Address.GetSocketAddress().GetPortValue())
	dr := b.DynamicResources
	assert.NotNil(t, dr.LdsConfig.GetAds())
	assert.NotNil(t, dr.CdsConfig.GetAds())
	assert.Equal(t, translate.XDSCluster, dr.AdsConfig.GrpcServices[0].GetEnvoyGrpc().ClusterName)
	require.Len(t, b.StaticResources.Clusters, 1)
	c := b.StaticResources.Clusters[0]
	assert.Equal(t, translate.XDSCluster, c.Name)
	sa := c.LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress()
	assert.Equal(t, "127.0.0.1", sa.Address)
	assert.Equal(t, uint32(18000), sa.GetPortValue())
	assert.Contains(t, c.TypedExtensionProtocolOptions, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "ADS needs HTTP/2")
}

func TestBootstrapUnknownFieldFails(t *testing.T) {
	data, err := os.ReadFile("bootstrap.yaml")
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(data, &v))
	v["not_a_field"] = true
	js, err := json.Marshal(v)
	require.NoError(t, err)
	var b bootstrapv3.Bootstrap
	require.Error(t, protojson.Unmarshal(js, &b))
}

func TestBootstrapOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    translate.BootstrapOptions
		wantErr bool
		check   func(t *testing.T, b *bootstrapv3.Bootstrap)
	}{
		{name: "node id required", opts: translate.BootstrapOptions{}, wantErr: true},
		{name: "bad xds address", opts: translate.BootstrapOptions{NodeID: "n", XDSAddress: "nope"}, wantErr: true},
		{name: "bad admin address", opts: translate.BootstrapOptions{NodeID: "n", AdminAddress: "x:0"}, wantErr: true},
		{name: "custom", opts: translate.BootstrapOptions{NodeID: "edge-1", NodeCluster: "edge", XDSAddress: "xds.tollgate.svc:18000", AdminAddress: "0.0.0.0:9000"},
			check: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				assert.Equal(t, "edge-1", b.Node.Id)
				assert.Equal(t, "edge", b.Node.Cluster)
				assert.Equal(t, "xds.tollgate.svc", b.StaticResources.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress().Address)
				assert.Equal(t, uint32(9000), b.Admin.Address.GetSocketAddress().GetPortValue())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := translate.Bootstrap(tt.opts)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			b := parseBootstrap(t, out)
			require.NoError(t, b.ValidateAll())
			tt.check(t, b)
		})
	}
}
