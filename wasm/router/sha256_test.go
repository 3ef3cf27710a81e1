package router

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestSHA256Sum(t *testing.T) {
	for _, s := range []string{"", "abc", strings.Repeat("g", 128), strings.Repeat("h", 127), "sk-acme-pro-1", strings.Repeat("a", 55), strings.Repeat("b", 56),
		strings.Repeat("c", 63), strings.Repeat("d", 64), strings.Repeat("e", 119), strings.Repeat("f", 1000)} {
		want := sha256.Sum256([]byte(s))
		if got := sha256Sum(s); got != want {
			t.Errorf("sha256Sum(len %d) = %x, want %x", len(s), got, want)
		}
	}
}

func FuzzSHA256(f *testing.F) {
	f.Add("")
	f.Add("sk-0123456789")
	f.Add(strings.Repeat("x", 56))
	f.Fuzz(func(t *testing.T, s string) {
		want := sha256.Sum256([]byte(s))
		if got := sha256Sum(s); got != want {
			t.Fatalf("sha256Sum(%q) = %x, want %x", s, got, want)
		}
	})
}

func BenchmarkSHA256Key(b *testing.B) {
	key := "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
	b.ReportAllocs()
	for b.Loop() {
		_ = sha256Sum(key)
	}
}
