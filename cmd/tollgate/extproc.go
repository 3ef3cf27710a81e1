package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/pkg/config/preflight"
)

func runExtProc(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("extproc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "tollgate.yaml (default: the embedded envoy/tollgate.yaml)")
	extAddr := fs.String("extproc-addr", "", "gRPC listen address, host:port or unix:/path (overrides listen.extproc)")
	adminAddr := fs.String("admin-addr", "", "admin HTTP address for /metrics /healthz /readyz (overrides listen.admin)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	pprof := fs.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/ on the admin address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, ok := newLogger(*level, stderr)
	if !ok {
		return 2
	}

	cfg, err := loadConfig(*path)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if *extAddr != "" {
		cfg.Listen.ExtProc = *extAddr
	}
	if *adminAddr != "" {
		cfg.Listen.Admin = *adminAddr
	}
	// The checks of `tollgate validate`, except that an unset credential
	// variable is a warning: the other providers still serve.
	_, warns, err := preflight.Check(cfg, preflight.Options{Env: preflight.EnvWarn})
	for _, w := range warns {
		log.Warn("config warning", "problem", w.String())
	}
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	if err := extproc.Run(ctx, cfg, extproc.RunOptions{Logger: log, Stdout: stdout, ConfigPath: *path, Pprof: *pprof}); err != nil {
		log.Error("extproc stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger is the JSON logger at --log-level; ok is false (and the problem
// printed) for an unknown level.
func newLogger(level string, stderr io.Writer) (*slog.Logger, bool) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(stderr, "tollgate: bad --log-level: %v\n", err)
		return nil, false
	}
	return slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv})), true
}
