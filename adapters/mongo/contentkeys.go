package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/content"
)

// CollContentKeys holds each execution's data key, wrapped under the
// key-encryption key (package content). Like accounts it is primary data:
// the log cannot rebuild it, `projections rebuild` never touches it, and a
// backup must hold it (and, apart, the key-encryption key) or every
// execution's content is lost.
const CollContentKeys = "content_keys"

// ContentKeyCollections lists the collections of content keys.
func ContentKeyCollections() []string { return []string{CollContentKeys} }

// ContentKeys implements content.Store.
type ContentKeys struct {
	db   *DB
	coll *mongo.Collection
}

// NewContentKeys returns the content key store of db.
func NewContentKeys(db *DB) *ContentKeys {
	return &ContentKeys{db: db, coll: db.db.Collection(CollContentKeys)}
}

var _ content.Store = (*ContentKeys)(nil)

type contentKeyDoc struct {
	ID         string      `bson:"_id"`
	Wrapped    []byte      `bson:"wrapped,omitempty"`
	KEKID      string      `bson:"kek_id,omitempty"`
	CreatedAt  time.Time   `bson:"created_at"`
	Erasing    *erasureDoc `bson:"erasing,omitempty"`
	ShreddedAt *time.Time  `bson:"shredded_at,omitempty"`
	Keyless    bool        `bson:"keyless,omitempty"`
	// ScrubOwed: the key is gone from the document, not yet from the
	// store's files (Shred's scrub failed); Pending lists the record until
	// a Shred's scrub succeeds.
	ScrubOwed bool `bson:"scrub_owed,omitempty"`
}

type erasureDoc struct {
	Actor  string    `bson:"actor"`
	Reason string    `bson:"reason"`
	At     time.Time `bson:"at"`
}

func (d contentKeyDoc) record() content.Record {
	r := content.Record{ExecutionID: d.ID, Wrapped: d.Wrapped, KEKID: d.KEKID, CreatedAt: d.CreatedAt,
		ShreddedAt: d.ShreddedAt, Keyless: d.Keyless}
	if d.Erasing != nil {
		r.Erasing = &content.Erasure{Actor: d.Erasing.Actor, Reason: d.Erasing.Reason, At: d.Erasing.At}
	}
	return r
}

// Insert stores r unless id has a record: an insert that fails on the
// duplicate _id, atomic across processes on MongoDB and FerretDB alike.
func (s *ContentKeys) Insert(ctx context.Context, r content.Record) (content.Record, error) {
	_, err := s.coll.InsertOne(ctx, contentKeyDoc{ID: r.ExecutionID, Wrapped: r.Wrapped, KEKID: r.KEKID, CreatedAt: r.CreatedAt})
	if err == nil {
		return r, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return content.Record{}, err
	}
	got, ok, err := s.Get(ctx, r.ExecutionID)
	if err == nil && !ok {
		err = fmt.Errorf("content key %s: exists and is gone", r.ExecutionID)
	}
	return got, err
}

// Get reads the record of id.
func (s *ContentKeys) Get(ctx context.Context, id string) (content.Record, bool, error) {
	d, ok, err := findByID[contentKeyDoc](ctx, s.coll, id)
	if err != nil || !ok {
		return content.Record{}, ok, err
	}
	return d.record(), true, nil
}

// MarkErasing sets the erasure mark, creating a keyless record for an
// execution that has none.
func (s *ContentKeys) MarkErasing(ctx context.Context, id string, e content.Erasure) error {
	mark := erasureDoc{Actor: e.Actor, Reason: e.Reason, At: e.At}
	_, err := s.coll.InsertOne(ctx, contentKeyDoc{ID: id, CreatedAt: e.At, Erasing: &mark, Keyless: true})
	if err == nil || !mongo.IsDuplicateKeyError(err) {
		return err
	}
	// Keep an earlier mark (its actor asked first); never mark a record
	// whose key is gone already.
	_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "erasing", Value: bson.D{{Key: "$exists", Value: false}}},
		{Key: "shredded_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "erasing", Value: mark}}}})
	return err
}

// Unmark drops the erasure mark; a record the mark made alone goes too.
func (s *ContentKeys) Unmark(ctx context.Context, id string) error {
	if _, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "keyless", Value: true},
		{Key: "shredded_at", Value: bson.D{{Key: "$exists", Value: false}}}}); err != nil {
		return err
	}
	_, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "shredded_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "erasing", Value: ""}}}})
	return err
}

// Shred removes the wrapped key and leaves the tombstone (when, and the
// erasure's actor and reason), then has the store's files forget the old
// bytes where the store needs telling (the embedded one: dialect.scrub).
// The tombstone says a scrub is owed until one succeeds, so that a scrub
// that failed (a reader held the log back too long) is not forgotten:
// Pending lists the record and the eraser's sweep shreds it again.
func (s *ContentKeys) Shred(ctx context.Context, id string, at time.Time) error {
	d, ok, err := findByID[contentKeyDoc](ctx, s.coll, id)
	if err != nil {
		return err
	}
	if !ok {
		d = contentKeyDoc{ID: id, CreatedAt: at, Keyless: true}
	}
	if d.ShreddedAt != nil && len(d.Wrapped) == 0 && !d.ScrubOwed {
		return nil
	}
	if d.ShreddedAt == nil || len(d.Wrapped) > 0 {
		t := at.UTC()
		tomb := contentKeyDoc{ID: id, CreatedAt: d.CreatedAt, Erasing: d.Erasing, ShreddedAt: &t, Keyless: d.Keyless, ScrubOwed: true}
		// A replacement, not an $unset: the document is written anew, and
		// no field of the key survives in it.
		if _, err := s.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, tomb, options.Replace().SetUpsert(true)); err != nil {
			return err
		}
	}
	if err := s.db.dialect.scrub(ctx); err != nil {
		return err
	}
	_, err = s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "scrub_owed", Value: ""}}}})
	return err
}

// Pending lists the records marked for erasure whose key is not shredded,
// and those whose old bytes the store's files may still hold (ScrubOwed).
func (s *ContentKeys) Pending(ctx context.Context, limit int) ([]content.Record, error) {
	if err := content.CheckLimit(limit); err != nil {
		return nil, err
	}
	// An owed scrub counts with or without a mark: Reconcile shreds the
	// live key of an erased execution that has none.
	cur, err := s.coll.Find(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "erasing", Value: bson.D{{Key: "$exists", Value: true}}}, {Key: "shredded_at", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "scrub_owed", Value: true}},
	}}}, options.Find().SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	var docs []contentKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]content.Record, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.record())
	}
	return out, nil
}

// Shredded lists tombstones after an id, in id order.
func (s *ContentKeys) Shredded(ctx context.Context, after string, limit int) ([]content.Record, error) {
	if err := content.CheckLimit(limit); err != nil {
		return nil, err
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}},
		{Key: "shredded_at", Value: bson.D{{Key: "$exists", Value: true}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, err
	}
	var docs []contentKeyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]content.Record, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.record())
	}
	return out, nil
}
