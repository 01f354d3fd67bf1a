package domain

// Sealed is user content (a script and its stdin, or what a run printed)
// encrypted under its execution's own data key. Events carry content only
// sealed; the domain passes it on and never opens it. The key lives
// outside the log, so destroying it erases the content while every event,
// hash and signature stays as recorded (docs/events.md, "Erasure").
type Sealed string

// Input is what a user asks to run: the content of ExecutionQueued.
type Input struct {
	Script string `json:"script"`
	Stdin  string `json:"stdin,omitempty"`
}

// Output is what a run printed: the content of a terminal event's result.
type Output struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// Erasure reasons.
const (
	EraseRequested = "request"   // the owner or an admin asked
	EraseRetention = "retention" // the platform's retention period passed
)
