// Package mongo stores the ledger's heads (eventstore.Heads) and the read
// models (projections.Store) in MongoDB, and runs an embedded MongoDB-wire
// server (FerretDB 1.24 over SQLite) for the single-process default.
//
// The same code talks to a real MongoDB and to the embedded FerretDB through
// the official driver. Three properties of FerretDB 1.x shape it:
//
//   - Its _id index is on an expression its lookups never use, so every
//     lookup by _id scans the table. EnsureIDIndexes adds the index the
//     lookups do use (idindex.go).
//   - It pushes only a filter that is exactly {_id: <string>} down to SQLite;
//     every other filter and sort decodes every document of the collection
//     in Go (seconds at 20k documents). On the embedded server, the recurring
//     queries (Unsettled, List, Events) get their ids from expression
//     indexes on the SQLite file instead (sqliteindex.go).
//   - It executes an update as "query, then write the whole document by
//     _id" with nothing in between, so a conditional write ({_id, seq: n})
//     is not atomic, and even a plain $set can undo a concurrent write of
//     another process. What is atomic across processes, there and on
//     MongoDB, is an insert that fails on a duplicate _id. So heads are
//     never updated in place: every change is a new immutable version
//     whose unique _id picks the one writer that wins, and the mutable
//     documents around them are hints that are safe to lose (heads.go; one
//     code path for MongoDB and FerretDB). Views are written with the
//     condition in the filter on MongoDB; on FerretDB under a process
//     lock, with a read-back that keeps a lost update of another process
//     from persisting (cas.go, Projections.SaveView).
//
// Times are stored as fixed-width RFC 3339 strings with nanoseconds, not
// BSON dates (timecodec.go).
//
// Wiring: StartEmbedded, Connect(ctx, e.URI()), e.Open(ctx, client, name)
// on the embedded server; Connect and Open against MongoDB. Then NewHeads
// and NewProjections over the DB.
package mongo
