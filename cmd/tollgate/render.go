package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tollgate-dev/tollgate/envoy/observability"
)

// runRender: tollgate render alerts [--config FILE]
func runRender(_ context.Context, args []string, stdout, stderr io.Writer) int {
	const use = "usage: tollgate render alerts [--config FILE]   (Prometheus rules with the config's budget caps)"
	if len(args) == 0 || args[0] != "alerts" {
		fmt.Fprintln(stderr, use)
		return 2
	}
	fs := flag.NewFlagSet("render alerts", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "tollgate.yaml whose tenants' budget caps are recorded (default: the embedded default)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, use)
		return 2
	}
	c, err := loadConfig(*path)
	if err != nil {
		printProblems(stderr, err)
		return 1
	}
	out, err := observability.Alerts(c)
	if err != nil {
		fmt.Fprintf(stderr, "tollgate render: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}
