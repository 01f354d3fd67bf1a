package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// modulePackages is every package of this module, the set a coverage build
// of the binary instruments.
const modulePackages = "github.com/integr8scode/integr8scode/..."

// stopGrace is how long a stopped process may take to exit cleanly: what
// Kubernetes grants a pod by default before it kills it.
const stopGrace = 30 * time.Second

// coverDirEnv names the directory where the binaries that tests start
// write their coverage counters (`go tool task test` sets it).
const coverDirEnv = "INTEGR8SCODE_TEST_COVERDIR"

var coverEnvOnce sync.Once

// buildBinary compiles the real binary for the tests that run it as a
// separate process (to kill it, or to run roles side by side).
//
// With coverDirEnv set it is built with coverage of every package of the
// module (in this test binary's mode, if it has one), and every process
// started from it writes its counters there (GOCOVERDIR, which children
// inherit), for `go tool task coverage` to merge with the tests' own
// profiles: go test's -coverprofile counts only the test binary, so the
// crash, restart and role tests would otherwise count for nothing. A
// process writes its counters only when it exits by itself
// (stopProcess), never when it is killed.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "integr8scode")
	args := []string{"build", "-o", bin}
	if dir := os.Getenv(coverDirEnv); dir != "" {
		dir, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		mode := testing.CoverMode()
		if mode == "" {
			mode = "set"
		}
		args = append(args, "-cover", "-covermode="+mode, "-coverpkg="+modulePackages)
		// Process-wide, once: the harnesses start children with this
		// process's environment. This test binary, which go test ran
		// with GOCOVERDIR set to its own directory, has written its
		// counters there by the time it exits and does not write them
		// again.
		coverEnvOnce.Do(func() { err = os.Setenv("GOCOVERDIR", dir) })
		if err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build: %v", err)
	}
	return bin
}

// stopProcess ends a process a test started as an operator or Kubernetes
// would: SIGTERM, up to stopGrace for a clean exit, and then SIGKILL to its
// process group (whatever it left behind, or the process itself if it did
// not stop). exited closes when the process has been reaped. A process that
// has already exited (a test killed it) is only cleaned up after.
//
// It fails the test when a live process ignores SIGTERM: a role that does
// not stop in time loses its last work under Kubernetes, and a coverage
// build writes nothing when it is killed.
func stopProcess(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}) {
	t.Helper()
	select {
	case <-exited:
	default:
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopGrace):
			t.Errorf("%s did not exit within %s of SIGTERM; killed", filepath.Base(cmd.Path), stopGrace)
		}
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}
