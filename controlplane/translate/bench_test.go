package translate_test

import (
	"testing"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

func BenchmarkEnvoyDefaultConfig(b *testing.B) {
	c, err := config.Default()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := translate.Envoy(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderYAMLDefaultConfig(b *testing.B) {
	c, err := config.Default()
	if err != nil {
		b.Fatal(err)
	}
	r, err := translate.Envoy(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.YAML(); err != nil {
			b.Fatal(err)
		}
	}
}
