package ads_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	sotw "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/tollgate-dev/tollgate/controlplane/ads"
	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func configYAML(aliases ...string) []byte {
	b := []byte("providers:\n  p: {base_url: \"http://127.0.0.1:8081\"}\nmodels:\n")
	for _, a := range aliases {
		b = fmt.Appendf(b, "  %s:\n    targets: [{provider: p, model: %s}]\n", a, a)
	}
	return b
}

const badConfig = "providers:\n  p: {base_url: \"http://127.0.0.1:8081\"}\nmodels:\n  a:\n    targets: [{provider: missing, model: a}]\n"

type fixture struct {
	srv  *ads.Server
	reg  *prometheus.Registry
	path string
	conn *grpc.ClientConn
	ctx  context.Context
	addr string
}

func start(t *testing.T, grpcClients bool, data []byte) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	reg := prometheus.NewRegistry()
	srv, err := ads.New(ads.Options{ConfigPath: path, Registerer: reg, GRPCClients: grpcClients})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return &fixture{srv: srv, reg: reg, path: path, conn: conn, ctx: ctx, addr: lis.Addr().String()}
}

func (f *fixture) write(t *testing.T, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(f.path, data, 0o644))
}

// metric reads one series from the registry (0 if absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// metricSum adds every series of a counter family.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func clusterNames(t *testing.T, rs []*anypb.Any) []string {
	t.Helper()
	var out []string
	for _, a := range rs {
		var c clusterv3.Cluster
		require.NoError(t, a.UnmarshalTo(&c))
		out = append(out, c.Name)
	}
	slices.Sort(out)
	return out
}

type fetched struct {
	resp *sotw.Response
	err  error
}

// fetch waits for the next response on a go-control-plane ADS client.
func fetch(t *testing.T, c sotw.ADSClient, within time.Duration) *sotw.Response {
	t.Helper()
	ch := make(chan fetched, 1)
	go func() {
		r, err := c.Fetch()
		ch <- fetched{r, err}
	}()
	select {
	case f := <-ch:
		require.NoError(t, f.err)
		return f.resp
	case <-time.After(within):
		t.Fatalf("no xDS response within %s", within)
	}
	return nil
}

func TestSOTWSubscribeAckUpdateNack(t *testing.T) {
	f := start(t, false, configYAML("alpha"))
	assert.Equal(t, 1.0, metric(t, f.reg, "tollgate_xds_snapshots_total", nil))
	assert.Equal(t, 1.0, metric(t, f.reg, "tollgate_config_last_reload_success", nil))

	// Two Envoys with different node ids get the same snapshot.
	var clients []sotw.ADSClient
	for _, id := range []string{"envoy-a", "envoy-b"} {
		c := sotw.NewADSClient(f.ctx, &corev3.Node{Id: id, Cluster: "tollgate"}, resource.ClusterType)
		require.NoError(t, c.InitConnect(f.conn))
		clients = append(clients, c)
	}
	wantAlpha := []string{translate.AliasClusterName("alpha"), translate.TargetClusterName("alpha", 0), translate.ExtProcCluster}
	slices.Sort(wantAlpha)
	for _, c := range clients {
		r := fetch(t, c, 5*time.Second)
		assert.Equal(t, wantAlpha, clusterNames(t, r.Resources))
		require.NoError(t, c.Ack())
	}

	// A valid change reaches every subscriber (pushed on the file event:
	// the fetch waits for the response, its deadline only bounds a hang).
	f.write(t, configYAML("alpha", "beta"))
	for _, c := range clients {
		r := fetch(t, c, 10*time.Second)
		assert.Contains(t, clusterNames(t, r.Resources), translate.AliasClusterName("beta"))
	}
	// The push happens inside SetSnapshot, just before the counters move.
	require.Eventually(t, func() bool {
		return metric(t, f.reg, "tollgate_xds_snapshots_total", nil) == 2 &&
			metric(t, f.reg, "tollgate_config_last_reload_success", nil) == 1
	}, 5*time.Second, 5*time.Millisecond)

	// envoy-a rejects it; envoy-b accepts. The NACK is counted by type.
	require.NoError(t, clients[0].Nack("cluster tollgate/alias/beta: invalid"))
	require.NoError(t, clients[1].Ack())
	require.Eventually(t, func() bool {
		return metric(t, f.reg, "tollgate_xds_nacks_total", map[string]string{"type": "cluster"}) == 1
	}, 5*time.Second, 10*time.Millisecond)

	// An invalid file keeps the last good snapshot and is reported.
	version := f.srv.Version()
	f.write(t, []byte(badConfig))
	require.Eventually(t, func() bool {
		return metric(t, f.reg, "tollgate_config_reload_errors_total", nil) == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 0.0, metric(t, f.reg, "tollgate_config_last_reload_success", nil))
	assert.Equal(t, version, f.srv.Version())
	snap, err := f.srv.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, version, snap.GetVersion(resource.ClusterType))

	// Fixing the file pushes again.
	f.write(t, configYAML("gamma"))
	r := fetch(t, clients[1], 3*time.Second)
	assert.Contains(t, clusterNames(t, r.Resources), translate.AliasClusterName("gamma"))
	require.Eventually(t, func() bool {
		return metric(t, f.reg, "tollgate_config_last_reload_success", nil) == 1
	}, 5*time.Second, 5*time.Millisecond)
}

