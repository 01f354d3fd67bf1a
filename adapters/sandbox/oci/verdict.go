//go:build linux

package oci

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/integr8scode/integr8scode/domain"
)

// judge sets the verdict, in this order: what the supervisor killed the
// container for, output overflow, runc's own failure (an error, not a
// verdict), the OOM killer, the exit code.
func (r *Runc) judge(res *domain.Result, c *container, o outcome, limits domain.Limits) error {
	switch o.reason {
	case killedCancel:
		res.Verdict, res.Message = domain.VerdictCancelled, "cancelled"
		return nil
	case killedTimeout:
		res.Verdict, res.Message = domain.VerdictTimeout, fmt.Sprintf("timed out after %s", limits.Timeout())
		return nil
	}
	// The script may have ended by itself after it overflowed, before the
	// supervisor noticed: its output was cut all the same.
	if o.reason == killedOutput || res.OutputTruncated {
		res.Verdict = domain.VerdictOutputLimit
		res.Message = fmt.Sprintf("output exceeded the limit of %d bytes per stream", r.cfg.OutputCapBytes)
		return nil
	}
	code, err := scriptExit(o.waitErr)
	if err != nil {
		return err
	}
	// runc exits 1 both when the script did and when runc failed to start
	// the container; only the latter leaves an error in runc's log.
	if code == 1 {
		if msg := runcError(c.file(logFile)); msg != "" {
			return fmt.Errorf("runc failed: %s", msg)
		}
	}
	if o.usageErr != nil {
		return fmt.Errorf("read cgroup accounting: %w", o.usageErr)
	}
	classify(res, code, o.usage.oomKills, limits)
	return nil
}

// scriptExit turns runc's exit into the script's exit code. runc exits with
// the script's code, or 128+n when a signal n killed it. An error means runc
// itself did not exit normally.
func scriptExit(waitErr error) (int, error) {
	if waitErr == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		return 0, fmt.Errorf("wait for runc: %w", waitErr)
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok {
		return 0, fmt.Errorf("wait for runc: %w", waitErr)
	}
	if ws.Signaled() {
		return 0, fmt.Errorf("runc was killed by %s", signalName(ws.Signal()))
	}
	return ws.ExitStatus(), nil
}

// runcError returns the first error runc logged, or "" when it logged none.
func runcError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("read runc log: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var entry struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		if entry.Level == "error" || entry.Level == "fatal" || entry.Level == "panic" {
			return entry.Msg
		}
	}
	return ""
}

// fatalSignals are the signals that can end a script at all: Python is the
// init of its pid namespace, and the kernel delivers to such a process only
// signals it has a handler for, SIGKILL and SIGSTOP from outside the
// namespace, and the synchronous faults it raises itself (os.abort() ends
// in SIGSEGV). An exit code of 128+n for any other n is the script's own
// (sys.exit(130), or an uncaught KeyboardInterrupt); for these n it may be
// too (sys.exit(139)), which runc's exit code cannot tell apart.
var fatalSignals = map[syscall.Signal]bool{
	syscall.SIGKILL: true, syscall.SIGSEGV: true, syscall.SIGBUS: true, syscall.SIGILL: true,
	syscall.SIGFPE: true, syscall.SIGTRAP: true, syscall.SIGSYS: true,
}

// classify sets the verdict of a script that ended by itself. ExitCode is
// runc's (shell style, 128+n for signal n); Signal names the signal.
func classify(res *domain.Result, code int, oomKills int64, limits domain.Limits) {
	res.ExitCode = domain.IntPtr(code)
	if sig := syscall.Signal(code - 128); code > 128 && fatalSignals[sig] {
		res.Signal = signalName(sig)
	}
	switch {
	case code == 0:
		res.Verdict = domain.VerdictCompleted
	case oomKills > 0:
		// The kernel's OOM killer ran in this container's memory cgroup:
		// its own counter, not a guess from exit code 137.
		res.Verdict = domain.VerdictMemoryLimit
		res.Message = fmt.Sprintf("memory limit of %d MiB exceeded", limits.MemoryBytes>>20)
	case res.Signal != "":
		res.Verdict = domain.VerdictRuntimeErr
		res.Message = "killed by " + res.Signal
	default:
		res.Verdict = domain.VerdictRuntimeErr
		res.Message = fmt.Sprintf("exited with code %d", code)
	}
}

func signalName(s syscall.Signal) string {
	if name := unix.SignalName(s); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(s))
}
