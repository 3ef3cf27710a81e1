package proxywasm

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unsafe"
)

// Action is returned by stream callbacks.
type Action uint32

// Actions.
const (
	ActionContinue Action = 0
	ActionPause    Action = 1
)

// MapType selects a header map.
type MapType uint32

// Header maps.
const (
	RequestHeaders  MapType = 0
	ResponseHeaders MapType = 2
)

// BufferType selects a host buffer.
type BufferType uint32

// Buffers.
const (
	VMConfiguration     BufferType = 6
	PluginConfiguration BufferType = 7
)

// LogLevel is the proxy_log level.
type LogLevel uint32

// Log levels.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

// MetricType is the proxy_define_metric type.
type MetricType uint32

// Metric types.
const (
	MetricCounter   MetricType = 0
	MetricGauge     MetricType = 1
	MetricHistogram MetricType = 2
)

// Status is a proxy-wasm host call result.
type Status uint32

// Statuses (ABI 0.2.1).
const (
	StatusOK              Status = 0
	StatusNotFound        Status = 1
	StatusBadArgument     Status = 2
	StatusEmpty           Status = 7
	StatusInternalFailure Status = 10
	StatusUnimplemented   Status = 12
)

// StatusError is a host call that returned a status other than OK.
type StatusError struct {
	Call   string
	Status Status
}

func (e *StatusError) Error() string {
	return "proxy-wasm " + e.Call + ": status " + strconv.FormatUint(uint64(e.Status), 10)
}

func statusErr(call string, s uint32) error {
	if Status(s) == StatusOK {
		return nil
	}
	return &StatusError{Call: call, Status: Status(s)}
}

// IsNotFound reports whether err is a NotFound (or Empty) host status.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Status == StatusNotFound || se.Status == StatusEmpty)
}

// ErrMalformedPairs is returned when a serialized header map is truncated.
var ErrMalformedPairs = errors.New("proxy-wasm: malformed header pairs")

// DecodePairs appends the pairs of a proxy-wasm map serialization
// (u32 count, count×(u32 keyLen, u32 valLen), then key\0value\0…) to dst.
// The strings alias buf (no copies): buf must not be modified afterwards.
func DecodePairs(dst [][2]string, buf []byte) ([][2]string, error) {
	if len(buf) == 0 {
		return dst, nil
	}
	if len(buf) < 4 {
		return dst, ErrMalformedPairs
	}
	n := uint64(binary.LittleEndian.Uint32(buf))
	sizes := uint64(4) + 8*n
	if sizes > uint64(len(buf)) {
		return dst, ErrMalformedPairs
	}
	data := sizes
	for i := uint64(0); i < n; i++ {
		kl := uint64(binary.LittleEndian.Uint32(buf[4+8*i:]))
		vl := uint64(binary.LittleEndian.Uint32(buf[8+8*i:]))
		if data+kl+1+vl+1 > uint64(len(buf)) {
			return dst, ErrMalformedPairs
		}
		k := bytesString(buf[data : data+kl])
		data += kl + 1
		v := bytesString(buf[data : data+vl])
		data += vl + 1
		dst = append(dst, [2]string{k, v})
	}
	return dst, nil
}

// EncodePairs appends the proxy-wasm serialization of pairs to dst.
func EncodePairs(dst []byte, pairs [][2]string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(pairs)))
	for _, p := range pairs {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[0])))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(p[1])))
	}
	for _, p := range pairs {
		dst = append(dst, p[0]...)
		dst = append(dst, 0)
		dst = append(dst, p[1]...)
		dst = append(dst, 0)
	}
	return dst
}

func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
