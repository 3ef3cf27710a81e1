package wasmhost_test

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// typicalRequest is an OpenAI SDK chat request with a valid key and one
// spoofed header to strip.
var typicalRequest = [][2]string{
	{":authority", "api.example.com"}, {":path", "/v1/chat/completions"}, {":method", "POST"}, {":scheme", "https"},
	{"content-type", "application/json"}, {"accept", "application/json"}, {"user-agent", "OpenAI/Python 1.99.0"},
	{"authorization", "Bearer sk-acme-pro-1"}, {"x-request-id", "8a7e9c3e-1f2b-4c55-9d1e-2b8f0a6c4d11"},
	{"x-forwarded-proto", "https"}, {"content-length", "512"}, {"x-tollgate-tenant", "evil"},
}

func benchPlugin(b *testing.B, opts wasmhost.Options) (*wasmhost.VM, *wasmhost.Plugin) {
	b.Helper()
	cf := loadCases(b)
	opts.Env = envGOGC()
	vm := newVM(b, newHost(b, opts))
	p, ok, err := vm.Configure(testContext(b), rawConfig(cf.Configs["main"]))
	require.NoError(b, err)
	require.True(b, ok)
	return vm, p
}

// BenchmarkRequestHeaders measures one proxy_on_request_headers call on the
// compiled module (wazero optimizing compiler): pairs read with re-entrant
// allocate, SHA-256 of the key, strip one header, set four, one counter.
func BenchmarkRequestHeaders(b *testing.B) {
	for _, engine := range []struct {
		name string
		opts wasmhost.Options
	}{{"compiler", wasmhost.Options{}}, {"interpreter", wasmhost.Options{Interpreter: true}}} {
		b.Run(engine.name, func(b *testing.B) {
			_, p := benchPlugin(b, engine.opts)
			ctx := testContext(b)
			s, err := p.NewStream(ctx)
			require.NoError(b, err)
			b.ReportAllocs()
			cpu := processCPU()
			for b.Loop() {
				act, err := s.RequestHeadersOnly(ctx, typicalRequest)
				if err != nil || act != wasmhost.Continue {
					b.Fatalf("action %d, err %v", act, err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkCallbackFloor measures an empty round trip: proxy_on_response_headers,
// which the router answers with Continue without any host call. It is the floor
// under BenchmarkRequestHeaders (wazero call, guest export entry, context lookup).
func BenchmarkCallbackFloor(b *testing.B) {
	_, p := benchPlugin(b, wasmhost.Options{})
	ctx := testContext(b)
	s, err := p.NewStream(ctx)
	require.NoError(b, err)
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		act, err := s.ResponseHeadersOnly(ctx)
		if err != nil || act != wasmhost.Continue {
			b.Fatalf("action %d, err %v", act, err)
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkStream measures a full stream lifecycle (create, request headers,
// response headers, done, log, delete).
func BenchmarkStream(b *testing.B) {
	_, p := benchPlugin(b, wasmhost.Options{})
	ctx := testContext(b)
	req := wasmhost.Request{Headers: typicalRequest}
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if res, err := p.Do(ctx, req); err != nil || res.Action != wasmhost.Continue {
			b.Fatalf("action %d, err %v", res.Action, err)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU adds cpu-ns/op: process CPU time per iteration (wall-clock ns/op
// is inflated when the machine is oversubscribed).
func reportCPU(b *testing.B, start int64) {
	if start > 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// TestMemoryBounded runs 20k requests (100k with TOLLGATE_WASM_LONG=1)
// through one VM and checks that linear memory stays bounded: after the first
// 10k requests the rest may add at most 1 MiB. GOGC comes from
// TOLLGATE_WASM_GOGC (Go's default 100 when unset). The guest now allocates
// nothing for any outcome in the case table, so memory stays at its
// after-configure size (wasm/README.md, "Memory and GOGC"); the tolerance is
// for features that legitimately make some garbage.
func TestMemoryBounded(t *testing.T) {
	n := 20_000
	if os.Getenv("TOLLGATE_WASM_LONG") == "1" {
		n = 100_000
	}
	cf := loadCases(t)
	ctx := testContext(t)
	vm := newVM(t, newHost(t, wasmhost.Options{Env: envGOGC()}))
	p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	require.NoError(t, err)
	require.True(t, ok)
	const warmup = 10_000
	start := vm.MemoryBytes()
	var warm uint32
	for i := range n {
		if i == warmup {
			warm = vm.MemoryBytes()
		}
		tc := cf.Cases[i%len(cf.Cases)]
		if tc.Config != "main" {
			tc.Headers = typicalRequest
		}
		_, err := p.Do(ctx, wasmhost.Request{Headers: tc.Headers, Properties: tc.Properties})
		require.NoError(t, err)
	}
	end := vm.MemoryBytes()
	t.Logf("linear memory: %d B after configure, %d B after %d requests, %d B after %d requests", start, warm, warmup, end, n)
	assert.LessOrEqual(t, end-warm, uint32(1<<20), "memory keeps growing")
	assert.Empty(t, vm.Violations())
}

func envGOGC() map[string]string {
	if v := os.Getenv("TOLLGATE_WASM_GOGC"); v != "" {
		return map[string]string{"GOGC": v}
	}
	return nil
}

// BenchmarkOutcomes breaks proxy_on_request_headers down by path through the
// router: keyed (SHA-256 + lookup + canary), anonymous with 2 and 10
// headers, local replies 401 and 404.
func BenchmarkOutcomes(b *testing.B) {
	cf := loadCases(b)
	vm := newVM(b, newHost(b, wasmhost.Options{Env: envGOGC()}))
	ctx := testContext(b)
	for _, v := range []struct {
		name, cfg string
		headers   [][2]string
		want      wasmhost.Action
	}{
		{"keyed", "main", typicalRequest, wasmhost.Continue},
		{"anonymous-2-headers", "anonymous", [][2]string{{":path", "/v1/chat/completions"}, {":method", "POST"}}, wasmhost.Continue},
		{"anonymous-10-headers", "anonymous", append(typicalRequest[:7:7], typicalRequest[8:11]...), wasmhost.Continue},
		{"reply-401", "main", [][2]string{{":path", "/v1/chat/completions"}, {":method", "POST"}}, wasmhost.Pause},
		{"reply-404", "main", [][2]string{{":path", "/x"}, {":method", "POST"}, {"authorization", "Bearer sk-acme-pro-1"}}, wasmhost.Pause},
	} {
		p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs[v.cfg]))
		require.NoError(b, err)
		require.True(b, ok)
		s, err := p.NewStream(ctx)
		require.NoError(b, err)
		b.Run(v.name, func(b *testing.B) {
			cpu := processCPU()
			for b.Loop() {
				if act, err := s.RequestHeadersOnly(ctx, v.headers); err != nil || act != v.want {
					b.Fatalf("action %d, err %v", act, err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
