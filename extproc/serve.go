package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/cache"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/meter"
	"github.com/tollgate-dev/tollgate/pkg/telemetry"
)

// RunOptions are the process-level dependencies of Run.
type RunOptions struct {
	Logger *slog.Logger
	Stdout io.Writer // one human-readable line when serving; nil = none
	// Registry receives all metrics (default: a new registry with Go and
	// process collectors).
	Registry *prometheus.Registry
	// OnListening is called with the bound addresses once both servers
	// accept connections (tests listen on port 0).
	OnListening func(extprocAddr, adminAddr string)
	// Getenv reads provider credentials (default os.Getenv).
	Getenv func(string) string
	// ConfigPath, when set, is watched: a valid change is applied to new
	// streams (see ReloadConfig); an invalid one keeps the running config
	// and is logged with file:line. Changes to settings that are only read
	// at start (see restartOnly) are logged as a warning naming them and
	// counted as tollgate_config_reloads_total{result="restart_required"}.
	ConfigPath string
	// Pprof serves net/http/pprof on the admin address (off by default).
	Pprof bool
}

// Run wires and runs the ext_proc gRPC server and the admin HTTP server
// until ctx ends, then shuts down gracefully: in-flight streams finish
// (bounded by listen.shutdown_grace) and the spend ledger is flushed.
func Run(ctx context.Context, cfg *config.Config, opts RunOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := telemetry.NewMetrics(reg)

	catalog, err := BuildCatalog(cfg)
	if err != nil {
		return fmt.Errorf("price catalog: %w", err)
	}
	budgets, ready, lag, err := openBudgets(cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := budgets.Close(); err != nil {
			log.Error("closing the spend ledger", "err", err)
		} else {
			log.Info("spend ledger flushed")
		}
	}()

	limits, closeLimits, err := openRateLimits(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = closeLimits() }()

	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var respCache ResponseCache
	if cfg.Cache.Enabled {
		c, err := cache.New(CacheConfig(cfg.Cache, cfg.XDS.MessageTimeout, getenv), reg, cache.WithLogger(log))
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		defer c.Close()
		respCache = c
	}

	var auditLog AuditLog
	if cfg.Audit.Dir != "" {
		al, err := audit.Open(cfg.Audit.Dir, audit.Options{MaxFileBytes: cfg.Audit.MaxFileBytes, FlushInterval: cfg.Audit.FlushInterval, Sync: cfg.Audit.Sync})
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		defer func() {
			if err := al.Close(); err != nil {
				log.Error("closing the audit log", "err", err)
			}
		}()
		auditLog = al
	}

	tp, shutdownTracing, err := telemetry.NewTracerProvider(ctx, cfg.Tracing)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flushing spans", "err", err)
		}
	}()

	keyRing, closeKeys, err := openKeys(ctx, cfg, metrics, log)
	if err != nil {
		return err
	}
	defer func() { _ = closeKeys() }()
	var keyLookup KeyLookup // nil: virtual keys off
	if keyRing != nil {
		keyLookup = keyRing
	}

	var tracer trace.Tracer // nil when tracing is off: no span work per request
	if cfg.Tracing.Endpoint != "" {
		tracer = tp.Tracer(telemetry.TracerName)
	}
	srv, err := New(Options{
		Config: cfg, Catalog: catalog, Budgets: budgets, Limits: limits, Tokens: meter.NewTokenizer(),
		Metrics: metrics, Logger: log, Getenv: getenv, Cache: respCache, Audit: auditLog,
		Tracer: tracer, Keys: keyLookup,
	})
	if err != nil {
		return err
	}

	stopAutoEval, err := startAutoEval(ctx, srv, cfg, reg)
	if err != nil {
		return fmt.Errorf("eval.auto: %w", err)
	}
	defer stopAutoEval()

	lis, err := listen(cfg.Listen.ExtProc)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen.ExtProc, err)
	}
	gs := grpc.NewServer(
		grpc.StreamInterceptor(srv.RecoverStream),
		// Reuse a fixed pool of goroutines (with their already-grown stacks)
		// for streams instead of starting one per stream: one stream is one
		// HTTP request, so this is per-request work saved.
		grpc.NumStreamWorkers(uint32(2*goruntime.GOMAXPROCS(0))),
		grpc.MaxRecvMsgSize(int(cfg.Listen.MaxBodyBytes)+1<<20),
		grpc.MaxSendMsgSize(int(cfg.Listen.MaxBodyBytes)+1<<20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
	extprocv3.RegisterExternalProcessorServer(gs, srv)

	var serving atomic.Bool
	mux := adminMux(reg, &serving, ready)
	if err := mountKeyAdmin(mux, cfg, keyRing, srv, auditLog, getenv); err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	admin := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	alis, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		lis.Close()
		return fmt.Errorf("listen admin %s: %w", cfg.Listen.Admin, err)
	}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(lis) }()
	go func() {
		if err := admin.Serve(alis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			srv.RefreshBudgetGauges(ctx)
			metrics.LedgerLag.WithLabelValues(cfg.Budgets.Ledger.Backend).Set(lag().Seconds())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	if opts.ConfigPath != "" {
		go func() {
			err := config.Watch(ctx, opts.ConfigPath, func(nc *config.Config) {
				applyReload(srv, cfg, nc, budgets, metrics, log)
			}, func(err error) {
				metrics.Failures.WithLabelValues("config_reload", "closed").Inc()
				metrics.ConfigReloads.WithLabelValues(telemetry.ReloadError).Inc()
				log.Error("config change rejected; keeping the running config", "problems", err.Error())
			})
			if err != nil {
				log.Error("config watch stopped", "err", err)
			}
		}()
	}
	serving.Store(true)
	log.Info("tollgate extproc serving", "config", cfg.Source, "extproc", lis.Addr().String(), "admin", alis.Addr().String())
	if opts.Stdout != nil {
		fmt.Fprintf(opts.Stdout, "tollgate extproc: ext_proc on %s, admin on http://%s (config %s)\n", lis.Addr(), alis.Addr(), cfg.Source)
	}
	if opts.OnListening != nil {
		opts.OnListening(lis.Addr().String(), alis.Addr().String())
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		serving.Store(false)
		gs.Stop()
		_ = admin.Close()
		return err
	}
	serving.Store(false)
	log.Info("shutting down: waiting for in-flight streams", "grace", cfg.Listen.ShutdownGrace.String())
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.Listen.ShutdownGrace):
		log.Warn("shutdown grace elapsed; closing remaining streams")
		gs.Stop()
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = admin.Shutdown(sctx)
	return nil
}

