package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Proxy-wasm constants used by the host.
const (
	actionContinue = 0
	actionPause    = 1

	mapRequestHeaders  = 0
	mapResponseHeaders = 2

	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7

	statusOK          = 0
	statusNotFound    = 1
	statusBadArgument = 2
)

type phase int

const (
	phaseIdle phase = iota
	phaseInit
	phaseCallback
	phaseAlloc
)

// Action is a stream callback's result.
type Action uint32

// Actions.
const (
	Continue Action = actionContinue
	Pause    Action = actionPause
)

// ErrTrapped is wrapped by the error of any call after which the VM is unusable.
var ErrTrapped = errors.New("wasm VM trapped")

// LocalReply is a proxy_send_local_response call.
type LocalReply struct {
	Status     uint32
	Details    string
	Body       []byte
	Headers    [][2]string
	GRPCStatus int32
}

// LogEntry is one proxy_log call.
type LogEntry struct {
	Level   uint32
	Message string
}

// VM is one guest instance (Envoy runs one per worker thread). Not safe for
// concurrent use.
type VM struct {
	mod      api.Module
	allocate api.Function
	fns      map[string]export
	stdout   bytes.Buffer

	phase  phase
	broken error

	vmConfig []byte
	// pluginConfig is the configuration of the root being configured.
	pluginConfig []byte
	// callCtx is the context of the host call in progress.
	callCtx context.Context
	// vmCtx is parentCtx carrying the VM for host functions (cached: one
	// allocation per caller context, not per call).
	parentCtx, vmCtx context.Context
	nextID           uint32
	// stack and allocStack are reused for guest calls (CallWithStack): one
	// for callbacks, one for the allocate call nested in a host function.
	stack      [8]uint64
	allocStack [1]uint64
	// names maps header names as the guest sent them to their lower-case
	// form, kept by the host (see internLower).
	names  map[string]string
	rootID uint32

	cur *stream

	metricIDs   map[string]uint32
	metricNames []string
	metricVals  []int64

	logs       []LogEntry
	violations []string
	pollCalls  int
}

type stream struct {
	request    [][2]string
	response   [][2]string
	properties map[string]string
	reply      *LocalReply
}

type vmKey struct{}

func vmFrom(ctx context.Context) *VM { return ctx.Value(vmKey{}).(*VM) }

// NewVM instantiates the guest (running _initialize under Envoy's
// restricted-callback rules), creates the VM root context and calls
// proxy_on_vm_start with vmConfig. A Host and its VMs are not safe for
// concurrent use.
func (h *Host) NewVM(ctx context.Context, vmConfig []byte) (*VM, error) {
	h.nextVM++
	name := fmt.Sprintf("tollgate-router-%d", h.nextVM)
	vm := &VM{
		vmConfig:  vmConfig,
		metricIDs: map[string]uint32{}, fns: map[string]export{}, names: map[string]string{},
	}
	cfg := wazero.NewModuleConfig().WithName(name).WithStartFunctions("_initialize").
		WithStdout(&vm.stdout).WithStderr(&vm.stdout).WithSysWalltime().WithSysNanotime()
	for k, v := range h.opts.Env {
		cfg = cfg.WithEnv(k, v)
	}
	vm.phase = phaseInit
	mod, err := h.rt.InstantiateModule(context.WithValue(ctx, vmKey{}, vm), h.compiled, cfg)
	vm.phase = phaseIdle
	if err != nil {
		return nil, fmt.Errorf("instantiating guest (_initialize): %w: %w\n%s", ErrTrapped, err, vm.stdout.String())
	}
	vm.mod = mod
	vm.allocate = mod.ExportedFunction("proxy_on_memory_allocate")
	if vm.allocate == nil {
		return nil, errors.New("guest does not export proxy_on_memory_allocate")
	}
	if mod.ExportedFunction("proxy_abi_version_0_2_1") == nil {
		return nil, errors.New("guest does not export proxy_abi_version_0_2_1")
	}
	vm.nextID = 1
	vm.rootID = vm.newID()
	if _, err := vm.call(ctx, "proxy_on_context_create", uint64(vm.rootID), 0); err != nil {
		return nil, err
	}
	ok, err := vm.call(ctx, "proxy_on_vm_start", uint64(vm.rootID), uint64(len(vmConfig)))
	if err != nil {
		return nil, err
	}
	if ok != 1 {
		return nil, errors.New("proxy_on_vm_start returned false")
	}
	return vm, nil
}

