package e2e

import (
	"testing"
)

// TestEmulated runs every scenario through the Envoy emulator.
func TestEmulated(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			g := StartEmulated(t, sc.opts)
			sc.run(t, g)
		})
	}
}
