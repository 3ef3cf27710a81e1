package proxywasm

import (
	"errors"
	"reflect"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	tests := [][][2]string{
		nil,
		{{":path", "/v1/models"}},
		{{"a", ""}, {"", "b"}, {"x-tollgate-tenant", "acme"}, {"k", "v\x00with nul"}},
	}
	for _, pairs := range tests {
		buf := EncodePairs(nil, pairs)
		got, err := DecodePairs(nil, buf)
		if err != nil {
			t.Fatalf("DecodePairs(%q): %v", pairs, err)
		}
		if len(pairs) == 0 && len(got) == 0 {
			continue
		}
		// A NUL inside a value is not representable: lengths win, so it survives.
		if !reflect.DeepEqual(got, pairs) {
			t.Fatalf("round trip = %q, want %q", got, pairs)
		}
	}
}

func TestDecodePairsMalformed(t *testing.T) {
	good := EncodePairs(nil, [][2]string{{"key", "value"}})
	for _, buf := range [][]byte{good[:3], good[:8], good[:len(good)-1], {255, 255, 255, 255}} {
		if _, err := DecodePairs(nil, buf); !errors.Is(err, ErrMalformedPairs) {
			t.Errorf("DecodePairs(%v) = %v, want ErrMalformedPairs", buf, err)
		}
	}
}

func FuzzDecodePairs(f *testing.F) {
	f.Add(EncodePairs(nil, [][2]string{{"a", "b"}, {"c", "d"}}))
	f.Add([]byte{1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, buf []byte) {
		pairs, err := DecodePairs(nil, buf)
		if err != nil {
			return
		}
		// What decodes re-encodes to a prefix-equal buffer (separators aside).
		again := EncodePairs(nil, pairs)
		back, err := DecodePairs(nil, again)
		if err != nil || !reflect.DeepEqual(back, pairs) {
			t.Fatalf("re-decode = %q, %v; want %q", back, err, pairs)
		}
	})
}

func TestStatusError(t *testing.T) {
	if err := statusErr("proxy_log", 0); err != nil {
		t.Fatalf("status 0 = %v", err)
	}
	err := statusErr("proxy_get_property", uint32(StatusNotFound))
	if !IsNotFound(err) {
		t.Fatalf("IsNotFound(%v) = false", err)
	}
	if IsNotFound(statusErr("x", uint32(StatusBadArgument))) {
		t.Fatal("BadArgument reported as not found")
	}
}
