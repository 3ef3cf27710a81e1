package wasmhost

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
)

func (h *Host) instantiateEnv(ctx context.Context) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	type fn struct {
		name    string
		f       func(*VM, api.Module, []uint64) uint32
		params  []api.ValueType
		noCheck bool // allowed in restricted phases
	}
	fns := []fn{
		{"proxy_log", (*VM).hostLog, []api.ValueType{i32, i32, i32}, true},
		{"proxy_get_buffer_bytes", (*VM).hostGetBufferBytes, []api.ValueType{i32, i32, i32, i32, i32}, false},
		{"proxy_get_header_map_pairs", (*VM).hostGetHeaderMapPairs, []api.ValueType{i32, i32, i32}, false},
		{"proxy_get_header_map_value", (*VM).hostGetHeaderMapValue, []api.ValueType{i32, i32, i32, i32, i32}, false},
		{"proxy_replace_header_map_value", (*VM).hostReplaceHeaderMapValue, []api.ValueType{i32, i32, i32, i32, i32}, false},
		{"proxy_remove_header_map_value", (*VM).hostRemoveHeaderMapValue, []api.ValueType{i32, i32, i32}, false},
		{"proxy_send_local_response", (*VM).hostSendLocalResponse, []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, false},
		{"proxy_get_property", (*VM).hostGetProperty, []api.ValueType{i32, i32, i32, i32}, false},
		{"proxy_define_metric", (*VM).hostDefineMetric, []api.ValueType{i32, i32, i32, i32}, false},
		{"proxy_increment_metric", (*VM).hostIncrementMetric, []api.ValueType{i32, i64}, false},
	}
	b := h.rt.NewHostModuleBuilder("env")
	for _, f := range fns {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			vm := vmFrom(ctx)
			vm.callCtx = ctx
			if !f.noCheck {
				vm.restrict(f.name)
			}
			stack[0] = uint64(f.f(vm, mod, stack))
		}), f.params, []api.ValueType{i32}).Export(f.name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("instantiating env: %w", err)
	}
	return nil
}

// read returns a view of guest memory (no copy): valid until the guest runs
// again, so it is copied before anything keeps it.
func (vm *VM) read(mod api.Module, ptr, size uint64) []byte {
	b, ok := mod.Memory().Read(uint32(ptr), uint32(size))
	if !ok {
		vm.trap(fmt.Sprintf("out-of-bounds read %d+%d", ptr, size))
	}
	return b
}

// readView is read as a string aliasing guest memory, for lookups and
// comparisons within one host call: no allocation, and never retained.
func (vm *VM) readView(mod api.Module, ptr, size uint64) string {
	b := vm.read(mod, ptr, size)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// guestAlloc asks the guest for n bytes the way Envoy does, with a
// re-entrant proxy_on_memory_allocate call under the restricted-callback
// rules, and returns the pointer and a view of the buffer to fill.
func (vm *VM) guestAlloc(mod api.Module, n int) (uint32, []byte) {
	prev := vm.phase
	vm.phase = phaseAlloc
	vm.allocStack[0] = uint64(n)
	err := vm.allocate.CallWithStack(vm.callCtx, vm.allocStack[:])
	vm.phase = prev
	if err != nil {
		vm.trap("proxy_on_memory_allocate failed: " + err.Error())
	}
	ptr := uint32(vm.allocStack[0])
	if n == 0 {
		return ptr, nil
	}
	buf, ok := mod.Memory().Read(ptr, uint32(n))
	if !ok {
		vm.trap("allocate returned an out-of-bounds pointer")
	}
	return ptr, buf
}

// setResult writes the (ptr, size) u32 result slots of a handed-off buffer.
func (vm *VM) setResult(mod api.Module, retPtr, retSize uint64, ptr uint32, n int) uint32 {
	mem := mod.Memory()
	if !mem.WriteUint32Le(uint32(retPtr), ptr) || !mem.WriteUint32Le(uint32(retSize), uint32(n)) {
		vm.trap("out-of-bounds result slot")
	}
	return statusOK
}

// handOff copies data into guest memory the way Envoy does: a re-entrant
// proxy_on_memory_allocate call, then the (ptr, size) u32 result slots.
func (vm *VM) handOff(mod api.Module, retPtr, retSize uint64, data string) uint32 {
	ptr, buf := vm.guestAlloc(mod, len(data))
	copy(buf, data)
	return vm.setResult(mod, retPtr, retSize, ptr, len(data))
}

func (vm *VM) hostLog(mod api.Module, s []uint64) uint32 {
	vm.logs = append(vm.logs, LogEntry{Level: uint32(s[0]), Message: string(vm.read(mod, s[1], s[2]))})
	return statusOK
}

func (vm *VM) hostGetBufferBytes(mod api.Module, s []uint64) uint32 {
	var buf []byte
	switch uint32(s[0]) {
	case bufferVMConfiguration:
		buf = vm.vmConfig
	case bufferPluginConfiguration:
		buf = vm.pluginConfig
	default:
		return statusNotFound
	}
	start, limit := uint64(uint32(s[1])), uint64(uint32(s[2]))
	if start > uint64(len(buf)) {
		return statusBadArgument
	}
	end := min(start+limit, uint64(len(buf)))
	return vm.handOff(mod, s[3], s[4], string(buf[start:end]))
}

func (vm *VM) headerMap(t uint64) *[][2]string {
	if vm.cur == nil {
		return nil
	}
	switch uint32(t) {
	case mapRequestHeaders:
		return &vm.cur.request
	case mapResponseHeaders:
		return &vm.cur.response
	}
	return nil
}

// pairsSize is the length of the proxy-wasm serialization of pairs.
func pairsSize(pairs [][2]string) int {
	n := 4
	for _, p := range pairs {
		n += 8 + len(p[0]) + len(p[1]) + 2
	}
	return n
}

// putPairs writes the serialization of pairs to dst, which is pairsSize long.
func putPairs(dst []byte, pairs [][2]string) {
	binary.LittleEndian.PutUint32(dst, uint32(len(pairs)))
	sizes, data := dst[4:], dst[4+8*len(pairs):]
	for _, p := range pairs {
		binary.LittleEndian.PutUint32(sizes, uint32(len(p[0])))
		binary.LittleEndian.PutUint32(sizes[4:], uint32(len(p[1])))
		sizes = sizes[8:]
		data = data[copy(data, p[0]):]
		data[0] = 0
		data = data[1+copy(data[1:], p[1]):]
		data[0] = 0
		data = data[1:]
	}
}

func decodePairs(b []byte) ([][2]string, bool) {
	if len(b) < 4 {
		return nil, len(b) == 0
	}
	n := int(binary.LittleEndian.Uint32(b))
	if 4+8*n > len(b) {
		return nil, false
	}
	data := 4 + 8*n
	out := make([][2]string, 0, n)
	for i := range n {
		kl := int(binary.LittleEndian.Uint32(b[4+8*i:]))
		vl := int(binary.LittleEndian.Uint32(b[8+8*i:]))
		if data+kl+vl+2 > len(b) {
			return nil, false
		}
		k := string(b[data : data+kl])
		data += kl + 1
		v := string(b[data : data+vl])
		data += vl + 1
		out = append(out, [2]string{k, v})
	}
	return out, true
}

func (vm *VM) hostGetHeaderMapPairs(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	// Serialized straight into the buffer the guest allocated.
	n := pairsSize(*m)
	ptr, buf := vm.guestAlloc(mod, n)
	putPairs(buf, *m)
	return vm.setResult(mod, s[1], s[2], ptr, n)
}

func (vm *VM) hostGetHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	key := vm.readView(mod, s[1], s[2])
	for _, p := range *m {
		if p[0] == key {
			return vm.handOff(mod, s[3], s[4], p[1])
		}
	}
	return statusNotFound
}

