package ads_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/xds"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// backend is a gRPC server standing in for one provider target.
type backend struct {
	addr string
	srv  *grpc.Server
}

func startBackend(t *testing.T) *backend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return &backend{addr: lis.Addr().String(), srv: s}
}

// TestGRPCXDSClientFailover drives grpc-go's own xDS client against the
// server: it resolves xds:///tollgate through the API listener, routes on
// x-tollgate-route to the alias's aggregate cluster, gets the target
// clusters' endpoints by EDS, and fails over from the priority-0 target to
// priority 1 when the first backend stops.
func TestGRPCXDSClientFailover(t *testing.T) {
	b0, b1 := startBackend(t), startBackend(t)
	cfg := fmt.Appendf(nil, `providers:
  primary: {base_url: "http://%s"}
  backup: {base_url: "http://%s"}
models:
  chat:
    targets:
      - {provider: primary, model: m0}
      - {provider: backup, model: m1}
`, b0.addr, b1.addr)
	f := start(t, true, cfg)

	bootstrap := fmt.Appendf(nil, `{
  "xds_servers": [{"server_uri": %q, "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
  "node": {"id": "grpc-client-1", "cluster": "tollgate"}
}`, f.addr)
	rb, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	require.NoError(t, err)
	conn, err := grpc.NewClient("xds:///"+translate.ListenerName,
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(rb))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := healthpb.NewHealthClient(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, contract.HeaderRoute, "chat")

	call := func() (string, error) {
		var p peer.Peer
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		defer rcancel()
		_, err := client.Check(rctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		if err != nil {
			return "", err
		}
		return p.Addr.String(), nil
	}

	got, err := call()
	require.NoError(t, err)
	assert.Equal(t, b0.addr, got, "priority 0 serves while healthy")

	b0.srv.Stop()
	// The priority balancer moves to priority 1 once priority 0 reports
	// TRANSIENT_FAILURE; calls in between may fail.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err = call()
		if err == nil && got == b1.addr {
			break
		}
		require.True(t, time.Now().Before(deadline), "no failover to priority 1: last peer %q err %v", got, err)
	}
	for range 5 {
		got, err = call()
		require.NoError(t, err)
		assert.Equal(t, b1.addr, got, "stays on priority 1 while priority 0 is down")
	}
	assert.Equal(t, 0.0, metricSum(t, f.reg, "tollgate_xds_nacks_total"), "grpc-go accepted every resource")
}
