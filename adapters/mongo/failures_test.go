package mongo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// A store that cannot reach the server must say so, never answer as if the
// data were absent: a missing refresh-token mark would let a stolen token
// be used again, a revoked sign-in read as live, zero login failures lift
// the limit on guessing, an empty erasure backlog leave content that was
// to be destroyed. Every call here runs with a cancelled context on every
// code path and must fail with an error that wraps context.Canceled.
func TestEveryCallFailsOnACancelledContextInsteadOfAnsweringEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		live := context.Background()
		a, p, k := NewAccounts(d), NewProjections(d), NewContentKeys(d)
		// Something to find, so that no call can fail for want of data.
		u := newUser("ada")
		ev := chain(t, "ex-1")[0]
		for _, err := range []error{a.CreateUser(live, u), projections.SaveView(live, p, sampleExecution("ex-1"), 0)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := projections.AddEvent(live, p, ev); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(live)
		cancel()
		later := sampleExecution("ex-1")
		later.Sequence = 4
		second := func(_ any, err error) error { return err }
		third := func(_, _ any, err error) error { return err }
		for name, call := range map[string]func() error{
			"CreateUser":               func() error { return a.CreateUser(ctx, newUser("grace")) },
			"User":                     func() error { return second(a.User(ctx, u.ID)) },
			"UserByName":               func() error { return second(a.UserByName(ctx, accounts.UsernameKey("ada"))) },
			"UpdateUser":               func() error { return a.UpdateUser(ctx, u) },
			"SetPasswordHash":          func() error { return a.SetPasswordHash(ctx, u.ID, "x", at(0)) },
			"Users":                    func() error { return third(a.Users(ctx, "", 10)) },
			"CreateRefresh":            func() error { return a.CreateRefresh(ctx, accounts.RefreshToken{Hash: "h", Family: "f"}) },
			"Refresh":                  func() error { return second(a.Refresh(ctx, "h")) },
			"UseRefresh":               func() error { return second(a.UseRefresh(ctx, "h", at(0))) },
			"RevokeFamily":             func() error { return a.RevokeFamily(ctx, "f", at(0)) },
			"FamilyRevoked":            func() error { return second(a.FamilyRevoked(ctx, "f")) },
			"CreateAPIToken":           func() error { return a.CreateAPIToken(ctx, accounts.APIToken{Hash: "h", UserID: u.ID}) },
			"APIToken":                 func() error { return second(a.APIToken(ctx, "h")) },
			"APITokens":                func() error { return second(a.APITokens(ctx, u.ID)) },
			"DeleteAPIToken":           func() error { return a.DeleteAPIToken(ctx, u.ID, "t") },
			"DeleteAPITokensOfSession": func() error { return a.DeleteAPITokensOfSession(ctx, u.ID, "s") },
			"LoginFailures":            func() error { return second(a.LoginFailures(ctx, "k")) },
			"SaveLoginFailures":        func() error { return a.SaveLoginFailures(ctx, "k", accounts.Failures{Count: 1}) },
			"SaveLoginFailures(0)":     func() error { return a.SaveLoginFailures(ctx, "k", accounts.Failures{}) },
			"CreateScript":             func() error { return a.CreateScript(ctx, accounts.Script{ID: "s"}) },
			"Script":                   func() error { return second(a.Script(ctx, "s")) },
			"UpdateScript":             func() error { return a.UpdateScript(ctx, accounts.Script{ID: "s"}) },
			"DeleteScript":             func() error { return a.DeleteScript(ctx, "s") },
			"Scripts":                  func() error { return third(a.Scripts(ctx, u.ID, "", 10)) },
			"ScriptUsage":              func() error { return third(a.ScriptUsage(ctx, u.ID)) },

			"AddEvent":      func() error { return second(projections.AddEvent(ctx, p, chain(t, "ex-2")[0])) },
			"Event":         func() error { return third(p.Event(ctx, "ex-1", 1)) },
			"Events":        func() error { return second(p.Events(ctx, "ex-1", 0)) },
			"View":          func() error { return second(p.View(ctx, "ex-1")) },
			"SaveView(0)":   func() error { return projections.SaveView(ctx, p, sampleExecution("ex-3"), 0) },
			"SaveView(3)":   func() error { return projections.SaveView(ctx, p, later, 3) },
			"List":          func() error { return third(p.List(ctx, projections.ListQuery{Limit: 10})) },
			"Position":      func() error { return second(p.Position(ctx, 0)) },
			"SavePositions": func() error { return p.SavePositions(ctx, map[int32]int64{0: 1}) },
			"SaveFact":      func() error { return projections.SaveFact(ctx, p, projections.Fact{ExecutionID: "ex-1"}) },
			"Facts":         func() error { return second(p.Facts(ctx, projections.FactQuery{To: at(time.Hour)})) },
			"EndedBefore":   func() error { return second(p.EndedBefore(ctx, at(time.Hour), 10)) },
			"ErasedAfter":   func() error { return second(p.ErasedAfter(ctx, "", 10)) },

			"content Insert":      func() error { return second(k.Insert(ctx, content.Record{ExecutionID: "ex-1"})) },
			"content Get":         func() error { return third(k.Get(ctx, "ex-1")) },
			"content MarkErasing": func() error { return k.MarkErasing(ctx, "ex-1", content.Erasure{}) },
			"content Unmark":      func() error { return k.Unmark(ctx, "ex-1") },
			"content Shred":       func() error { return k.Shred(ctx, "ex-1", at(0)) },
			"content Pending":     func() error { return second(k.Pending(ctx, 10)) },
			"content Shredded":    func() error { return second(k.Shredded(ctx, "", 10)) },
		} {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want an error wrapping context.Canceled", name, err)
			}
		}
		// Nothing was written by the calls that failed.
		if _, err := a.UserByName(live, accounts.UsernameKey("grace")); domain.ErrorCode(err) != domain.ENOTFOUND {
			t.Errorf("grace: %v, want ENOTFOUND", err)
		}
		if v, err := p.View(live, "ex-1"); err != nil || v.Sequence != 3 {
			t.Errorf("view at %d, %v; want the first at 3", v.Sequence, err)
		}
	})
}

