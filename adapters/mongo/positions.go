package mongo

import (
	"context"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// positionDoc is where the projector reads on in one partition of the ledger.
type positionDoc struct {
	ID   string `bson:"_id"` // positionKey(partition)
	Next int64  `bson:"next"`
}

func positionKey(partition int32) string { return "projector/" + strconv.Itoa(int(partition)) }

// Position returns the next offset of partition the projector reads; 0 if
// none was saved, so that an empty store rebuilds from the start of the log.
func (p *Projections) Position(ctx context.Context, partition int32) (int64, error) {
	d, ok, err := findByID[positionDoc](ctx, p.positions, positionKey(partition))
	if err != nil {
		return 0, fmt.Errorf("position of partition %d: %w", partition, err)
	}
	if !ok {
		return 0, nil
	}
	return d.Next, nil
}

// SavePositions records, per partition, that every record before the
// offset given was handled. It overwrites whatever is stored, with no
// condition, in one unordered bulk of upserts (replaceEach).
//
// That is safe because the projector that owns a partition is its only
// writer, and a position is only ever saved after the records before it
// were handled, so every value written is true. When ownership moves (a
// rebalance) the old owner's last write may land after the new owner's,
// and on FerretDB a replace is "query, then write by _id" (cas.go): a
// lower value may then overwrite a higher one. That costs re-reading
// records already handled, which is harmless: the projector is idempotent
// (an archived sequence is a duplicate, a view moves only from its own
// checkpoint).
func (p *Projections) SavePositions(ctx context.Context, next map[int32]int64) error {
	docs := make([]replacement, 0, len(next))
	for partition, n := range next {
		key := positionKey(partition)
		docs = append(docs, replacement{id: key, doc: positionDoc{ID: key, Next: n}})
	}
	if err := replaceEach(ctx, p.positions, docs); err != nil {
		return fmt.Errorf("save positions %v: %w", next, err)
	}
	return nil
}

// replacement is a whole document to write under its _id.
type replacement struct {
	id  string
	doc any
}

// replaceEach writes each document under its id, creating those missing,
// in one unordered bulk of upserts. An upsert that loses a race to create
// its document fails with a duplicate key: on FerretDB 1.x, whose upsert is
// "query, then insert" (internal/handler/common/update.go), and on MongoDB
// too, which retries some of those itself but not all. The document exists
// then (none of these is ever deleted while written), so the bulk is
// written once more, and each upsert that lost finds it.
func replaceEach(ctx context.Context, coll *mongo.Collection, docs []replacement) error {
	if len(docs) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(docs))
	for i, d := range docs {
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: d.id}}).SetReplacement(d.doc).SetUpsert(true)
	}
	_, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if mongo.IsDuplicateKeyError(err) {
		_, err = coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	}
	return err
}

// replaceByID writes doc as document id, creating it if missing
// (replaceEach of one).
func replaceByID(ctx context.Context, coll *mongo.Collection, id string, doc any) error {
	return replaceEach(ctx, coll, []replacement{{id: id, doc: doc}})
}
