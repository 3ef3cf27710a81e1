package ads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// snapshotKey is the one cache key every node maps to.
const snapshotKey = "tollgate"

// allNodes is the NodeHash that gives every node the same snapshot.
type allNodes struct{}

func (allNodes) ID(*corev3.Node) string { return snapshotKey }

// Options configure a Server.
type Options struct {
	// ConfigPath is the tollgate.yaml to serve and watch (required).
	ConfigPath string
	// Listen overrides xds.listen from the config (e.g. "127.0.0.1:0").
	Listen string
	// Registerer receives the server's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to a logger that discards.
	Logger *slog.Logger
	// GRPCClients serves proxyless gRPC clients (grpc-go's xds:/// resolver)
	// instead of Envoy: resources from translate.GRPC, and a cache that
	// answers requests for a subset of a type's resources (gRPC asks for
	// clusters by name, one aggregate at a time; Envoy's CDS is wildcard and
	// gets go-control-plane's ADS ordering instead).
	GRPCClients bool
}

// Server is the ADS server. Create it with New, start it with Run or Serve.
type Server struct {
	path      string
	listen    string
	log       *slog.Logger
	translate func(*config.Config) (*translate.Resources, error)
	metrics   *metrics
	cache     cachev3.SnapshotCache

	mu      sync.Mutex
	version string
	lastErr string // why the latest reload was rejected; "" after a good one

	nodesMu sync.Mutex
	nodes   map[int64]*corev3.Node // stream id -> node, for NACK logs
}

// New loads the config, translates it and sets the first snapshot; any
// problem there is returned (a server never starts on a bad config).
func New(opts Options) (*Server, error) {
	if opts.ConfigPath == "" {
		return nil, errors.New("ads: config path is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	tr, adsOrdering := translate.Envoy, true
	if opts.GRPCClients {
		tr, adsOrdering = translate.GRPC, false
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("ads: register metrics: %w", err)
	}
	s := &Server{
		path:      opts.ConfigPath,
		log:       opts.Logger,
		translate: tr,
		metrics:   m,
		nodes:     map[int64]*corev3.Node{},
	}
	s.cache = cachev3.NewSnapshotCache(adsOrdering, allNodes{}, cacheLogger{s.log})
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("ads: %w", err)
	}
	if _, err := s.Apply(cfg); err != nil {
		return nil, fmt.Errorf("ads: %w", err)
	}
	m.reloadSuccess.Set(1)
	s.listen = opts.Listen
	if s.listen == "" {
		s.listen = cfg.XDS.Listen
	}
	return s, nil
}

// ListenAddr is the address Run listens on.
func (s *Server) ListenAddr() string { return s.listen }

// Version is the version of the snapshot being served.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Snapshot is the snapshot every node is served.
func (s *Server) Snapshot() (cachev3.ResourceSnapshot, error) {
	return s.cache.GetSnapshot(snapshotKey)
}

// Apply translates cfg and, if the result differs from what is served, sets
// it as the new snapshot. It reports whether a new snapshot was set. On any
// error the served snapshot is unchanged.
func (s *Server) Apply(cfg *config.Config) (bool, error) {
	r, err := s.translate(cfg)
	if err != nil {
		return false, fmt.Errorf("translate: %w", err)
	}
	if err := r.Validate(); err != nil {
		return false, fmt.Errorf("validate resources: %w", err)
	}
	byType := r.ByType()
	version, err := contentVersion(byType)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if version == s.version {
		return false, nil
	}
	snap, err := cachev3.NewSnapshot(version, byType)
	if err != nil {
		return false, fmt.Errorf("snapshot: %w", err)
	}
	if err := snap.Consistent(); err != nil {
		return false, fmt.Errorf("snapshot %s inconsistent: %w", version, err)
	}
	if err := s.cache.SetSnapshot(context.Background(), snapshotKey, snap); err != nil {
		return false, fmt.Errorf("set snapshot: %w", err)
	}
	s.version = version
	s.metrics.snapshots.Inc()
	return true, nil
}

// snapshotTypes fixes the order resources are hashed in.
var snapshotTypes = []resource.Type{
	resource.ListenerType, resource.RouteType, resource.ClusterType,
	resource.EndpointType, resource.ExtensionConfigType,
}

// contentVersion hashes the deterministic encoding of every resource, so
// identical resources always get the same version.
func contentVersion(byType map[resource.Type][]types.Resource) (string, error) {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, t := range snapshotTypes {
		for _, r := range byType[t] {
			b, err := opts.Marshal(r)
			if err != nil {
				return "", fmt.Errorf("hash %s: %w", t, err)
			}
			fmt.Fprintf(h, "%s %d\n", t, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// reload is Watch's onChange: apply, count, log.
func (s *Server) reload(cfg *config.Config) {
	changed, err := s.Apply(cfg)
	if err != nil {
		s.reloadFailed(err)
		return
	}
	s.metrics.reloadSuccess.Set(1)
	s.mu.Lock()
	s.lastErr = ""
	s.mu.Unlock()
	if changed {
		s.log.Info("config applied", "file", s.path, "version", s.Version())
	}
}

// reloadFailed is Watch's onError: keep the last snapshot, log every problem.
func (s *Server) reloadFailed(err error) {
	s.metrics.reloadErrors.Inc()
	s.metrics.reloadSuccess.Set(0)
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
	var ps config.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			s.log.Error("config reload rejected, keeping last good snapshot",
				"problem", p.String(), "file", p.File, "line", p.Line, "version", s.Version())
		}
		return
	}
	s.log.Error("config reload rejected, keeping last good snapshot", "error", err, "version", s.Version())
}

// Run listens on ListenAddr and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return fmt.Errorf("ads: listen: %w", err)
	}
	return s.Serve(ctx, lis)
}

// Serve serves ADS on lis and watches the config file until ctx ends, then
// stops gracefully (bounded) and returns nil; it returns an error if the
// listener or the file watch fails.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gs := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	xds := serverv3.NewServer(ctx, s.cache, s.callbacks())
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, xds)

	errc := make(chan error, 2)
	go func() {
		if err := gs.Serve(lis); err != nil {
			errc <- fmt.Errorf("ads: serve: %w", err)
		}
	}()
	go func() {
		if err := config.Watch(ctx, s.path, s.reload, s.reloadFailed); err != nil {
			errc <- fmt.Errorf("ads: %w", err)
		}
	}()
	s.log.Info("xds serving", "addr", lis.Addr().String(), "config", s.path, "version", s.Version())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop() // xDS streams never end by themselves
	}
	return err
}
