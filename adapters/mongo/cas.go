package mongo

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// casMode is how SaveView makes its conditional write ("write view id if
// its version_seq still holds v").
type casMode int

const (
	// casServer puts the condition into the write's filter. MongoDB
	// evaluates filter and write atomically per document, across processes.
	casServer casMode = iota
	// casLocked serves FerretDB 1.x, whose update is "query, then write by
	// _id" with nothing in between (internal/handler/msg_update.go): two
	// writers can both match the old version and both write, and a filter
	// with more than _id is a full collection scan. So the write takes a
	// process lock on the document, reads it by _id, checks the condition in
	// Go and writes by _id; both steps use the _id index. That is atomic
	// among the writers of one process only. Across processes a write may
	// still land after a newer one; SaveView then checks what it left
	// behind (see Projections.SaveView).
	casLocked
)

// cond is one field that the stored document must hold for a write to happen.
// Values are int64 or string, which is all the callers need.
type cond struct {
	field string
	value any
}

// holds reports whether doc's field equals the condition's value.
func (c cond) holds(doc bson.Raw) bool {
	v, err := doc.LookupErr(c.field)
	if err != nil {
		return false
	}
	switch want := c.value.(type) {
	case int64:
		got, ok := v.AsInt64OK()
		return ok && got == want
	case string:
		got, ok := v.StringValueOK()
		return ok && got == want
	}
	return false
}

// writeFunc performs a write with the given filter and returns how many
// documents matched.
type writeFunc func(ctx context.Context, filter bson.D) (int64, error)

// writeIf runs write on document id of coll if every condition holds, and
// reports whether it did.
func (d *DB) writeIf(ctx context.Context, coll *mongo.Collection, id string, conds []cond, write writeFunc) (bool, error) {
	if d.cas == casServer {
		filter := bson.D{{Key: "_id", Value: id}}
		for _, c := range conds {
			filter = append(filter, bson.E{Key: c.field, Value: c.value})
		}
		n, err := write(ctx, filter)
		return n == 1, err
	}

	unlock := d.locks.lock(coll.Name() + "\x00" + id)
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

// keyLocks is a fixed set of mutexes indexed by a key's hash: bounded memory
// however many documents exist, at the price of unrelated keys sometimes
// sharing a mutex for the few milliseconds of a write.
type keyLocks struct {
	stripes [256]sync.Mutex
}

func (k *keyLocks) lock(key string) (unlock func()) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	m := &k.stripes[h.Sum32()%uint32(len(k.stripes))]
	m.Lock()
	return m.Unlock
}
