//go:build wasip1

package proxywasm

import "unsafe"

// Plugin is a root context: one per plugin configuration of a VM.
type Plugin interface {
	// OnConfigure receives the plugin configuration; returning false fails
	// the plugin load (Envoy then rejects the filter config).
	OnConfigure(config []byte) bool
	// NewStream returns the handler for one HTTP stream.
	NewStream(contextID uint32) Stream
}

// Stream handles one HTTP stream.
type Stream interface {
	OnRequestHeaders(numHeaders int, endOfStream bool) Action
	OnResponseHeaders(numHeaders int, endOfStream bool) Action
	OnDone()
}

// vmState is the VM's context table, reachable from the package-level
// exports. Envoy calls a VM from one thread at a time.
type vmState struct {
	newPlugin func(rootContextID uint32) Plugin
	roots     map[uint32]Plugin
	streams   map[uint32]Stream
	// lastID/last cache the most recently used stream: Envoy runs a stream's
	// callbacks back to back, so most lookups skip the map (maps are slow in
	// wasm). last is nil when nothing is cached.
	lastID uint32
	last   Stream
	// pinned keeps buffers returned by proxy_on_memory_allocate alive until
	// the host call that asked for them has returned and the guest took them.
	pinned [][]byte
	// scratch serves proxy_on_memory_allocate during stream callbacks: it is
	// reset when a stream callback starts, so a buffer handed over in one
	// stream callback is valid only until the next stream callback starts.
	// Outside stream callbacks (configure) every buffer is a fresh make.
	scratch     []byte
	scratchUsed int
	inStream    bool
	// retired holds the used part of areas replaced during this callback,
	// zeroed with the current one when it ends.
	retired [][]byte
	// retPtr and retSize are the host-written result slots of every host call
	// that returns a buffer. Being package-level, their addresses are stable and
	// passing them costs no heap allocation (a local whose address reaches a
	// wasmimport escapes).
	retPtr, retSize uint32
	// encoded is reused to serialize local-reply headers (the host copies it).
	encoded []byte
	// outbound holds copies of scratch-backed values handed to host calls
	// that store them (see hostCopy); reset when a stream callback starts.
	outbound   []byte
	outRetired [][]byte
}

var vm = vmState{roots: map[uint32]Plugin{}, streams: map[uint32]Stream{}}

// SetNewPlugin registers the root-context factory. Call it from init.
func SetNewPlugin(f func(rootContextID uint32) Plugin) { vm.newPlugin = f }

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

