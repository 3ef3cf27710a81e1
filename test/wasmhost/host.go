package wasmhost

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// PollMode selects how WASI poll_oneoff answers.
type PollMode int

const (
	// PollSuccess answers success with zero events (proxy-wasm-cpp-host
	// after PR #533, Envoy >= 1.39).
	PollSuccess PollMode = iota
	// PollENOSYS answers ENOSYS (Envoy 1.33-1.38): the Go runtime throws.
	PollENOSYS
)

// Options configure a Host.
type Options struct {
	// Interpreter selects wazero's interpreter instead of the compiler.
	Interpreter bool
	// CacheDir, if set, is a wazero compilation cache directory.
	CacheDir string
	// Poll selects the poll_oneoff behaviour.
	Poll PollMode
	// Env is passed to the guest as WASI environment (e.g. GOGC), like
	// Envoy's vm_config.environment_variables.
	Env map[string]string
}

// Host holds a wazero runtime with the host modules and the compiled guest.
type Host struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	opts     Options
	nextVM   int
}

// New compiles wasmBytes and prepares the env and WASI host modules.
func New(ctx context.Context, wasmBytes []byte, opts Options) (*Host, error) {
	cfg := wazero.NewRuntimeConfigCompiler()
	if opts.Interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wazero cache: %w", err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	h := &Host{rt: wazero.NewRuntimeWithConfig(ctx, cfg), opts: opts}
	if err := h.instantiateWASI(ctx); err != nil {
		_ = h.rt.Close(ctx)
		return nil, err
	}
	if err := h.instantiateEnv(ctx); err != nil {
		_ = h.rt.Close(ctx)
		return nil, err
	}
	compiled, err := h.rt.CompileModule(ctx, wasmBytes)
	if err != nil {
		_ = h.rt.Close(ctx)
		return nil, fmt.Errorf("compiling guest: %w", err)
	}
	h.compiled = compiled
	return h, nil
}

// Close releases the runtime and every VM.
func (h *Host) Close(ctx context.Context) error { return h.rt.Close(ctx) }

// Imports lists the guest's imports as "module.name".
func (h *Host) Imports() []string {
	var out []string
	for _, f := range h.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	return out
}

// Exports lists the guest's exported function names.
func (h *Host) Exports() []string {
	var out []string
	for name := range h.compiled.ExportedFunctions() {
		out = append(out, name)
	}
	return out
}

func (h *Host) instantiateWASI(ctx context.Context) error {
	b := h.rt.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	i32 := api.ValueTypeI32
	// Overrides: counted and checked against Envoy's restricted callbacks.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(h.pollOneoff), []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}).Export("poll_oneoff")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(h.procExit), []api.ValueType{i32}, nil).Export("proc_exit")
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating WASI: %w", err)
	}
	return nil
}

const (
	errnoSuccess = 0
	errnoNOSYS   = 52
)

func (h *Host) pollOneoff(ctx context.Context, mod api.Module, stack []uint64) {
	vm := vmFrom(ctx)
	// Allowed in every phase since cpp-host #533 ("go runtime gc sleep").
	vm.pollCalls++
	if h.opts.Poll == PollENOSYS {
		stack[0] = errnoNOSYS
		return
	}
	neventsPtr := api.DecodeU32(stack[3])
	if !mod.Memory().WriteUint32Le(neventsPtr, 0) {
		stack[0] = 21 // EFAULT
		return
	}
	stack[0] = errnoSuccess
}

func (h *Host) procExit(ctx context.Context, mod api.Module, stack []uint64) {
	vm := vmFrom(ctx)
	vm.trap("wasi_snapshot_preview1.proc_exit(" + fmt.Sprint(api.DecodeU32(stack[0])) + ")")
}
