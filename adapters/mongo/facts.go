package mongo

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// CollFacts holds one small document per execution for the statistics
// (projections/stats.go): a read model like the views, rebuilt with them.
const CollFacts = "facts"

type factDoc struct {
	ID              string    `bson:"_id"`
	CreatedAt       time.Time `bson:"created_at"`
	Owner           string    `bson:"owner"`
	Language        string    `bson:"language"`
	Version         string    `bson:"version"`
	Status          string    `bson:"status"`
	Reason          string    `bson:"reason,omitempty"`
	Sequence        int64     `bson:"sequence"`
	QueueWaitMs     *int64    `bson:"queue_wait_ms,omitempty"`
	WallTimeMs      *int64    `bson:"wall_time_ms,omitempty"`
	CPUTimeMs       *int64    `bson:"cpu_time_ms,omitempty"`
	PeakMemoryBytes *int64    `bson:"peak_memory_bytes,omitempty"`
}

func (p *Projections) facts() *mongo.Collection { return p.db.db.Collection(CollFacts) }

// SaveFacts replaces the executions' facts. Like SavePositions it needs
// no condition: the projector owning the execution's partition is its only
// writer, and what it writes follows from the events it applied; after a
// rebalance an older fact may briefly land over a newer one, which the
// execution's next status change (or a rebuild) writes again.
//
// Every fact is written by one unordered bulk of upserts (replaceEach), except those at
// sequence 1: an execution's first fact, new but for a replay, goes in one
// insert first, which costs FerretDB a tenth of an upsert of a new
// document. Guessing wrong costs time, never correctness: a first fact
// that exists already is upserted with the others. (An insert of facts
// that mostly exist would cost more than it saves: FerretDB retries a
// failed batch document by document.)
func (p *Projections) SaveFacts(ctx context.Context, fs []projections.Fact) error {
	var first []any
	var firstAt []int
	docs := make([]factDoc, len(fs))
	upsert := make([]bool, len(fs))
	for i, f := range fs {
		docs[i] = factDoc{ID: f.ExecutionID, CreatedAt: f.CreatedAt, Owner: f.Owner, Language: f.Language, Version: f.Version,
			Status: string(f.Status), Reason: string(f.Reason), Sequence: f.Sequence, QueueWaitMs: f.QueueWaitMs,
			WallTimeMs: f.WallTimeMs, CPUTimeMs: f.CPUTimeMs, PeakMemoryBytes: f.PeakMemoryBytes}
		if f.Sequence == 1 {
			first, firstAt = append(first, docs[i]), append(firstAt, i)
		} else {
			upsert[i] = true
		}
	}
	dup, err := insertEach(ctx, p.facts(), first)
	if err != nil {
		return fmt.Errorf("save %d facts: %w", len(first), err)
	}
	for k, i := range firstAt {
		upsert[i] = dup[k]
	}
	var replace []replacement
	for i, u := range upsert {
		if u {
			replace = append(replace, replacement{id: docs[i].ID, doc: docs[i]})
		}
	}
	if err := replaceEach(ctx, p.facts(), replace); err != nil {
		return fmt.Errorf("save %d facts: %w", len(replace), err)
	}
	return nil
}

// Facts reads the facts created in [From, To). Times are fixed-width
// strings (timecodec.go), so the range is a string range on MongoDB's
// index; FerretDB scans the small documents.
func (p *Projections) Facts(ctx context.Context, q projections.FactQuery) ([]projections.Fact, error) {
	filter := bson.D{{Key: "created_at", Value: bson.D{{Key: "$gte", Value: q.From.UTC()}, {Key: "$lt", Value: q.To.UTC()}}}}
	if q.Owner != "" {
		filter = append(filter, bson.E{Key: "owner", Value: q.Owner})
	}
	docs, err := findAll[factDoc](ctx, p.facts(), filter)
	if err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	out := make([]projections.Fact, len(docs))
	for i, d := range docs {
		out[i] = projections.Fact{ExecutionID: d.ID, CreatedAt: d.CreatedAt, Owner: d.Owner, Language: d.Language,
			Version: d.Version, Status: domain.Status(d.Status), Reason: domain.Verdict(d.Reason), Sequence: d.Sequence,
			QueueWaitMs: d.QueueWaitMs, WallTimeMs: d.WallTimeMs, CPUTimeMs: d.CPUTimeMs, PeakMemoryBytes: d.PeakMemoryBytes}
	}
	return out, nil
}
