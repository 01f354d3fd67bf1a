//go:build linux

package oci

import (
	"testing"

	"github.com/integr8scode/integr8scode/runner/sandboxtest"
)

// TestSandboxContract runs the contract every sandbox keeps against a real
// runc container per case, and checks after each that nothing is left on
// the host.
func TestSandboxContract(t *testing.T) {
	r := newSandbox(t, Config{Slots: 4, OutputCapBytes: 64 << 10})
	sandboxtest.Run(t, r, sandboxtest.Features{OutputCap: 64 << 10, AfterEach: func(t *testing.T) { assertClean(t, r) }})
}
