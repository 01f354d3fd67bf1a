package mongo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// sqliteIndex answers the recurring queries that FerretDB would answer by
// decoding every document of a collection in Go — which views make up a
// list page, which events an execution has — straight from the embedded
// server's SQLite file, through expression indexes. Measured at 20k
// documents: a list page 2.8 s through FerretDB, 10 ms here (BenchmarkList).
//
// It returns ids only. The documents are then read through FerretDB by _id
// (indexed since EnsureIDIndexes), so decoding stays FerretDB's, and the
// callers re-check each document against the query because it may have
// changed between the two reads.
//
// It relies on the storage layout of FerretDB 1.24's SQLite backend: one
// row per document, the document as JSON in _ferretdb_sjson with every
// field's value at its plain JSON path (the type schema lives apart under
// "$s"). Times are stored as fixed-width strings (timecodec.go), so their
// text order is time order here too. The tests check the plans.
type sqliteIndex struct {
	conn       *sql.DB
	scrubber   *sql.DB // one connection, with a short busy timeout (scrub)
	executions string  // table of the executions collection
	events     string  // table of the events collection
}

// Expressions over the stored JSON. ->> yields SQL values (text, integer;
// JSON true/false become 1/0).
const (
	sqlID        = sqliteDocColumn + "->>'$._id'"
	sqlCreatedAt = sqliteDocColumn + "->>'$.created_at'"
	// sqlListKey is the list order as one text value: created_at is fixed
	// width, so comparing "created_at _id" compares created_at first and the
	// id on a tie. One column makes the cursor a single index range and the
	// order an index walk, which SQLite did not always find for the pair.
	// (->> binds like || and associates left, hence the parentheses.)
	sqlListKey   = "((" + sqlCreatedAt + ") || ' ' || (" + sqlID + "))"
	sqlStatus    = sqliteDocColumn + "->>'$.status'"
	sqlExecution = sqliteDocColumn + "->>'$.execution_id'"
	sqlSequence  = sqliteDocColumn + "->>'$.sequence'"
	sqlOwner     = sqliteDocColumn + "->>'$.owner'"
)

// openSQLiteIndex creates the expression indexes (idempotent) and keeps a
// connection for the queries.
func (e *Embedded) openSQLiteIndex(ctx context.Context, db string) (*sqliteIndex, error) {
	conn, err := e.openSQLite(db)
	if err != nil {
		return nil, err
	}
	conn.SetMaxOpenConns(4)
	tables, err := collectionTables(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	x := &sqliteIndex{conn: conn, executions: tables[CollExecutions], events: tables[CollEvents]}
	if x.executions == "" || x.events == "" {
		conn.Close()
		return nil, fmt.Errorf("database %s lacks one of the collections %v", db, Collections())
	}
	if x.scrubber, err = e.openSQLiteWith(db, sqliteScrubParam); err != nil {
		conn.Close()
		return nil, err
	}
	x.scrubber.SetMaxOpenConns(1)
	stmts := []string{
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s)",
			x.index(x.executions, "created"), x.executions, sqlListKey),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s, %s)",
			x.index(x.executions, "status_created"), x.executions, sqlStatus, sqlListKey),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s, %s)",
			x.index(x.executions, "owner_created"), x.executions, sqlOwner, sqlListKey),
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %q ON %q (%s, %s)",
			x.index(x.events, "execution_sequence"), x.events, sqlExecution, sqlSequence),
	}
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			x.close()
			return nil, fmt.Errorf("create query index: %w", err)
		}
	}
	return x, nil
}

func (x *sqliteIndex) close() error { return errors.Join(x.conn.Close(), x.scrubber.Close()) }

// index names one of this package's indexes on table.
func (x *sqliteIndex) index(table, name string) string { return table + "_integr8scode_" + name }

// listQuery is the SQL of listIDs, apart for the plan test. It asks for
// q.Limit+1 ids, like the MongoDB query, to tell whether more follow.
func (x *sqliteIndex) listQuery(q projections.ListQuery) (string, []any) {
	// INDEXED BY: the plan must not depend on SQLite's statistics (a sort of
	// every older row is what it picked for some cursors without it), and if
	// the index could not serve the query SQLite fails it instead of quietly
	// scanning.
	index := x.index(x.executions, "created")
	switch {
	case q.Status != "":
		index = x.index(x.executions, "status_created")
	case q.Owner != "":
		index = x.index(x.executions, "owner_created")
	}
	var where []string
	var args []any
	if q.Status != "" {
		where = append(where, sqlStatus+" = ?")
		args = append(args, string(q.Status))
	}
	if q.Owner != "" {
		where = append(where, sqlOwner+" = ?")
		args = append(args, q.Owner)
	}
	if c := q.After; c != nil {
		// Strictly older in (created_at, _id) order.
		where = append(where, sqlListKey+" < ?")
		args = append(args, formatTime(c.CreatedAt)+" "+c.ID)
	}
	s := fmt.Sprintf("SELECT %s FROM %q INDEXED BY %q", sqlID, x.executions, index)
	if len(where) > 0 {
		s += " WHERE " + strings.Join(where, " AND ")
	}
	s += fmt.Sprintf(" ORDER BY %s DESC LIMIT ?", sqlListKey)
	return s, append(args, q.Limit+1)
}

