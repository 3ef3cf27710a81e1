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
	// pinned keeps buffers returned by proxy_on_memory_allocate alive until
	// the host call that asked for them has returned and the guest took them.
	pinned [][]byte
}

var vm = vmState{roots: map[uint32]Plugin{}, streams: map[uint32]Stream{}}

// SetNewPlugin registers the root-context factory. Call it from init.
func SetNewPlugin(f func(rootContextID uint32) Plugin) { vm.newPlugin = f }

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 {
	b := make([]byte, max(size, 1))
	vm.pinned = append(vm.pinned, b)
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
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
	if s := vm.streams[contextID]; s != nil {
		return uint32(s.OnRequestHeaders(int(numHeaders), endOfStream != 0))
	}
	return uint32(ActionContinue)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	if s := vm.streams[contextID]; s != nil {
		return uint32(s.OnResponseHeaders(int(numHeaders), endOfStream != 0))
	}
	return uint32(ActionContinue)
}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) bool {
	if s := vm.streams[contextID]; s != nil {
		s.OnDone()
	}
	return true
}

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) {}

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {
	delete(vm.streams, contextID)
	delete(vm.roots, contextID)
}
