package main

import (
	"context"
	"io"

	"github.com/tollgate-dev/tollgate/pkg/eval"
)

// runEval: tollgate eval --set FILE --base-url URL --model ALIAS [...]
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return eval.Main(ctx, args, stdout, stderr)
}
