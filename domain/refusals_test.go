package domain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// What the aggregate refuses outside the happy paths of the state
// machine, and the messages a user or an operator then reads.
func TestRefusals(t *testing.T) {
	t.Run("ErrSpecWithoutRuntimeOrOwner", func(t *testing.T) {
		ok := domain.Spec{Language: "python", Version: "3.11", Script: "print(1)", Limits: domain.DefaultLimits, Owner: "a"}
		noVersion, noOwner := ok, ok
		noVersion.Version, noOwner.Owner = "", ""
		if _, err := domain.Queue(noVersion, sealPlain); domain.ErrorCode(err) != domain.EUNPROCESSABLE {
			t.Fatalf("a spec without a version: %v", err)
		}
		// A missing owner is the platform's fault (the API always sets
		// one), so the user reads only "internal error".
		_, err := domain.Queue(noOwner, sealPlain)
		if domain.ErrorCode(err) != domain.EINTERNAL || domain.ErrorMessage(err) != "owner is required" {
			t.Fatalf("a spec without an owner: %v", err)
		}
		if msg := domain.ErrorMessage(errors.New("dial tcp: secret detail")); msg != "internal error" {
			t.Fatalf("a plain error shown to a user as %q", msg)
		}
	})

	t.Run("ErrResumeWhatNoRunnerLeft", func(t *testing.T) {
		e := queued(t)
		if _, err := e.Resume("r2"); domain.ErrorCode(err) != domain.ECONFLICT || !strings.HasSuffix(err.Error(), "is queued") {
			t.Fatalf("resume of a queued execution: %v", err)
		}
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		if _, err := e.Resume("r2"); domain.ErrorCode(err) != domain.ECONFLICT || !strings.HasSuffix(err.Error(), "running attempt 1 on r1") {
			t.Fatalf("resume of an attempt its runner still holds: %v", err)
		}
		evs, _ := e.Abandon("r1", domain.AbandonRunnerStopped, 3)
		mustApply(t, &e, evs[0])
		// A void report names the state it found: an attempt nobody holds.
		if _, err := e.Report("r1", 1, domain.Result{Verdict: domain.VerdictSystemError}, false); err == nil ||
			!strings.Contains(err.Error(), "running attempt 1 without a runner") {
			t.Fatalf("a sandbox failure reported by a runner that let go: %v", err)
		}
	})

	t.Run("ErrFinishWhatIsNotRunning or with an unknown verdict", func(t *testing.T) {
		e := queued(t)
		if _, err := e.Finish(domain.Result{Verdict: domain.VerdictCompleted}); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("finish of a queued execution: %v", err)
		}
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		if _, err := e.Finish(domain.Result{Verdict: "exploded"}); err == nil || domain.ErrorCode(err) != domain.EINTERNAL {
			t.Fatalf("an unknown verdict: %v", err)
		}
	})

	t.Run("ErrApplyUnknownEvent", func(t *testing.T) {
		e := queued(t)
		type stray struct{ domain.ExecutionStarted }
		if err := e.Apply("x", 2, time.Now(), stray{}); err == nil || !strings.Contains(err.Error(), "unknown event") {
			t.Fatalf("applied an event type the aggregate does not know: %v", err)
		}
	})

	t.Run("ErrVersionNotAvailable", func(t *testing.T) {
		c := domain.Catalog{Runtimes: []domain.Runtime{{Language: "python", Versions: []string{"3.11"}, DefaultVersion: "3.11"}}}
		_, _, err := c.Resolve("python", "2.7")
		if domain.ErrorCode(err) != domain.EUNPROCESSABLE || !strings.Contains(domain.ErrorMessage(err), `python version "2.7" is not available (have [3.11])`) {
			t.Fatalf("an unknown version: %v", err)
		}
	})
}
