//go:build wasip1

package proxywasm

import (
	"errors"
	"strings"
)

// errUnknownBuffer means the host reported a buffer the guest did not allocate.
var errUnknownBuffer = errors.New("proxy-wasm: host returned a buffer not from proxy_on_memory_allocate")

func result(call string, status, ptr, size uint32) ([]byte, error) {
	if err := statusErr(call, status); err != nil {
		take(0, 0)
		return nil, err
	}
	if size == 0 {
		take(0, 0)
		return nil, nil
	}
	b := take(ptr, size)
	if b == nil {
		return nil, errUnknownBuffer
	}
	return b, nil
}

// notFound reports a NotFound or Empty status without building an error
// (the common answer for optional headers and properties).
func notFound(status uint32) bool {
	return Status(status) == StatusNotFound || Status(status) == StatusEmpty
}

// Log writes a message to the host log. Allowed in every phase.
func Log(level LogLevel, msg string) {
	proxyLog(uint32(level), msg)
}

// retSlots clears and returns the VM's result slots (see vmState.retPtr).
func retSlots() (ptr, size *uint32) {
	vm.retPtr, vm.retSize = 0, 0
	return &vm.retPtr, &vm.retSize
}

func bufferBytes(t BufferType, size uint32) ([]byte, error) {
	p, n := retSlots()
	st := proxyGetBufferBytes(uint32(t), 0, size, p, n)
	return result("proxy_get_buffer_bytes", st, vm.retPtr, vm.retSize)
}

// AppendHeaders appends every header of map m, in order, to dst with one
// host call. The strings alias a buffer owned by the caller from then on;
// during a stream callback that buffer is reused once the callback returns
// (see Scratch buffers in the package documentation).
func AppendHeaders(dst [][2]string, m MapType) ([][2]string, error) {
	p, n := retSlots()
	st := proxyGetHeaderMapPairs(uint32(m), p, n)
	buf, err := result("proxy_get_header_map_pairs", st, vm.retPtr, vm.retSize)
	if err != nil {
		return dst, err
	}
	return DecodePairs(dst, buf)
}

// HeaderValue returns the value of header name in map m. Like AppendHeaders,
// the string aliases a buffer that a stream callback reuses.
func HeaderValue(m MapType, name string) (string, bool, error) {
	p, n := retSlots()
	st := proxyGetHeaderMapValue(uint32(m), name, p, n)
	if notFound(st) {
		take(0, 0)
		return "", false, nil
	}
	b, err := result("proxy_get_header_map_value", st, vm.retPtr, vm.retSize)
	if err != nil {
		return "", false, err
	}
	return bytesString(b), true, nil
}

// ReplaceHeader sets header name in map m to value, replacing any values.
// A value read from this callback's headers is passed as a copy that
// outlives the callback (see vmState.hostCopy).
func ReplaceHeader(m MapType, name, value string) error {
	return statusErr("proxy_replace_header_map_value", proxyReplaceHeaderMapValue(uint32(m), name, vm.hostCopy(value)))
}

// RemoveHeader removes every value of header name from map m.
func RemoveHeader(m MapType, name string) error {
	return statusErr("proxy_remove_header_map_value", proxyRemoveHeaderMapValue(uint32(m), name))
}

// SendLocalReply answers the stream from the proxy; the stream callback should
// then return ActionPause. details is Envoy's response code details (no spaces).
func SendLocalReply(status uint32, details string, body []byte, headers [][2]string) error {
	vm.encoded = EncodePairs(vm.encoded[:0], headers)
	st := proxySendLocalResponse(status, details, bytesString(body), bytesString(vm.encoded), -1)
	return statusErr("proxy_send_local_response", st)
}

// Property reads a host property such as ("request", "id"). found is false
// when the host has no such property. The segments are joined with NUL; a
// single argument is used as is, so a caller can pass a pre-joined constant
// path and save the join. Like AppendHeaders, the bytes are
// reused after a stream callback returns.
func Property(path ...string) (value []byte, found bool, err error) {
	p, n := retSlots()
	st := proxyGetProperty(strings.Join(path, "\x00"), p, n)
	if notFound(st) {
		take(0, 0)
		return nil, false, nil
	}
	b, err := result("proxy_get_property", st, vm.retPtr, vm.retSize)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// DefineCounter defines (or looks up) a VM-wide counter metric.
func DefineCounter(name string) (uint32, error) {
	id, _ := retSlots()
	st := proxyDefineMetric(uint32(MetricCounter), name, id)
	return vm.retPtr, statusErr("proxy_define_metric", st)
}

// IncrementCounter adds delta to a metric.
func IncrementCounter(id uint32, delta int64) error {
	return statusErr("proxy_increment_metric", proxyIncrementMetric(id, delta))
}
