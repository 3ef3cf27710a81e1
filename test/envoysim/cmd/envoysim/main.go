// Command envoysim runs the Envoy ext_proc emulator as a standalone HTTP
// proxy: requests to -listen go through the ext_proc server at -extproc and
// on to the upstreams.
//
// With -config (or with neither -config nor -filter: Tollgate's embedded
// default config) it models what Tollgate's control plane gives Envoy: the
// downstream and upstream ext_proc filters and one dynamic-metadata route per
// model alias with its targets and retry policy (envoysim.FromTollgate).
// With -filter alone it runs that filter in front of -upstream (or the
// -route header routes).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/test/envoysim"
)

// routeFlags collects repeated -route key=url flags.
type routeFlags map[string]string

func (r routeFlags) String() string { return fmt.Sprint(map[string]string(r)) }

func (r routeFlags) Set(v string) error {
	k, u, ok := strings.Cut(v, "=")
	if !ok || k == "" || u == "" {
		return fmt.Errorf("route %q: want key=url", v)
	}
	r[k] = u
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "envoysim:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	listen, extproc, upstream string
	cfg                       envoysim.Config
}

func run(args []string) error {
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	cfg, extproc, upstream := o.cfg, o.extproc, o.upstream
	sim, err := envoysim.New(cfg)
	if err != nil {
		return err
	}
	base, err := sim.Listen(o.listen)
	if err != nil {
		return errors.Join(err, sim.Close())
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if cfg.MetadataRoutes != nil {
		log.Info("envoysim listening", "url", base, "extproc", extproc, "aliases", len(cfg.MetadataRoutes.Routes), "upstream_filter", cfg.UpstreamFilter != nil)
	} else {
		log.Info("envoysim listening", "url", base, "extproc", extproc, "upstream", upstream)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	st := sim.Stats()
	log.Info("envoysim stopping", "streams_started", st.StreamsStarted, "spurious_msgs_received", st.SpuriousMsgsReceived,
		"message_timeouts", st.MessageTimeouts, "failure_mode_allowed", st.FailureModeAllowed,
		"rejected_header_mutations", st.RejectedHeaderMutations, "local_replies", st.LocalReplies,
		"upstream_requests", st.UpstreamRequests, "upstream_retries", st.UpstreamRetries,
		"upstream_filter_streams_started", st.UpstreamFilter.StreamsStarted)
	return sim.Close()
}

// parseArgs turns the flags into the emulator's Config.
func parseArgs(args []string) (options, error) {
	fs := flag.NewFlagSet("envoysim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:10000", "HTTP listen address")
	extproc := fs.String("extproc", "127.0.0.1:50051", "ext_proc gRPC target (host:port or unix:///path)")
	upstream := fs.String("upstream", "http://127.0.0.1:8081", "upstream base URL")
	filterFile := fs.String("filter", "", "ExternalProcessor filter config (YAML or JSON) in front of -upstream/-route; with -config it replaces the downstream filter")
	configFile := fs.String("config", "", "tollgate.yaml: build both filters and the alias routes from it (default without -filter: the embedded default config)")
	bufferLimit := fs.Int("buffer-limit", 0, "per-stream buffer limit in bytes (default: the listener's per_connection_buffer_limit_bytes, else 1 MiB)")
	legacy := fs.Bool("legacy", false, "Envoy <= 1.34 spurious-message handling")
	routes := routeFlags{}
	fs.Var(routes, "route", "x-tollgate-route value=upstream URL (repeatable); enables route matching")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	var filter *extprocfilterv3.ExternalProcessor
	if *filterFile != "" {
		data, err := os.ReadFile(*filterFile)
		if err != nil {
			return options{}, fmt.Errorf("read filter: %w", err)
		}
		if filter, err = envoysim.LoadFilter(data); err != nil {
			return options{}, fmt.Errorf("%s: %w", *filterFile, err)
		}
	}
	var cfg envoysim.Config
	if *configFile != "" || filter == nil {
		if len(routes) > 0 {
			return options{}, errors.New("-route needs -filter without -config (a Tollgate config routes on dynamic metadata)")
		}
		tc, err := loadTollgate(*configFile)
		if err != nil {
			return options{}, err
		}
		if cfg, err = envoysim.FromTollgate(tc, nil, nil); err != nil {
			return options{}, err
		}
		if filter != nil {
			cfg.Filter = filter
		}
	} else {
		cfg = envoysim.Config{Filter: filter, Upstream: *upstream}
		if len(routes) > 0 {
			cfg.Routes = routes
		}
	}
	cfg.ExtProcAddr, cfg.Legacy = *extproc, *legacy
	if *bufferLimit > 0 {
		cfg.BufferLimit = *bufferLimit
	}
	return options{listen: *listen, extproc: *extproc, upstream: *upstream, cfg: cfg}, nil
}

// loadTollgate loads path, or the embedded default config when path is empty.
func loadTollgate(path string) (*config.Config, error) {
	if path == "" {
		c, err := config.Default()
		if err != nil {
			return nil, fmt.Errorf("embedded default config: %w", err)
		}
		return c, nil
	}
	c, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return c, nil
}
