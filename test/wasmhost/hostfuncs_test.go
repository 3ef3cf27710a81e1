package wasmhost

import (
	"encoding/binary"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEqualFold(t *testing.T) {
	tests := []struct{ a, b string }{
		{"", ""},
		{"x-tollgate-tenant", "x-tollgate-tenant"},
		{"X-Tollgate-Tenant", "x-tollgate-tenant"},
		{"x-tollgate-tenant", "x-tollgate-tenanT"},
		{"x-tollgate-tenant", "x-tollgate-tier"},
		{"x-tollgate-tenant", "x-tollgate-tenanu"},
		{"[", "{"}, // differ by 0x20 but are not letters
		{"@", "`"},
		{"k", "\u212a"}, // Kelvin sign folds to k: different byte lengths
		{"x-\u212aey", "x-key"},
		{"ſ", "s"},
		{"\xff", "\xff"},
		{"é", "É"},
	}
	for _, tt := range tests {
		assert.Equal(t, strings.EqualFold(tt.a, tt.b), equalFold(tt.a, tt.b), "%q %q", tt.a, tt.b)
		assert.Equal(t, strings.EqualFold(tt.b, tt.a), equalFold(tt.b, tt.a), "%q %q", tt.b, tt.a)
	}
}

func FuzzEqualFold(f *testing.F) {
	f.Add("X-Tollgate-Tenant", "x-tollgate-tenant")
	f.Add("k", "\u212a")
	f.Add("[", "{")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := equalFold(a, b), strings.EqualFold(a, b); got != want {
			t.Fatalf("equalFold(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}

// encodePairs is the straightforward serialization putPairs must match.
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

func TestPutPairs(t *testing.T) {
	tests := [][][2]string{
		nil,
		{{"", ""}},
		{{":path", "/v1/models"}, {"x-a", ""}, {"", "b"}, {"authorization", "Bearer k"}},
	}
	for _, pairs := range tests {
		buf := make([]byte, pairsSize(pairs))
		putPairs(buf, pairs)
		assert.Equal(t, encodePairs(nil, pairs), buf)
		back, ok := decodePairs(buf)
		require.True(t, ok)
		assert.Equal(t, len(pairs), len(back))
	}
}

func TestRemoveAll(t *testing.T) {
	m := [][2]string{{"a", "1"}, {"X-Tollgate-Tenant", "evil"}, {"b", "2"}, {"x-tollgate-tenant", "evil2"}}
	got := removeAll(m, "x-tollgate-TENANT")
	assert.Equal(t, [][2]string{{"a", "1"}, {"b", "2"}}, got)
	assert.Equal(t, [2]string{}, m[3], "removed tail not cleared")
}

func TestInternLower(t *testing.T) {
	vm := &VM{names: map[string]string{}}
	for _, in := range []string{"X-Tollgate-Route", "x-tollgate-route"} {
		buf := []byte(in)
		name := vm.internLower(unsafe.String(&buf[0], len(buf))) // a view of guest memory, as readView gives
		buf[0] = 'Y'                                             // the guest reuses its memory: the name must not change
		assert.Equal(t, "x-tollgate-route", name)
	}
	assert.Equal(t, "x-tollgate-route", vm.internLower("x-tollgate-route"))
	assert.Equal(t, "x-tollgate-route", vm.internLower("X-TOLLGATE-ROUTE"))
	assert.Len(t, vm.names, 3, "one entry per spelling")
	for i := range 2 * maxInterned {
		vm.internLower(strings.Repeat("a", i+1))
	}
	assert.Len(t, vm.names, maxInterned, "intern table unbounded")
}
