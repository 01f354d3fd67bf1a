package main

import (
	"github.com/integr8scode/integr8scode/internal/testenv"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// startProcess runs `integr8scode up` as a separate process, with extra
// flags after the usual ones.
func startProcess(t *testing.T, bin, dir, addr string, extra ...string) (*exec.Cmd, *testenv.SyncBuffer) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, append([]string{"up", "--listen", addr, "--data-dir", dir, "--slots", "3"}, extra...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	// Own process group, so kill -9 of the group takes runc children too,
	// as a crashed host would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exitErr := make(chan error, 1)
	exited := make(chan struct{})
	go func() { exitErr <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stopProcess(t, cmd, exited)
		if t.Failed() {
			t.Logf("process log:\n%s", tail(logs.String(), 60))
		}
	})
	waitReady(t, "http://"+addr, exitErr, logs)
	return cmd, logs
}

// TestCrashRecovery kills the all-in-one process with SIGKILL while
// executions are queued and running, restarts it on the same data directory
// and checks that every accepted execution reaches exactly one terminal
// state — and that the interrupted ones ran again and completed.
func TestCrashRecovery(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	first, _ := startProcess(t, bin, dir, addr)

	var ids []string
	for i := 0; i < 9; i++ {
		script := "import time\ntime.sleep(1.5)\nprint('slept')"
		if i%3 == 0 {
			script = "print('quick')"
		}
		ids = append(ids, submit(t, base, map[string]any{"script": script}).ID)
	}
	// Kill while some run (3 slots) and the rest wait.
	deadline := time.Now().Add(20 * time.Second)
	for {
		running := 0
		for _, id := range ids {
			if get(t, base, id).Status == domain.StatusRunning {
				running++
			}
		}
		if running > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing ever ran")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	startProcess(t, bin, dir, addr)
	for _, id := range ids {
		e := waitDone(t, base, id, 90*time.Second)
		if e.Status != domain.StatusCompleted {
			t.Errorf("%s: %s %s %q", id, e.Status, e.FailureReason, e.Errors)
		}
		evs := waitEvents(t, base, id, 10*time.Second)
		terminal := 0
		for _, ev := range evs {
			if ev.Type == domain.TypeExecutionCompleted || ev.Type == domain.TypeExecutionFailed {
				terminal++
			}
		}
		if terminal != 1 {
			t.Errorf("%s has %d terminal events", id, terminal)
		}
		if _, valid := events(t, base, id); !valid {
			t.Errorf("%s: hash chain broken", id)
		}
	}
	if r := do(t, http.MethodGet, base+"/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("not ready after recovery: %d", r.Status)
	}
}
