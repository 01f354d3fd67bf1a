package mongo

import (
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// t0 has nanoseconds on purpose: every time must survive storage exactly.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptime(t time.Time) *time.Time { return &t }

// sampleExecution is a finished execution with every field set, including
// an exit code of 0 (a non-nil pointer to zero) and nanosecond times.
func sampleExecution(id string) domain.Execution {
	return domain.Execution{
		ID: id, Status: domain.StatusCompleted, Language: "python", Version: "3.12",
		Script: "print('hi')\n", Stdin: "in", Owner: "alice",
		Limits: domain.Limits{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 100},
		Output: "hi\n", Errors: "", ExitCode: domain.IntPtr(0), OutputTruncated: true,
		ResourceUsage: &domain.ResourceUsage{WallTimeMs: 12, CPUTimeMs: 9, PeakMemoryBytes: 7 << 20},
		Attempt:       2, Runner: "runner-1", Sequence: 3,
		CreatedAt: at(0), UpdatedAt: at(3 * time.Second),
		StartedAt: ptime(at(time.Second + 1)), FinishedAt: ptime(at(3 * time.Second)),
	}
}

// failedExecution has the optional fields that a failure sets and a success
// leaves out, and a nil exit code.
func failedExecution(id string) domain.Execution {
	e := sampleExecution(id)
	e.Status, e.FailureReason, e.Signal, e.ExitCode = domain.StatusFailed, domain.VerdictTimeout, "SIGKILL", nil
	e.Errors = "timed out after 5s"
	return e
}

// queuedExecution has every optional pointer nil.
func queuedExecution(id string, created time.Time) domain.Execution {
	return domain.Execution{ID: id, Status: domain.StatusQueued, Language: "python", Version: "3.12",
		Script: "print(1)", Owner: "alice", Limits: domain.DefaultLimits, Sequence: 1,
		CreatedAt: created, UpdatedAt: created}
}
