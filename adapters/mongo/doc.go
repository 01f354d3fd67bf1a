// Package mongo stores the read models (projections.Store: the event
// archive, the executions view and the projector's position per partition)
// in MongoDB, and runs an embedded MongoDB-wire server (FerretDB 1.24 over
// SQLite) for the single-process default. The ledger itself is Kafka; all
// of this can be rebuilt from it.
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
//     queries (List, Events) get their ids from expression indexes on the
//     SQLite file instead (sqliteindex.go).
//   - It executes an update as "query, then write the whole document by
//     _id" with nothing in between, so a conditional write ({_id, seq: n})
//     is not atomic, and even a plain replace can undo a concurrent write
//     of another process. What is atomic across processes, there and on
//     MongoDB, is an insert that fails on a duplicate _id: the archive
//     keeps one event per sequence that way. Views are written with the
//     condition in the filter on MongoDB; on FerretDB under a process
//     lock, with a read-back that keeps a lost update of another process
//     from persisting (cas.go, Projections.SaveViews). Positions need no
//     condition: any value written is true (Projections.SavePositions).
//
// The rest of the package is written for MongoDB; what FerretDB needs done
// its own way is one dialect (dialect.go): mongoDialect, ferretDialect
// (ferretdb.go) or embeddedDialect (sqliteindex.go), picked by Open and
// (*Embedded).Open. Nothing else branches on the server.
//
// Writes come in batches (projections.Store): new documents go in one
// unordered InsertMany, whose per-document duplicate-key errors say which
// were there already (insertEach); FerretDB commits each command in one
// SQLite transaction, so a batch costs about what one document does.
//
// Times are stored as fixed-width RFC 3339 strings with nanoseconds, not
// BSON dates (timecodec.go).
//
// Wiring: StartEmbedded, Connect(ctx, e.URI()), e.Open(ctx, client, name)
// on the embedded server; Connect and Open against MongoDB. Then
// NewProjections over the DB.
package mongo