// listIDs returns the ids of a list page, newest first, plus one.
func (x *sqliteIndex) listIDs(ctx context.Context, q projections.ListQuery) ([]string, error) {
	s, args := x.listQuery(q)
	return x.ids(ctx, s, args)
}

// eventsQuery is the SQL of eventIDs, apart for the plan test.
func (x *sqliteIndex) eventsQuery(id string, after int64) (string, []any) {
	return fmt.Sprintf("SELECT %s FROM %q INDEXED BY %q WHERE %s = ? AND %s > ? ORDER BY %s",
		sqlID, x.events, x.index(x.events, "execution_sequence"), sqlExecution, sqlSequence, sqlSequence), []any{id, after}
}

// eventIDs returns the _ids of id's archived events after sequence after, in
// sequence order.
func (x *sqliteIndex) eventIDs(ctx context.Context, id string, after int64) ([]string, error) {
	q, args := x.eventsQuery(id, after)
	return x.ids(ctx, q, args)
}

func (x *sqliteIndex) ids(ctx context.Context, q string, args []any) ([]string, error) {
	rows, err := x.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// embeddedDialect is the embedded FerretDB: FerretDB's rules, with List
// and Events answered from the SQLite index.
type embeddedDialect struct {
	*ferretDialect
	fast *sqliteIndex
}

func (*embeddedDialect) name() string { return "embedded" }

// scrub checkpoints the write-ahead log into the database file and
// truncates it. Every connection to the file overwrites what it deletes
// with zeros (secure_delete, set on FerretDB's connections and ours: see
// StartEmbedded), but the WAL still holds the frames written before, old
// versions of pages included, until a checkpoint moves the newest version
// of each page into the file and TRUNCATE empties the log. A reader in
// the middle of a transaction can hold the checkpoint back, and SQLite
// holds every writer of the file back while the checkpoint waits for it:
// so each try waits for 100 ms at most (the scrubber's busy timeout, not
// the 10 s of the other connections, which stalled the whole store for
// as long behind one slow reader), and the next comes 100 ms later, the
// writers having had their turn. It gives up after ~10 s of tries.
func (e *embeddedDialect) scrub(ctx context.Context) error {
	for i := 0; ; i++ {
		var busy, logFrames, moved int
		// Each try is bounded by the busy timeout; the caller's context is
		// checked between tries and never interrupts SQLite: an interrupt
		// that lands as a statement ends left this one connection failing
		// every later try with "interrupted (9)".
		err := e.fast.scrubber.QueryRowContext(context.WithoutCancel(ctx), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &moved)
		if err == nil && busy == 0 {
			return nil
		}
		if i == 50 || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("the store's write-ahead log is busy (%d of %d frames moved)", moved, logFrames)
			}
			return fmt.Errorf("scrub the embedded store: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
func (e *embeddedDialect) close() error { return e.fast.close() }

// events: the _ids from the SQLite index, the events by _id. Archived
// events never change, so there is nothing to re-check.
func (e *embeddedDialect) events(ctx context.Context, p *Projections, id string, after int64) ([]projections.ArchivedEvent, error) {
	keys, err := e.fast.eventIDs(ctx, id, after)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", id, err)
	}
	out := make([]projections.ArchivedEvent, 0, len(keys))
	for _, key := range keys {
		d, ok, err := findByID[eventDoc](ctx, p.events, key)
		if err != nil {
			return nil, fmt.Errorf("events of %s: %w", id, err)
		}
		if !ok {
			continue
		}
		ev, err := d.archived()
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// confirmViews reads what the views' writes left straight from the SQLite
// file: two queries for the whole batch on the _id lookup index
// (idindex.go), where FerretDB takes two reads per view. An id the query
// could not name exactly (see plainKey) takes FerretDB's reads.
func (e *embeddedDialect) confirmViews(ctx context.Context, p *Projections, vs []domain.Execution) ([]bool, error) {
	ids := make([]string, len(vs))
	for i, v := range vs {
		if !plainKey(v.ID) {
			return e.ferretDialect.confirmViews(ctx, p, vs)
		}
		ids[i] = v.ID
	}
	seqs, err := e.fast.versions(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("save views: read back: %w", err)
	}
	stale := make([]bool, len(vs))
	next := map[string]int{} // the key of the event after each stored view
	for i, v := range vs {
		seq, ok := seqs[v.ID]
		if !ok || seq < v.Sequence {
			stale[i] = true
			continue
		}
		next[eventKey(v.ID, seq+1)] = i
	}
	keys := make([]string, 0, len(next))
	for k := range next {
		keys = append(keys, k)
	}
	q, args := e.fast.keysQuery(e.fast.events, keys)
	if err := e.fast.scan(ctx, q, args, func(rows *sql.Rows) error {
		var key string
		err := rows.Scan(&key)
		stale[next[key]] = true // archived after the view: behind
		return err
	}); err != nil {
		return nil, fmt.Errorf("save views: read back: %w", err)
	}
	return stale, nil
}

// updateViews checks every view's condition with one query on the SQLite
// file and writes those that hold in one unordered bulk of replaces by
// _id, under the process locks of all of them (as ferretDialect.writeIf
// does one at a time: FerretDB's update is not conditional either way,
// and SaveViews reads back what it left). Ids the query could not name
// exactly take writeIf.
func (e *embeddedDialect) updateViews(ctx context.Context, p *Projections, ws []projections.ViewWrite) ([]bool, error) {
	ids, keys := make([]string, len(ws)), make([]string, len(ws))
	for i, w := range ws {
		if !plainKey(w.View.ID) {
			return updateEach(ctx, p, ws)
		}
		ids[i], keys[i] = w.View.ID, p.executions.Name()+"\x00"+w.View.ID
	}
	unlock := e.locks.lockAll(keys)
	defer unlock()
	seqs, err := e.fast.versions(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("save views: %w", err)
	}
	stale := make([]bool, len(ws))
	var models []mongo.WriteModel
	for i, w := range ws {
		if seq, ok := seqs[w.View.ID]; !ok || seq != w.Expected {
			stale[i] = true
			continue
		}
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: w.View.ID}}).
			SetReplacement(toViewDoc(w.View)))
	}
	if len(models) > 0 {
		// A view that vanished meanwhile (a rebuild dropping the
		// collection) matches nothing; the read-back reports it stale.
		if _, err := p.executions.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
			return nil, fmt.Errorf("save %d views: %w", len(models), err)
		}
	}
	return stale, nil
}

