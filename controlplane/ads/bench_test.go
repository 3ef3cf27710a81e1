package ads_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-dev/tollgate/controlplane/ads"
	"github.com/tollgate-dev/tollgate/pkg/config"
)

// BenchmarkApplyUnchanged is the cost of a reload that changes nothing
// Envoy sees: translate, validate, hash, compare.
func BenchmarkApplyUnchanged(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tollgate.yaml")
	data := configYAML("alpha", "beta", "gamma")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	srv, err := ads.New(ads.Options{ConfigPath: path})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Parse(path, data)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		changed, err := srv.Apply(cfg)
		if err != nil || changed {
			b.Fatalf("changed=%v err=%v", changed, err)
		}
	}
}
