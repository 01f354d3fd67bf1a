// Package projections builds read models from the ledger: the executions
// view and the event archive. Every view can be rebuilt from offset 0.
package projections

import (
	"context"
	"errors"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// ErrStale is returned by Store.SaveView when the stored view moved since it
// was read (another projector instance applied an event first).
var ErrStale = errors.New("view moved since it was read")

// ListQuery selects executions for the list endpoint.
type ListQuery struct {
	Status domain.Status // empty: any
	Owner  string        // empty: any
	Limit  int
	// After is the cursor: only executions older than this one, in the
	// newest-first order (created_at desc, then id desc).
	After *Cursor
}

// Cursor is a position in the newest-first order.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Delivery is one record of the ledger as a consumer reads it.
type Delivery struct {
	Partition int32
	Offset    int64
	Record    []byte
}

// ArchivedEvent is an event kept in the archive: the record exactly as the
// ledger holds it, where it is in the log, and its envelope.
type ArchivedEvent struct {
	Envelope  eventstore.Envelope
	Record    []byte
	Partition int32
	Offset    int64
}

// Store keeps the event archive, the executions view and the projector's
// position in the log. The view's version_seq is the projection's
// checkpoint for that execution and is written in the same document, so
// view and progress always move together; the position per partition says
// where to read on, and is kept with the projection, not in Kafka, so an
// empty store rebuilds from offset 0 by itself.
type Store interface {
	// AddEvent archives an event; it reports false if that execution's
	// sequence was already archived.
	AddEvent(ctx context.Context, ev ArchivedEvent) (bool, error)
	// Event returns the archived event of id at seq, if any.
	Event(ctx context.Context, id string, seq int64) (ArchivedEvent, bool, error)
	// Events returns an execution's archived events with sequence > after, in order.
	Events(ctx context.Context, id string, after int64) ([]ArchivedEvent, error)
	// View returns the executions view of id (domain error ENOTFOUND if absent).
	View(ctx context.Context, id string) (domain.Execution, error)
	// SaveView writes v if the stored version_seq is still expectedSeq (0: no
	// view yet); ErrStale otherwise.
	SaveView(ctx context.Context, v domain.Execution, expectedSeq int64) error
	// List returns executions newest first and whether more follow.
	List(ctx context.Context, q ListQuery) ([]domain.Execution, bool, error)
	// Position returns the next offset to read of a partition (0 if none).
	Position(ctx context.Context, partition int32) (int64, error)
	// SavePosition records the next offset to read of a partition.
	SavePosition(ctx context.Context, partition int32, next int64) error
	// The statistics' facts (stats.go).
	FactStore
}
