package eventstore

import (
	"encoding/json"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Topics of the ledger. Only the ledger writer writes Topic, StateTopic and
// ReplyTopic, inside Kafka transactions; anyone may write CommandTopic;
// consumers that cannot use an event write it to ParkedTopic.
const (
	// Topic is the ledger: every event of every execution, forever. It is
	// the only system of record for executions.
	Topic = "executions"
	// CommandTopic carries requests to append (submit, cancel, claim, …),
	// keyed by execution id, with as many partitions as Topic: an
	// execution's commands and events share a partition.
	CommandTopic = "executions.commands"
	// StateTopic is the writer's changelog (compacted, keyed by execution):
	// each execution's head as of its last event, written in the same
	// transaction as the events, so a new writer rebuilds its state from
	// it instead of from all of history. Only the writer reads it (every
	// partition; adapters/kafka).
	StateTopic = "executions.state"
	// ReplyTopic carries the writer's answer to each command, keyed by
	// the asker, for a day.
	ReplyTopic = "executions.replies"
	// ParkedTopic holds events a consumer could not use, with the reason.
	ParkedTopic = "executions.parked"
)

// Kinds of command.
const (
	CommandSubmit  = "submit"  // queue a new execution (ExecutionQueued)
	CommandCancel  = "cancel"  // a user ends it (ExecutionFailed cancelled)
	CommandClaim   = "claim"   // a runner takes it (ExecutionStarted or ExecutionResumed)
	CommandRenew   = "renew"   // a runner is still looking after its attempt (no event)
	CommandRelease = "release" // a runner lets go of its attempt (ExecutionAbandoned)
	CommandReport  = "report"  // a runner's result (ExecutionCompleted or ExecutionFailed)
	CommandErase   = "erase"   // erase an ended execution's content (ExecutionErased)
)

// Claim modes: what a runner asks to do with an execution.
const (
	ClaimStart   = "start"   // run a queued execution, or an abandoned one as a new attempt
	ClaimResume  = "resume"  // follow an abandoned attempt's sandbox
	ClaimRestart = "restart" // run an abandoned execution again as a new attempt
)

// Command asks the ledger writer to append. The writer decides against the
// execution's state as folded from the log and answers with a Reply.
// Commands are idempotent by state, not by id: sending one twice never
// appends twice (a second submit finds the execution, a second claim finds
// it taken by the same runner, a second report finds it ended).
type Command struct {
	ID            string `json:"command_id"`
	Kind          string `json:"kind"`
	ExecutionID   string `json:"execution_id"`
	ReplyTo       string `json:"reply_to"`
	Actor         string `json:"actor"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`

	Submit  *domain.ExecutionQueued `json:"submit,omitempty"`
	Runner  *RunnerArgs             `json:"runner,omitempty"`
	Release *ReleaseArgs            `json:"release,omitempty"`
	Report  *ReportArgs             `json:"report,omitempty"`
	Erase   *EraseArgs              `json:"erase,omitempty"`
}

// EraseArgs say why an execution's content is erased (domain.EraseRequested
// or domain.EraseRetention); who asked is the command's actor.
type EraseArgs struct {
	Reason string `json:"reason"`
}

// RunnerArgs say which runner asks, for claims and renewals.
type RunnerArgs struct {
	Runner  string `json:"runner"`
	Sandbox string `json:"sandbox,omitempty"`
	// Mode is the claim's ClaimStart, ClaimResume or ClaimRestart.
	Mode string `json:"mode,omitempty"`
	// Attempt is the attempt a renewal is for.
	Attempt int `json:"attempt,omitempty"`
	// LeaseMs is how long the claim holds without a renewal.
	LeaseMs int64 `json:"lease_ms"`
}

// ReleaseArgs say which attempt a runner lets go of, and why.
type ReleaseArgs struct {
	Runner  string `json:"runner"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// ReportArgs carry a runner's result of an attempt, its output sealed.
// Genuine is true when the result is the script's own (not a failure of
// the sandbox).
type ReportArgs struct {
	Runner  string        `json:"runner"`
	Attempt int           `json:"attempt"`
	Result  domain.Result `json:"result"`
	Genuine bool          `json:"genuine"`
}

// Reply is the writer's answer to a command. Code is empty when the
// command was accepted (even if it appended nothing: a renewal, a repeated
// submit); otherwise a domain error code and Message say why not.
type Reply struct {
	CommandID   string `json:"command_id"`
	ExecutionID string `json:"execution_id"`
	Code        string `json:"code,omitempty"`
	Message     string `json:"message,omitempty"`
	// Records are the events the command appended, as recorded.
	Records []json.RawMessage `json:"records,omitempty"`
	// Head is the execution's state after the command (without script,
	// stdin and output, which the events carry).
	Head *HeadInfo `json:"head,omitempty"`
}

// Err returns the reply's refusal as a domain error, or nil.
func (r Reply) Err() error {
	if r.Code == "" {
		return nil
	}
	return domain.Errorf(r.Code, "%s", r.Message)
}

// Envelopes decodes the reply's records.
func (r Reply) Envelopes() ([]Envelope, error) {
	out := make([]Envelope, 0, len(r.Records))
	for _, rec := range r.Records {
		env, err := ParseRecord(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// HeadInfo is what a reply says of the execution's state.
type HeadInfo struct {
	Sequence  int64         `json:"sequence"`
	Status    domain.Status `json:"status"`
	Attempt   int           `json:"attempt"`
	Runner    string        `json:"runner,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}