// plainKey reports whether id is made of characters that JSON encoders
// all write the same way (letters, digits, - _ . : /), so that its JSON
// form, which the _id lookup index holds, can be written here. Execution
// ids are UUIDs.
func plainKey(id string) bool {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/", r)) {
			return false
		}
	}
	return id != ""
}

// inKeys is "IN (?, …)" over the JSON form of plain keys, as the _id
// lookup index holds them.
func inKeys(keys []string) (string, []any) {
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = `"` + k + `"`
	}
	return "IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + ")", args
}

// versionsQuery is the SQL of the views' stored versions, by _id.
func (x *sqliteIndex) versionsQuery(ids []string) (string, []any) {
	in, args := inKeys(ids)
	return fmt.Sprintf("SELECT %s, %s->>'$.version_seq' FROM %q INDEXED BY %q WHERE %s %s",
		sqlID, sqliteDocColumn, x.executions, x.executions+sqliteIDIndexSuffix, sqliteIDLookupExpr, in), args
}

// versions returns the stored version_seq of each view of ids there is.
func (x *sqliteIndex) versions(ctx context.Context, ids []string) (map[string]int64, error) {
	q, args := x.versionsQuery(ids)
	seqs := map[string]int64{}
	err := x.scan(ctx, q, args, func(rows *sql.Rows) error {
		var id string
		var seq int64
		err := rows.Scan(&id, &seq)
		seqs[id] = seq
		return err
	})
	return seqs, err
}

// keysQuery is the SQL of which of keys table holds, by _id.
func (x *sqliteIndex) keysQuery(table string, keys []string) (string, []any) {
	in, args := inKeys(keys)
	return fmt.Sprintf("SELECT %s FROM %q INDEXED BY %q WHERE %s %s",
		sqlID, table, table+sqliteIDIndexSuffix, sqliteIDLookupExpr, in), args
}

// scan runs q and hands each row to row; nothing to do without arguments
// (an empty IN list).
func (x *sqliteIndex) scan(ctx context.Context, q string, args []any, row func(*sql.Rows) error) error {
	if len(args) == 0 {
		return nil
	}
	rows, err := x.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// list: the page's ids from the SQLite index, the views by _id. A view
// whose status changed since the index was read no longer matches and is
// left out; whether more follow is decided by the ids, so leaving one out
// never ends the pagination early.
func (e *embeddedDialect) list(ctx context.Context, p *Projections, q projections.ListQuery) ([]domain.Execution, bool, error) {
	ids, err := e.fast.listIDs(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("list executions: %w", err)
	}
	more := len(ids) > q.Limit
	out := make([]domain.Execution, 0, len(ids))
	for _, id := range ids {
		d, ok, err := findByID[viewDoc](ctx, p.executions, id)
		if err != nil {
			return nil, false, fmt.Errorf("list executions: %w", err)
		}
		if ok && (q.Status == "" || d.Status == q.Status) && (q.Owner == "" || d.Owner == q.Owner) {
			out = append(out, d.execution())
		}
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, more, nil
}