// minScratch is the first scratch size: a typical request's header map
// (about 600 B) with room to spare.
const minScratch = 4 << 10

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 {
	var b []byte
	if vm.inStream {
		b = vm.scratchBuffer(int(max(size, 1)))
	} else {
		b = make([]byte, max(size, 1))
	}
	vm.pinned = append(vm.pinned, b)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// scratchBuffer returns n bytes of the scratch area. When the area is full a
// larger one replaces it (the area keeps its largest size: at most twice the
// largest header map seen); buffers already handed out in this callback keep
// the old area alive for as long as they are referenced.
func (v *vmState) scratchBuffer(n int) []byte {
	if len(v.scratch)-v.scratchUsed < n {
		if v.scratchUsed > 0 {
			v.retired = append(v.retired, v.scratch[:v.scratchUsed])
		}
		v.scratch = make([]byte, max(2*len(v.scratch), minScratch, n))
		v.scratchUsed = 0
	}
	b := v.scratch[v.scratchUsed : v.scratchUsed+n : v.scratchUsed+n]
	v.scratchUsed += (n + 7) &^ 7
	v.scratchUsed = min(v.scratchUsed, len(v.scratch))
	return b
}

// beginStream marks the start of a stream callback: scratch buffers from the
// previous one are reused from here on.
func (v *vmState) beginStream() {
	v.inStream = true
	v.scratchUsed = 0
	v.outbound = v.outbound[:0]
	if len(v.outRetired) > 0 {
		clear(v.outRetired)
		v.outRetired = v.outRetired[:0]
	}
}

// inRetired reports whether address p lies in an area retired during this
// callback.
func (v *vmState) inRetired(p uintptr) bool {
	for _, r := range v.retired {
		if within(p, r) {
			return true
		}
	}
	return false
}

// within reports whether address p lies inside a (one unsigned compare).
func within(p uintptr, a []byte) bool {
	return len(a) > 0 && p-uintptr(unsafe.Pointer(unsafe.SliceData(a))) < uintptr(len(a))
}

// hostCopy returns s, or a copy of s outside the scratch area when s points
// into it (a header value taken from the request). Envoy copies every
// argument during the call; a host that keeps a view of guest memory after
// the call (the SDK's proxytest reads the header map after the callback)
// would otherwise see the zeroes endStream writes over the scratch area. The
// copy stays intact until the next stream callback starts. No allocation
// once the buffer has grown to a request's needs.
func (v *vmState) hostCopy(s string) string {
	if len(s) == 0 || !v.inStream {
		return s
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	if !within(p, v.scratch) && (len(v.retired) == 0 || !v.inRetired(p)) {
		return s
	}
	if cap(v.outbound)-len(v.outbound) < len(s) {
		if len(v.outbound) > 0 {
			v.outRetired = append(v.outRetired, v.outbound) // earlier copies stay valid
		}
		v.outbound = make([]byte, 0, max(2*cap(v.outbound), 256, len(s)))
	}
	start := len(v.outbound)
	v.outbound = append(v.outbound, s...)
	return bytesString(v.outbound[start:])
}

// endStream marks the end of a stream callback and zeroes the scratch bytes
// it used, so no request's headers (API keys) stay in linear memory after
// their callback (a freed make() buffer kept them until reused).
func (v *vmState) endStream() {
	v.inStream = false
	clear(v.scratch[:v.scratchUsed])
	for i, r := range v.retired {
		clear(r)
		v.retired[i] = nil
	}
	v.retired = v.retired[:0]
}

// stream returns the handler of stream context id, or nil.
func (v *vmState) stream(id uint32) Stream {
	if v.last != nil && v.lastID == id {
		return v.last
	}
	s := v.streams[id]
	if s != nil {
		v.lastID, v.last = id, s
	}
	return s
}

// take returns the pinned buffer the host reported at (ptr, size) and unpins
// everything: each host call hands back at most one buffer.
func take(ptr, size uint32) []byte {
	var out []byte
	for i := len(vm.pinned) - 1; i >= 0; i-- {
		b := vm.pinned[i]
		if out == nil && uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) == ptr && int(size) <= len(b) {
			out = b[:size:size]
		}
		vm.pinned[i] = nil
	}
	vm.pinned = vm.pinned[:0]
	return out
}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, parentID uint32) {
	if parentID == 0 {
		if vm.newPlugin != nil {
			vm.roots[contextID] = vm.newPlugin(contextID)
		}
		return
	}
	if root := vm.roots[parentID]; root != nil {
		if s := root.NewStream(contextID); s != nil {
			vm.streams[contextID] = s
			vm.lastID, vm.last = contextID, s
		}
	}
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootContextID, vmConfigSize uint32) bool { return true }

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootContextID, configSize uint32) bool {
	root := vm.roots[rootContextID]
	if root == nil {
		return false
	}
	var cfg []byte
	if configSize > 0 {
		var err error
		if cfg, err = bufferBytes(PluginConfiguration, configSize); err != nil {
			Log(LogError, "reading plugin configuration: "+err.Error())
			return false
		}
	}
	return root.OnConfigure(cfg)
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	if s := vm.stream(contextID); s != nil {
		vm.beginStream()
		a := s.OnRequestHeaders(int(numHeaders), endOfStream != 0)
		vm.endStream()
		return uint32(a)
	}
	return uint32(ActionContinue)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	if s := vm.stream(contextID); s != nil {
		vm.beginStream()
		a := s.OnResponseHeaders(int(numHeaders), endOfStream != 0)
		vm.endStream()
		return uint32(a)
	}
	return uint32(ActionContinue)
}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) bool {
	if s := vm.stream(contextID); s != nil {
		s.OnDone()
	}
	return true
}

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) {}

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {
	if vm.lastID == contextID {
		vm.lastID, vm.last = 0, nil
	}
	delete(vm.streams, contextID)
	delete(vm.roots, contextID)
}
