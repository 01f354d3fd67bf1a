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

// AddEvents archives each ev.Record as given, in one unordered insert;
// added[i] is false if that execution's sequence was archived already (a
// duplicate delivery, or another event claiming the sequence: the stored
// event is kept either way). Each record must be the one its envelope was
// read from.
func (p *Projections) AddEvents(ctx context.Context, evs []projections.ArchivedEvent) ([]bool, error) {
	docs := make([]any, len(evs))
	for i, ev := range evs {
		doc, err := newEventDoc(ev)
		if err != nil {
			return nil, err
		}
		docs[i] = doc
	}
	dup, err := insertEach(ctx, p.events, docs)
	if err != nil {
		return nil, fmt.Errorf("archive %d events: %w", len(evs), err)
	}
	for i := range dup {
		dup[i] = !dup[i]
	}
	return dup, nil
}

// newEventDoc is the archive's document of ev, once ev is checked.
func newEventDoc(ev projections.ArchivedEvent) (eventDoc, error) {
	env := ev.Envelope
	if env.ExecutionID == "" || env.Sequence < 1 {
		return eventDoc{}, fmt.Errorf("archive event %s: execution id %q, sequence %d", env.EventID, env.ExecutionID, env.Sequence)
	}
	rec, err := eventstore.ParseRecord(ev.Record)
	if err != nil {
		return eventDoc{}, fmt.Errorf("archive %s/%d: %w", env.ExecutionID, env.Sequence, err)
	}
	if rec.ExecutionID != env.ExecutionID || rec.Sequence != env.Sequence || rec.Hash != env.Hash {
		return eventDoc{}, fmt.Errorf("archive %s/%d: the record is %s/%d with hash %s, not %s",
			env.ExecutionID, env.Sequence, rec.ExecutionID, rec.Sequence, rec.Hash, env.Hash)
	}
	return eventDoc{
		ID: eventKey(env.ExecutionID, env.Sequence), ExecutionID: env.ExecutionID, Sequence: env.Sequence,
		EventID: env.EventID, Type: env.Type, OccurredAt: env.OccurredAt, Record: string(ev.Record),
		Partition: ev.Partition, Offset: ev.Offset,
	}, nil
}

// insertEach inserts docs in one unordered InsertMany and reports which
// collided with a document of the same _id (the others are inserted).
// One call costs about one write on every server, where the embedded
// FerretDB commits each InsertOne on its own (2 ms; 0.1 ms a document
// in a batch of 50).
func insertEach(ctx context.Context, coll *mongo.Collection, docs []any) (dup []bool, err error) {
	dup = make([]bool, len(docs))
	if len(docs) == 0 {
		return dup, nil
	}
	_, err = coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err == nil || !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return dup, err
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) || we.Index < 0 || we.Index >= len(docs) {
			return nil, err
		}
		dup[we.Index] = true
	}
	return dup, nil
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

// Events returns id's archived events with sequence > after, in order
// (on a FerretDB other than the embedded server, up to the first gap:
// ferretDialect.events).
func (p *Projections) Events(ctx context.Context, id string, after int64) ([]projections.ArchivedEvent, error) {
	return p.db.dialect.events(ctx, p, id, after)
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

// SaveViews writes each view whose stored version_seq is still its
// Expected, and reports the others stale. New views (Expected 0) go in one
// unordered insert, where the unique _id decides; the others are written
// under their conditions as the dialect can (updateViews).
//
// On MongoDB the condition is part of the write's filter: atomic. On
// FerretDB it is checked under a process lock (cas.go), which is exact
// among the projectors of one process but not across processes: P1 checks
// (view at 2), P2 checks (2), writes 4 and returns, and P1's write of 3
// lands after it. Such a lost update must not persist, so on FerretDB
// SaveViews reads back what it left and returns ErrStale, although it wrote,
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
func (p *Projections) SaveViews(ctx context.Context, ws []projections.ViewWrite) ([]bool, error) {
	if err := projections.CheckViewWrites(ws); err != nil {
		return nil, err
	}
	stale := make([]bool, len(ws))
	var fresh []any
	var freshAt, movedAt []int
	var moved []projections.ViewWrite
	for i, w := range ws {
		if w.Expected == 0 {
			fresh, freshAt = append(fresh, toViewDoc(w.View)), append(freshAt, i)
		} else {
			moved, movedAt = append(moved, w), append(movedAt, i)
		}
	}
	if len(moved) > 0 {
		s, err := p.db.dialect.updateViews(ctx, p, moved)
		if err != nil {
			return nil, err
		}
		for k, i := range movedAt {
			stale[i] = s[k]
		}
	}
	dup, err := insertEach(ctx, p.executions, fresh)
	if err != nil {
		return nil, fmt.Errorf("save %d new views: %w", len(fresh), err)
	}
	for k, i := range freshAt {
		stale[i] = dup[k]
	}
	var written []domain.Execution
	var writtenAt []int
	for i, w := range ws {
		if !stale[i] {
			written, writtenAt = append(written, w.View), append(writtenAt, i)
		}
	}
	lost, err := p.db.dialect.confirmViews(ctx, p, written)
	if err != nil {
		return nil, err
	}
	for k, i := range writtenAt {
		stale[i] = lost[k]
	}
	return stale, nil
}

// List returns executions newest first (created_at desc, then _id desc),
// optionally of one status and owner, strictly after the cursor, at most
// q.Limit of them, and whether more follow.
func (p *Projections) List(ctx context.Context, q projections.ListQuery) ([]domain.Execution, bool, error) {
	if q.Limit < 1 {
		return nil, false, domain.Errorf(domain.EINVALID, "limit must be positive")
	}
	return p.db.dialect.list(ctx, p, q)
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

// EndedBefore lists (at most limit) executions that ended before a time
// and whose content is not erased: the retention sweep's work
// (content.Expired). Times are stored as fixed-width UTC strings
// (timecodec.go), so they compare as strings. FerretDB answers it by
// scanning the view, which the sweep does rarely.
func (p *Projections) EndedBefore(ctx context.Context, before time.Time, limit int) ([]string, error) {
	cur, err := p.executions.Find(ctx, bson.D{{Key: "finished_at", Value: bson.D{{Key: "$lt", Value: formatTime(before)}}},
		{Key: "erased", Value: bson.D{{Key: "$ne", Value: true}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("executions ended before %s: %w", before, err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("executions ended before %s: %w", before, err)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids, nil
}

// ErasedAfter lists erased executions with an id above after, in id order
// (content.Views: the eraser's reconcile pages through them).
func (p *Projections) ErasedAfter(ctx context.Context, after string, limit int) ([]string, error) {
	cur, err := p.executions.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}},
		{Key: "erased", Value: true}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("erased executions: %w", err)
	}
	var docs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("erased executions: %w", err)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	return ids, nil
}
