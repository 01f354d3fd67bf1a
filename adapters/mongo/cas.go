package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Conditional writes ("write view id if its version_seq still holds v"):
// on MongoDB the condition goes into the write's filter, which MongoDB
// evaluates atomically with the write (mongoDialect). FerretDB 1.x
// executes an update as "query, then write the whole document by _id" with
// nothing in between (internal/handler/msg_update.go): two writers can both
// match the old version and both write, and a filter with more than _id is
// a full collection scan. There the write takes a process lock on the
// document, reads it by _id, checks the condition in Go and writes by _id
// (ferretDialect); that is atomic among the writers of one process only,
// and SaveView checks what it left behind (see Projections.SaveView).

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
// reports whether it did, as the server's dialect does it.
func (d *DB) writeIf(ctx context.Context, coll *mongo.Collection, id string, conds []cond, write writeFunc) (bool, error) {
	return d.dialect.writeIf(ctx, coll, id, conds, write)
}
