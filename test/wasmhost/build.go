package wasmhost

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles the router module in moduleDir (the wasm/ Go module) to out
// with the flags of scripts/build-wasm.sh.
func Build(ctx context.Context, moduleDir, out string) error {
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("wasm output path: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w",
		"-o", absOut, "./cmd/tollgate-router")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "CGO_ENABLED=0")
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building wasm module in %s: %w\n%s", moduleDir, err, outb)
	}
	return nil
}