func TestIdenticalConfigDoesNotPush(t *testing.T) {
	f := start(t, false, configYAML("alpha"))
	v := f.srv.Version()
	require.Len(t, v, 16)

	// Same meaning, different bytes: comments and key order.
	cfg, err := config.Parse("other.yaml", append([]byte("# a comment\n"), configYAML("alpha")...))
	require.NoError(t, err)
	changed, err := f.srv.Apply(cfg)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Equal(t, v, f.srv.Version())
	assert.Equal(t, 1.0, metric(t, f.reg, "tollgate_xds_snapshots_total", nil))

	// A real change, through the watched file (an Apply here could race
	// the watcher's initial read of the old file and count a third
	// snapshot): exactly one new snapshot, however the reads interleave.
	require.NoError(t, os.WriteFile(f.path, configYAML("alpha", "beta"), 0o644))
	require.Eventually(t, func() bool { return f.srv.Version() != v }, 10*time.Second, 5*time.Millisecond)
	v2 := f.srv.Version()
	// A second change is the barrier: the watcher handles file events in
	// order, so once its snapshot is counted every snapshot the first change
	// caused is counted too (no fixed quiet period to wait out).
	require.NoError(t, os.WriteFile(f.path, configYAML("alpha", "beta", "gamma"), 0o644))
	require.Eventually(t, func() bool {
		return f.srv.Version() != v2 && metric(t, f.reg, "tollgate_xds_snapshots_total", nil) >= 3
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 3.0, metric(t, f.reg, "tollgate_xds_snapshots_total", nil), "one snapshot per change")
}

func TestDeltaSubscribeAckUpdateNack(t *testing.T) {
	f := start(t, false, configYAML("alpha"))
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(f.conn).DeltaAggregatedResources(f.ctx)
	require.NoError(t, err)
	node := &corev3.Node{Id: "envoy-delta"}
	require.NoError(t, stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		Node: node, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: []string{"*"},
	}))
	recv := func() *discoveryv3.DeltaDiscoveryResponse {
		t.Helper()
		ch := make(chan *discoveryv3.DeltaDiscoveryResponse, 1)
		errc := make(chan error, 1)
		go func() {
			r, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			ch <- r
		}()
		select {
		case r := <-ch:
			return r
		case err := <-errc:
			t.Fatalf("delta recv: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no delta response within 5s")
		}
		return nil
	}
	names := func(r *discoveryv3.DeltaDiscoveryResponse) []string {
		var out []string
		for _, res := range r.Resources {
			out = append(out, res.Name)
		}
		slices.Sort(out)
		return out
	}
	r := recv()
	assert.Contains(t, names(r), translate.AliasClusterName("alpha"))
	require.NoError(t, stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: r.Nonce}))

	// Delta sends only what changed: the new alias's two clusters.
	f.write(t, configYAML("alpha", "beta"))
	r = recv()
	assert.Equal(t, []string{translate.AliasClusterName("beta"), translate.TargetClusterName("beta", 0)}, names(r))

	require.NoError(t, stream.Send(&discoveryv3.DeltaDiscoveryRequest{
		TypeUrl: resource.ClusterType, ResponseNonce: r.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "rejected"},
	}))
	require.Eventually(t, func() bool {
		return metric(t, f.reg, "tollgate_xds_nacks_total", map[string]string{"type": "cluster"}) == 1
	}, 5*time.Second, 10*time.Millisecond)

	// Removing an alias is announced as removed resources.
	f.write(t, configYAML("beta"))
	r = recv()
	assert.ElementsMatch(t, []string{translate.AliasClusterName("alpha"), translate.TargetClusterName("alpha", 0)}, r.RemovedResources)
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(badConfig), 0o644))
	_, err := ads.New(ads.Options{ConfigPath: path})
	require.Error(t, err)
	var ps config.Problems
	require.True(t, errors.As(err, &ps))
	assert.Equal(t, 5, ps[0].Line)

	_, err = ads.New(ads.Options{})
	require.Error(t, err)
}

func TestRunListens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	require.NoError(t, os.WriteFile(path, configYAML("alpha"), 0o644))
	srv, err := ads.New(ads.Options{ConfigPath: path, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:0", srv.ListenAddr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
