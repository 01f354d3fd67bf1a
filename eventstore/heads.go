package eventstore

import (
	"context"
	"errors"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// ErrStale is returned by Heads when the head moved since it was read: another
// writer appended first. The ledger reloads and decides again.
var ErrStale = errors.New("head moved since it was read")

// Head is the write side's view of one execution: the aggregate folded up to
// the last appended event, that event's hash, and the envelopes appended but
// not yet confirmed on Kafka (an outbox). Kafka offers no compare-and-swap, so
// the head is what makes "sequence n+1 follows n, once" true across processes.
type Head struct {
	State domain.Execution
	// Hash is the hash of the event at State.Sequence.
	Hash string
	// Pending holds envelopes (JSON) that were appended but not confirmed as
	// published; a republisher sends them again if the writer died.
	Pending []string
	// LeaseOwner and LeaseUntil say which runner is running the execution and
	// until when it promised to report back.
	LeaseOwner string
	LeaseUntil time.Time
	// Resumes counts how often a runner took over the running attempt's
	// sandbox (runner.Resumer) after the runner that started it stopped.
	// Re-runs count as attempts; together they bound how often an
	// execution may outlive its runner.
	Resumes   int
	UpdatedAt time.Time
}

// Heads stores heads. Implementations must make Insert and Replace atomic
// per execution. Errors for missing heads are domain errors with ENOTFOUND.
type Heads interface {
	// Insert creates the head of a new execution; ErrStale if it exists.
	Insert(ctx context.Context, h Head) error
	// Get returns the head of an execution.
	Get(ctx context.Context, id string) (Head, error)
	// Replace writes h if the stored head is still at expectedSeq; ErrStale otherwise.
	Replace(ctx context.Context, expectedSeq int64, h Head) error
	// ClearPending empties Pending if the head is still at seq (a no-op otherwise).
	ClearPending(ctx context.Context, id string, seq int64) error
	// Renew extends the lease if the head is still at seq and owned by owner; ErrStale otherwise.
	Renew(ctx context.Context, id string, seq int64, owner string, until time.Time) error
	// Unsettled lists heads that are not terminal or still have pending
	// envelopes, oldest first, at most limit of them.
	Unsettled(ctx context.Context, limit int) ([]Head, error)
}
