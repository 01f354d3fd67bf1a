package projections_test

import (
	"context"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"github.com/integr8scode/integr8scode/projections"
)

// TestFactsFollowTheEventsAndReplayingChangesNothing: the stats projection
// on the real store, through the projector: a fact per execution that
// follows its status, the same after every event is delivered again, and
// the same when the log is folded into a fresh store.
func TestFactsFollowTheEventsAndReplayingChangesNothing(t *testing.T) {
	ctx := context.Background()
	fold := func(store projections.Store, rounds int, rs ...[]record) {
		p := projections.NewProjector(store, keys, &parked{}, nil, testenv.Quiet(), nil)
		for range rounds {
			off := int64(0)
			for _, h := range rs {
				for _, r := range h {
					if err := p.Handle(ctx, r.delivery(off)); err != nil {
						t.Fatal(err)
					}
					off++
				}
			}
		}
	}
	done := completedHistory(t, "0193a1c2-0000-7000-8000-0000000000a1")
	failed := history(t, "0193a1c2-0000-7000-8000-0000000000a2",
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("1/0"), Limits: domain.DefaultLimits, Owner: "u1"},
		domain.ExecutionStarted{Runner: "r", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionFailed{Reason: domain.VerdictRuntimeErr, Result: &domain.Result{Verdict: domain.VerdictRuntimeErr, ExitCode: domain.IntPtr(1),
			Usage: domain.ResourceUsage{WallTimeMs: 70, CPUTimeMs: 30, PeakMemoryBytes: 9 << 20}}})
	queued := history(t, "0193a1c2-0000-7000-8000-0000000000a3",
		domain.ExecutionQueued{Language: "python", Version: "3.12", Input: domain.Sealed("1"), Limits: domain.DefaultLimits, Owner: "u1"})

	live := openStore(t)
	fold(live, 2, done, failed, queued) // every event twice
	all := projections.FactQuery{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	facts, err := live.Facts(ctx, all)
	if err != nil || len(facts) != 3 {
		t.Fatalf("facts: %+v %v", facts, err)
	}
	byID := map[string]projections.Fact{}
	for _, f := range facts {
		byID[f.ExecutionID] = f
	}
	f := byID["0193a1c2-0000-7000-8000-0000000000a2"]
	if f.Status != domain.StatusFailed || f.Reason != domain.VerdictRuntimeErr || *f.WallTimeMs != 70 || *f.PeakMemoryBytes != 9<<20 ||
		*f.QueueWaitMs != 1 || f.Owner != "u1" || f.Sequence != 3 {
		t.Fatalf("fact of the failed run: %+v", f)
	}
	if q := byID["0193a1c2-0000-7000-8000-0000000000a3"]; q.Status != domain.StatusQueued || q.WallTimeMs != nil || q.QueueWaitMs != nil {
		t.Fatalf("fact of the queued run: %+v", q)
	}
	mine, _ := live.Facts(ctx, projections.FactQuery{From: all.From, To: all.To, Owner: "u1"})
	if len(mine) != 2 {
		t.Fatalf("facts of u1: %d", len(mine))
	}

	rebuilt := projections.NewMemoryStore()
	fold(rebuilt, 1, done, failed, queued)
	want, _ := rebuilt.Facts(ctx, all)
	got, _ := projections.Summarize(facts, all.From, all.To, "day", true)
	again, _ := projections.Summarize(want, all.From, all.To, "day", true)
	if got.Executions != again.Executions || got.WallTimeMs != again.WallTimeMs || got.ByStatus["failed"] != again.ByStatus["failed"] {
		t.Fatalf("the live facts and a rebuild differ:\n%+v\n%+v", got, again)
	}
}

func TestSummaryCountsPercentilesAndBuckets(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 30, 0, 0, time.UTC) }
	ms := func(v int64) *int64 { return &v }
	var facts []projections.Fact
	for i := int64(1); i <= 100; i++ {
		facts = append(facts, projections.Fact{CreatedAt: at(int(i % 3)), Owner: "u", Language: "python", Version: "3.11",
			Status: domain.StatusCompleted, WallTimeMs: ms(i), CPUTimeMs: ms(i / 2), PeakMemoryBytes: ms(i << 20), QueueWaitMs: ms(100 - i)})
	}
	facts = append(facts,
		projections.Fact{CreatedAt: at(2), Owner: "v", Language: "python", Version: "3.12", Status: domain.StatusFailed, Reason: domain.VerdictTimeout},
		projections.Fact{CreatedAt: at(5), Status: domain.StatusCompleted}, // outside the range
	)
	s, err := projections.Summarize(facts, at(0).Truncate(time.Hour), at(3).Truncate(time.Hour), "hour", true)
	if err != nil {
		t.Fatal(err)
	}
	if s.Executions != 101 || s.ByStatus["completed"] != 100 || s.ByFailureReason["timeout"] != 1 || s.ByRuntime["python 3.12"] != 1 ||
		s.ByOwner["v"] != 1 || len(s.Buckets) != 3 || s.Buckets[0].Executions+s.Buckets[1].Executions+s.Buckets[2].Executions != 101 {
		t.Fatalf("%+v", s)
	}
	if s.WallTimeMs != (projections.Percentiles{Count: 100, P50: 50, P95: 95, P99: 99, Max: 100}) || s.QueueWaitMs.P50 != 49 {
		t.Fatalf("percentiles: wall %+v wait %+v", s.WallTimeMs, s.QueueWaitMs)
	}
	for _, bad := range []struct {
		from, to time.Time
		bucket   string
	}{{at(3), at(0), "hour"}, {at(0), at(1), "week"}, {at(0), at(0).AddDate(2, 0, 0), "hour"}} {
		if _, err := projections.Summarize(nil, bad.from, bad.to, bad.bucket, false); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}
