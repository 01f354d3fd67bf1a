//go:build linux

package oci

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// runcProcesses returns the pids of r's `runc run` processes.
func runcProcesses(t *testing.T, r *Runc) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cmd, "\x00")), "\x00")
		if len(args) > 3 && args[0] == r.cfg.RuncPath && args[1] == "--root" && args[2] == r.runcRoot && strings.Contains(string(cmd), "\x00run\x00") {
			out = append(out, pid)
		}
	}
	return out
}

// TestRuncKilledUnderARunIsThePlatformsError: when runc itself dies (the
// OOM killer, an operator's kill) while the script runs, the run is the
// platform's failure - an error, never a verdict charged to the script -
// and the orphaned container is still removed with everything in it.
func TestRuncKilledUnderARunIsThePlatformsError(t *testing.T) {
	r := newSandbox(t, Config{Slots: 1})
	type ended struct {
		res domain.Result
		err error
	}
	done := make(chan ended, 1)
	go func() {
		res, err := r.Run(context.Background(), job("import time\ntime.sleep(60)\n", domain.Limits{TimeoutMs: 60000, MemoryBytes: 64 << 20, CPUMillicores: 100}))
		done <- ended{res, err}
	}()
	waitScripts(t, r, 1)
	pids := runcProcesses(t, r)
	if len(pids) != 1 {
		t.Fatalf("runc processes of the run: %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err == nil || !strings.Contains(got.err.Error(), "runc was killed by SIGKILL") {
		t.Fatalf("Run after runc was killed: %+v %v", got.res, got.err)
	}
	assertClean(t, r)
}

// TestRunAfterCloseIsRefused: a closed sandbox starts nothing.
func TestRunAfterCloseIsRefused(t *testing.T) {
	r := newSandbox(t, Config{Slots: 1})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Run(context.Background(), job(`print("hi")`, fast)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Run after Close: %+v %v", res, err)
	}
	if _, err := os.Stat(r.runDir); !os.IsNotExist(err) {
		t.Fatalf("Close left the root file system: %v", err)
	}
}
