package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Collection names.
const (
	CollExecutions = "executions" // the executions view
	CollEvents     = "events"     // the event archive
	CollPositions  = "positions"  // the projector's next offset, per partition of the ledger
)

// Collections lists the collections of the read models: everything here
// that the ledger rebuilds (projections rebuild drops and refills them).
func Collections() []string {
	return []string{CollExecutions, CollEvents, CollPositions, CollFacts}
}

// allCollections is every collection this package uses: the read models
// and the primary data of accounts (accounts.go) and of content keys
// (contentkeys.go), which nothing rebuilds.
func allCollections() []string {
	return slices.Concat(Collections(), AccountCollections(), ContentKeyCollections())
}

// Connect opens a client to uri and checks that the server answers. Values
// in the URI (connectTimeoutMS, serverSelectionTimeoutMS, timeoutMS …)
// override these defaults.
func Connect(ctx context.Context, uri string) (*mongo.Client, error) {
	opts := options.Client().
		SetAppName("integr8scode").
		// Fail a dead address in seconds, not the driver's 30 s, so start-up
		// and readiness report it promptly.
		SetConnectTimeout(10 * time.Second).
		SetServerSelectionTimeout(10 * time.Second).
		// A ceiling for any single operation whose context has no deadline;
		// callers with deadlines get theirs.
		SetTimeout(30 * time.Second).
		ApplyURI(uri)
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect mongo: %w", err)
	}
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("connect mongo: ping: %w", err)
	}
	return client, nil
}

// DB is one database with this package's collections, ready for
// NewProjections. Any number of processes may open the same database;
// use one DB per process and database (on FerretDB it holds the locks that
// serialise the view writes of this process, see cas.go).
type DB struct {
	db      *mongo.Database
	dialect dialect // what this server needs done its own way (dialect.go)
}

// Open prepares database dbName: it creates the collections that are
// missing and, on MongoDB, the indexes the queries of this package need. It
// detects FerretDB (buildInfo reports ferretdbVersion) and then writes views
// as cas.go describes. On the embedded server use (*Embedded).Open, which
// also repairs FerretDB's _id index.
func Open(ctx context.Context, client *mongo.Client, dbName string) (*DB, error) {
	if dbName == "" {
		return nil, errors.New("open mongo: database name is required")
	}
	db := client.Database(dbName, options.Database().SetRegistry(newRegistry()))
	ferret, err := isFerretDB(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("open mongo %s: %w", dbName, err)
	}
	if err := createCollections(ctx, db); err != nil {
		return nil, fmt.Errorf("open mongo %s: %w", dbName, err)
	}
	d := &DB{db: db, dialect: mongoDialect{}}
	if ferret {
		d.dialect = newFerretDialect()
	} else if err := createIndexes(ctx, db); err != nil {
		return nil, fmt.Errorf("open mongo %s: %w", dbName, err)
	}
	return d, nil
}

// Open opens dbName on the embedded server (see the package function Open),
// adds the _id lookup index to its collections and the indexes that let
// List and Events skip FerretDB's full scans (sqliteindex.go).
// client must be connected to this server. Close the DB when done.
func (e *Embedded) Open(ctx context.Context, client *mongo.Client, dbName string) (*DB, error) {
	d, err := Open(ctx, client, dbName)
	if err != nil {
		return nil, err
	}
	ferret, ok := d.dialect.(*ferretDialect)
	if !ok {
		return nil, fmt.Errorf("open %s on the embedded server: the client talks to another server", dbName)
	}
	if err := e.EnsureIDIndexes(ctx, dbName, allCollections()...); err != nil {
		return nil, err
	}
	fast, err := e.openSQLiteIndex(ctx, dbName)
	if err != nil {
		return nil, fmt.Errorf("open %s on the embedded server: %w", dbName, err)
	}
	d.dialect = &embeddedDialect{ferretDialect: ferret, fast: fast}
	return d, nil
}

// Close releases what the DB holds besides the client (the embedded
// server's SQLite connection); it does not disconnect the client.
func (d *DB) Close() error { return d.dialect.close() }

// Database is the underlying database, for health checks and tools.
func (d *DB) Database() *mongo.Database { return d.db }

// FerretDB reports whether the server is FerretDB rather than MongoDB.
func (d *DB) FerretDB() bool { return d.dialect.name() != "mongodb" }

func isFerretDB(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("buildInfo: %w", err)
	}
	_, ok := info["ferretdbVersion"]
	return ok, nil
}

func createCollections(ctx context.Context, db *mongo.Database) error {
	have, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for _, name := range allCollections() {
		if slices.Contains(have, name) {
			continue
		}
		err := db.CreateCollection(ctx, name)
		// Another process may have created it since the listing.
		var ce mongo.CommandError
		if errors.As(err, &ce) && ce.Code == 48 { // NamespaceExists
			err = nil
		}
		if err != nil {
			return fmt.Errorf("create collection %s: %w", name, err)
		}
	}
	return nil
}

// createIndexes creates the secondary indexes, on MongoDB only: FerretDB
// never uses an index except for {_id: x}, so there they would only slow
// writes down. Creating an index that exists with the same spec is a no-op.
func createIndexes(ctx context.Context, db *mongo.Database) error {
	asc, desc := 1, -1
	idx := func(name string, unique bool, keys ...bson.E) mongo.IndexModel {
		return mongo.IndexModel{Keys: bson.D(keys), Options: options.Index().SetName(name).SetUnique(unique)}
	}
	specs := map[string][]mongo.IndexModel{
		CollEvents: {
			// Events(id, after) and the archive's own guarantee of one event per
			// (execution, sequence), independent of how _id is built.
			idx("execution_sequence", true, bson.E{Key: "execution_id", Value: asc}, bson.E{Key: "sequence", Value: asc}),
		},
		CollExecutions: {
			// List: newest first, optionally by status or owner, cursor on (created_at, _id).
			idx("created_desc", false, bson.E{Key: "created_at", Value: desc}, bson.E{Key: "_id", Value: desc}),
			idx("status_created_desc", false, bson.E{Key: "status", Value: asc}, bson.E{Key: "created_at", Value: desc}, bson.E{Key: "_id", Value: desc}),
			idx("owner_created_desc", false, bson.E{Key: "owner", Value: asc}, bson.E{Key: "created_at", Value: desc}, bson.E{Key: "_id", Value: desc}),
		},
		// positions is only ever read by _id.
		CollFacts: {idx("created", false, bson.E{Key: "created_at", Value: asc})},
	}
	for coll, models := range accountIndexes() {
		specs[coll] = models
	}
	for coll, models := range specs {
		if _, err := db.Collection(coll).Indexes().CreateMany(ctx, models); err != nil {
			return fmt.Errorf("create indexes of %s: %w", coll, err)
		}
	}
	return nil
}
