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

// BenchmarkLookup: one request's virtual key lookup (SHA-256 of the
// presented secret and a snapshot map read) in a ring of 10,000 keys.
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
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Lookup(sha256.Sum256([]byte(secret))); !ok {
			b.Fatal("not found")
		}
	}
}
