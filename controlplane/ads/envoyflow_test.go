package ads_test

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
)

// TestEnvoyStyleSubscriptions subscribes on one SotW ADS stream the way
// Envoy does with the bootstrap in envoy/bootstrap.yaml: LDS and CDS as
// wildcards, then RDS and ECDS by the names the listener references. A
// failure-mode change then arrives as an ECDS update.
func TestEnvoyStyleSubscriptions(t *testing.T) {
	f := start(t, false, configYAML("alpha"))
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).StreamAggregatedResources(f.ctx)
	require.NoError(t, err)

	type result struct {
		r   *discoveryv3.DiscoveryResponse
		err error
	}
	responses := make(chan result, 16)
	go func() {
		for {
			r, err := stream.Recv()
			responses <- result{r, err}
			if err != nil {
				return
			}
		}
	}()
	recv := func() *discoveryv3.DiscoveryResponse {
		t.Helper()
		select {
		case res := <-responses:
			require.NoError(t, res.err)
			return res.r
		case <-time.After(5 * time.Second):
			t.Fatal("no response within 5s")
		}
		return nil
	}

	node := &corev3.Node{Id: "tollgate-envoy", Cluster: "tollgate"}
	subs := []*discoveryv3.DiscoveryRequest{
		{Node: node, TypeUrl: resource.ListenerType},
		{TypeUrl: resource.ClusterType},
		{TypeUrl: resource.RouteType, ResourceNames: []string{translate.RouteConfigName}},
		{TypeUrl: resource.ExtensionConfigType, ResourceNames: []string{translate.ExtProcFilterName}},
	}
	for _, req := range subs {
		require.NoError(t, stream.Send(req))
	}
	got := map[string]*discoveryv3.DiscoveryResponse{}
	for range subs {
		r := recv()
		got[r.TypeUrl] = r
	}
	require.Len(t, got, 4)
	assert.Len(t, got[resource.ListenerType].Resources, 1)
	assert.Len(t, got[resource.ClusterType].Resources, 3)
	assert.Len(t, got[resource.RouteType].Resources, 1)
	require.Len(t, got[resource.ExtensionConfigType].Resources, 1)
	for _, r := range got {
		assert.Equal(t, f.srv.Version(), r.VersionInfo)
	}
	// ACK everything, as Envoy does.
	for _, req := range subs {
		r := got[req.TypeUrl]
		require.NoError(t, stream.Send(&discoveryv3.DiscoveryRequest{
			TypeUrl: req.TypeUrl, ResourceNames: req.ResourceNames, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce,
		}))
	}

	f.write(t, append(configYAML("alpha"), []byte("failure_mode:\n  extproc: open\n")...))
	deadline := time.After(5 * time.Second)
	for {
		var r *discoveryv3.DiscoveryResponse
		select {
		case res := <-responses:
			require.NoError(t, res.err)
			r = res.r
		case <-deadline:
			t.Fatal("no ECDS update within 5s")
		}
		if r.TypeUrl != resource.ExtensionConfigType {
			continue
		}
		var tec corev3.TypedExtensionConfig
		require.NoError(t, r.Resources[0].UnmarshalTo(&tec))
		var ep extprocv3.ExternalProcessor
		require.NoError(t, tec.TypedConfig.UnmarshalTo(&ep))
		assert.True(t, ep.FailureModeAllow)
		break
	}
}
