package wasmhost_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// The tetratelabs SDK's proxytest host is an ABI implementation we did not
// write: running the compiled module through it checks that our reading of
// the ABI (pair encoding, return slots, argument order of local replies,
// metric calls) agrees with another one, which our own host cannot prove.
// proxytest instantiates modules with wazero's default start function,
// _start, so it runs a copy of the module whose _initialize export (the Go
// reactor's runtime init) is renamed to _start. It enforces none of Envoy's
// restricted-phase rules; test/wasmhost does.

// renameExport returns a copy of a wasm binary with export from renamed to
// to. It rewrites only the export section; the module is otherwise
// byte-identical.
func renameExport(mod []byte, from, to string) ([]byte, error) {
	const exportSection = 7
	if len(mod) < 8 || !bytes.Equal(mod[:4], []byte("\x00asm")) {
		return nil, errors.New("not a wasm binary")
	}
	out := append([]byte(nil), mod[:8]...)
	renamed := false
	for p := 8; p < len(mod); {
		id := mod[p]
		size, n := binary.Uvarint(mod[p+1:])
		if n <= 0 || p+1+n+int(size) > len(mod) {
			return nil, fmt.Errorf("bad section header at offset %d", p)
		}
		body := mod[p+1+n : p+1+n+int(size)]
		p += 1 + n + int(size)
		if id != exportSection {
			out = append(out, mod[p-len(body)-n-1:p]...)
			continue
		}
		nb, ok, err := renameInExports(body, from, to)
		if err != nil {
			return nil, err
		}
		renamed = renamed || ok
		out = append(out, id)
		// Keep the size field's width: Go pads it to 5 bytes, and a same-width
		// field keeps every later offset in the file unchanged but for the
		// name's length difference.
		out = appendPaddedUvarint(out, uint64(len(nb)), n)
		out = append(out, nb...)
	}
	if !renamed {
		return nil, fmt.Errorf("no export %q", from)
	}
	return out, nil
}

