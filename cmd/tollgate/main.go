// Command tollgate is Tollgate's one binary:
//
//	tollgate extproc   [--config FILE] [--extproc-addr ADDR] [--admin-addr ADDR]
//	tollgate xds       --config FILE [--listen ADDR] [--admin-addr ADDR]
//	tollgate bootstrap [--node ID] [--xds ADDR]
//	tollgate validate  [--config FILE | --envoy FILE]
//	tollgate prompts   diff [--dir DIR] NAME@V1 NAME@V2
//	tollgate audit     verify --dir DIR
//	tollgate eval      --set FILE --base-url URL --model ALIAS [--baseline FILE] ...
//
// With no --config, the embedded default (envoy/tollgate.yaml) is used.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() map[string]command {
	return map[string]command{
		"extproc":   {"run the Envoy ext_proc server (and its admin HTTP server)", runExtProc},
		"xds":       {"run the xDS control plane: tollgate.yaml -> Envoy resources over ADS, hot reloaded", runXDS},
		"bootstrap": {"print a minimal Envoy bootstrap that points Envoy at tollgate xds", runBootstrap},
		"validate":  {"check a tollgate.yaml and print every problem with file:line", runValidate},
		"prompts":   {"prompts diff NAME@V1 NAME@V2: what changed between two prompt versions", runPrompts},
		"audit":     {"audit verify --dir DIR: check the audit trail's hash chain (exit 1 on tampering)", runAudit},
		"eval":      {"run a golden set through an alias, score it, compare with a baseline (exit 1 on regression)", runEval},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	name := "extproc"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout, cmds)
		return 0
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "tollgate: unknown command %q\n\n", name)
		usage(stderr, cmds)
		return 2
	}
	return c.run(ctx, args, stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tollgate <command> [flags]   (default command: extproc)")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}
