package eventstore_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// The ledger writer's decisions, without Kafka: what each command appends
// (or refuses, and with which code) given an execution's head.

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func newDecider(t *testing.T) (*eventstore.Decider, *eventstore.KeySet) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.NewEd25519Signer(priv)
	keys, err := eventstore.NewKeySet(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &eventstore.Decider{Signer: s}, keys
}

// contentKey seals the tests' content.
var contentKey = eventstore.DataKey{9}

func sealedInput(id, script string) domain.Sealed {
	s, err := eventstore.Seal(contentKey, id, eventstore.PurposeInput, domain.Input{Script: script})
	if err != nil {
		panic(err)
	}
	return s
}

func submitCmd(id, script string) eventstore.Command {
	return eventstore.Command{ID: "c-" + id, Kind: eventstore.CommandSubmit, ExecutionID: id, Actor: "anonymous",
		Submit: &domain.ExecutionQueued{Language: "python", Version: "3.11", Limits: domain.DefaultLimits,
			Input: sealedInput(id, script)}}
}

func claimCmd(id, runner string, leaseMs int64) eventstore.Command {
	return eventstore.Command{ID: "claim-" + runner, Kind: eventstore.CommandClaim, ExecutionID: id, Actor: "runner",
		Runner: &eventstore.RunnerArgs{Runner: runner, Sandbox: "runc", Mode: eventstore.ClaimStart, LeaseMs: leaseMs}}
}

// handle runs cmd and fails the test if it was refused.
func handle(t *testing.T, d *eventstore.Decider, h *eventstore.Head, cmd eventstore.Command, now time.Time) eventstore.Outcome {
	t.Helper()
	out := d.Handle(h, cmd, now)
	if out.Reply.Code != "" {
		t.Fatalf("%s refused: %s %s", cmd.Kind, out.Reply.Code, out.Reply.Message)
	}
	return out
}

// running is an execution that runner r1 claimed at t0 with a 10 s lease.
func running(t *testing.T, d *eventstore.Decider) (*eventstore.Head, []eventstore.Envelope) {
	t.Helper()
	q := handle(t, d, nil, submitCmd("x", "print(1)"), t0)
	c := handle(t, d, q.Head, claimCmd("x", "r1", 10_000), t0)
	return c.Head, append(q.Events, c.Events...)
}

