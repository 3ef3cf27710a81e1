package wasmhost_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

const (
	decisionsPrefix = "tollgate_router_decisions.outcome."
	canaryMetric    = "tollgate_router_canary_routed"
	strippedMetric  = "tollgate_router_stripped_headers"
)

func TestModuleShape(t *testing.T) {
	h := newHost(t, wasmhost.Options{})
	assert.Less(t, len(wasmBytes), 2_500_000, "module size target")
	for _, imp := range h.Imports() {
		mod, _, _ := strings.Cut(imp, ".")
		assert.Contains(t, []string{"env", "wasi_snapshot_preview1"}, mod, imp)
	}
	exports := h.Exports()
	for _, want := range []string{"_initialize", "proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "proxy_on_context_create",
		"proxy_on_vm_start", "proxy_on_configure", "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_done",
		"proxy_on_log", "proxy_on_delete"} {
		assert.Contains(t, exports, want)
	}
	assert.NotContains(t, exports, "_start", "a command-mode build would exit after _start")
}

// TestSharedCases runs wasm/testdata/cases.json against the compiled module,
// with the optimizing compiler and the interpreter.
func TestSharedCases(t *testing.T) {
	cf := loadCases(t)
	for _, engine := range []struct {
		name string
		opts wasmhost.Options
	}{{"compiler", wasmhost.Options{}}, {"interpreter", wasmhost.Options{Interpreter: true}}} {
		t.Run(engine.name, func(t *testing.T) {
			ctx := testContext(t)
			vm := newVM(t, newHost(t, engine.opts))
			plugins := map[string]*wasmhost.Plugin{}
			for name, raw := range cf.Configs {
				p, ok, err := vm.Configure(ctx, rawConfig(raw))
				require.NoError(t, err)
				require.True(t, ok, "config %s rejected; logs: %v", name, vm.Logs())
				plugins[name] = p
			}
			wantMetrics := map[string]int64{}
			for _, tc := range cf.Cases {
				t.Run(tc.Name, func(t *testing.T) {
					p := plugins[tc.Config]
					require.NotNil(t, p, "unknown config %q", tc.Config)
					res, err := p.Do(ctx, wasmhost.Request{Headers: tc.Headers, Properties: tc.Properties})
					require.NoError(t, err)
					checkResult(t, tc, res)
				})
				wantMetrics[decisionsPrefix+tc.Want.Outcome]++
				if tc.Want.Canary {
					wantMetrics[canaryMetric]++
				}
				wantMetrics[strippedMetric] += int64(countTollgateNames(tc.Headers))
			}
			got := vm.Metrics()
			for name, want := range wantMetrics {
				assert.Equal(t, want, got[name], "metric %s", name)
			}
			assert.Zero(t, got[decisionsPrefix+"error"])
			assert.Empty(t, vm.Violations())
			assert.Zero(t, vm.PollOneoffCalls(), "poll_oneoff crashes Envoy < 1.39 at GC")
		})
	}
}

