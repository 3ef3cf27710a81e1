package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tollgate-dev/tollgate/pkg/audit"
	"github.com/tollgate-dev/tollgate/pkg/prompts"
)

// runPrompts: tollgate prompts diff [--dir DIR] NAME@V1 NAME@V2
func runPrompts(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "diff" {
		fmt.Fprintln(stderr, "usage: tollgate prompts diff [--dir DIR] NAME@V1 NAME@V2")
		return 2
	}
	fs := flag.NewFlagSet("prompts diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "prompts", "prompt registry directory")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := prompts.RunDiff(*dir, fs.Args(), stdout); err != nil {
		fmt.Fprintf(stderr, "tollgate prompts diff: %v\n", err)
		return 1
	}
	return 0
}

// runAudit: tollgate audit verify --dir DIR
func runAudit(_ context.Context, args []string, stdout, stderr io.Writer) int {
	return audit.RunVerify(args, stdout, stderr)
}
