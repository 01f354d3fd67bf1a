//go:build linux

package oci

import (
	"testing"

	"github.com/integr8scode/integr8scode/runner/sandboxtest"
)

// TestSandboxContract runs the contract every sandbox keeps against a real
// runc container per case, started for the run (cold) or taken from the
// warm pool, and checks after each that nothing but the pool's waiting
// containers is left on the host.
func TestSandboxContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		warm int
	}{{"Cold", 0}, {"Warm", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSandbox(t, Config{Slots: 4, Warm: tc.warm, OutputCapBytes: 64 << 10})
			sandboxtest.Run(t, r, sandboxtest.Features{OutputCap: 64 << 10, AfterEach: func(t *testing.T) { assertClean(t, r) }})
			if s := r.PoolStats(); tc.warm > 0 && s.Hits == 0 {
				t.Fatalf("no run took a warm container: %+v", s)
			}
		})
	}
}