// Opening fails, with the reason, when the server cannot be asked.
func TestOpenNeedsANameAndAServer(t *testing.T) {
	if _, err := Open(context.Background(), testClient, ""); err == nil {
		t.Error("opened a database without a name")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Open(ctx, testClient, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: %v, want context.Canceled", err)
	}
	if _, err := testServer.Open(ctx, testClient, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("(*Embedded).Open: %v, want context.Canceled", err)
	}
}

// A document that another tool (or a bug) left damaged is reported by the
// read that meets it, on every code path: a view whose time is not a time,
// an archived record that does not parse or is another event's, a
// position that is not a number. None is skipped as if absent.
func TestDamagedStoredDocumentsAreReportedNotSkipped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		ctx := context.Background()
		p := NewProjections(d)
		raw := func(coll string, doc bson.D) {
			t.Helper()
			if _, err := d.Database().Collection(coll).InsertOne(ctx, doc); err != nil {
				t.Fatal(err)
			}
		}
		want := func(what string, err error, says string) {
			t.Helper()
			if err == nil || !strings.Contains(err.Error(), says) {
				t.Errorf("%s: %v, want an error saying %q", what, err, says)
			}
		}

		raw(CollExecutions, bson.D{{Key: "_id", Value: "ex-1"}, {Key: "status", Value: "queued"}, {Key: "owner", Value: "alice"},
			{Key: "created_at", Value: "yesterday"}, {Key: "version_seq", Value: int64(1)}})
		_, err := p.View(ctx, "ex-1")
		want("View", err, `decode time "yesterday"`)
		_, _, err = p.List(ctx, projections.ListQuery{Limit: 10})
		want("List", err, `decode time "yesterday"`)

		good := chain(t, "ex-2")
		raw(CollEvents, bson.D{{Key: "_id", Value: eventKey("ex-2", 1)}, {Key: "execution_id", Value: "ex-2"},
			{Key: "sequence", Value: int64(1)}, {Key: "record", Value: "{not json"}})
		// The record of ex-2's first event, filed as ex-3's.
		raw(CollEvents, bson.D{{Key: "_id", Value: eventKey("ex-3", 1)}, {Key: "execution_id", Value: "ex-3"},
			{Key: "sequence", Value: int64(1)}, {Key: "record", Value: string(good[0].Record)}})
		_, _, err = p.Event(ctx, "ex-2", 1)
		want("Event of an unparsable record", err, "archived event ex-2/000000000001")
		_, err = p.Events(ctx, "ex-2", 0)
		want("Events of an unparsable record", err, "archived event ex-2/000000000001")
		_, _, err = p.Event(ctx, "ex-3", 1)
		want("Event of another event's record", err, "holds ex-2/1")
		_, err = p.Events(ctx, "ex-3", 0)
		want("Events of another event's record", err, "holds ex-2/1")

		raw(CollPositions, bson.D{{Key: "_id", Value: positionKey(7)}, {Key: "next", Value: "twelve"}})
		_, err = p.Position(ctx, 7)
		want("Position", err, "position of partition 7")
	})
}
