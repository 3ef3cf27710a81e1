package keys

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkLookup: Ring.Lookup of a key's SHA-256 (snapshot map read and
// expiry check) in a ring of 10,000 keys. Hashing the presented secret is
// measured with the rest of authentication in extproc's BenchmarkKeyLookup.
func BenchmarkLookup(b *testing.B) {
	path := filepath.Join(b.TempDir(), "keys.jsonl")
	var file []byte
	var secret string
	for i := range 10000 {
		s, sum, err := NewSecret()
		if err != nil {
			b.Fatal(err)
		}
		line, _ := json.Marshal(Key{ID: "k" + strconv.Itoa(i), Tenant: "t", SHA256: sum})
		file = append(append(file, line...), '\n')
		secret = s
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		b.Fatal(err)
	}
	fb, err := OpenFile(path, FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRing(context.Background(), fb, RingOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	sum := sha256.Sum256([]byte(secret))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup(sum); !ok {
			b.Fatal("not found")
		}
	}
}
