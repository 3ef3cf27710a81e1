package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollgate-dev/tollgate/controlplane/ads"
	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func runXDS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("xds", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "tollgate.yaml to serve and watch (required)")
	listen := fs.String("listen", "", "ADS gRPC address (overrides xds.listen)")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9091", "admin HTTP address for /metrics /healthz /readyz /config_dump (empty: off)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "tollgate xds: --config is required (the file is watched and re-pushed on change)")
		return 2
	}
	log, ok := newLogger(*level, stderr)
	if !ok {
		return 2
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	srv, err := ads.New(ads.Options{ConfigPath: *path, Listen: *listen, Registerer: reg, Logger: log})
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p.String())
			}
			return 1
		}
		fmt.Fprintf(stderr, "tollgate xds: %v\n", err)
		return 1
	}
	admin := ""
	if *adminAddr != "" {
		lis, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			fmt.Fprintf(stderr, "tollgate xds: admin: %v\n", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
		mux.HandleFunc("GET /healthz", ok)
		mux.HandleFunc("GET /readyz", ok) // a snapshot is set before Run starts serving
		mux.Handle("GET /config_dump", srv.ConfigDumpHandler())
		admin = ", admin on http://" + lis.Addr().String()
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(lis) }()
		defer hs.Close()
	}
	fmt.Fprintf(stdout, "tollgate xds: serving %s (version %s) on %s%s\n", *path, srv.Version(), srv.ListenAddr(), admin)
	if err := srv.Run(ctx); err != nil {
		log.Error("xds stopped", "err", err)
		return 1
	}
	return 0
}

func runBootstrap(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	node := fs.String("node", "tollgate-envoy", "Envoy node id")
	cluster := fs.String("cluster", "", "Envoy node cluster (default: "+translate.DefaultNodeCluster+")")
	xdsAddr := fs.String("xds", config.DefaultXDSAddr, "address of tollgate xds")
	admin := fs.String("admin", translate.DefaultAdminAddr, "Envoy admin address (keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out, err := translate.Bootstrap(translate.BootstrapOptions{NodeID: *node, NodeCluster: *cluster, XDSAddress: *xdsAddr, AdminAddress: *admin})
	if err != nil {
		fmt.Fprintf(stderr, "tollgate bootstrap: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}