// appendPaddedUvarint writes v as an unsigned LEB128 of exactly width bytes
// (continuation bits on all but the last), as wasm allows.
func appendPaddedUvarint(dst []byte, v uint64, width int) []byte {
	for i := 1; i < width; i++ {
		dst = append(dst, byte(v&0x7f)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// renameInExports rewrites an export section body: a count, then per export
// a length-prefixed name, a kind byte and an index.
func renameInExports(body []byte, from, to string) ([]byte, bool, error) {
	count, n := binary.Uvarint(body)
	if n <= 0 {
		return nil, false, errors.New("bad export count")
	}
	out := binary.AppendUvarint(nil, count)
	p, renamed := n, false
	for range count {
		l, m := binary.Uvarint(body[p:])
		if m <= 0 || p+m+int(l) > len(body) {
			return nil, false, errors.New("bad export name")
		}
		name := string(body[p+m : p+m+int(l)])
		p += m + int(l)
		_, m = binary.Uvarint(body[p+1:]) // kind byte, then the index
		if m <= 0 {
			return nil, false, errors.New("bad export index")
		}
		if name == from {
			name, renamed = to, true
		}
		out = binary.AppendUvarint(out, uint64(len(name)))
		out = append(out, name...)
		out = append(out, body[p:p+1+m]...)
		p += 1 + m
	}
	if p != len(body) {
		return nil, false, errors.New("trailing bytes in the export section")
	}
	return out, renamed, nil
}

func TestRenameExport(t *testing.T) {
	got, err := renameExport(wasmBytes, "_initialize", "_start")
	require.NoError(t, err)
	assert.Equal(t, len(wasmBytes)-len("_initialize")+len("_start"), len(got))
	back, err := renameExport(got, "_start", "_initialize")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(wasmBytes, back), "renaming back restores the module byte for byte")
	_, err = renameExport(wasmBytes, "no_such_export", "x")
	assert.Error(t, err)
}

// TestSharedCasesUnderProxytest runs wasm/testdata/cases.json through the
// compiled module hosted by proxytest: same actions, local replies, headers
// and metrics as under our host.
func TestSharedCasesUnderProxytest(t *testing.T) {
	mod, err := renameExport(wasmBytes, "_initialize", "_start")
	require.NoError(t, err)
	cf := loadCases(t)
	// proxytest hosts one plugin per emulator, so one emulator (and one VM)
	// per configuration, holding that configuration's cases in file order.
	byConfig := map[string][]routeCase{}
	var order []string
	for _, tc := range cf.Cases {
		if _, ok := byConfig[tc.Config]; !ok {
			order = append(order, tc.Config)
		}
		byConfig[tc.Config] = append(byConfig[tc.Config], tc)
	}
	// One module instance serves every emulator (compiling it is the slow
	// part); each emulator creates its own root context in it.
	vm, err := proxytest.NewWasmVMContext(mod)
	require.NoError(t, err)
	defer vm.Close()
	for _, name := range order {
		t.Run(name, func(t *testing.T) {
			opt := proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration(rawConfig(cf.Configs[name]))
			for _, tc := range byConfig[name] {
				for k, v := range tc.Properties {
					opt = opt.WithProperty(strings.Split(k, "."), []byte(v))
				}
			}
			host, reset := proxytest.NewHostEmulator(opt)
			defer reset()
			require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin(), "plugin start; logs: %v", host.GetErrorLogs())

			wantMetrics := map[string]uint64{}
			for _, tc := range byConfig[name] {
				t.Run(tc.Name, func(t *testing.T) {
					id := host.InitializeHttpContext()
					action := host.CallOnRequestHeaders(id, tc.Headers, false)
					checkProxytestResult(t, tc, action, host.GetCurrentRequestHeaders(id), host.GetSentLocalResponse(id))
					host.CompleteHttpContext(id)
				})
				wantMetrics[decisionsPrefix+tc.Want.Outcome]++
				if tc.Want.Canary {
					wantMetrics[canaryMetric]++
				}
				wantMetrics[strippedMetric] += uint64(countTollgateNames(tc.Headers))
			}
			for metric, want := range wantMetrics {
				got, err := host.GetCounterMetric(metric)
				if want == 0 && err != nil {
					continue // never incremented may also mean never looked up
				}
				require.NoError(t, err, metric)
				assert.Equal(t, want, got, "metric %s", metric)
			}
			assert.Empty(t, host.GetErrorLogs())
		})
	}
}

func checkProxytestResult(t *testing.T, tc routeCase, action types.Action, headers [][2]string, reply *proxytest.LocalHttpResponse) {
	t.Helper()
	for _, h := range headers {
		if strings.HasPrefix(h[0], "x-tollgate-") {
			want, ok := tc.Want.Headers[h[0]]
			assert.True(t, ok && want == h[1] && tc.Want.Status == 0, "header %s: %q survives", h[0], h[1])
		}
	}
	if tc.Want.Status == 0 {
		require.Nil(t, reply, "unexpected local reply")
		assert.Equal(t, types.ActionContinue, action)
		for k, v := range tc.Want.Headers {
			assert.Equal(t, []string{v}, values(headers, k), "header %s", k)
		}
		return
	}
	require.NotNil(t, reply, "want local reply %d", tc.Want.Status)
	assert.Equal(t, types.ActionPause, action)
	assert.Equal(t, tc.Want.Status, reply.StatusCode)
	assert.Equal(t, "tollgate_router_"+tc.Want.Outcome, reply.StatusCodeDetail)
	assert.Equal(t, [][2]string{{"content-type", "application/json"}}, reply.Headers)
	assert.Equal(t, int32(-1), reply.GRPCStatus)
	var body struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(reply.Data, &body), "body %s", reply.Data)
	assert.Equal(t, tc.Want.Code, body.Error.Code)
	assert.NotEmpty(t, body.Error.Message)
}

// TestBadConfigFailsUnderProxytest: proxytest also sees a bad plugin
// configuration fail the plugin start.
func TestBadConfigFailsUnderProxytest(t *testing.T) {
	mod, err := renameExport(wasmBytes, "_initialize", "_start")
	require.NoError(t, err)
	vm, err := proxytest.NewWasmVMContext(mod)
	require.NoError(t, err)
	defer vm.Close()
	for _, bc := range loadCases(t).BadConfigs {
		t.Run(bc.Name, func(t *testing.T) {
			host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(vm).WithPluginConfiguration(rawConfig(bc.Config)))
			defer reset()
			assert.Equal(t, types.OnPluginStartStatusFailed, host.StartPlugin())
		})
	}
}
