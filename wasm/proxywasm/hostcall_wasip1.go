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

// Log writes a message to the host log. Allowed in every phase.
func Log(level LogLevel, msg string) {
	proxyLog(uint32(level), msg)
}

func bufferBytes(t BufferType, size uint32) ([]byte, error) {
	var ptr, n uint32
	st := proxyGetBufferBytes(uint32(t), 0, size, &ptr, &n)
	return result("proxy_get_buffer_bytes", st, ptr, n)
}

// AppendHeaders appends every header of map m, in order, to dst with one
// host call. The strings alias a buffer owned by the caller from then on.
func AppendHeaders(dst [][2]string, m MapType) ([][2]string, error) {
	var ptr, n uint32
	st := proxyGetHeaderMapPairs(uint32(m), &ptr, &n)
	buf, err := result("proxy_get_header_map_pairs", st, ptr, n)
	if err != nil {
		return dst, err
	}
	return DecodePairs(dst, buf)
}

// HeaderValue returns the value of header name in map m.
func HeaderValue(m MapType, name string) (string, bool, error) {
	var ptr, n uint32
	st := proxyGetHeaderMapValue(uint32(m), name, &ptr, &n)
	b, err := result("proxy_get_header_map_value", st, ptr, n)
	if IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return bytesString(b), true, nil
}

// ReplaceHeader sets header name in map m to value, replacing any values.
func ReplaceHeader(m MapType, name, value string) error {
	return statusErr("proxy_replace_header_map_value", proxyReplaceHeaderMapValue(uint32(m), name, value))
}

// RemoveHeader removes every value of header name from map m.
func RemoveHeader(m MapType, name string) error {
	return statusErr("proxy_remove_header_map_value", proxyRemoveHeaderMapValue(uint32(m), name))
}

// SendLocalReply answers the stream from the proxy; the stream callback should
// then return ActionPause. details is Envoy's response code details (no spaces).
func SendLocalReply(status uint32, details string, body []byte, headers [][2]string) error {
	hdrs := EncodePairs(nil, headers)
	st := proxySendLocalResponse(status, details, bytesString(body), bytesString(hdrs), -1)
	return statusErr("proxy_send_local_response", st)
}

// Property reads a host property such as ("request", "id"). found is false
// when the host has no such property.
func Property(path ...string) (value []byte, found bool, err error) {
	var ptr, n uint32
	st := proxyGetProperty(strings.Join(path, "\x00"), &ptr, &n)
	b, err := result("proxy_get_property", st, ptr, n)
	if IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// DefineCounter defines (or looks up) a VM-wide counter metric.
func DefineCounter(name string) (uint32, error) {
	var id uint32
	st := proxyDefineMetric(uint32(MetricCounter), name, &id)
	return id, statusErr("proxy_define_metric", st)
}

// IncrementCounter adds delta to a metric.
func IncrementCounter(id uint32, delta int64) error {
	return statusErr("proxy_increment_metric", proxyIncrementMetric(id, delta))
}
