package domain

import "fmt"

// Ending is how a run ended, in the terms every sandbox can report (a runc
// container, a Kubernetes pod, warm or cold). Judge turns it into the
// verdict; the sandboxes only observe.
type Ending struct {
	// StoppedFor is why the platform itself ended the run, if it did:
	// VerdictCancelled, VerdictTimeout or VerdictOutputLimit ("" if the
	// script ended by itself).
	StoppedFor Verdict
	// OutputTruncated: stdout or stderr hit the cap (the script may have
	// ended by itself just after).
	OutputTruncated bool
	// ExitCode is the script's exit code, shell style: 128+n when signal n
	// ended it. Meaningful when StoppedFor is "".
	ExitCode int
	// Signal names the fatal signal that ended the script, if one did.
	Signal string
	// OOMKilled: the kernel's OOM killer ran in the run's memory cgroup.
	OOMKilled bool
	// Limits and OutputCap word the messages.
	Limits    Limits
	OutputCap int64
}

// Judge sets the verdict, the message, the exit code and the signal of res
// from how the run ended, in this order: a cancel, a timeout, output over
// the cap, a clean exit, an OOM kill, a signal, a non-zero exit code.
func Judge(res *Result, e Ending) {
	switch {
	case e.StoppedFor == VerdictCancelled:
		res.Verdict, res.Message = VerdictCancelled, "cancelled"
		return
	case e.StoppedFor == VerdictTimeout:
		res.Verdict, res.Message = VerdictTimeout, fmt.Sprintf("timed out after %s", e.Limits.Timeout())
		return
	case e.StoppedFor == VerdictOutputLimit || e.OutputTruncated:
		// The script may have ended by itself after it overflowed, before
		// anyone noticed: its output was cut all the same.
		res.Verdict, res.OutputTruncated = VerdictOutputLimit, true
		res.Message = fmt.Sprintf("output exceeded the limit of %d bytes per stream", e.OutputCap)
		return
	}
	res.ExitCode, res.Signal = IntPtr(e.ExitCode), e.Signal
	switch {
	case e.ExitCode == 0:
		res.Verdict = VerdictCompleted
	case e.OOMKilled:
		res.Verdict = VerdictMemoryLimit
		res.Message = fmt.Sprintf("memory limit of %d MiB exceeded", e.Limits.MemoryBytes>>20)
	case e.Signal != "":
		res.Verdict, res.Message = VerdictRuntimeErr, "killed by "+e.Signal
	default:
		res.Verdict, res.Message = VerdictRuntimeErr, fmt.Sprintf("exited with code %d", e.ExitCode)
	}
}