func (vm *VM) newID() uint32 {
	id := vm.nextID
	vm.nextID++
	return id
}

// Close closes the guest instance.
func (vm *VM) Close(ctx context.Context) error { return vm.mod.Close(ctx) }

// export is a guest export with its signature sizes (Definition allocates).
type export struct {
	fn              api.Function
	params, results int
}

func (vm *VM) function(name string) export {
	e, ok := vm.fns[name]
	if !ok {
		e.fn = vm.mod.ExportedFunction(name)
		if e.fn != nil {
			e.params, e.results = len(e.fn.Definition().ParamTypes()), len(e.fn.Definition().ResultTypes())
		}
		vm.fns[name] = e
	}
	return e
}

// call invokes a guest callback; a missing export returns 0 like cpp-host's
// defaults for optional callbacks.
func (vm *VM) call(ctx context.Context, name string, args ...uint64) (uint64, error) {
	if vm.broken != nil {
		return 0, vm.broken
	}
	e := vm.function(name)
	if e.fn == nil {
		return 0, nil
	}
	if ctx != vm.parentCtx {
		vm.parentCtx, vm.vmCtx = ctx, context.WithValue(ctx, vmKey{}, vm)
	}
	if len(args) != e.params || e.results > len(vm.stack) {
		return 0, fmt.Errorf("%s: %d arguments, the export takes %d", name, len(args), e.params)
	}
	stack := vm.stack[:max(e.params, e.results)]
	copy(stack, args)
	vm.phase = phaseCallback
	err := e.fn.CallWithStack(vm.vmCtx, stack)
	vm.phase = phaseIdle
	if err != nil {
		vm.broken = fmt.Errorf("%s: %w: %w\nguest output:\n%s", name, ErrTrapped, err, vm.stdout.String())
		return 0, vm.broken
	}
	if e.results == 0 {
		return 0, nil
	}
	return stack[0], nil
}

// Plugin is a root context configured with one plugin configuration.
type Plugin struct {
	vm *VM
	id uint32
}

// Configure creates a root context and calls proxy_on_configure with config.
// ok is the guest's verdict: false means Envoy fails the plugin load.
func (vm *VM) Configure(ctx context.Context, config []byte) (p *Plugin, ok bool, err error) {
	id := vm.newID()
	vm.pluginConfig = config
	defer func() { vm.pluginConfig = nil }()
	if _, err := vm.call(ctx, "proxy_on_context_create", uint64(id), 0); err != nil {
		return nil, false, err
	}
	res, err := vm.call(ctx, "proxy_on_configure", uint64(id), uint64(len(config)))
	if err != nil {
		return nil, false, err
	}
	return &Plugin{vm: vm, id: id}, res == 1, nil
}

// Close runs the root context's done/delete callbacks.
func (p *Plugin) Close(ctx context.Context) error {
	if _, err := p.vm.call(ctx, "proxy_on_done", uint64(p.id)); err != nil {
		return err
	}
	_, err := p.vm.call(ctx, "proxy_on_delete", uint64(p.id))
	return err
}

// Request is one HTTP request as Envoy presents it to the filter.
type Request struct {
	Headers [][2]string
	// Properties by dotted path, e.g. "request.id".
	Properties map[string]string
}

// Result is what the filter did to a request.
type Result struct {
	Action Action
	// Headers is the request header map after proxy_on_request_headers.
	Headers [][2]string
	// Reply is set when the filter sent a local reply.
	Reply *LocalReply
}

