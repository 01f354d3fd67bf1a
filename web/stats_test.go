package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// TestStatsCountOnlyWhatTheCallerMaySee: a user's statistics are their
// own executions, an admin's everyone's with counts per owner (or one
// owner's), an anonymous caller gets 401, and a bad range, time or bucket
// is a 400 before anything is read.
func TestStatsCountOnlyWhatTheCallerMaySee(t *testing.T) {
	a := startAPI(t, nil)
	alice, bob := register(t, a, "alice"), register(t, a, "bob")
	admin := makeAdmin(t, a, "admin")
	submit := func(header ...string) string {
		r := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`, header...)
		if r.Status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return decodeExecution(t, r).ID
	}
	done := submit(alice.bearer()...)
	a.finish(t, done, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0),
		Usage: domain.ResourceUsage{WallTimeMs: 120, CPUTimeMs: 80, PeakMemoryBytes: 5 << 20}})
	cancelled := submit(alice.bearer()...)
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions/"+cancelled+"/cancel", "", alice.bearer()...); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	submit(bob.bearer()...)
	submit()

	stats := func(query string, header ...string) (answer, projections.Stats) {
		r := call(t, http.MethodGet, a.URL+"/api/v1/stats"+query, "", header...)
		var s projections.Stats
		if r.Status == http.StatusOK {
			if err := json.Unmarshal(r.Body, &s); err != nil {
				t.Fatal(err)
			}
		}
		return r, s
	}
	// The facts are the projector's: wait until it took all four, ended.
	waitFor(t, func() bool {
		_, s := stats("", admin.bearer()...)
		return s.Executions == 4 && s.ByStatus["completed"] == 1 && s.ByStatus["failed"] == 1
	})

	t.Run("ErrUnauthorized", func(t *testing.T) {
		if r, _ := stats(""); r.Status != http.StatusUnauthorized || r.errorCode(t) != domain.EUNAUTHORIZED {
			t.Fatalf("anonymous: %d %s", r.Status, r.Body)
		}
	})
	t.Run("ErrBadRequest", func(t *testing.T) {
		now := time.Now().UTC()
		for _, q := range []url.Values{
			{"to": {"yesterday"}},
			{"from": {"2026-13-01T00:00:00Z"}},
			{"bucket": {"week"}},
			{"from": {now.Format(time.RFC3339)}, "to": {now.Add(-time.Hour).Format(time.RFC3339)}},
			{"from": {now.AddDate(-2, 0, 0).Format(time.RFC3339)}}, // more hours than one summary holds
		} {
			if r, _ := stats("?"+q.Encode(), alice.bearer()...); r.Status != http.StatusBadRequest || r.errorCode(t) != domain.EINVALID {
				t.Fatalf("%v: %d %s", q, r.Status, r.Body)
			}
		}
	})
	t.Run("OK a user sees their own", func(t *testing.T) {
		// ?owner= is an admin's filter; a user asking for bob's still gets their own.
		_, s := stats("?owner="+bob.ID, alice.bearer()...)
		if s.Executions != 2 || s.ByStatus["completed"] != 1 || s.ByFailureReason["cancelled"] != 1 || s.ByOwner != nil ||
			s.WallTimeMs.Count != 1 || s.WallTimeMs.Max != 120 || s.ByRuntime["python 3.11"] != 2 || s.Bucket != "hour" {
			t.Fatalf("alice's stats: %+v", s)
		}
	})
	t.Run("OK an admin sees everyone's per owner, or one owner's", func(t *testing.T) {
		_, all := stats("?bucket=day", admin.bearer()...)
		if all.ByOwner[alice.ID] != 2 || all.ByOwner[bob.ID] != 1 || all.ByOwner["anonymous"] != 1 || all.Bucket != "day" {
			t.Fatalf("admin's stats: %+v", all)
		}
		_, one := stats("?owner="+bob.ID, admin.bearer()...)
		if one.Executions != 1 || one.ByStatus["queued"] != 1 || one.ByOwner != nil {
			t.Fatalf("admin's stats of bob: %+v", one)
		}
	})
	t.Run("OK a range before them counts none", func(t *testing.T) {
		q := url.Values{"from": {"2026-01-01T00:00:00Z"}, "to": {"2026-01-02T00:00:00Z"}}
		_, s := stats("?"+q.Encode(), admin.bearer()...)
		if s.Executions != 0 || len(s.Buckets) != 24 || !s.From.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("an empty range: %+v", s)
		}
	})
}
