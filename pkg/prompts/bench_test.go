package prompts

import (
	"strings"
	"testing"
)

func BenchmarkApply(b *testing.B) {
	r := loadRepo(b)
	p, err := r.Resolve("support-answer@2")
	if err != nil {
		b.Fatal(err)
	}
	// A 2 KiB client conversation.
	body := []byte(`{"model":"small","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum ", 170) + `"}]}`)
	vars := map[string]string{"product": "Acme Cloud", "language": "French"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Apply(body, vars); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	r := loadRepo(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve("support-answer@2"); err != nil {
			b.Fatal(err)
		}
	}
}