// Do runs one stream through the full lifecycle: context_create,
// request_headers, response_headers (unless a local reply ended the stream),
// done, log, delete.
func (p *Plugin) Do(ctx context.Context, req Request) (Result, error) {
	vm := p.vm
	id := vm.newID()
	st := &stream{request: append([][2]string(nil), req.Headers...), properties: req.Properties}
	vm.cur = st
	defer func() { vm.cur = nil }()
	if _, err := vm.call(ctx, "proxy_on_context_create", uint64(id), uint64(p.id)); err != nil {
		return Result{}, err
	}
	act, err := vm.call(ctx, "proxy_on_request_headers", uint64(id), uint64(len(st.request)), 0)
	if err != nil {
		return Result{}, err
	}
	res := Result{Action: Action(act), Headers: st.request, Reply: st.reply}
	if st.reply == nil {
		st.response = [][2]string{{":status", "200"}, {"content-type", "application/json"}}
		if _, err := vm.call(ctx, "proxy_on_response_headers", uint64(id), uint64(len(st.response)), 0); err != nil {
			return Result{}, err
		}
	}
	for _, cb := range []string{"proxy_on_done", "proxy_on_log", "proxy_on_delete"} {
		if _, err := vm.call(ctx, cb, uint64(id)); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// RequestHeadersOnly calls proxy_on_request_headers on an existing stream
// context: the hot path, for benchmarks. Use NewStream to create one.
func (s *Stream) RequestHeadersOnly(ctx context.Context, headers [][2]string) (Action, error) {
	vm := s.p.vm
	s.st.request = append(s.st.request[:0], headers...)
	s.st.reply = nil
	vm.cur = s.st
	act, err := vm.call(ctx, "proxy_on_request_headers", uint64(s.id), uint64(len(headers)), 0)
	return Action(act), err
}

// ResponseHeadersOnly calls proxy_on_response_headers on an existing stream
// context with a two-header response map. The router does no work there, so
// it measures the floor of one callback round trip (benchmarks).
func (s *Stream) ResponseHeadersOnly(ctx context.Context) (Action, error) {
	vm := s.p.vm
	s.st.response = append(s.st.response[:0], [2]string{":status", "200"}, [2]string{"content-type", "application/json"})
	vm.cur = s.st
	act, err := vm.call(ctx, "proxy_on_response_headers", uint64(s.id), uint64(len(s.st.response)), 0)
	return Action(act), err
}

// Stream is a stream context kept open across calls (benchmarks).
type Stream struct {
	p  *Plugin
	id uint32
	st *stream
}

// NewStream creates a stream context.
func (p *Plugin) NewStream(ctx context.Context) (*Stream, error) {
	id := p.vm.newID()
	if _, err := p.vm.call(ctx, "proxy_on_context_create", uint64(id), uint64(p.id)); err != nil {
		return nil, err
	}
	return &Stream{p: p, id: id, st: &stream{}}, nil
}

// Counter returns a metric's value by name.
func (vm *VM) Counter(name string) (int64, bool) {
	id, ok := vm.metricIDs[name]
	if !ok {
		return 0, false
	}
	return vm.metricVals[id], true
}

// Metrics returns every defined metric by name.
func (vm *VM) Metrics() map[string]int64 {
	out := make(map[string]int64, len(vm.metricNames))
	for i, n := range vm.metricNames {
		out[n] = vm.metricVals[i]
	}
	return out
}

// Violations lists host calls made where Envoy forbids them.
func (vm *VM) Violations() []string { return vm.violations }

// PollOneoffCalls counts WASI poll_oneoff calls.
func (vm *VM) PollOneoffCalls() int { return vm.pollCalls }

// Logs returns the proxy_log calls.
func (vm *VM) Logs() []LogEntry { return vm.logs }

// MemoryBytes is the guest's linear memory size.
func (vm *VM) MemoryBytes() uint32 { return vm.mod.Memory().Size() }

// MemoryContains reports whether the guest's linear memory holds b anywhere
// (tests: secrets must not outlive the request that carried them).
func (vm *VM) MemoryContains(b []byte) bool {
	mem, ok := vm.mod.Memory().Read(0, vm.mod.Memory().Size())
	return ok && bytes.Contains(mem, b)
}

// Output is what the guest wrote to stdout/stderr (Go runtime panics).
func (vm *VM) Output() string { return vm.stdout.String() }

// trapError aborts the running guest call like Envoy's trap().
type trapError struct{ reason string }

func (e *trapError) Error() string { return "trap: " + e.reason }

// trap records a violation and aborts the current guest call. wazero turns a
// panic in a host function into the error of the guest call, which is how a
// host traps a guest; the VM is then marked broken by call().
func (vm *VM) trap(reason string) {
	vm.violations = append(vm.violations, reason)
	panic(&trapError{reason: reason})
}

// restrict traps when a host call other than proxy_log happens during
// _initialize or proxy_on_memory_allocate (proxy-wasm-cpp-host restricted
// callbacks).
func (vm *VM) restrict(name string) {
	switch vm.phase {
	case phaseInit:
		vm.trap("restricted_callback: " + name + " during _initialize")
	case phaseAlloc:
		vm.trap("restricted_callback: " + name + " during proxy_on_memory_allocate")
	}
}

func propertyKey(raw []byte) string { return strings.ReplaceAll(string(raw), "\x00", ".") }
