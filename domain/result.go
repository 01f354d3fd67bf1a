package domain

import "strings"

// Verdict is how a run ended. "completed" means exit code 0; every other
// verdict is a failure reason carried by ExecutionFailed.
type Verdict string

const (
	VerdictCompleted   Verdict = "completed"
	VerdictRuntimeErr  Verdict = "runtime_error" // non-zero exit or killed by a signal
	VerdictTimeout     Verdict = "timeout"
	VerdictMemoryLimit Verdict = "memory_limit"
	VerdictOutputLimit Verdict = "output_limit"
	VerdictCancelled   Verdict = "cancelled"
	VerdictSystemError Verdict = "system_error" // the platform's fault, never the user's
)

// Valid reports whether v is one of the known verdicts.
func (v Verdict) Valid() bool {
	switch v {
	case VerdictCompleted, VerdictRuntimeErr, VerdictTimeout, VerdictMemoryLimit,
		VerdictOutputLimit, VerdictCancelled, VerdictSystemError:
		return true
	}
	return false
}

// ResourceUsage is measured by the sandbox from cgroup accounting.
type ResourceUsage struct {
	WallTimeMs      int64 `json:"wall_time_ms" bson:"wall_time_ms"`
	CPUTimeMs       int64 `json:"cpu_time_ms" bson:"cpu_time_ms"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes" bson:"peak_memory_bytes"`
}

// Result is what a sandbox reports about one run.
type Result struct {
	Verdict  Verdict `json:"verdict"`
	ExitCode *int    `json:"exit_code,omitempty"`
	// Signal is the name of the signal that killed the script, if any ("SIGKILL").
	Signal string `json:"signal,omitempty"`
	// Stdout and Stderr are the run's output in the clear, in memory only:
	// they are never encoded, so no event, command or reply can carry
	// them. Output is the same, sealed (an Output), as recorded.
	Stdout string `json:"-"`
	Stderr string `json:"-"`
	Output Sealed `json:"output,omitempty"`
	// OutputTruncated is set when stdout or stderr hit the output cap.
	OutputTruncated bool          `json:"output_truncated"`
	Usage           ResourceUsage `json:"resource_usage"`
	// Message explains a non-completed verdict in words ("timed out after 5s").
	Message string `json:"message,omitempty"`
}

// Sanitized returns r with its text made valid UTF-8: a script may write any
// bytes, but output is text in every view, so invalid sequences become
// U+FFFD here, once, for every consumer alike.
func (r Result) Sanitized() Result {
	r.Stdout = strings.ToValidUTF8(r.Stdout, "\uFFFD")
	r.Stderr = strings.ToValidUTF8(r.Stderr, "\uFFFD")
	r.Message = strings.ToValidUTF8(r.Message, "\uFFFD")
	return r
}

// Shrunk returns r with the longer of stdout and stderr cut to half its
// length and OutputTruncated set, for a result whose event would not fit in
// the ledger (output full of control characters grows up to six times when
// encoded).
func (r Result) Shrunk() Result {
	cut := func(s string) string { return strings.ToValidUTF8(s[:len(s)/2], "\uFFFD") }
	if len(r.Stdout) >= len(r.Stderr) {
		r.Stdout = cut(r.Stdout)
	} else {
		r.Stderr = cut(r.Stderr)
	}
	r.OutputTruncated = true
	return r
}

// IntPtr is a convenience for optional exit codes.
func IntPtr(i int) *int { return &i }