// openBudgets opens the configured spend ledger. ready reports whether it is
// reachable (for /readyz).
//
// lag reports how far the ledger's durable state is behind (the
// tollgate_ledger_lag_seconds gauge).
func openBudgets(cfg *config.Config) (*meter.Budgets, func(context.Context) error, func() time.Duration, error) {
	var store meter.Store
	ready := func(context.Context) error { return nil }
	lag := func() time.Duration { return 0 } // Redis writes are synchronous
	switch cfg.Budgets.Ledger.Backend {
	case "redis":
		rc := cfg.Budgets.Ledger.Redis
		client, callTimeout := newBoundedRedis(rc.Redis, rc.Timeout, cfg.XDS.MessageTimeout)
		store = meter.NewRedisLedger(client, meter.RedisLedgerOptions{
			KeyPrefix: rc.Prefix + "budget:", Timeout: callTimeout, HoldTTL: rc.HoldTTL,
		})
		ready = func(ctx context.Context) error { return client.Ping(ctx).Err() }
	default:
		fl, err := meter.OpenFileLedger(cfg.Budgets.Ledger.Path, meter.FileLedgerOptions{
			SyncEveryWrite: cfg.Budgets.Ledger.Sync == config.LedgerSyncAlways,
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open ledger %s: %w", cfg.Budgets.Ledger.Path, err)
		}
		store, lag = fl, fl.Lag
	}
	caps, def := budgetCaps(cfg)
	return meter.NewBudgets(store, caps, meter.WithDefaultCaps(def)), ready, lag, nil
}

func budgetCaps(cfg *config.Config) (map[string]meter.Caps, meter.Caps) {
	caps := make(map[string]meter.Caps, len(cfg.Budgets.Tenants))
	for t, b := range cfg.Budgets.Tenants {
		caps[t] = meter.Caps{Daily: meter.MoneyFromUSD(b.DailyUSD), Monthly: meter.MoneyFromUSD(b.MonthlyUSD)}
	}
	def := meter.Caps{Daily: meter.MoneyFromUSD(cfg.Budgets.Default.DailyUSD), Monthly: meter.MoneyFromUSD(cfg.Budgets.Default.MonthlyUSD)}
	return caps, def
}

// ReloadConfig applies a new configuration to streams that start after it:
// providers, models (aliases and targets), pricing, tenants (keys, tiers),
// budget caps (budgets.tenants and budgets.default), guardrails, prompts,
// routing, credentials.inject, failure_mode.budgets and a lowered
// listen.max_body_bytes. The settings restartOnly lists are read once at
// start and keep their running values.
func (s *Server) ReloadConfig(c *config.Config, budgets *meter.Budgets) error {
	catalog, err := BuildCatalog(c)
	if err != nil {
		return err
	}
	if err := s.Reload(c, catalog); err != nil {
		return err
	}
	if budgets != nil {
		// budgets.tenants and budgets.default both apply from the next
		// reservation; the ledger backend and path need a restart.
		caps, def := budgetCaps(c)
		budgets.SetAllCaps(caps, def)
	}
	return nil
}

// applyReload applies nc, counts the outcome and warns about changed
// settings that need a restart (compared with running, the config the
// process started with).
func applyReload(srv *Server, running, nc *config.Config, budgets *meter.Budgets, metrics *telemetry.Metrics, log *slog.Logger) {
	if err := srv.ReloadConfig(nc, budgets); err != nil {
		metrics.Failures.WithLabelValues("config_reload", "closed").Inc()
		metrics.ConfigReloads.WithLabelValues(telemetry.ReloadError).Inc()
		log.Error("config reload failed; keeping the running config", "err", err)
		return
	}
	if changed := restartOnly(running, nc); len(changed) > 0 {
		metrics.ConfigReloads.WithLabelValues(telemetry.ReloadRestartRequired).Inc()
		log.Warn("config reloaded, but these changed settings keep their running values until a restart",
			"config", nc.Source, "restart_required", strings.Join(changed, ", "))
		return
	}
	metrics.ConfigReloads.WithLabelValues(telemetry.ReloadOK).Inc()
	log.Info("config reloaded", "config", nc.Source)
}

// restartOnly names the settings that differ between the running config
// and next but are only read when the process starts: the listeners, the
// spend ledger, the response cache, the audit trail, tracing, virtual keys
// and the admin token, and xds.message_timeout (from which the ledger's and the cache's timeouts are
// derived). listen.max_body_bytes applies on reload when lowered; raising it
// past the running value needs a restart (the gRPC message limit is set at
// start).
func restartOnly(running, next *config.Config) []string {
	var out []string
	check := func(name string, changed bool) {
		if changed {
			out = append(out, name)
		}
	}
	check("listen.extproc", running.Listen.ExtProc != next.Listen.ExtProc)
	check("listen.admin", running.Listen.Admin != next.Listen.Admin)
	check("listen.shutdown_grace", running.Listen.ShutdownGrace != next.Listen.ShutdownGrace)
	check("listen.max_body_bytes (raised)", next.Listen.MaxBodyBytes > running.Listen.MaxBodyBytes)
	check("budgets.ledger", !reflect.DeepEqual(running.Budgets.Ledger, next.Budgets.Ledger))
	check("cache", !reflect.DeepEqual(running.Cache, next.Cache))
	check("audit", !reflect.DeepEqual(running.Audit, next.Audit))
	check("tracing", !reflect.DeepEqual(running.Tracing, next.Tracing))
	check("xds.message_timeout", running.XDS.MessageTimeout != next.XDS.MessageTimeout)
	check("keys", !reflect.DeepEqual(running.Keys, next.Keys))
	check("admin", running.Admin != next.Admin)
	check("eval", !reflect.DeepEqual(running.Eval, next.Eval))
	check("prompts.poll_interval", running.Prompts.PollInterval != next.Prompts.PollInterval)
	return out
}

// newBoundedRedis opens a Redis client for a dependency on the request path
// (the spend ledger, the rate limiter). Every call must fail while Envoy
// still waits for the reply (one message_timeout covers the body phase), so
// that the dependency's failure mode decides, not an Envoy 504: the socket
// timeouts are the configured one, or derived from messageTimeout when zero.
// It returns the client and the per-call timeout.
func newBoundedRedis(rc config.Redis, timeout, messageTimeout time.Duration) (*redis.Client, time.Duration) {
	opts := &redis.Options{Addr: rc.Addr, Password: envOrEmpty(rc.PasswordEnv), DB: rc.DB}
	timeouts := meter.RedisTimeoutsFor(messageTimeout)
	if timeout > 0 {
		timeouts = meter.RedisTimeouts{Dial: timeout, Read: timeout, Write: timeout}
	}
	timeouts.Apply(opts)
	return redis.NewClient(opts), timeouts.Read
}

func envOrEmpty(name string) string {
	if name == "" {
		return ""
	}
	return os.Getenv(name)
}

func adminMux(reg *prometheus.Registry, serving *atomic.Bool, ready func(context.Context) error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !serving.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "spend ledger unreachable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	return mux
}

// listen opens host:port, or a unix socket for "unix:/path".
func listen(addr string) (net.Listener, error) {
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		p = strings.TrimPrefix(p, "//")
		_ = os.Remove(p)
		return net.Listen("unix", p)
	}
	return net.Listen("tcp", addr)
}
