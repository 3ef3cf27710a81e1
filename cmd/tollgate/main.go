// Command tollgate is Tollgate's one binary:
//
//	tollgate extproc   [--config FILE] [--extproc-addr ADDR] [--admin-addr ADDR]
//	tollgate xds       --config FILE [--listen ADDR] [--admin-addr ADDR]
//	tollgate bootstrap [--node ID] [--xds ADDR]
//	tollgate validate  [--config FILE [--skip-env] | --envoy FILE]
//	tollgate render    alerts|envoy [--config FILE] [--wasm-path P]
//	tollgate prompts   diff [--dir DIR] NAME@V1 NAME@V2
//	tollgate audit     verify --dir DIR
//	tollgate keys      create|list|rotate|revoke [--admin-url URL] [--token-env VAR]
//	tollgate eval      --set FILE --base-url URL --model ALIAS [--baseline FILE] ...
//	tollgate report    --ledger PATH [--from DAY --to DAY] [--tenant T] [--json]
//
// With no --config, the embedded default (envoy/tollgate.yaml) is used.
// With no command, the command list is printed (exit 2).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands in the order `tollgate --help` lists them.
func commands() []command {
	return []command{
		{"extproc", "run the Envoy ext_proc server (and its admin HTTP server)", runExtProc},
		{"xds", "run the xDS control plane: tollgate.yaml -> Envoy resources over ADS, hot reloaded", runXDS},
		{"bootstrap", "print a minimal Envoy bootstrap that points Envoy at tollgate xds", runBootstrap},
		{"validate", "check a tollgate.yaml (or --envoy FILE) and print every problem with file:line", runValidate},
		{"render", "render alerts|envoy [--config FILE]: Prometheus alert rules with the budget caps, or a static Envoy bootstrap", runRender},
		{"prompts", "prompts diff NAME@V1 NAME@V2: what changed between two prompt versions", runPrompts},
		{"audit", "audit verify --dir DIR: check the audit trail's hash chain (exit 1 on tampering)", runAudit},
		{"keys", "keys create|list|rotate|revoke: manage virtual API keys through a running extproc's admin API", runKeys},
		{"eval", "run a golden set through an alias, score it, compare with a baseline (exit 1 on regression)", runEval},
		{"report", "report --ledger PATH: spend and requests per tenant from the spend ledger (table or --json)", runReport},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand. With none, it prints the command list
// and exits 2; -h, --help and help print it and exit 0.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 {
		usage(stderr, cmds)
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout, cmds)
		return 0
	}
	for _, c := range cmds {
		if c.name == name {
			return c.run(ctx, args, stdout, stderr)
		}
	}
	if strings.HasPrefix(name, "-") {
		fmt.Fprintf(stderr, "tollgate: a command comes first (flag %s given without one)\n\n", name)
	} else {
		fmt.Fprintf(stderr, "tollgate: unknown command %q\n\n", name)
	}
	usage(stderr, cmds)
	return 2
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: tollgate <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'tollgate <command> --help' for a command's flags.")
}
