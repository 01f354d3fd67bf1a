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

// SavePosition records that every record of partition before next was
// handled. It overwrites whatever is stored, with no condition.
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
//
// The write is an upsert (replaceByID).
func (p *Projections) SavePosition(ctx context.Context, partition int32, next int64) error {
	key := positionKey(partition)
	if err := replaceByID(ctx, p.positions, key, positionDoc{ID: key, Next: next}); err != nil {
		return fmt.Errorf("save position %d of partition %d: %w", next, partition, err)
	}
	return nil
}

// replaceByID writes doc as document id, creating it if missing. An upsert
// that loses a race to create the document fails with a duplicate key: on
// FerretDB 1.x, whose upsert is "query, then insert"
// (internal/handler/common/update.go), and on MongoDB too, which retries
// some of those itself but not all. The document exists then (none of
// these is ever deleted while written), and a second attempt replaces it.
func replaceByID(ctx context.Context, coll *mongo.Collection, id string, doc any) error {
	upsert := options.Replace().SetUpsert(true)
	_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, upsert)
	if mongo.IsDuplicateKeyError(err) {
		_, err = coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, upsert)
	}
	return err
}
