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
		if err := p.SaveView(ctx, queuedExecution(id, at(time.Duration(i))), 0); err != nil {
			t.Fatal(err)
		}
		for _, ev := range chain(t, id) {
			if _, err := p.AddEvent(ctx, ev); err != nil {
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

// TestSQLiteIndexSeesFreshWrites checks that the fast path and FerretDB agree
// right after a write (the index is read through a separate connection).
func TestSQLiteIndexSeesFreshWrites(t *testing.T) {
	d := newTestDB(t, backendEmbedded)
	ctx := context.Background()
	p := NewProjections(d)
	for i, ev := range chain(t, "fresh") {
		if _, err := p.AddEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if got, err := p.Events(ctx, "fresh", 0); err != nil || len(got) != i+1 {
			t.Fatalf("events after adding %d: %d %v", i+1, len(got), err)
		}
	}
	v := queuedExecution("listed", at(0)) // a view without events: SaveView checks it against none
	if err := p.SaveView(ctx, v, 0); err != nil {
		t.Fatal(err)
	}
	if got, _, err := p.List(ctx, projections.ListQuery{Limit: 10, Status: domain.StatusQueued}); err != nil || len(got) != 1 {
		t.Fatalf("queued list after saving: %d %v", len(got), err)
	}
	done := sampleExecution("listed")
	if err := p.SaveView(ctx, done, 1); err != nil {
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
