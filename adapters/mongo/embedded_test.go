package mongo

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/projections"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// fillDocs inserts n documents with string ids "doc-000000"… through the
// driver, the way the application writes.
func fillDocs(t testing.TB, coll *mongo.Collection, n int) {
	t.Helper()
	const batch = 1000
	pad := strings.Repeat("x", 300) // views and events are hundreds of bytes at least
	for start := 0; start < n; start += batch {
		docs := make([]any, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%06d", i)}, {Key: "n", Value: i}, {Key: "pad", Value: pad}})
		}
		if _, err := coll.InsertMany(context.Background(), docs); err != nil {
			t.Fatal(err)
		}
	}
}

// planOfFindOne runs findOne({_id: id}) through the driver, captures the SQL
// FerretDB sends to SQLite for it, and returns that SQL with SQLite's
// EXPLAIN QUERY PLAN of it, run on the same database file.
func planOfFindOne(t *testing.T, db string, coll *mongo.Collection, id string) (string, string) {
	t.Helper()
	ctx := context.Background()
	testSQL.start()
	var got bson.M
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got)
	queries := testSQL.stop()
	if err != nil {
		t.Fatal(err)
	}
	if got["_id"] != id {
		t.Fatalf("findOne returned %v", got["_id"])
	}
	var q *sqlQuery
	for i := range queries {
		if strings.Contains(queries[i].SQL, " WHERE ") {
			q = &queries[i]
		}
	}
	if q == nil {
		t.Fatalf("no SELECT … WHERE captured; got %v", queries)
	}
	conn, err := sql.Open("sqlite", "file:"+filepath.Join(testServer.Dir(), db+".sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return q.SQL, explain(t, conn, q.SQL, q.Args)
}

// TestIDLookupUsesIndexOnlyAfterFix proves the FerretDB defect and its fix on
// the SQL FerretDB really issues: before EnsureIDIndexes the lookup by _id is
// a table scan, after it a search of the new index.
func TestIDLookupUsesIndexOnlyAfterFix(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("t%03d", testDBSeq.Add(1))
	db := testClient.Database(name)
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	coll := db.Collection("docs")
	fillDocs(t, coll, 5000)

	q, plan := planOfFindOne(t, name, coll, "doc-004242")
	t.Logf("FerretDB SQL: %s", q)
	t.Logf("plan without fix: %s", plan)
	if !strings.Contains(q, sqliteIDLookupExpr+" = ?") {
		t.Errorf("FerretDB's lookup no longer filters on %s; the fix must follow it", sqliteIDLookupExpr)
	}
	if !strings.HasPrefix(plan, "SCAN ") || strings.Contains(plan, "USING INDEX") {
		t.Errorf("without the fix the lookup should scan; plan: %s", plan)
	}

	for range 2 { // idempotent
		if err := testServer.EnsureIDIndexes(ctx, name, "docs"); err != nil {
			t.Fatal(err)
		}
	}
	_, plan = planOfFindOne(t, name, coll, "doc-004242")
	t.Logf("plan with fix: %s", plan)
	if !strings.Contains(plan, "USING INDEX") || !strings.Contains(plan, sqliteIDIndexSuffix) {
		t.Errorf("with the fix the lookup should use the new index; plan: %s", plan)
	}
}

// TestOpenIndexesEveryCollection checks that (*Embedded).Open leaves every
// collection of the package with an indexed _id lookup.
func TestOpenIndexesEveryCollection(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	for _, c := range Collections() {
		coll := d.Database().Collection(c)
		if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: "probe"}}); err != nil {
			t.Fatal(err)
		}
		_, plan := planOfFindOne(t, d.Database().Name(), coll, "probe")
		if !strings.Contains(plan, "USING INDEX") {
			t.Errorf("%s: plan %s", c, plan)
		}
	}
}

func TestEnsureIDIndexesErrors(t *testing.T) {
	ctx := context.Background()
	if err := testServer.EnsureIDIndexes(ctx, "no_such_db"); err == nil {
		t.Error("missing database: want an error")
	}
	if err := testServer.EnsureIDIndexes(ctx, "../etc"); err == nil {
		t.Error("path in database name: want an error")
	}
	d := newTestDB(t, backendEmbedded)
	if err := testServer.EnsureIDIndexes(ctx, d.Database().Name(), "nope"); err == nil {
		t.Error("missing collection: want an error")
	}
	if err := testServer.EnsureIDIndexes(ctx, d.Database().Name()); err != nil {
		t.Errorf("all collections: %v", err)
	}
}

// TestEmbeddedRestartKeepsData runs a second server on its own directory,
// writes, restarts it on the same directory and reads the data back.
func TestEmbeddedRestartKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for round := range 2 {
		e, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.URI(), "mongodb://127.0.0.1:") {
			t.Errorf("URI %s is not loopback", e.URI())
		}
		c, err := Connect(ctx, e.URI())
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Open(ctx, c, "app")
		if err != nil {
			t.Fatal(err)
		}
		p := NewProjections(d)
		if round == 0 {
			if err := projections.SaveView(ctx, p, sampleExecution("persisted"), 0); err != nil {
				t.Fatal(err)
			}
		} else if v, err := p.View(ctx, "persisted"); err != nil || v.ID != "persisted" {
			t.Errorf("after restart: %v %v", v.ID, err)
		}
		if err := d.Close(); err != nil {
			t.Error(err)
		}
		_ = c.Disconnect(ctx)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		_ = e.Close() // a second Close is harmless
	}
}

func TestConnectFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := Connect(ctx, "mongodb://127.0.0.1:1/"); err == nil {
		t.Error("want an error for a closed port")
	}
}

// BenchmarkFindOneByID measures findOne by _id at 20k documents on FerretDB
// without and with the index fix.
func BenchmarkFindOneByID(b *testing.B) {
	const n = 20000
	ctx := context.Background()
	for _, fixed := range []bool{false, true} {
		name := fmt.Sprintf("bench_fix_%v_%d", fixed, testDBSeq.Add(1))
		db := testClient.Database(name)
		coll := db.Collection("docs")
		fillDocs(b, coll, n)
		if fixed {
			if err := testServer.EnsureIDIndexes(ctx, name, "docs"); err != nil {
				b.Fatal(err)
			}
		}
		label := "without_fix"
		if fixed {
			label = "with_fix"
		}
		b.Run(fmt.Sprintf("%s/%dk_docs", label, n/1000), func(b *testing.B) {
			i := 0
			for b.Loop() {
				id := fmt.Sprintf("doc-%06d", (i*7919)%n)
				i++
				var got bson.Raw
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
					b.Fatal(err)
				}
			}
		})
		_ = db.Drop(ctx)
	}
}
