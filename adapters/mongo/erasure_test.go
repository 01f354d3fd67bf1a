package mongo

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/projections"
)

// The eraser's two questions to the views (content.Views): which ended
// executions are past retention and still hold content, and which are
// erased already (its reconcile). Times are strings in the store, so
// "before" is a string comparison that must agree with time order, to the
// nanosecond.
func TestEndedBeforeAndErasedAfterAnswerTheEraser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		save := func(id string, finished *time.Time, erased bool) {
			v := sampleExecution(id)
			v.FinishedAt, v.Erased = finished, erased
			if erased {
				v.SealedInput, v.SealedOutput, v.ErasedAt = "", "", ptime(at(time.Hour))
			}
			if err := projections.SaveView(ctx, p, v, 0); err != nil {
				t.Fatal(err)
			}
		}
		cut := at(time.Minute)
		save("old-1", ptime(at(0)), false)
		save("old-2", ptime(cut.Add(-time.Nanosecond)), false)
		save("at-cut", ptime(cut), false) // not before the cut
		save("recent", ptime(cut.Add(time.Hour)), false)
		save("running", nil, false)          // never ended
		save("erased-b", ptime(at(0)), true) // ended long ago, but erased
		save("erased-a", ptime(cut.Add(time.Hour)), true)
		save("erased-c", nil, true) // erased while running

		ids, err := p.EndedBefore(ctx, cut, 10)
		slices.Sort(ids)
		if err != nil || fmt.Sprint(ids) != "[old-1 old-2]" {
			t.Fatalf("ended before the cut: %v, %v; want [old-1 old-2]", ids, err)
		}
		if ids, err := p.EndedBefore(ctx, cut, 1); err != nil || len(ids) != 1 {
			t.Fatalf("at most 1: %v, %v", ids, err)
		}

		var erased []string
		for after := ""; ; {
			page, err := p.ErasedAfter(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			erased = append(erased, page...)
			after = page[len(page)-1]
		}
		if fmt.Sprint(erased) != "[erased-a erased-b erased-c]" {
			t.Fatalf("erased: %v, want [erased-a erased-b erased-c] in id order", erased)
		}
	})
}
