//go:build linux

package oci

import (
	"context"
	"strings"
	"testing"
)

// TestAContainerThatDiesBeforeReadyIsSeenAtOnce: a container whose Python
// ends without saying it is ready (here the interpreter is /usr/bin/true)
// is noticed by the control socket's end of file, not by waiting out the
// ready timeout with a uid slot held.
func TestAContainerThatDiesBeforeReadyIsSeenAtOnce(t *testing.T) {
	r := newSandbox(t, Config{Slots: 1})
	r.python = "/usr/bin/true"
	_, err := r.Run(context.Background(), job(`print("hi")`, fast))
	if err == nil || !strings.Contains(err.Error(), "did not get ready: EOF") {
		t.Fatalf("Run with an interpreter that exits at once: %v, want the socket's EOF", err)
	}
	assertClean(t, r)
}
