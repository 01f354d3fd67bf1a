// Package runner reacts to ExecutionQueued: it claims the execution in the
// ledger, runs the script in a Sandbox, and appends the outcome.
package runner

import (
	"context"
	"errors"

	"github.com/integr8scode/integr8scode/domain"
)

// Job is one run of one script. Input is the script and stdin as the
// ledger holds them, sealed; the runner opens them into Script and Stdin
// just before the sandbox runs (Content).
type Job struct {
	ExecutionID string
	Attempt     int
	Language    string
	Version     string
	Input       domain.Sealed
	Script      string
	Stdin       string
	Limits      domain.Limits
}

// Content opens a job's sealed script and stdin and seals what it printed,
// with the execution's own key (package content): the runner reads and
// writes the ledger's content only sealed.
type Content interface {
	OpenInput(ctx context.Context, executionID string, s domain.Sealed) (domain.Input, error)
	SealOutput(ctx context.Context, executionID string, out domain.Output) (domain.Sealed, error)
}

// Sandbox runs a job in isolation and reports how it ended.
//
// Run returns a Result for everything the script did (including timeout,
// memory and output limits). When ctx is cancelled it kills the whole
// sandbox and returns a Result with VerdictCancelled. It returns an error only
// for the platform's own failures (the sandbox could not be set up); it never
// runs a script unconfined.
type Sandbox interface {
	Run(ctx context.Context, job Job) (domain.Result, error)
	// Name identifies the sandbox kind in ExecutionStarted ("runc", "kubernetes").
	Name() string
}

// ErrDetached is the cause (context.Cause) of a run's cancellation when the
// runner lets go of the sandbox rather than ending it: the runner is
// stopping, or another runner took over the same attempt. A sandbox that
// can outlive the runner (a Kubernetes pod, see Resumer) is left running,
// for the runner that resumes it; any other sandbox ends as for any
// cancellation.
var ErrDetached = errors.New("runner detached from the sandbox")

// Collector is a Sandbox whose sandboxes can outlive their use (a pod left
// behind). GC removes those that stale says nobody will follow again, and
// returns how many it removed; the runner calls it from its sweep.
type Collector interface {
	GC(ctx context.Context, stale func(executionID string, attempt int) bool) (int, error)
}

// ErrSandboxGone is what a sandbox's error wraps when the sandbox was ended
// by someone else while it ran (a Kubernetes pod deleted by another runner
// that recorded its outcome, or by an operator). The runner then waits a
// moment for that outcome before it records a system_error.
var ErrSandboxGone = errors.New("the sandbox was removed by someone else")

// Resumer is a Sandbox whose sandboxes outlive the runner that started
// them. When a runner stops or dies mid-run, the runner that takes over the
// execution (its own next life at once, another one when the lease expired)
// resumes the same attempt instead of running the script again.
type Resumer interface {
	// Resume follows the sandbox of job's execution and attempt to its end
	// and reports how it ended, as Run does. found is false when there is
	// no such sandbox: the runner then runs the script as a new attempt.
	Resume(ctx context.Context, job Job) (res domain.Result, found bool, err error)
}

// PublicError marks a sandbox failure whose text may be shown to the
// script's owner: it says what the platform refused to do (a cluster policy
// rejecting the sandbox pod) and names nothing secret. The runner puts it
// in the system_error's message; any other failure is only logged.
type PublicError struct{ Err error }

func (e *PublicError) Error() string { return e.Err.Error() }
func (e *PublicError) Unwrap() error { return e.Err }
