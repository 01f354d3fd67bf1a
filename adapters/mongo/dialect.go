package mongo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// dialect is what differs between the servers this package talks to. The
// rest of the package is written for MongoDB and calls the dialect only
// where a server needs something else: mongoDialect (this file) is MongoDB
// itself, ferretDialect (ferretdb.go) a FerretDB 1.x elsewhere, and
// embeddedDialect (sqliteindex.go) the embedded FerretDB, whose SQLite file
// this process can index. Open picks one; nothing else branches on the
// server.
type dialect interface {
	// name says which one it is, for logs and tests.
	name() string
	// writeIf runs write on document id of coll if every condition holds,
	// and reports whether it did (cas.go).
	writeIf(ctx context.Context, coll *mongo.Collection, id string, conds []cond, write writeFunc) (bool, error)
	// updateViews writes each view of ws (Expected > 0) whose stored
	// version_seq is still its Expected; stale[i] reports the others.
	updateViews(ctx context.Context, p *Projections, ws []projections.ViewWrite) (stale []bool, err error)
	// confirmViews runs after SaveViews wrote vs conditionally: stale[i]
	// if the write of vs[i] may not persist (FerretDB's lost updates, see
	// SaveViews).
	confirmViews(ctx context.Context, p *Projections, vs []domain.Execution) (stale []bool, err error)
	// events answers Projections.Events, list Projections.List.
	events(ctx context.Context, p *Projections, id string, after int64) ([]projections.ArchivedEvent, error)
	list(ctx context.Context, p *Projections, q projections.ListQuery) ([]domain.Execution, bool, error)
	// scrub makes the server's files forget bytes deleted or overwritten
	// so far (a destroyed content key), where the server needs telling.
	scrub(ctx context.Context) error
	// close releases what the dialect holds.
	close() error
}

// mongoDialect is MongoDB: conditions in the filter, queries on indexes.
type mongoDialect struct{}

func (mongoDialect) name() string { return "mongodb" }
func (mongoDialect) close() error { return nil }

// scrub: MongoDB's storage engine reuses freed space in its own time;
// docs/operations.md says what an operator of MongoDB does about it.
func (mongoDialect) scrub(context.Context) error { return nil }

func (mongoDialect) writeIf(ctx context.Context, _ *mongo.Collection, id string, conds []cond, write writeFunc) (bool, error) {
	filter := bson.D{{Key: "_id", Value: id}}
	for _, c := range conds {
		filter = append(filter, bson.E{Key: c.field, Value: c.value})
	}
	n, err := write(ctx, filter)
	return n == 1, err
}

func (mongoDialect) updateViews(ctx context.Context, p *Projections, ws []projections.ViewWrite) ([]bool, error) {
	return updateEach(ctx, p, ws)
}

// updateEach writes each view under its condition, one conditional write
// (writeIf) at a time.
func updateEach(ctx context.Context, p *Projections, ws []projections.ViewWrite) ([]bool, error) {
	stale := make([]bool, len(ws))
	for i, w := range ws {
		v := w.View
		ok, err := p.db.writeIf(ctx, p.executions, v.ID, []cond{{"version_seq", w.Expected}},
			func(ctx context.Context, filter bson.D) (int64, error) {
				res, err := p.executions.ReplaceOne(ctx, filter, toViewDoc(v))
				if err != nil {
					return 0, err
				}
				return res.MatchedCount, nil
			})
		if err != nil {
			return nil, fmt.Errorf("save view %s at seq %d: %w", v.ID, w.Expected, err)
		}
		stale[i] = !ok
	}
	return stale, nil
}

// confirmViews: MongoDB evaluates filter and write atomically per document.
func (mongoDialect) confirmViews(_ context.Context, _ *Projections, vs []domain.Execution) ([]bool, error) {
	return make([]bool, len(vs)), nil
}

func (mongoDialect) events(ctx context.Context, p *Projections, id string, after int64) ([]projections.ArchivedEvent, error) {
	filter := bson.D{{Key: "execution_id", Value: id}, {Key: "sequence", Value: bson.D{{Key: "$gt", Value: after}}}}
	docs, err := findAll[eventDoc](ctx, p.events, filter, options.Find().SetSort(bson.D{{Key: "sequence", Value: 1}}))
	if err != nil {
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

func (mongoDialect) list(ctx context.Context, p *Projections, q projections.ListQuery) ([]domain.Execution, bool, error) {
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
	docs, err := findAll[viewDoc](ctx, p.executions, filter, opts)
	if err != nil {
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
