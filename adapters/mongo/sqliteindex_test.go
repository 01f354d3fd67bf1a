package mongo

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// explain returns SQLite's plan of q on conn.
func explain(t *testing.T, conn *sql.DB, q string, args []any) string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// TestSQLiteIndexPlans checks that every query of the fast path is an index
// walk: no table scan and no sort of the whole result.
func TestSQLiteIndexPlans(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	// Some rows, so that the planner has something to choose about.
	p := NewProjections(d)
	ctx := context.Background()
	for i := range 50 {
		id := fmt.Sprintf("x%02d", i)
		if err := projections.SaveView(ctx, p, queuedExecution(id, at(time.Duration(i))), 0); err != nil {
			t.Fatal(err)
		}
		for _, ev := range chain(t, id) {
			if _, err := projections.AddEvent(ctx, p, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := fastIndex(d).conn.ExecContext(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	cur := &projections.Cursor{CreatedAt: at(0), ID: "x10"}
	cases := map[string]string{}
	q, args := fastIndex(d).eventsQuery("x10", 1)
	cases["events"] = explain(t, fastIndex(d).conn, q, args)
	q, args = fastIndex(d).versionsQuery([]string{"x10", "x11"})
	cases["view versions"] = explain(t, fastIndex(d).conn, q, args)
	q, args = fastIndex(d).keysQuery(fastIndex(d).events, []string{eventKey("x10", 2), eventKey("x11", 4)})
	cases["event keys"] = explain(t, fastIndex(d).conn, q, args)
	for name, lq := range map[string]projections.ListQuery{
		"list":               {Limit: 20},
		"list cursor":        {Limit: 20, After: cur},
		"list status":        {Limit: 20, Status: domain.StatusFailed},
		"list status cursor": {Limit: 20, Status: domain.StatusFailed, After: cur},
		"list owner cursor":  {Limit: 20, Owner: "bob", After: cur},
	} {
		q, args := fastIndex(d).listQuery(lq)
		cases[name] = explain(t, fastIndex(d).conn, q, args)
	}
	for name, plan := range cases {
		t.Logf("%s: %s", name, plan)
		for _, step := range strings.Split(plan, "; ") {
			if !strings.Contains(step, " USING INDEX "+fastIndex(d).index(fastIndex(d).executions, "")) &&
				!strings.Contains(step, " USING INDEX "+fastIndex(d).index(fastIndex(d).events, "")) {
				t.Errorf("%s: step %q is not a walk of this package's index (plan %s)", name, step, plan)
			}
		}
	}
}

// The read-back of a batch of views names each document by the JSON form
// of its _id; an id whose JSON form is not certain takes FerretDB's reads,
// and both answer alike.
func TestSQLiteReadBackAnswersLikeFerretDB(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	ctx := context.Background()
	p := NewProjections(d)
	ids := []string{"plain-1", "with \"quote\" & <tag> \u2028"}
	var vs []domain.Execution
	for _, id := range ids {
		v := queuedExecution(id, at(0))
		if err := projections.SaveView(ctx, p, v, 0); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		vs = append(vs, v)
	}
	ahead := queuedExecution("ahead", at(0))
	ahead.Sequence = 5 // above what is stored (1): stale
	if err := projections.SaveView(ctx, p, queuedExecution("ahead", at(0)), 0); err != nil {
		t.Fatal(err)
	}
	missing := queuedExecution("never-saved", at(0))
	for _, batch := range [][]domain.Execution{{vs[0], ahead, missing}, {vs[0], vs[1], ahead, missing}} {
		fast, err := d.dialect.confirmViews(ctx, p, batch)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := newFerretDialect().confirmViews(ctx, p, batch)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fast) != fmt.Sprint(slow) || fmt.Sprint(fast[len(fast)-2:]) != "[true true]" || fast[0] {
			t.Fatalf("read back of %d views: embedded %v, ferretdb %v", len(batch), fast, slow)
		}
	}
	if !plainKey("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/000000000002") || plainKey(ids[1]) || plainKey("") {
		t.Fatal("plainKey")
	}
}

// TestSQLiteIndexSeesFreshWrites checks that the fast path and FerretDB agree
// right after a write (the index is read through a separate connection).
func TestSQLiteIndexSeesFreshWrites(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	ctx := context.Background()
	p := NewProjections(d)
	for i, ev := range chain(t, "fresh") {
		if _, err := projections.AddEvent(ctx, p, ev); err != nil {
			t.Fatal(err)
		}
		if got, err := p.Events(ctx, "fresh", 0); err != nil || len(got) != i+1 {
			t.Fatalf("events after adding %d: %d %v", i+1, len(got), err)
		}
	}
	v := queuedExecution("listed", at(0)) // a view without events: SaveView checks it against none
	if err := projections.SaveView(ctx, p, v, 0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := p.List(ctx, projections.ListQuery{Limit: 10, Status: domain.StatusQueued}); err != nil || len(got) != 1 {
		t.Fatalf("queued list after saving: %d %v", len(got), err)
	}
	done := sampleExecution("listed")
	if err := projections.SaveView(ctx, p, done, 1); err != nil {
		t.Fatal(err)
	}
	if got, _, err := p.List(ctx, projections.ListQuery{Limit: 10, Status: domain.StatusQueued}); err != nil || len(got) != 0 {
		t.Fatalf("queued list after completing: %d %v", len(got), err)
	}
}

// BenchmarkList measures a list page at 20k views on the embedded server
// (SQLite index) and on a plain FerretDB path.
func BenchmarkList(b *testing.B) {
	const n = 20000
	ctx := context.Background()
	for _, be := range []backend{backendEmbedded, backendFerret} {
		d := newTestDB(b, be)
		p := NewProjections(d)
		views := make([]any, 0, 1000)
		for i := range n {
			v := sampleExecution(fmt.Sprintf("e-%06d", i))
			v.CreatedAt = at(time.Duration(i) * time.Millisecond)
			views = append(views, v)
			if len(views) == cap(views) {
				if _, err := p.executions.InsertMany(ctx, views); err != nil {
					b.Fatal(err)
				}
				views = views[:0]
			}
		}
		b.Run(fmt.Sprintf("%s/list_page/%dk_views", be, n/1000), func(b *testing.B) {
			for b.Loop() {
				got, more, err := p.List(ctx, projections.ListQuery{Limit: 20, After: &projections.Cursor{CreatedAt: at(10 * time.Second), ID: "z"}})
				if err != nil || len(got) != 20 || !more {
					b.Fatal(len(got), more, err)
				}
			}
		})
	}
}