// removeAll removes, in place, every pair whose name equals key ignoring case
// (strings.EqualFold, with an ASCII fast path).
func removeAll(m [][2]string, key string) [][2]string {
	out := m[:0]
	for _, p := range m {
		if !equalFold(p[0], key) {
			out = append(out, p)
		}
	}
	clear(m[len(out):])
	return out
}

// equalFold is strings.EqualFold without its per-rune decoding when both
// strings are ASCII, which header names are.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return strings.EqualFold(a, b) // different byte lengths can still fold equal (U+212A)
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x|y >= utf8.RuneSelf {
			return strings.EqualFold(a[i:], b[i:])
		}
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// maxInterned bounds VM.names (fuzzing sends arbitrary names).
const maxInterned = 256

// internLower returns strings.ToLower(view) as a string the host may keep.
// view aliases guest memory; the names the guest sets again and again are
// looked up by their bytes as sent and stored once.
func (vm *VM) internLower(view string) string {
	if name, ok := vm.names[view]; ok {
		return name
	}
	name := strings.Clone(strings.ToLower(view)) // ToLower returns view itself when already lower-case
	if len(vm.names) < maxInterned {
		vm.names[strings.Clone(view)] = name
	}
	return name
}

func (vm *VM) hostReplaceHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	key := vm.internLower(vm.readView(mod, s[1], s[2]))
	val := string(vm.read(mod, s[3], s[4]))
	*m = append(removeAll(*m, key), [2]string{key, val})
	return statusOK
}

func (vm *VM) hostRemoveHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	*m = removeAll(*m, vm.readView(mod, s[1], s[2]))
	return statusOK
}

func (vm *VM) hostSendLocalResponse(mod api.Module, s []uint64) uint32 {
	if vm.cur == nil {
		return statusBadArgument
	}
	hdrs, ok := decodePairs(vm.read(mod, s[5], s[6]))
	if !ok {
		return statusBadArgument
	}
	vm.cur.reply = &LocalReply{
		Status:     uint32(s[0]),
		Details:    string(vm.read(mod, s[1], s[2])),
		Body:       append([]byte(nil), vm.read(mod, s[3], s[4])...),
		Headers:    hdrs,
		GRPCStatus: int32(uint32(s[7])),
	}
	return statusOK
}

func (vm *VM) hostGetProperty(mod api.Module, s []uint64) uint32 {
	if vm.cur == nil {
		return statusNotFound
	}
	v, ok := vm.cur.properties[propertyKey(vm.read(mod, s[0], s[1]))]
	if !ok {
		return statusNotFound
	}
	return vm.handOff(mod, s[2], s[3], v)
}

func (vm *VM) hostDefineMetric(mod api.Module, s []uint64) uint32 {
	if uint32(s[0]) > 2 {
		return statusBadArgument
	}
	name := vm.readView(mod, s[1], s[2])
	id, ok := vm.metricIDs[name]
	if !ok {
		name = strings.Clone(name)
		id = uint32(len(vm.metricNames))
		vm.metricIDs[name] = id
		vm.metricNames = append(vm.metricNames, name)
		vm.metricVals = append(vm.metricVals, 0)
	}
	if !mod.Memory().WriteUint32Le(uint32(s[3]), id) {
		vm.trap("out-of-bounds metric id slot")
	}
	return statusOK
}

func (vm *VM) hostIncrementMetric(mod api.Module, s []uint64) uint32 {
	id := uint32(s[0])
	if int(id) >= len(vm.metricVals) {
		return statusNotFound
	}
	vm.metricVals[id] += int64(s[1])
	return statusOK
}
