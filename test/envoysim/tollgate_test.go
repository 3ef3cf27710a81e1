package envoysim

import (
	"fmt"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func TestDefaultFilterEqualsTranslator(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	assert.True(t, proto.Equal(translate.DownstreamExtProc(cfg), DefaultFilter()))
}

func TestFromTollgate(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	c, err := FromTollgate(cfg)
	require.NoError(t, err)
	assert.True(t, proto.Equal(translate.DownstreamExtProc(cfg), c.Filter))
	assert.True(t, proto.Equal(translate.UpstreamExtProc(cfg), c.UpstreamFilter))
	mr := c.MetadataRoutes
	require.NotNil(t, mr)
	assert.Equal(t, translate.MetadataNamespace, mr.Namespace)
	assert.Equal(t, translate.MetadataRoute, mr.Key)
	assert.Equal(t, translate.NotFoundBody, mr.NotFoundBody)
	require.Len(t, mr.Routes, len(cfg.Models))
	for alias, m := range cfg.Models {
		rt := mr.Routes[alias]
		assert.Equal(t, translate.AliasClusterName(alias), rt.Cluster)
		require.Len(t, rt.Targets, len(m.Targets), alias)
		for i, tg := range m.Targets {
			assert.Equal(t, translate.TargetClusterName(alias, i), rt.Targets[i].ClusterName)
			assert.Equal(t, strings.TrimSuffix(cfg.Providers[tg.Provider].BaseURL, "/"), rt.Targets[i].URL)
		}
		assert.Equal(t, len(m.Targets)-1, rt.Retry.NumRetries)
		assert.Equal(t, translate.RetryOn, rt.Retry.RetryOn)
		assert.Equal(t, []int{429, 503}, rt.Retry.RetriableStatusCodes)
	}
	// The result is a valid emulator config once the address is set.
	c.ExtProcAddr = "127.0.0.1:1"
	sim, err := New(c)
	require.NoError(t, err)
	require.NoError(t, sim.Close())
}

// TestFromTollgateMatchesControlPlane checks FromTollgate against the
// resources the control plane renders for the same config: every alias
// route matches the dynamic metadata FromTollgate routes on, with the same
// retry policy; the aggregate cluster lists the same target clusters in
// order; each target cluster runs the same upstream ext_proc filter; the
// catch-all answers NotFoundBody.
func TestFromTollgateMatchesControlPlane(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	c, err := FromTollgate(cfg)
	require.NoError(t, err)
	res, err := translate.Envoy(cfg)
	require.NoError(t, err)
	clusters := map[string]*clusterv3.Cluster{}
	for _, cl := range res.Clusters {
		clusters[cl.GetName()] = cl
	}
	require.Len(t, res.Routes, 1)
	seen := 0
	for _, vh := range res.Routes[0].GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if dr := r.GetDirectResponse(); dr != nil {
				assert.Equal(t, uint32(404), dr.GetStatus())
				assert.Equal(t, c.MetadataRoutes.NotFoundBody, dr.GetBody().GetInlineString())
				continue
			}
			act := r.GetRoute()
			require.NotNil(t, act, r.GetName())
			dm := r.GetMatch().GetDynamicMetadata()
			require.Len(t, dm, 1, "route %s matches dynamic metadata", r.GetName())
			assert.Equal(t, c.MetadataRoutes.Namespace, dm[0].GetFilter())
			require.Len(t, dm[0].GetPath(), 1)
			assert.Equal(t, c.MetadataRoutes.Key, dm[0].GetPath()[0].GetKey())
			alias := dm[0].GetValue().GetStringMatch().GetExact()
			want, ok := c.MetadataRoutes.Routes[alias]
			require.True(t, ok, alias)
			seen++
			assert.Equal(t, want.Cluster, act.GetCluster())
			rp := act.GetRetryPolicy()
			assert.Equal(t, want.Retry.RetryOn, rp.GetRetryOn())
			codes := make([]int, 0, len(rp.GetRetriableStatusCodes()))
			for _, sc := range rp.GetRetriableStatusCodes() {
				codes = append(codes, int(sc))
			}
			assert.Equal(t, want.Retry.RetriableStatusCodes, codes)
			assert.Equal(t, want.Retry.NumRetries, int(rp.GetNumRetries().GetValue()))
			assert.Equal(t, want.Retry.PerTryTimeout, rp.GetPerTryTimeout().AsDuration())

			agg := clusters[act.GetCluster()]
			require.NotNil(t, agg, act.GetCluster())
			var ac aggregatev3.ClusterConfig
			require.NoError(t, agg.GetClusterType().GetTypedConfig().UnmarshalTo(&ac))
			var names []string
			for _, tg := range want.Targets {
				names = append(names, tg.ClusterName)
			}
			assert.Equal(t, names, ac.GetClusters(), "targets in priority order")
			for _, tg := range want.Targets {
				tc := clusters[tg.ClusterName]
				require.NotNil(t, tc, tg.ClusterName)
				sa := tc.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
				assert.Equal(t, tg.URL, fmt.Sprintf("http://%s:%d", sa.GetAddress(), sa.GetPortValue()))
				var po httpv3.HttpProtocolOptions
				require.NoError(t, tc.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po))
				require.NotEmpty(t, po.GetHttpFilters())
				var up extprocfilterv3.ExternalProcessor
				require.NoError(t, po.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&up))
				assert.True(t, proto.Equal(c.UpstreamFilter, &up), "upstream filter of %s", tg.ClusterName)
			}
		}
	}
	assert.Equal(t, len(c.MetadataRoutes.Routes), seen)
}
