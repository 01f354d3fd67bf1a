package mongo

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	// The SQLite driver FerretDB itself uses (same module version), so the
	// index is built by the same SQLite it will be read by.
	_ "modernc.org/sqlite"
)

// FerretDB 1.24.2's SQLite backend stores each document as JSON text in one
// column and creates the unique _id index on the expression
//
//	_ferretdb_sjson->"_id"
//
// while every lookup by _id (find, update, delete; internal/backends/sqlite/
// collection.go) filters on
//
//	_ferretdb_sjson->'$._id' = ?
//
// SQLite matches index expressions syntactically, so the planner never uses
// the built-in index and every _id lookup scans the table (24 ms at 20k
// documents, growing linearly). The fix is a second index on the exact
// lookup expression; the built-in one still enforces uniqueness.
const (
	sqliteDocColumn        = "_ferretdb_sjson"
	sqliteIDLookupExpr     = sqliteDocColumn + "->'$._id'"
	sqliteMetadataTable    = "_ferretdb_collections"
	sqliteIDIndexSuffix    = "_integr8scode_id_lookup"
	sqliteDatabaseFileExt  = ".sqlite"
	sqliteBusyTimeoutParam = "?_pragma=busy_timeout(10000)&" + sqliteSecureDelete
	// sqliteScrubParam is the scrub's connection (embeddedDialect.scrub):
	// a checkpoint that waits holds every writer of the file back, so it
	// waits a moment only, and is tried again after the writers had a turn.
	sqliteScrubParam = "?_pragma=busy_timeout(100)&" + sqliteSecureDelete
	// sqliteSecureDelete makes a connection overwrite what it deletes with
	// zeros, so that a destroyed content key leaves no copy in the file's
	// free space (embeddedDialect.scrub deals with the write-ahead log).
	sqliteSecureDelete = "_pragma=secure_delete(1)"
)

// EnsureIDIndexes creates, if missing, the index that makes _id lookups of
// the named collections of database db use an index (all collections of db
// when none are named). Run it after the collections exist, and again for a
// collection created later; it is idempotent and cheap when nothing is
// missing. Creating the index on a large table takes one pass over it.
//
// It opens the database file directly, next to FerretDB's own connections:
// SQLite (WAL mode, busy timeout) coordinates the schema change, and
// FerretDB's connections pick the new index up on their next statement.
func (e *Embedded) EnsureIDIndexes(ctx context.Context, db string, collections ...string) error {
	conn, err := e.openSQLite(db)
	if err != nil {
		return fmt.Errorf("ensure _id indexes: %w", err)
	}
	defer conn.Close()

	tables, err := collectionTables(ctx, conn)
	if err != nil {
		return fmt.Errorf("ensure _id indexes of %s: %w", db, err)
	}
	if len(collections) == 0 {
		for name := range tables {
			collections = append(collections, name)
		}
	}
	for _, name := range collections {
		table, ok := tables[name]
		if !ok {
			return fmt.Errorf("ensure _id indexes: collection %s.%s does not exist", db, name)
		}
		q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s)", table+sqliteIDIndexSuffix, table, sqliteIDLookupExpr)
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("ensure _id index of %s.%s: %w", db, name, err)
		}
	}
	return nil
}

// openSQLite opens the SQLite file of database db, next to FerretDB's own
// connections.
func (e *Embedded) openSQLite(db string) (*sql.DB, error) {
	return e.openSQLiteWith(db, sqliteBusyTimeoutParam)
}

// openSQLiteWith is openSQLite with the connections' parameters.
func (e *Embedded) openSQLiteWith(db, params string) (*sql.DB, error) {
	if db == "" || filepath.Base(db) != db {
		return nil, fmt.Errorf("bad database name %q", db)
	}
	file := filepath.Join(e.dir, db+sqliteDatabaseFileExt)
	if _, err := os.Stat(file); err != nil {
		// Opening a missing file would create an empty database FerretDB
		// does not know about.
		return nil, fmt.Errorf("database %s has no file yet (create its collections first): %w", db, err)
	}
	return sql.Open("sqlite", "file:"+filepath.ToSlash(file)+params)
}

// collectionTables maps collection names to their SQLite tables, from
// FerretDB's metadata table (table names are derived from a hash and must
// not be guessed).
func collectionTables(ctx context.Context, conn *sql.DB) (map[string]string, error) {
	rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT name, table_name FROM %q", sqliteMetadataTable))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	tables := map[string]string{}
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			return nil, err
		}
		tables[name] = table
	}
	return tables, rows.Err()
}
