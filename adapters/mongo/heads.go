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
)

// Heads implements eventstore.Heads over the collection "heads".
type Heads struct {
	db   *DB
	coll *mongo.Collection
}

var _ eventstore.Heads = (*Heads)(nil)

// NewHeads returns the head store of db.
func NewHeads(db *DB) *Heads { return &Heads{db: db, coll: db.db.Collection(CollHeads)} }

// headDoc is a head as stored. seq duplicates state.version_seq at the top
// level because it is the compare-and-swap field; terminal and
// pending_count exist so that Unsettled is an indexable query on MongoDB.
type headDoc struct {
	ID           string           `bson:"_id"`
	Seq          int64            `bson:"seq"`
	State        domain.Execution `bson:"state"`
	Hash         string           `bson:"hash"`
	Pending      []string         `bson:"pending"`
	PendingCount int              `bson:"pending_count"`
	LeaseOwner   string           `bson:"lease_owner"`
	LeaseUntil   time.Time        `bson:"lease_until"`
	UpdatedAt    time.Time        `bson:"updated_at"`
	Terminal     bool             `bson:"terminal"`
}

func toHeadDoc(h eventstore.Head) (headDoc, error) {
	if h.State.ID == "" {
		return headDoc{}, errors.New("head without execution id")
	}
	pending := h.Pending
	if pending == nil {
		pending = []string{} // an array, never null, so the field has one type
	}
	return headDoc{
		ID: h.State.ID, Seq: h.State.Sequence, State: h.State, Hash: h.Hash,
		Pending: pending, PendingCount: len(pending),
		LeaseOwner: h.LeaseOwner, LeaseUntil: h.LeaseUntil, UpdatedAt: h.UpdatedAt,
		Terminal: h.State.Status.Terminal(),
	}, nil
}

func (d headDoc) head() eventstore.Head {
	pending := d.Pending
	if len(pending) == 0 {
		pending = nil
	}
	return eventstore.Head{State: d.State, Hash: d.Hash, Pending: pending,
		LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil, UpdatedAt: d.UpdatedAt}
}

// Insert creates the head of a new execution; eventstore.ErrStale if one
// exists. The unique _id makes this atomic on every server.
func (s *Heads) Insert(ctx context.Context, h eventstore.Head) error {
	doc, err := toHeadDoc(h)
	if err != nil {
		return fmt.Errorf("insert head: %w", err)
	}
	if _, err := s.coll.InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return eventstore.ErrStale
		}
		return fmt.Errorf("insert head %s: %w", doc.ID, err)
	}
	return nil
}

// Get returns the head of an execution, or a domain ENOTFOUND error.
func (s *Heads) Get(ctx context.Context, id string) (eventstore.Head, error) {
	var doc headDoc
	err := s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return eventstore.Head{}, domain.Errorf(domain.ENOTFOUND, "execution %s not found", id)
	}
	if err != nil {
		return eventstore.Head{}, fmt.Errorf("get head %s: %w", id, err)
	}
	return doc.head(), nil
}

// Replace writes h if the stored head is still at expectedSeq;
// eventstore.ErrStale otherwise (also when there is no head).
func (s *Heads) Replace(ctx context.Context, expectedSeq int64, h eventstore.Head) error {
	doc, err := toHeadDoc(h)
	if err != nil {
		return fmt.Errorf("replace head: %w", err)
	}
	ok, err := s.db.writeIf(ctx, s.coll, doc.ID, []cond{{"seq", expectedSeq}},
		func(ctx context.Context, filter bson.D) (int64, error) {
			res, err := s.coll.ReplaceOne(ctx, filter, doc)
			if err != nil {
				return 0, err
			}
			return res.MatchedCount, nil
		})
	if err != nil {
		return fmt.Errorf("replace head %s at seq %d: %w", doc.ID, expectedSeq, err)
	}
	if !ok {
		return eventstore.ErrStale
	}
	return nil
}

// ClearPending empties Pending if the head is still at seq, and does
// nothing otherwise: newer envelopes appended since must stay pending.
func (s *Heads) ClearPending(ctx context.Context, id string, seq int64) error {
	_, err := s.db.writeIf(ctx, s.coll, id, []cond{{"seq", seq}}, s.update(bson.D{{Key: "$set", Value: bson.D{
		{Key: "pending", Value: bson.A{}},
		{Key: "pending_count", Value: 0},
	}}}))
	if err != nil {
		return fmt.Errorf("clear pending of head %s at seq %d: %w", id, seq, err)
	}
	return nil
}

// Renew moves the lease's end to until if the head is still at seq and owned
// by owner; eventstore.ErrStale otherwise. It changes nothing else, not even
// updated_at, which records the last append.
func (s *Heads) Renew(ctx context.Context, id string, seq int64, owner string, until time.Time) error {
	ok, err := s.db.writeIf(ctx, s.coll, id, []cond{{"seq", seq}, {"lease_owner", owner}},
		s.update(bson.D{{Key: "$set", Value: bson.D{{Key: "lease_until", Value: until}}}}))
	if err != nil {
		return fmt.Errorf("renew lease of head %s at seq %d: %w", id, seq, err)
	}
	if !ok {
		return eventstore.ErrStale
	}
	return nil
}

func (s *Heads) update(upd bson.D) writeFunc {
	return func(ctx context.Context, filter bson.D) (int64, error) {
		res, err := s.coll.UpdateOne(ctx, filter, upd)
		if err != nil {
			return 0, err
		}
		return res.MatchedCount, nil
	}
}

// Unsettled lists heads that are not terminal or still have pending
// envelopes, least recently appended first, at most limit (none if limit < 1).
func (s *Heads) Unsettled(ctx context.Context, limit int) ([]eventstore.Head, error) {
	if limit < 1 {
		return nil, nil
	}
	if s.db.fast != nil {
		return s.unsettledByIndex(ctx, limit)
	}
	filter := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "terminal", Value: false}},
		bson.D{{Key: "pending_count", Value: bson.D{{Key: "$gt", Value: 0}}}},
	}}}
	opts := options.Find().
		SetSort(bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit))
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("unsettled heads: %w", err)
	}
	var docs []headDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("unsettled heads: %w", err)
	}
	out := make([]eventstore.Head, len(docs))
	for i, d := range docs {
		out[i] = d.head()
	}
	return out, nil
}

// unsettledByIndex is Unsettled on the embedded server: ids from the SQLite
// index, heads by _id, and a re-check since a head may have settled between.
func (s *Heads) unsettledByIndex(ctx context.Context, limit int) ([]eventstore.Head, error) {
	ids, err := s.db.fast.unsettledIDs(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("unsettled heads: %w", err)
	}
	out := make([]eventstore.Head, 0, len(ids))
	for _, id := range ids {
		doc, ok, err := findByID[headDoc](ctx, s.coll, id)
		if err != nil {
			return nil, fmt.Errorf("unsettled heads: %w", err)
		}
		if ok && (!doc.Terminal || doc.PendingCount > 0) {
			out = append(out, doc.head())
		}
	}
	return out, nil
}

// findByID reads one document by _id; false if there is none.
func findByID[T any](ctx context.Context, coll *mongo.Collection, id string) (T, bool, error) {
	var doc T
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, false, nil
	}
	return doc, err == nil, err
}
