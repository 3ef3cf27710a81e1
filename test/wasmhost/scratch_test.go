package wasmhost_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-dev/tollgate/test/wasmhost"
)

// TestScratchBuffers covers the guest's reuse of one scratch area for the
// buffers the host hands over during stream callbacks: a header map larger
// than the area plus a property read in the same callback (two live buffers,
// the area grows), then smaller requests that reuse it. Nothing from one
// request may show in the next, and every decision must match a fresh VM's.
func TestScratchBuffers(t *testing.T) {
	ctx := testContext(t)
	cf := loadCases(t)
	big := [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer sk-acme-pro-1"},
		{"user-agent", strings.Repeat("u", 16<<10)}, {"X-Tollgate-Route", "evil"}}
	for i := range 60 {
		big = append(big, [2]string{"x-extra-" + strconv.Itoa(i), strings.Repeat("v", i)})
	}
	steps := []struct {
		name  string
		req   wasmhost.Request
		route string
		keyID string
	}{
		{"20 KiB map and request.id property in one callback", wasmhost.Request{Headers: big, Properties: map[string]string{"request.id": "req-5"}},
			"gpt-4o-canary", "k-acme-pro"},
		{"small request after the area grew", wasmhost.Request{Headers: [][2]string{{":method", "GET"}, {":path", "/v1/models"},
			{"authorization", "Bearer sk-acme-free-1"}}}, "gpt-4o-mini", "k-acme-free"},
		{"explicit model", wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
			{"authorization", "Bearer sk-acme-pro-1"}, {"x-tollgate-model", "gpt-4o-mini"}, {"x-request-id", "req-2"}}}, "gpt-4o-mini", "k-acme-pro"},
		{"no model: the previous request's model must not leak", wasmhost.Request{Headers: [][2]string{{":method", "POST"},
			{":path", "/v1/chat/completions"}, {"authorization", "Bearer sk-acme-pro-1"}, {"x-request-id", "req-2"}}}, "gpt-4o-canary", "k-acme-pro"},
		{"property again, small map", wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
			{"authorization", "Bearer sk-acme-pro-1"}}, Properties: map[string]string{"request.id": "req-5"}}, "gpt-4o-canary", "k-acme-pro"},
		// The property is read after the headers are decoded but before the
		// spoofed name is removed: were its buffer to overlap the header
		// buffer, the removal would miss and "evil" would survive (a name
		// the router does not set, so no replace hides the miss).
		{"long property over a small map", wasmhost.Request{Headers: [][2]string{{"x-tollgate-budget", "evil"}, {":method", "POST"},
			{":path", "/v1/chat/completions"}, {"authorization", "Bearer sk-acme-pro-1"}},
			Properties: map[string]string{"request.id": strings.Repeat("r", 200)}}, "", "k-acme-pro"},
	}
	vm := newVM(t, newHost(t, wasmhost.Options{}))
	p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	require.NoError(t, err)
	require.True(t, ok)
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			res, err := p.Do(ctx, step.req)
			require.NoError(t, err)
			require.Nil(t, res.Reply, "unexpected local reply")
			if step.route != "" {
				assert.Equal(t, []string{step.route}, values(res.Headers, "x-tollgate-route"))
			}
			assert.Equal(t, []string{step.keyID}, values(res.Headers, "x-tollgate-key-id"))
			assert.Equal(t, []string{"acme"}, values(res.Headers, "x-tollgate-tenant"))
			assert.Empty(t, values(res.Headers, "X-Tollgate-Route"), "spoofed header survived")
			assert.Empty(t, values(res.Headers, "x-tollgate-budget"), "spoofed header survived")
			assert.Len(t, res.Headers, len(step.req.Headers)-countTollgateNames(step.req.Headers)+4)

			// The same request on a fresh VM decides the same.
			fresh := newVM(t, newHost(t, wasmhost.Options{}))
			fp, ok, err := fresh.Configure(ctx, rawConfig(cf.Configs["main"]))
			require.NoError(t, err)
			require.True(t, ok)
			want, err := fp.Do(ctx, step.req)
			require.NoError(t, err)
			assert.Equal(t, want.Headers, res.Headers)
		})
	}
	assert.Empty(t, vm.Violations())
}

// TestKeyNotKeptInMemory: after a request, its API key is nowhere in the
// guest's linear memory. The scratch area is zeroed when the callback ends and
// the SHA-256 block buffer is wiped; before, the freed header buffer kept the
// key until the Go heap reused it.
func TestKeyNotKeptInMemory(t *testing.T) {
	ctx := testContext(t)
	cf := loadCases(t)
	vm := newVM(t, newHost(t, wasmhost.Options{}))
	p, ok, err := vm.Configure(ctx, rawConfig(cf.Configs["main"]))
	require.NoError(t, err)
	require.True(t, ok)
	for _, tc := range []struct {
		header [2]string
		props  map[string]string
	}{
		{[2]string{"authorization", "Bearer sk-acme-pro-1"}, nil},
		{[2]string{"x-api-key", "sk-acme-free-1"}, nil},
		{[2]string{"authorization", "Bearer sk-unknown-0123456789"}, nil},
		// The 3 KiB request.id does not fit next to the header map: the area
		// is replaced mid-callback and the old one must be wiped too.
		{[2]string{"authorization", "Bearer sk-acme-pro-1"}, map[string]string{"request.id": strings.Repeat("r", 3<<10)}},
	} {
		h := tc.header
		res, err := p.Do(ctx, wasmhost.Request{Headers: [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, h,
			{"user-agent", strings.Repeat("u", 1<<10)}}, Properties: tc.props})
		require.NoError(t, err)
		key := strings.TrimPrefix(h[1], "Bearer ")
		assert.False(t, vm.MemoryContains([]byte(key)), "%s found in guest memory after the request (reply %v)", key, res.Reply != nil)
	}
}
