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

// judge reports how the run ended to domain.Judge, which sets the verdict.
// A run the supervisor stopped, or whose output overflowed, is judged at
// once; otherwise runc's own failure (an error, not a verdict) and the
// cgroup's accounting come first.
func (r *Runc) judge(res *domain.Result, c *container, o outcome, limits domain.Limits) error {
	end := domain.Ending{Limits: limits, OutputCap: int64(r.cfg.OutputCapBytes), OutputTruncated: res.OutputTruncated}
	switch o.reason {
	case killedCancel:
		end.StoppedFor = domain.VerdictCancelled
	case killedTimeout:
		end.StoppedFor = domain.VerdictTimeout
	case killedOutput:
		end.StoppedFor = domain.VerdictOutputLimit
	}
	if end.StoppedFor != "" || end.OutputTruncated {
		domain.Judge(res, end)
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
	end.ExitCode, end.Signal = code, exitSignal(code)
	// The kernel's OOM killer ran in this container's memory cgroup: its
	// own counter, not a guess from exit code 137.
	end.OOMKilled = o.usage.oomKills > 0
	domain.Judge(res, end)
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

// exitSignal names the signal behind runc's exit code (shell style, 128+n
// for signal n) when it is one that can end a script at all.
func exitSignal(code int) string {
	if sig := syscall.Signal(code - 128); code > 128 && fatalSignals[sig] {
		return signalName(sig)
	}
	return ""
}

func signalName(s syscall.Signal) string {
	if name := unix.SignalName(s); name != "" {
		return name
	}
	return fmt.Sprintf("signal %d", int(s))
}
