package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// Projections implements projections.Store over the collections "events"
// (the archive), "executions" (the view, one viewDoc each) and
// "positions" (where the projector reads on, per partition).
type Projections struct {
	db         *DB
	events     *mongo.Collection
	executions *mongo.Collection
	positions  *mongo.Collection
}

var _ projections.Store = (*Projections)(nil)

// NewProjections returns the read-model store of db.
func NewProjections(db *DB) *Projections {
	return &Projections{db: db, events: db.db.Collection(CollEvents), executions: db.db.Collection(CollExecutions),
		positions: db.db.Collection(CollPositions)}
}

// eventDoc is one archived event: the record exactly as the ledger holds
// it, as text, where it is in the log, and copies of the fields the
// queries need. The record is kept byte for byte because its hash and
// signature cover it (as canonicalized) and exports hand it out as it was
// written: another writer's key order, whitespace or escapes survive. As a
// BSON sub-document it would be re-encoded (JSON numbers become int32,
// int64 or double; key order and escapes are the encoder's), and whether
// the hash still verifies would depend on that conversion.
type eventDoc struct {
	ID          string    `bson:"_id"`
	ExecutionID string    `bson:"execution_id"`
	Sequence    int64     `bson:"sequence"`
	EventID     string    `bson:"event_id"`
	Type        string    `bson:"type"`
	OccurredAt  time.Time `bson:"occurred_at"`
	Record      string    `bson:"record"`
	Partition   int32     `bson:"partition"`
	Offset      int64     `bson:"offset"`
}

// eventKey is an archived event's _id: "<execution id>/<sequence, 12
// digits>", so that a second event with the same sequence collides on the
// unique _id, and the keys of one execution sort in sequence order.
func eventKey(executionID string, seq int64) string { return fmt.Sprintf("%s/%012d", executionID, seq) }

