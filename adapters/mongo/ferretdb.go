package mongo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// ferretDialect is a FerretDB 1.x server (doc.go says what shapes it): a
// conditional write under a process lock with a read-back, events fetched
// one _id at a time instead of a scan of the archive. Lists run
// MongoDB's query, which FerretDB answers by scanning.
type ferretDialect struct {
	locks *keyLocks
}

func newFerretDialect() *ferretDialect { return &ferretDialect{locks: &keyLocks{}} }

func (*ferretDialect) name() string { return "ferretdb" }
func (*ferretDialect) close() error { return nil }

// scrub: a FerretDB elsewhere keeps its own storage (its operator sets
// that storage's secure deletion up); only the embedded one is ours.
func (*ferretDialect) scrub(context.Context) error { return nil }

func (f *ferretDialect) writeIf(ctx context.Context, coll *mongo.Collection, id string, conds []cond, write writeFunc) (bool, error) {
	unlock := f.locks.lock(coll.Name() + "\x00" + id)
	defer unlock()
	proj := bson.D{}
	for _, c := range conds {
		proj = append(proj, bson.E{Key: c.field, Value: 1})
	}
	var doc bson.Raw
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(proj)).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, c := range conds {
		if !c.holds(doc) {
			return false, nil
		}
	}
	n, err := write(ctx, bson.D{{Key: "_id", Value: id}})
	return n == 1, err
}

func (*ferretDialect) updateViews(ctx context.Context, p *Projections, ws []projections.ViewWrite) ([]bool, error) {
	return updateEach(ctx, p, ws)
}

// confirmViews reports stale each view whose stored version is below it,
// or behind the archive (see Projections.SaveViews): two reads by _id per
// view (FerretDB answers a query of many _ids by scanning).
func (*ferretDialect) confirmViews(ctx context.Context, p *Projections, vs []domain.Execution) ([]bool, error) {
	stale := make([]bool, len(vs))
	for i, v := range vs {
		stored, ok, err := findByID[viewDoc](ctx, p.executions, v.ID, options.FindOne().SetProjection(bson.D{{Key: "version_seq", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("save view %s: read back: %w", v.ID, err)
		}
		if !ok || stored.VersionSeq < v.Sequence {
			stale[i] = true
			continue
		}
		_, behind, err := findByID[bson.Raw](ctx, p.events, eventKey(v.ID, stored.VersionSeq+1), idOnly)
		if err != nil {
			return nil, fmt.Errorf("save view %s: read back: %w", v.ID, err)
		}
		stale[i] = behind
	}
	return stale, nil
}

// events fetches after+1, after+2, … by _id until one is missing: a few
// indexed lookups instead of reading the whole archive. It stops at a gap,
// returning the events up to it; every caller (the projector, the event
// stream) uses only the gap-free prefix anyway.
func (*ferretDialect) events(ctx context.Context, p *Projections, id string, after int64) ([]projections.ArchivedEvent, error) {
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

func (*ferretDialect) list(ctx context.Context, p *Projections, q projections.ListQuery) ([]domain.Execution, bool, error) {
	return mongoDialect{}.list(ctx, p, q)
}

// keyLocks is a fixed set of mutexes indexed by a key's hash: bounded memory
// however many documents exist, at the price of unrelated keys sometimes
// sharing a mutex for the few milliseconds of a write.
type keyLocks struct {
	stripes [256]sync.Mutex
}

func (k *keyLocks) lock(key string) (unlock func()) {
	m := &k.stripes[k.stripe(key)]
	m.Lock()
	return m.Unlock
}

func (k *keyLocks) stripe(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(k.stripes)))
}

// lockAll locks the mutexes of every key, in stripe order: two callers
// that lock overlapping sets never wait for each other in a circle (and
// lock, which holds one, never waits while holding another).
func (k *keyLocks) lockAll(keys []string) (unlock func()) {
	var held [len(keyLocks{}.stripes)]bool
	for _, key := range keys {
		held[k.stripe(key)] = true
	}
	for i, h := range held {
		if h {
			k.stripes[i].Lock()
		}
	}
	return func() {
		for i, h := range held {
			if h {
				k.stripes[i].Unlock()
			}
		}
	}
}