func countTollgateNames(headers [][2]string) int {
	var names []string
	for _, h := range headers {
		n := strings.ToLower(h[0])
		if strings.HasPrefix(n, "x-tollgate-") && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return len(names)
}

func checkResult(t *testing.T, tc routeCase, res wasmhost.Result) {
	t.Helper()
	// No client-sent x-tollgate-* header survives, whatever the outcome.
	for _, h := range res.Headers {
		if strings.HasPrefix(strings.ToLower(h[0]), "x-tollgate-") {
			want, ok := tc.Want.Headers[h[0]]
			assert.True(t, ok && want == h[1] && tc.Want.Status == 0, "header %s: %q survives", h[0], h[1])
		}
	}
	if tc.Want.Status == 0 {
		require.Nil(t, res.Reply, "unexpected local reply")
		assert.Equal(t, wasmhost.Continue, res.Action)
		for k, v := range tc.Want.Headers {
			assert.Equal(t, []string{v}, values(res.Headers, k), "header %s", k)
		}
		return
	}
	require.NotNil(t, res.Reply, "want local reply %d", tc.Want.Status)
	assert.Equal(t, wasmhost.Pause, res.Action)
	assert.Equal(t, tc.Want.Status, res.Reply.Status)
	assert.Equal(t, "tollgate_router_"+tc.Want.Outcome, res.Reply.Details)
	assert.Equal(t, [][2]string{{"content-type", "application/json"}}, res.Reply.Headers)
	assert.Equal(t, int32(-1), res.Reply.GRPCStatus)
	var body struct {
		Error struct{ Message, Type, Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(res.Reply.Body, &body), "body %s", res.Reply.Body)
	assert.Equal(t, tc.Want.Code, body.Error.Code)
	assert.NotEmpty(t, body.Error.Message)
	assert.NotEmpty(t, body.Error.Type)
}

func values(headers [][2]string, name string) []string {
	var out []string
	for _, h := range headers {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}

// TestBadConfigsFailPluginStart: proxy_on_configure returns false (Envoy fails
// the load), the VM stays usable and a later good config still works.
func TestBadConfigsFailPluginStart(t *testing.T) {
	ctx := testContext(t)
	cf := loadCases(t)
	vm := newVM(t, newHost(t, wasmhost.Options{}))
	for _, bc := range cf.BadConfigs {
		t.Run(bc.Name, func(t *testing.T) {
			_, ok, err := vm.Configure(ctx, rawConfig(bc.Config))
			require.NoError(t, err)
			assert.False(t, ok, "config accepted")
		})
	}
	_, ok, err := vm.Configure(ctx, nil)
	require.NoError(t, err)
	assert.False(t, ok, "empty configuration accepted")
	p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	require.NoError(t, err)
	require.True(t, ok)
	res, err := p.Do(ctx, wasmhost.Request{Headers: [][2]string{{":method", "GET"}, {":path", "/v1/models"}, {"x-api-key", "sk-acme-pro-1"}}})
	require.NoError(t, err)
	assert.Equal(t, wasmhost.Continue, res.Action)
	assert.Empty(t, vm.Violations())
}

// TestPollOneoffENOSYS runs traffic with poll_oneoff failing like Envoy
// 1.33-1.38 and GOGC=1 to force many GCs: the module must never reach it.
func TestPollOneoffENOSYS(t *testing.T) {
	ctx := testContext(t)
	cf := loadCases(t)
	vm := newVM(t, newHost(t, wasmhost.Options{Poll: wasmhost.PollENOSYS, Env: map[string]string{"GOGC": "1"}}))
	p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	require.NoError(t, err)
	require.True(t, ok)
	for i := range 2000 {
		tc := cf.Cases[i%len(cf.Cases)]
		if tc.Config != "main" {
			continue
		}
		_, err := p.Do(ctx, wasmhost.Request{Headers: tc.Headers, Properties: tc.Properties})
		require.NoError(t, err, "request %d", i)
	}
	assert.Zero(t, vm.PollOneoffCalls())
}

// TestRestrictedCallbackEnforced proves the host's restricted-callback check
// can fail: a host call made during _initialize traps. The real module makes
// none (every other test would fail), so a minimal hand-assembled module that
// calls proxy_get_property from its _initialize is used.
func TestRestrictedCallbackEnforced(t *testing.T) {
	ctx := testContext(t)
	h, err := wasmhost.New(ctx, initCallsHostModule(), wasmhost.Options{Interpreter: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close(ctx) })
	_, err = h.NewVM(ctx, nil)
	require.ErrorIs(t, err, wasmhost.ErrTrapped)
	assert.Contains(t, err.Error(), "restricted_callback: proxy_get_property during _initialize")
}

// initCallsHostModule is a wasm binary: imports env.proxy_get_property, one
// memory page, exports _initialize calling proxy_get_property(0,0,0,4), and a
// stub proxy_on_memory_allocate.
func initCallsHostModule() []byte {
	const i32, fn = 0x7f, 0x60
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	section := func(id byte, parts ...[]byte) []byte {
		var body []byte
		for _, p := range parts {
			body = append(body, p...)
		}
		return append([]byte{id, byte(len(body))}, body...)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	initBody := []byte{0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x04, 0x10, 0x00, 0x1a, 0x0b}
	allocBody := []byte{0x00, 0x41, 0x10, 0x0b}
	return cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		// types: 0 (i32 i32 i32 i32)->i32, 1 ()->(), 2 (i32)->i32
		section(0x01, []byte{3, fn, 4, i32, i32, i32, i32, 1, i32, fn, 0, 0, fn, 1, i32, 1, i32}),
		section(0x02, []byte{1}, name("env"), name("proxy_get_property"), []byte{0x00, 0x00}),
		section(0x03, []byte{2, 1, 2}),
		section(0x05, []byte{1, 0x00, 1}),
		section(0x07, []byte{3}, name("_initialize"), []byte{0x00, 1},
			name("proxy_on_memory_allocate"), []byte{0x00, 2}, name("memory"), []byte{0x02, 0}),
		section(0x0a, []byte{2}, name(string(initBody))[:1], initBody, name(string(allocBody))[:1], allocBody),
	)
}
