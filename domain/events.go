package domain

// Event is a fact about one execution. Its type name is stable and stored in
// the ledger; never derive it from the Go type name.
type Event interface {
	EventType() string
}

// Stable event type names, as written in the ledger.
const (
	TypeExecutionQueued    = "ExecutionQueued"
	TypeExecutionStarted   = "ExecutionStarted"
	TypeExecutionCompleted = "ExecutionCompleted"
	TypeExecutionFailed    = "ExecutionFailed"
	TypeExecutionAbandoned = "ExecutionAbandoned"
	TypeExecutionResumed   = "ExecutionResumed"
	TypeExecutionErased    = "ExecutionErased"
)

// ExecutionQueued is the first event of every execution: a script was
// accepted. Input is the script and its stdin (an Input), sealed.
type ExecutionQueued struct {
	Language string `json:"language"`
	Version  string `json:"version"`
	Input    Sealed `json:"input"`
	Limits   Limits `json:"limits"`
	Owner    string `json:"owner"`
}

// ExecutionStarted records that a runner took the execution and started a
// sandbox with these limits. Attempt counts from 1; a later attempt means the
// previous runner died and the execution runs again from the start.
type ExecutionStarted struct {
	Runner  string `json:"runner"`
	Sandbox string `json:"sandbox"`
	Attempt int    `json:"attempt"`
	Limits  Limits `json:"limits"`
}

// ExecutionCompleted records that the script exited with code 0.
type ExecutionCompleted struct {
	Result Result `json:"result"`
}

// ExecutionFailed records every other end: Reason is the verdict. Result is
// absent when the script never ran (cancelled while queued).
type ExecutionFailed struct {
	Reason  Verdict `json:"reason"`
	Message string  `json:"message,omitempty"`
	Result  *Result `json:"result,omitempty"`
}

// ExecutionAbandoned records that the runner of a running attempt stopped
// looking after it: its lease expired, it restarted, or it shut down and
// let go of the sandbox. The execution stays running without a runner
// until another one resumes the attempt's sandbox (ExecutionResumed) or
// starts the script again (ExecutionStarted with the next attempt).
type ExecutionAbandoned struct {
	Runner  string `json:"runner"`
	Attempt int    `json:"attempt"`
	// Reason is why: lease_expired, runner_restarted or runner_stopped.
	Reason string `json:"reason"`
}

// Reasons an attempt is abandoned.
const (
	AbandonLeaseExpired  = "lease_expired"
	AbandonRunnerRestart = "runner_restarted"
	AbandonRunnerStopped = "runner_stopped"
)

// ExecutionResumed records that a runner took over an abandoned attempt
// and follows its sandbox, which outlived the runner that started it: the
// script keeps running, once.
type ExecutionResumed struct {
	Runner  string `json:"runner"`
	Attempt int    `json:"attempt"`
}

// ExecutionErased records that the content of an ended execution (its
// script, stdin and output) was erased: its data key is destroyed, so the
// sealed content its events carry can never be opened again. Who asked is
// the envelope's actor; Reason is EraseRequested or EraseRetention. It
// carries no content.
type ExecutionErased struct {
	Reason string `json:"reason"`
}

func (ExecutionQueued) EventType() string    { return TypeExecutionQueued }
func (ExecutionErased) EventType() string    { return TypeExecutionErased }
func (ExecutionAbandoned) EventType() string { return TypeExecutionAbandoned }
func (ExecutionResumed) EventType() string   { return TypeExecutionResumed }
func (ExecutionStarted) EventType() string   { return TypeExecutionStarted }
func (ExecutionCompleted) EventType() string { return TypeExecutionCompleted }
func (ExecutionFailed) EventType() string    { return TypeExecutionFailed }

// IsTerminal reports whether an event ends an execution.
func IsTerminal(e Event) bool {
	switch e.(type) {
	case ExecutionCompleted, *ExecutionCompleted, ExecutionFailed, *ExecutionFailed:
		return true
	}
	return false
}
