//go:build linux

package oci

import (
	"context"
	"path/filepath"
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

// TestARuncThatCannotBeStartedIsThePlatformsError: runc gone from under a
// running service (an upgrade, a removed package) makes a run the
// platform's error, and the run's bundle and uid slot are still released
// (runc's delete fails the same way; with no cgroup, nothing can run).
func TestARuncThatCannotBeStartedIsThePlatformsError(t *testing.T) {
	r := newSandbox(t, Config{Slots: 1})
	runc := r.cfg.RuncPath
	r.cfg.RuncPath = filepath.Join(t.TempDir(), "runc-removed")
	_, err := r.Run(context.Background(), job(`print("hi")`, fast))
	r.cfg.RuncPath = runc
	if err == nil || !strings.Contains(err.Error(), "start runc") {
		t.Fatalf("Run without runc: %v", err)
	}
	assertClean(t, r)
}
