package mongo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// One embedded server and one client serve the whole package: starting
// FerretDB is cheap, but not free, and every test uses its own database.
var (
	testServer *Embedded
	testClient *mongo.Client
	testSQL    = &sqlRecorder{}
	testDBSeq  atomic.Int64
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// TestMain has no *testing.T, hence MkdirTemp rather than t.TempDir.
	dir, err := os.MkdirTemp("", "integr8scode-mongo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testServer, err = StartEmbedded(ctx, EmbeddedConfig{Dir: dir, Logger: slog.New(testSQL)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testServer.Close()
	testClient, err = Connect(ctx, testServer.URI())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer testClient.Disconnect(context.Background())
	return m.Run()
}

// backend is the code path a test runs: "embedded" is what
// (*Embedded).Open chooses; "ferretdb" what Open chooses for a FerretDB it
// does not run (no SQLite index); "mongodb" forces the path Open chooses
// for a real MongoDB (conditions in the server-side filter, range queries),
// which is functionally checkable against FerretDB even though it is slow
// there and not atomic under concurrency.
type backend string

const (
	backendEmbedded backend = "embedded"
	backendFerret   backend = "ferretdb"
	backendMongoDB  backend = "mongodb"
)

var backends = []backend{backendEmbedded, backendFerret, backendMongoDB}

// forEachBackend runs f as a subtest on a fresh database of every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, d *DB)) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { f(t, newTestDB(t, b)) })
	}
}

// newTestDB opens a fresh database on the shared server.
func newTestDB(t testing.TB, b backend) *DB {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("t%03d", testDBSeq.Add(1))
	d, err := testServer.Open(ctx, testClient, name)
	if err != nil {
		t.Fatal(err)
	}
	if !d.FerretDB() {
		t.Fatal("Open did not detect FerretDB")
	}
	asBackend(d, b)
	t.Cleanup(func() {
		_ = d.Close()
		_ = d.Database().Drop(context.Background())
	})
	return d
}

// asBackend makes d, opened on the embedded server, take the code paths of
// backend b: FerretDB without the SQLite index, or MongoDB's.
func asBackend(d *DB, b backend) {
	switch b {
	case backendFerret:
		_ = d.Close()
		d.dialect = newFerretDialect()
	case backendMongoDB:
		_ = d.Close()
		d.dialect = mongoDialect{}
	}
}

// fastIndex is the SQLite index of a DB opened on the embedded server.
func fastIndex(d *DB) *sqliteIndex { return d.dialect.(*embeddedDialect).fast }

// sqlRecorder is the embedded server's log handler. While recording it
// enables debug logs and keeps the SELECT statements FerretDB sends to
// SQLite (FerretDB logs every statement at debug level, with its arguments
// as the "args" attribute); otherwise it prints warnings and errors only.
type sqlRecorder struct {
	on      atomic.Bool
	mu      sync.Mutex
	queries []sqlQuery
}

type sqlQuery struct {
	SQL  string
	Args []any
}

func (r *sqlRecorder) start() {
	r.mu.Lock()
	r.queries = nil
	r.mu.Unlock()
	r.on.Store(true)
}

func (r *sqlRecorder) stop() []sqlQuery {
	r.on.Store(false)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queries
}

func (r *sqlRecorder) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || r.on.Load()
}

func (r *sqlRecorder) Handle(ctx context.Context, rec slog.Record) error {
	return (&sqlRecorderWith{r: r}).Handle(ctx, rec)
}

func (r *sqlRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &sqlRecorderWith{r: r, attrs: as}
}

func (r *sqlRecorder) WithGroup(string) slog.Handler { return &sqlRecorderWith{r: r} }

type sqlRecorderWith struct {
	r     *sqlRecorder
	attrs []slog.Attr
}

func (h *sqlRecorderWith) Enabled(ctx context.Context, l slog.Level) bool { return h.r.Enabled(ctx, l) }

func (h *sqlRecorderWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &sqlRecorderWith{r: h.r, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *sqlRecorderWith) WithGroup(string) slog.Handler { return h }

func (h *sqlRecorderWith) Handle(_ context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		fmt.Fprintf(os.Stderr, "ferretdb %s: %s\n", rec.Level, rec.Message)
		return nil
	}
	q, ok := strings.CutPrefix(rec.Message, ">>> ")
	if !ok || !strings.HasPrefix(q, "SELECT") {
		return nil
	}
	var args []any
	collect := func(a slog.Attr) bool {
		if a.Key == "args" {
			args, _ = a.Value.Any().([]any)
		}
		return true
	}
	for _, a := range h.attrs {
		collect(a)
	}
	rec.Attrs(collect)
	h.r.mu.Lock()
	h.r.queries = append(h.r.queries, sqlQuery{SQL: q, Args: args})
	h.r.mu.Unlock()
	return nil
}