func TestDecider(t *testing.T) {
	t.Run("OK a submit appends one signed event, a retried submit nothing", func(t *testing.T) {
		d, keys := newDecider(t)
		out := handle(t, d, nil, submitCmd("x", "print(1)"), t0)
		if len(out.Records) != 1 || out.Events[0].Type != domain.TypeExecutionQueued || out.Head.State.Sequence != 1 {
			t.Fatalf("submit appended %d records, head %+v", len(out.Records), out.Head.State)
		}
		if err := eventstore.VerifyChain(keys, out.Events); err != nil {
			t.Fatal(err)
		}
		if out.Head.State.Script != "" {
			t.Fatal("the head keeps the script, which only the event should carry")
		}
		again := handle(t, d, out.Head, submitCmd("x", "print(1)"), t0.Add(time.Second))
		if len(again.Records) != 0 || again.Head != nil || again.Reply.Head.Sequence != 1 {
			t.Fatalf("a retried submit appended %d records (head %+v)", len(again.Records), again.Reply.Head)
		}
	})

	t.Run("OK a retried claim appends nothing and extends the lease", func(t *testing.T) {
		d, _ := newDecider(t)
		h, _ := running(t, d)
		out := handle(t, d, h, claimCmd("x", "r1", 10_000), t0.Add(5*time.Second))
		if len(out.Records) != 0 || !out.Head.LeaseUntil.Equal(t0.Add(15*time.Second)) {
			t.Fatalf("retried claim: %d records, lease until %s", len(out.Records), out.Head.LeaseUntil)
		}
	})

	t.Run("OK a claim without a lease holds the default lease", func(t *testing.T) {
		d, _ := newDecider(t)
		q := handle(t, d, nil, submitCmd("x", "print(1)"), t0)
		if c := handle(t, d, q.Head, claimCmd("x", "r1", 0), t0); !c.Head.LeaseUntil.Equal(t0.Add(15 * time.Second)) {
			t.Fatalf("lease until %s, want the 15 s default", c.Head.LeaseUntil)
		}
		d.DefaultLease = 3 * time.Second
		if c := handle(t, d, q.Head, claimCmd("x", "r1", 0), t0); !c.Head.LeaseUntil.Equal(t0.Add(3 * time.Second)) {
			t.Fatalf("lease until %s, want the decider's 3 s", c.Head.LeaseUntil)
		}
	})

	t.Run("OK a lapsed lease abandons the attempt, a live one does not", func(t *testing.T) {
		d, keys := newDecider(t)
		h, evs := running(t, d)
		if _, expired := d.Expire(h, t0.Add(9*time.Second)); expired {
			t.Fatal("expired a lease that still held")
		}
		out, expired := d.Expire(h, t0.Add(11*time.Second))
		if !expired || len(out.Events) != 1 || out.Events[0].Type != domain.TypeExecutionAbandoned || out.Events[0].Actor != "ledger" {
			t.Fatalf("expire: %v %+v", expired, out.Events)
		}
		if err := eventstore.VerifyChain(keys, append(evs, out.Events...)); err != nil {
			t.Fatalf("the abandon does not chain onto the claim: %v", err)
		}
		if !out.Head.State.Abandoned() {
			t.Fatalf("after the expiry the head is %+v", out.Head.State)
		}
		if _, again := d.Expire(out.Head, t0.Add(time.Hour)); again {
			t.Fatal("expired an attempt that no runner holds")
		}
	})

	t.Run("OK an execution that lost its runner MaxTurns times fails", func(t *testing.T) {
		d, _ := newDecider(t)
		d.MaxTurns = 1
		h, _ := running(t, d)
		out, expired := d.Expire(h, t0.Add(time.Minute))
		last := out.Events[len(out.Events)-1]
		if !expired || last.Type != domain.TypeExecutionFailed || out.Head.State.Status != domain.StatusFailed ||
			out.Head.State.FailureReason != domain.VerdictSystemError {
			t.Fatalf("after its one turn: %v %+v", expired, out.Head.State)
		}
	})

	t.Run("OK a report too large for the ledger is recorded with its output shrunk", func(t *testing.T) {
		d, _ := newDecider(t)
		h, _ := running(t, d)
		zero := 0
		big := strings.Repeat("x", eventstore.MaxDataBytes+1)
		res, err := eventstore.SealResult(domain.Result{Verdict: domain.VerdictCompleted, ExitCode: &zero, Stdout: big},
			func(o domain.Output) (domain.Sealed, error) {
				return eventstore.Seal(contentKey, "x", eventstore.PurposeOutput, o)
			})
		if err != nil {
			t.Fatal(err)
		}
		out := handle(t, d, h, eventstore.Command{ID: "r", Kind: eventstore.CommandReport, ExecutionID: "x", Actor: "runner",
			Report: &eventstore.ReportArgs{Runner: "r1", Attempt: 1, Genuine: true, Result: res}}, t0.Add(time.Second))
		if len(out.Records) != 1 || out.Events[0].Type != domain.TypeExecutionCompleted {
			t.Fatalf("report appended %+v", out.Events)
		}
		if n := len(out.Events[0].Data); n > eventstore.MaxDataBytes {
			t.Fatalf("the event's payload is %d bytes, over the ledger's %d", n, eventstore.MaxDataBytes)
		}
		if !strings.Contains(string(out.Events[0].Data), `"output_truncated":true`) || strings.Contains(string(out.Events[0].Data), "xxxx") {
			t.Fatal("the shrunk output is not marked truncated, or not sealed")
		}
		if !out.Head.LeaseUntil.IsZero() {
			t.Fatal("an ended execution still holds a lease")
		}
	})

	t.Run("OK an ended execution is erased once", func(t *testing.T) {
		d, keys := newDecider(t)
		h, evs := running(t, d)
		zero := 0
		rep := handle(t, d, h, eventstore.Command{ID: "r", Kind: eventstore.CommandReport, ExecutionID: "x", Actor: "runner",
			Report: &eventstore.ReportArgs{Runner: "r1", Attempt: 1, Genuine: true,
				Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: &zero}}}, t0.Add(time.Second))
		erase := eventstore.Command{ID: "e", Kind: eventstore.CommandErase, ExecutionID: "x", Actor: "alice",
			Erase: &eventstore.EraseArgs{Reason: domain.EraseRequested}}
		out := handle(t, d, rep.Head, erase, t0.Add(2*time.Second))
		if len(out.Events) != 1 || out.Events[0].Type != domain.TypeExecutionErased || out.Events[0].Actor != "alice" ||
			!out.Head.State.Erased || out.Events[0].Sequence != 4 {
			t.Fatalf("erase appended %+v, head %+v", out.Events, out.Head.State)
		}
		all := append(append(evs, rep.Events...), out.Events...)
		if err := eventstore.VerifyChain(keys, all); err != nil {
			t.Fatalf("the chain after an erasure: %v", err)
		}
		again := handle(t, d, out.Head, erase, t0.Add(3*time.Second))
		if len(again.Events) != 0 {
			t.Fatalf("a second erase appended %+v", again.Events)
		}
		// The changelog keeps the erasure: a new writer knows it.
		b, _ := out.Head.MarshalJSON()
		var back eventstore.Head
		if err := back.UnmarshalJSON(b); err != nil || !back.State.Erased {
			t.Fatalf("head after a round trip: %+v %v", back.State, err)
		}
		// A submit under the erased id is refused, whatever it carries.
		if r := d.Handle(out.Head, submitCmd("x", "print(1)"), t0.Add(4*time.Second)); r.Reply.Code != domain.ECONFLICT {
			t.Fatalf("submit after erasure: %+v", r.Reply)
		}
	})

	t.Run("ErrErasingARunningExecution", func(t *testing.T) {
		d, _ := newDecider(t)
		h, _ := running(t, d)
		out := d.Handle(h, eventstore.Command{ID: "e", Kind: eventstore.CommandErase, ExecutionID: "x", Actor: "alice",
			Erase: &eventstore.EraseArgs{Reason: domain.EraseRequested}}, t0.Add(time.Second))
		if out.Reply.Code != domain.ECONFLICT || len(out.Records) != 0 {
			t.Fatalf("erased a running execution: %+v", out.Reply)
		}
		if out := d.Handle(h, eventstore.Command{ID: "e", Kind: eventstore.CommandErase, ExecutionID: "x"}, t0); out.Reply.Code != domain.EINVALID {
			t.Fatalf("an erase without a reason: %+v", out.Reply)
		}
	})

	for _, c := range []struct {
		name, code, message string
		head                bool // against a running execution (else none)
		cmd                 eventstore.Command
	}{
		{"ErrSubmitWithoutExecution", domain.EINVALID, "submit without an execution", false,
			eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: "x"}},
		{"ErrSubmitTooLarge", domain.ETOOLARGE, "over the ledger's", false,
			submitCmd("x", strings.Repeat("#", eventstore.MaxDataBytes))},
		{"ErrSubmitOtherRequestSameID", domain.ECONFLICT, "already exists with a different request", true,
			submitCmd("x", "print(2)")},
		{"ErrNoSuchExecution", domain.ENOTFOUND, "execution x not found", false,
			claimCmd("x", "r1", 0)},
		{"ErrUnknownCommand", domain.EINVALID, `unknown command "explode"`, true,
			eventstore.Command{Kind: "explode", ExecutionID: "x"}},
		{"ErrClaimWithoutRunner", domain.EINVALID, "claim without a runner", true,
			eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: "x", Runner: &eventstore.RunnerArgs{}}},
		{"ErrRestartWhatRuns", domain.ECONFLICT, "execution x is running", true,
			eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: "x",
				Runner: &eventstore.RunnerArgs{Runner: "r2", Mode: eventstore.ClaimRestart}}},
		{"ErrRenewByAnotherRunner", domain.ECONFLICT, "no longer this runner's: running attempt 1 on r1", true,
			eventstore.Command{Kind: eventstore.CommandRenew, ExecutionID: "x", Runner: &eventstore.RunnerArgs{Runner: "r2", Attempt: 1}}},
		{"ErrReleaseOfAnotherAttempt", domain.ECONFLICT, "execution x is running", true,
			eventstore.Command{Kind: eventstore.CommandRelease, ExecutionID: "x", Release: &eventstore.ReleaseArgs{Runner: "r1", Attempt: 2}}},
		{"ErrReportWithoutResult", domain.EINVALID, "report without a result", true,
			eventstore.Command{Kind: eventstore.CommandReport, ExecutionID: "x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, _ := newDecider(t)
			var h *eventstore.Head
			if c.head {
				h, _ = running(t, d)
			}
			out := d.Handle(h, c.cmd, t0.Add(time.Second))
			if out.Reply.Code != c.code || !strings.Contains(out.Reply.Message, c.message) {
				t.Fatalf("reply %s %q, want %s %q", out.Reply.Code, out.Reply.Message, c.code, c.message)
			}
			if len(out.Records) != 0 || out.Head != nil {
				t.Fatalf("a refused command appended %d records", len(out.Records))
			}
			if c.head && (out.Reply.Head == nil || out.Reply.Head.Sequence != 2) {
				t.Fatalf("the refusal does not tell the head: %+v", out.Reply.Head)
			}
		})
	}

	t.Run("ErrRenewAfterTheEnd says what became of the execution", func(t *testing.T) {
		d, _ := newDecider(t)
		h, _ := running(t, d)
		done := handle(t, d, h, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: "x", Actor: "anonymous"}, t0.Add(time.Second))
		out := d.Handle(done.Head, eventstore.Command{Kind: eventstore.CommandRenew, ExecutionID: "x",
			Runner: &eventstore.RunnerArgs{Runner: "r1", Attempt: 1}}, t0.Add(2*time.Second))
		if out.Reply.Code != domain.ECONFLICT || !strings.HasSuffix(out.Reply.Message, ": failed") {
			t.Fatalf("reply %s %q", out.Reply.Code, out.Reply.Message)
		}
		expired, _ := d.Expire(h, t0.Add(time.Minute))
		out = d.Handle(expired.Head, eventstore.Command{Kind: eventstore.CommandRenew, ExecutionID: "x",
			Runner: &eventstore.RunnerArgs{Runner: "r1", Attempt: 1}}, t0.Add(time.Minute))
		if !strings.HasSuffix(out.Reply.Message, "running attempt 1 without a runner") {
			t.Fatalf("renewal of an abandoned attempt: %q", out.Reply.Message)
		}
	})
}
