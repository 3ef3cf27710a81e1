package wasmhost

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

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

func (vm *VM) read(mod api.Module, ptr, size uint64) []byte {
	b, ok := mod.Memory().Read(uint32(ptr), uint32(size))
	if !ok {
		vm.trap(fmt.Sprintf("out-of-bounds read %d+%d", ptr, size))
	}
	return b
}

// handOff copies data into guest memory the way Envoy does: a re-entrant
// proxy_on_memory_allocate call, then the (ptr, size) u32 result slots.
func (vm *VM) handOff(mod api.Module, retPtr, retSize uint64, data []byte) uint32 {
	prev := vm.phase
	vm.phase = phaseAlloc
	res, err := vm.allocate.Call(vm.callCtx, uint64(len(data)))
	vm.phase = prev
	if err != nil {
		vm.trap("proxy_on_memory_allocate failed: " + err.Error())
	}
	ptr := uint32(res[0])
	mem := mod.Memory()
	if len(data) > 0 && !mem.Write(ptr, data) {
		vm.trap("allocate returned an out-of-bounds pointer")
	}
	if !mem.WriteUint32Le(uint32(retPtr), ptr) || !mem.WriteUint32Le(uint32(retSize), uint32(len(data))) {
		vm.trap("out-of-bounds result slot")
	}
	return statusOK
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
	start, max := uint64(uint32(s[1])), uint64(uint32(s[2]))
	if start > uint64(len(buf)) {
		return statusBadArgument
	}
	end := min(start+max, uint64(len(buf)))
	return vm.handOff(mod, s[3], s[4], buf[start:end])
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

func encodePairs(dst []byte, pairs [][2]string) []byte {
	out := binary.LittleEndian.AppendUint32(dst[:0], uint32(len(pairs)))
	for _, p := range pairs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[0])))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[1])))
	}
	for _, p := range pairs {
		out = append(out, p[0]...)
		out = append(out, 0)
		out = append(out, p[1]...)
		out = append(out, 0)
	}
	return out
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
	vm.pairsBuf = encodePairs(vm.pairsBuf, *m)
	return vm.handOff(mod, s[1], s[2], vm.pairsBuf)
}

func (vm *VM) hostGetHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	key := string(vm.read(mod, s[1], s[2]))
	for _, p := range *m {
		if p[0] == key {
			return vm.handOff(mod, s[3], s[4], []byte(p[1]))
		}
	}
	return statusNotFound
}

func removeAll(m [][2]string, key string) [][2]string {
	out := m[:0]
	for _, p := range m {
		if !strings.EqualFold(p[0], key) {
			out = append(out, p)
		}
	}
	return out
}

func (vm *VM) hostReplaceHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	key := strings.ToLower(string(vm.read(mod, s[1], s[2])))
	val := string(vm.read(mod, s[3], s[4]))
	*m = append(removeAll(*m, key), [2]string{key, val})
	return statusOK
}

func (vm *VM) hostRemoveHeaderMapValue(mod api.Module, s []uint64) uint32 {
	m := vm.headerMap(s[0])
	if m == nil {
		return statusBadArgument
	}
	*m = removeAll(*m, string(vm.read(mod, s[1], s[2])))
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
	return vm.handOff(mod, s[2], s[3], []byte(v))
}

func (vm *VM) hostDefineMetric(mod api.Module, s []uint64) uint32 {
	if uint32(s[0]) > 2 {
		return statusBadArgument
	}
	name := string(vm.read(mod, s[1], s[2]))
	id, ok := vm.metricIDs[name]
	if !ok {
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
