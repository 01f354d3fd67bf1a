package domain

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Status is where an execution is in its life.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
)

// Terminal reports whether no further state change can happen.
func (s Status) Terminal() bool { return s == StatusCompleted || s == StatusFailed }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusCompleted, StatusFailed:
		return true
	}
	return false
}

// MaxScriptBytes and MaxStdinBytes bound what a request may carry.
const (
	MaxScriptBytes = 256 << 10
	MaxStdinBytes  = 256 << 10
)

// Execution is the aggregate: the state that its events build, in sequence
// order. The ledger writer decides with it, and the views are folds of it;
// how each audience stores or shows it (a MongoDB document, the API's JSON)
// is that audience's own type, so this one carries no tags.
type Execution struct {
	ID       string
	Status   Status
	Language string
	Version  string
	Script   string
	Stdin    string
	Owner    string
	Limits   Limits

	Output string
	Errors string
	// SealedInput and SealedOutput are the content as the events carry
	// it. Script, Stdin, Output and the stderr part of Errors are filled
	// only where the content is opened with its key (Reveal).
	SealedInput  Sealed
	SealedOutput Sealed
	// Erased says the content was erased (ExecutionErased), and when.
	Erased          bool
	ErasedAt        *time.Time
	ExitCode        *int
	Signal          string
	FailureReason   Verdict
	OutputTruncated bool
	ResourceUsage   *ResourceUsage

	Attempt int
	// Runner looks after the running attempt; empty while it is abandoned
	// (its runner stopped) until another runner resumes or restarts it.
	Runner string
	// Resumes counts runners that took over a running attempt's sandbox.
	Resumes int
	// Sequence is the last event folded in.
	Sequence   int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Spec is what a user asks to run.
type Spec struct {
	Language string
	Version  string
	Script   string
	Stdin    string
	Limits   Limits // already resolved against defaults and maximum
	Owner    string
}

// Queue validates a spec and returns the first event of a new execution,
// its script and stdin sealed by seal: content never enters an event in
// the clear.
func Queue(s Spec, seal func(Input) (Sealed, error)) (ExecutionQueued, error) {
	switch {
	case s.Script == "":
		return ExecutionQueued{}, Errorf(EUNPROCESSABLE, "script is empty")
	case len(s.Script) > MaxScriptBytes:
		return ExecutionQueued{}, Errorf(ETOOLARGE, "script is larger than %d bytes", MaxScriptBytes)
	case len(s.Stdin) > MaxStdinBytes:
		return ExecutionQueued{}, Errorf(ETOOLARGE, "stdin is larger than %d bytes", MaxStdinBytes)
	case !utf8.ValidString(s.Script):
		return ExecutionQueued{}, Errorf(EUNPROCESSABLE, "script is not valid UTF-8")
	case s.Language == "" || s.Version == "":
		return ExecutionQueued{}, Errorf(EUNPROCESSABLE, "language and version are required")
	case s.Owner == "":
		return ExecutionQueued{}, Errorf(EINTERNAL, "owner is required")
	}
	in, err := seal(Input{Script: s.Script, Stdin: s.Stdin})
	if err != nil {
		return ExecutionQueued{}, err
	}
	return ExecutionQueued{Language: s.Language, Version: s.Version, Input: in, Limits: s.Limits, Owner: s.Owner}, nil
}

// Erase decides that the content of the execution is erased. Only an
// ended execution may be: a queued or running one still needs its script
// (cancel it first). Erasing twice appends nothing.
func (e *Execution) Erase(reason string) ([]Event, error) {
	switch {
	case reason != EraseRequested && reason != EraseRetention:
		return nil, Errorf(EINVALID, "erasure reason must be %q or %q", EraseRequested, EraseRetention)
	case e.Erased:
		return nil, nil
	case !e.Status.Terminal():
		return nil, Errorf(ECONFLICT, "execution %s is %s: cancel it or wait for its end before erasing it", e.ID, e.describe())
	}
	return []Event{ExecutionErased{Reason: reason}}, nil
}

// Start decides that a runner takes the execution and runs the script: a
// queued execution's first attempt, or the next attempt of an abandoned
// one (its runner stopped and its sandbox is gone).
func (e *Execution) Start(runner, sandbox string) (ExecutionStarted, error) {
	if e.Status == StatusQueued || e.Abandoned() {
		return ExecutionStarted{Runner: runner, Sandbox: sandbox, Attempt: e.Attempt + 1, Limits: e.Limits}, nil
	}
	return ExecutionStarted{}, Errorf(ECONFLICT, "execution %s is %s", e.ID, e.describe())
}

// Abandoned reports whether the execution runs without a runner.
func (e *Execution) Abandoned() bool { return e.Status == StatusRunning && e.Runner == "" }

// Turns counts how often a runner took the execution on: each attempt
// and each resume.
func (e *Execution) Turns() int { return e.Attempt + e.Resumes }

// Abandon decides that runner no longer looks after its attempt. When the
// execution has had maxTurns runners already, it fails with a system
// error instead of waiting for another: a script that brings down every
// runner that follows it must not keep the execution running forever.
func (e *Execution) Abandon(runner, reason string, maxTurns int) ([]Event, error) {
	if e.Status != StatusRunning || e.Runner == "" || e.Runner != runner {
		return nil, Errorf(ECONFLICT, "execution %s is %s", e.ID, e.describe())
	}
	evs := []Event{ExecutionAbandoned{Runner: runner, Attempt: e.Attempt, Reason: reason}}
	if e.Turns() >= maxTurns {
		evs = append(evs, ExecutionFailed{Reason: VerdictSystemError,
			Message: fmt.Sprintf("the runner stopped %d times while running this execution", e.Turns())})
	}
	return evs, nil
}

// Resume decides that runner takes over the abandoned attempt and follows
// its sandbox.
func (e *Execution) Resume(runner string) (ExecutionResumed, error) {
	if !e.Abandoned() {
		return ExecutionResumed{}, Errorf(ECONFLICT, "execution %s is %s", e.ID, e.describe())
	}
	return ExecutionResumed{Runner: runner, Attempt: e.Attempt}, nil
}

// Report turns runner's result of attempt into the terminal event. A
// result of the script itself (genuine) counts even if another runner
// took the attempt over meanwhile: the only takeover that keeps the
// attempt is a resume of the same sandbox, so it is that one run's
// outcome. A failure of the sandbox counts only from the attempt's own
// runner, which may be following a healthy one.
func (e *Execution) Report(runner string, attempt int, r Result, genuine bool) (Event, error) {
	if e.Status != StatusRunning || e.Attempt != attempt || (e.Runner != runner && !genuine) {
		return nil, Errorf(ECONFLICT, "execution %s is %s; the result of attempt %d by %s is void",
			e.ID, e.describe(), attempt, runner)
	}
	return e.Finish(r)
}

// Finish turns a sandbox result into the terminal event of a running execution.
func (e *Execution) Finish(r Result) (Event, error) {
	if e.Status != StatusRunning {
		return nil, Errorf(ECONFLICT, "execution %s is %s", e.ID, e.Status)
	}
	if !r.Verdict.Valid() {
		return nil, fmt.Errorf("finish %s: unknown verdict %q", e.ID, r.Verdict)
	}
	r = r.Sanitized()
	if r.Verdict == VerdictCompleted {
		return ExecutionCompleted{Result: r}, nil
	}
	return ExecutionFailed{Reason: r.Verdict, Message: r.Message, Result: &r}, nil
}

func (e *Execution) describe() string {
	switch {
	case e.Abandoned():
		return fmt.Sprintf("running attempt %d without a runner", e.Attempt)
	case e.Status == StatusRunning:
		return fmt.Sprintf("running attempt %d on %s", e.Attempt, e.Runner)
	}
	return string(e.Status)
}

// Fail ends a non-terminal execution for a reason that is not a sandbox result
// (a system error before the script ran).
func (e *Execution) Fail(reason Verdict, message string) (ExecutionFailed, error) {
	if e.Status.Terminal() {
		return ExecutionFailed{}, Errorf(ECONFLICT, "execution %s is already %s", e.ID, e.Status)
	}
	return ExecutionFailed{Reason: reason, Message: message}, nil
}

// Cancel ends a queued or running execution on a user's request.
func (e *Execution) Cancel(actor string) (ExecutionFailed, error) {
	return e.Fail(VerdictCancelled, "cancelled by "+actor)
}

// Apply folds one recorded event into the state. The caller guarantees that
// seq is the next sequence (projections check it). The first terminal event
// wins: a later one is kept in the history but changes nothing.
// ExecutionErased, the one event that follows the end, drops the content.
func (e *Execution) Apply(id string, seq int64, at time.Time, ev Event) error {
	if seq != e.Sequence+1 {
		return fmt.Errorf("apply %s seq %d: expected seq %d", id, seq, e.Sequence+1)
	}
	e.Sequence = seq
	at = at.UTC()
	if _, ok := ev.(ExecutionErased); ok {
		// The one event that may follow the end.
		e.erase(at)
		return nil
	}
	if e.Status.Terminal() {
		return nil
	}
	switch v := ev.(type) {
	case ExecutionQueued:
		*e = Execution{ID: id, Status: StatusQueued, Language: v.Language, Version: v.Version,
			SealedInput: v.Input, Owner: v.Owner, Limits: v.Limits, Sequence: seq, CreatedAt: at}
	case ExecutionStarted:
		e.Status = StatusRunning
		e.Attempt = v.Attempt
		e.Runner = v.Runner
		e.Limits = v.Limits
		t := at
		e.StartedAt = &t
	case ExecutionAbandoned:
		e.Runner = ""
	case ExecutionResumed:
		e.Runner = v.Runner
		e.Resumes++
	case ExecutionCompleted:
		e.finish(StatusCompleted, "", &v.Result, "", at)
	case ExecutionFailed:
		e.finish(StatusFailed, v.Reason, v.Result, v.Message, at)
	default:
		return fmt.Errorf("apply %s seq %d: unknown event %T", id, seq, ev)
	}
	e.UpdatedAt = at
	return nil
}

func (e *Execution) finish(s Status, reason Verdict, r *Result, msg string, at time.Time) {
	e.Status = s
	e.FailureReason = reason
	t := at
	e.FinishedAt = &t
	if r == nil {
		e.Errors = msg
		return
	}
	e.Output = r.Stdout
	e.Errors = r.Stderr
	e.SealedOutput = r.Output
	if msg != "" && s == StatusFailed && reason != VerdictRuntimeErr {
		if e.Errors != "" && e.Errors[len(e.Errors)-1] != '\n' {
			e.Errors += "\n"
		}
		e.Errors += msg
	}
	e.ExitCode = r.ExitCode
	e.Signal = r.Signal
	e.OutputTruncated = r.OutputTruncated
	u := r.Usage
	e.ResourceUsage = &u
}

// erase drops every piece of content the state holds, sealed or not.
func (e *Execution) erase(at time.Time) {
	e.Script, e.Stdin, e.Output, e.Errors = "", "", "", ""
	e.SealedInput, e.SealedOutput = "", ""
	e.Erased = true
	t := at
	e.ErasedAt = &t
	e.UpdatedAt = at
}

// Reveal fills in the content opened from SealedInput (in) and
// SealedOutput (out); nil leaves that part as it is. Errors becomes the
// run's stderr followed by the failure message, as the API shows it.
func (e *Execution) Reveal(in *Input, out *Output) {
	if in != nil {
		e.Script, e.Stdin = in.Script, in.Stdin
	}
	if out == nil {
		return
	}
	e.Output = out.Stdout
	if out.Stderr == "" {
		return
	}
	switch {
	case e.Errors == "":
		e.Errors = out.Stderr
	case out.Stderr[len(out.Stderr)-1] == '\n':
		e.Errors = out.Stderr + e.Errors
	default:
		e.Errors = out.Stderr + "\n" + e.Errors
	}
}