// AddEvent archives ev.Record as given; false if that execution's sequence
// was already archived (a duplicate delivery, or another event claiming
// the sequence: the stored event is kept either way). The record must be
// the one ev.Envelope was read from.
func (p *Projections) AddEvent(ctx context.Context, ev projections.ArchivedEvent) (bool, error) {
	env := ev.Envelope
	if env.ExecutionID == "" || env.Sequence < 1 {
		return false, fmt.Errorf("archive event %s: execution id %q, sequence %d", env.EventID, env.ExecutionID, env.Sequence)
	}
	rec, err := eventstore.ParseRecord(ev.Record)
	if err != nil {
		return false, fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	if rec.ExecutionID != env.ExecutionID || rec.Sequence != env.Sequence || rec.Hash != env.Hash {
		return false, fmt.Errorf("archive %s/%d: the record is %s/%d with hash %s, not %s",
			env.ExecutionID, env.Sequence, rec.ExecutionID, rec.Sequence, rec.Hash, env.Hash)
	}
	doc := eventDoc{
		ID: eventKey(env.ExecutionID, env.Sequence), ExecutionID: env.ExecutionID, Sequence: env.Sequence,
		EventID: env.EventID, Type: env.Type, OccurredAt: env.OccurredAt, Record: string(ev.Record),
		Partition: ev.Partition, Offset: ev.Offset,
	}
	if _, err := p.events.InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return false, fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	return true, nil
}

// Event returns the archived event of id at seq, if any: one lookup by _id.
func (p *Projections) Event(ctx context.Context, id string, seq int64) (projections.ArchivedEvent, bool, error) {
	d, ok, err := findByID[eventDoc](ctx, p.events, eventKey(id, seq))
	if err != nil {
		return projections.ArchivedEvent{}, false, fmt.Errorf("event %s/%d: %w", id, seq, err)
	}
	if !ok {
		return projections.ArchivedEvent{}, false, nil
	}
	ev, err := d.archived()
	return ev, err == nil, err
}

// Events returns id's archived events with sequence > after, in order.
//
// On a FerretDB other than the embedded server (which has its SQLite
// index), where a query on execution_id would read the whole archive, it
// fetches after+1, after+2, … by _id until one is missing: a few indexed
// lookups instead of a scan. There it stops at a gap, returning the events
// up to it; every caller (the projector, the event stream) uses only the
// gap-free prefix anyway.
func (p *Projections) Events(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	if p.db.fast != nil {
		return p.eventsByIndex(ctx, id, after)
	}
	if p.db.ferret {
		return p.eventsByKey(ctx, id, after)
	}
	filter := bson.D{{Key: "execution_id", Value: id}, {Key: "sequence", Value: bson.D{{Key: "$gt", Value: after}}}}
	cur, err := p.events.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "sequence", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	out := make([]projections.ArchivedEvent, 0, len(docs))
	for _, d := range docs {
		ev, err := d.archived()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (p *Projections) eventsByKey(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	var out []projections.ArchivedEvent
	for seq := after + 1; ; seq++ {
		ev, ok, err := p.Event(ctx, id, seq)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		out = append(out, ev)
	}
}

// eventsByIndex is Events on the embedded server: the _ids from the SQLite
// index, the events by _id. Archived events never change, so there is
// nothing to re-check.
func (p *Projections) eventsByIndex(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	keys, err := p.db.fast.eventIDs(ctx, id, after)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	out := make([]projections.ArchivedEvent, 0, len(keys))
	for _, key := range keys {
		d, ok, err := findByID[eventDoc](ctx, p.events, key)
		if err != nil {
			return nil, fmt.Errorf("events of %s: %w", id, err)
		}
		if !ok {
			continue
		}
		ev, err := d.archived()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// archived returns the stored event: its record as stored, the envelope
// read from it, and its place in the log.
func (d eventDoc) archived() (projections.ArchivedEvent, error) {
	rec := []byte(d.Record)
	env, err := eventstore.ParseRecord(rec)
	if err != nil {
		return projections.ArchivedEvent{}, fmt.Errorf("archived event %s: %w", d.ID, err)
	}
	if env.ExecutionID != d.ExecutionID || env.Sequence != d.Sequence {
		return projections.ArchivedEvent{}, fmt.Errorf("archived event %s holds %s/%d", d.ID, env.ExecutionID, env.Sequence)
	}
	return projections.ArchivedEvent{Envelope: env, Record: rec, Partition: d.Partition, Offset: d.Offset}, nil
}

// View returns the executions view of id, or a domain ENOTFOUND error.
func (p *Projections) View(ctx context.Context, id string) (domain.Execution, error) {
	var v viewDoc
	err := p.executions.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&v)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return domain.Execution{}, domain.Errorf(domain.ENOTFOUND, "execution %s not found", id)
	}
	if err != nil {
		return domain.Execution{}, fmt.Errorf("view %s: %w", id, err)
	}
	return v.execution(), nil
}

// SaveView writes v if the stored version_seq is still expectedSeq (0: no
// view yet, and then the unique _id decides); projections.ErrStale otherwise.
//
// On MongoDB the condition is part of the write's filter: atomic. On
// FerretDB it is checked under a process lock (cas.go), which is exact
// among the projectors of one process but not across processes: P1 checks
// (view at 2), P2 checks (2), writes 4 and returns, and P1's write of 3
// lands after it. Such a lost update must not persist, so on FerretDB
// SaveView reads back what it left and returns ErrStale, although it wrote,
// if the stored view is below v or the archive holds the event after the
// stored view. Why that suffices:
//
//   - A view is a fold of archived events (the projector archives first),
//     so if anyone wrote a view at n, the archive holds events 1…n.
//   - The writer whose write landed last reads back its own view (at s). If
//     anyone wrote more than s, event s+1 is archived: it returns ErrStale,
//     and its projector reloads the view and folds on from s
//     (projections.Projector.CatchUp); that write is checked the same way.
//     So the view ends at the gap-free end of the archive, at or above
//     every view written.
//   - If that writer dies before reading back (or gives up while its
//     request still runs), it was handling a ledger message it had not
//     acknowledged. The message is delivered again, to a restarted or
//     another projector, whose CatchUp starts from the stored view and
//     folds what is missing.
//
// A regression may thus be visible for a moment, never persist. Two
// projectors of different processes may both "win" the same expectedSeq;
// views are deterministic folds, so they write the same view.
func (p *Projections) SaveView(ctx context.Context, v domain.Execution, expectedSeq int64) error {
	if v.ID == "" {
		return errors.New("save view: execution without id")
	}
	if expectedSeq == 0 {
		if _, err := p.executions.InsertOne(ctx, toViewDoc(v)); err != nil {
			if mongo.IsDuplicateKeyError(err) {
				return projections.ErrStale
			}
			return fmt.Errorf("save view %s: %w", v.ID, err)
		}
	} else {
		ok, err := p.db.writeIf(ctx, p.executions, v.ID, []cond{{"version_seq", expectedSeq}},
			func(ctx context.Context, filter bson.D) (int64, error) {
				res, err := p.executions.ReplaceOne(ctx, filter, toViewDoc(v))
				if err != nil {
					return 0, err
				}
				return res.MatchedCount, nil
			})
		if err != nil {
			return fmt.Errorf("save view %s at seq %d: %w", v.ID, expectedSeq, err)
		}
		if !ok {
			return projections.ErrStale
		}
	}
	if p.db.cas == casLocked {
		return p.checkView(ctx, v)
	}
	return nil
}

// checkView returns ErrStale if the stored view of v.ID is below v, or
// behind the archive (see SaveView).
func (p *Projections) checkView(ctx context.Context, v domain.Execution) error {
	stored, ok, err := findByID[viewDoc](ctx, p.executions, v.ID)
	if err != nil {
		return fmt.Errorf("save view %s: read back: %w", v.ID, err)
	}
	if !ok || stored.VersionSeq < v.Sequence {
		return projections.ErrStale
	}
	_, behind, err := findByID[bson.Raw](ctx, p.events, eventKey(v.ID, stored.VersionSeq+1), idOnly)
	if err != nil {
		return fmt.Errorf("save view %s: read back: %w", v.ID, err)
	}
	if behind {
		return projections.ErrStale
	}
	return nil
}

// List returns executions newest first (created_at desc, then _id desc),
// optionally of one status and owner, strictly after the cursor, at most
// q.Limit of them, and whether more follow.
func (p *Projections) List(ctx context.Context, q projections.ListQuery) ([]domain.Execution, bool, error) {
	if q.Limit < 1 {
		return nil, false, domain.Errorf(domain.EINVALID, "limit must be positive")
	}
	if p.db.fast != nil {
		return p.listByIndex(ctx, q)
	}
	filter := bson.D{}
	if q.Status != "" {
		filter = append(filter, bson.E{Key: "status", Value: q.Status})
	}
	if q.Owner != "" {
		filter = append(filter, bson.E{Key: "owner", Value: q.Owner})
	}
	if c := q.After; c != nil {
		// Older than the cursor in (created_at, _id) order; the registry
		// stores times as fixed-width strings, so $lt is chronological.
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "created_at", Value: bson.D{{Key: "$lt", Value: c.CreatedAt}}}},
			bson.D{{Key: "created_at", Value: c.CreatedAt}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.ID}}}},
		}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "created_at", Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(q.Limit) + 1) // one more than asked says whether more follow
	cur, err := p.executions.Find(ctx, filter, opts)
	if err != nil {
		return nil, false, fmt.Errorf("list executions: %w", err)
	}
	var docs []viewDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, false, fmt.Errorf("list executions: %w", err)
	}
	out := make([]domain.Execution, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.execution())
	}
	more := len(out) > q.Limit
	if more {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// listByIndex is List on the embedded server: the page's ids from the SQLite
// index, the views by _id. A view whose status changed since the index was
// read no longer matches and is left out; whether more follow is decided
// by the ids, so leaving one out never ends the pagination early.
func (p *Projections) listByIndex(ctx context.Context, q projections.ListQuery) ([]domain.Execution, bool, error) {
	ids, err := p.db.fast.listIDs(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("list executions: %w", err)
	}
	more := len(ids) > q.Limit
	out := make([]domain.Execution, 0, len(ids))
	for _, id := range ids {
		d, ok, err := findByID[viewDoc](ctx, p.executions, id)
		if err != nil {
			return nil, false, fmt.Errorf("list executions: %w", err)
		}
		if ok && (q.Status == "" || d.Status == q.Status) && (q.Owner == "" || d.Owner == q.Owner) {
			out = append(out, d.execution())
		}
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, more, nil
}

// idOnly projects a document to its _id, for existence checks.
var idOnly = options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})

// findByID reads one document by _id; false if there is none.
func findByID[T any](ctx context.Context, coll *mongo.Collection, id string, opts ...options.Lister[options.FindOneOptions]) (T, bool, error) {
	var doc T
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts...).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, false, nil
	}
	return doc, err == nil, err
}
