// Package projections builds read models from the ledger: the executions
// view and the event archive. Every view can be rebuilt from offset 0.
package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

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
	// Trace is the span that appended the record, if it says (the
	// record's handling joins that trace).
	Trace trace.SpanContext
}

// ArchivedEvent is an event kept in the archive: the record exactly as the
// ledger holds it, where it is in the log, and its envelope.
type ArchivedEvent struct {
	Envelope  eventstore.Envelope
	Record    []byte
	Partition int32
	Offset    int64
}

// ViewWrite is one view to save: View, if the stored view's version_seq is
// still Expected (0: no view yet).
type ViewWrite struct {
	View     domain.Execution
	Expected int64
}

// Store keeps the event archive, the executions view and the projector's
// position in the log. The view's version_seq is the projection's
// checkpoint for that execution and is written in the same document, so
// view and progress always move together; the position per partition says
// where to read on, and is kept with the projection, not in Kafka, so an
// empty store rebuilds from offset 0 by itself.
//
// Writes take many items at once: the projector writes what one fetch
// from the log brought in a few round trips (a store that commits each
// write on its own pays that cost per call, not per item). AddEvent,
// SaveView and SaveFact below are the one-item forms.
type Store interface {
	// AddEvents archives evs; added[i] reports whether evs[i] was archived
	// by this call (false: that execution's sequence was archived already,
	// before or earlier in evs, and the stored event is kept).
	AddEvents(ctx context.Context, evs []ArchivedEvent) (added []bool, err error)
	// Event returns the archived event of id at seq, if any.
	Event(ctx context.Context, id string, seq int64) (ArchivedEvent, bool, error)
	// Events returns an execution's archived events with sequence > after, in order.
	Events(ctx context.Context, id string, after int64) ([]ArchivedEvent, error)
	// View returns the executions view of id (domain error ENOTFOUND if absent).
	View(ctx context.Context, id string) (domain.Execution, error)
	// SaveViews writes each view of ws whose stored version_seq is still
	// its Expected; stale[i] reports that ws[i] was not kept because the
	// view had moved (ErrStale of SaveView). An execution appears at most
	// once in ws.
	SaveViews(ctx context.Context, ws []ViewWrite) (stale []bool, err error)
	// List returns executions newest first and whether more follow.
	List(ctx context.Context, q ListQuery) ([]domain.Execution, bool, error)
	// Position returns the next offset to read of a partition (0 if none).
	Position(ctx context.Context, partition int32) (int64, error)
	// SavePositions records, per partition, the next offset to read.
	SavePositions(ctx context.Context, next map[int32]int64) error
	// The statistics' facts (stats.go).
	FactStore
}

// CheckViewWrites checks that no execution appears twice in ws, as SaveViews
// requires (two writes of one view in one call would race each other).
func CheckViewWrites(ws []ViewWrite) error {
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		if w.View.ID == "" {
			return errors.New("save views: a view without id")
		}
		if seen[w.View.ID] {
			return fmt.Errorf("save views: execution %s twice in one call", w.View.ID)
		}
		seen[w.View.ID] = true
	}
	return nil
}

// SavePosition records the next offset to read of one partition.
func SavePosition(ctx context.Context, s Store, partition int32, next int64) error {
	return s.SavePositions(ctx, map[int32]int64{partition: next})
}

// AddEvent archives one event; false if that execution's sequence was
// already archived.
func AddEvent(ctx context.Context, s Store, ev ArchivedEvent) (bool, error) {
	added, err := s.AddEvents(ctx, []ArchivedEvent{ev})
	if err != nil {
		return false, err
	}
	return added[0], nil
}

// SaveView writes v if the stored version_seq is still expectedSeq (0: no
// view yet); ErrStale otherwise.
func SaveView(ctx context.Context, s Store, v domain.Execution, expectedSeq int64) error {
	stale, err := s.SaveViews(ctx, []ViewWrite{{View: v, Expected: expectedSeq}})
	if err != nil {
		return err
	}
	if stale[0] {
		return ErrStale
	}
	return nil
}

// SaveFact writes f over the execution's fact.
func SaveFact(ctx context.Context, s FactStore, f Fact) error { return s.SaveFacts(ctx, []Fact{f}) }
