package domain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func queued(t *testing.T) domain.Execution {
	t.Helper()
	ev, err := domain.Queue(domain.Spec{Language: "python", Version: "3.11", Script: "print(1)", Limits: domain.DefaultLimits, Owner: "anonymous"}, sealPlain)
	if err != nil {
		t.Fatal(err)
	}
	var e domain.Execution
	if err := e.Apply("x", 1, time.Now(), ev); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustApply(t *testing.T, e *domain.Execution, ev domain.Event) {
	t.Helper()
	if err := e.Apply(e.ID, e.Sequence+1, time.Now(), ev); err != nil {
		t.Fatal(err)
	}
}

func TestStateMachine(t *testing.T) {
	t.Run("OK completed", func(t *testing.T) {
		e := queued(t)
		if e.Status != domain.StatusQueued || e.Sequence != 1 {
			t.Fatalf("got %s seq %d", e.Status, e.Sequence)
		}
		st, err := e.Start("r1", "runc")
		if err != nil || st.Attempt != 1 {
			t.Fatalf("start: %v attempt %d", err, st.Attempt)
		}
		mustApply(t, &e, st)
		if e.Status != domain.StatusRunning || e.StartedAt == nil {
			t.Fatalf("after start: %s", e.Status)
		}
		fin, err := e.Finish(domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Stdout: "1\n"})
		if err != nil {
			t.Fatal(err)
		}
		if fin.EventType() != domain.TypeExecutionCompleted {
			t.Fatalf("got %s", fin.EventType())
		}
		mustApply(t, &e, fin)
		if e.Status != domain.StatusCompleted || e.Output != "1\n" || *e.ExitCode != 0 || e.FinishedAt == nil {
			t.Fatalf("after finish: %+v", e)
		}
	})
	t.Run("OK runtime error keeps traceback", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		fin, _ := e.Finish(domain.Result{Verdict: domain.VerdictRuntimeErr, ExitCode: domain.IntPtr(1), Stderr: "Traceback\n"})
		mustApply(t, &e, fin)
		if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictRuntimeErr || e.Errors != "Traceback\n" {
			t.Fatalf("got %+v", e)
		}
	})
	t.Run("ErrConflict cancel after terminal", func(t *testing.T) {
		e := queued(t)
		c, err := e.Cancel("anonymous")
		if err != nil {
			t.Fatal(err)
		}
		mustApply(t, &e, c)
		if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictCancelled {
			t.Fatalf("got %+v", e)
		}
		if _, err := e.Cancel("anonymous"); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("second cancel: %v", err)
		}
		if _, err := e.Start("r", "runc"); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("start after cancel: %v", err)
		}
	})
	t.Run("OK first terminal wins", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		c, _ := e.Cancel("anonymous")
		mustApply(t, &e, c)
		mustApply(t, &e, domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, Stdout: "late"}})
		if e.Status != domain.StatusFailed || e.Output == "late" || e.Sequence != 4 {
			t.Fatalf("a late terminal event changed state: %+v", e)
		}
	})
	t.Run("ErrStartWhileItsRunnerLooksAfterIt", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		if _, err := e.Start("r2", "runc"); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("a second runner started a running execution: %v", err)
		}
		if _, err := e.Abandon("r2", domain.AbandonLeaseExpired, 3); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("a runner abandoned another's attempt: %v", err)
		}
	})
	t.Run("OK abandoned, then started again as a new attempt", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		evs, err := e.Abandon("r1", domain.AbandonLeaseExpired, 3)
		if err != nil || len(evs) != 1 {
			t.Fatalf("abandon: %v %+v", err, evs)
		}
		mustApply(t, &e, evs[0])
		if !e.Abandoned() || e.Status != domain.StatusRunning {
			t.Fatalf("after abandon: %+v", e)
		}
		st2, err := e.Start("r2", "runc")
		if err != nil || st2.Attempt != 2 {
			t.Fatalf("restart: %v attempt %d", err, st2.Attempt)
		}
	})
	t.Run("OK abandoned, then resumed by another runner", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "kubernetes")
		mustApply(t, &e, st)
		evs, _ := e.Abandon("r1", domain.AbandonRunnerStopped, 3)
		mustApply(t, &e, evs[0])
		rs, err := e.Resume("r2")
		if err != nil || rs.Attempt != 1 {
			t.Fatalf("resume: %v %+v", err, rs)
		}
		mustApply(t, &e, rs)
		if e.Runner != "r2" || e.Attempt != 1 || e.Resumes != 1 || e.Turns() != 2 {
			t.Fatalf("after resume: %+v", e)
		}
		// r1's late sandbox failure is void; a genuine result of the script counts.
		if _, err := e.Report("r1", 1, domain.Result{Verdict: domain.VerdictSystemError}, false); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("the old runner's sandbox failure counted: %v", err)
		}
		if ev, err := e.Report("r1", 1, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0)}, true); err != nil || !domain.IsTerminal(ev) {
			t.Fatalf("the script's own result was refused: %v", err)
		}
		if _, err := e.Report("r2", 2, domain.Result{Verdict: domain.VerdictCompleted}, true); domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("a result of another attempt counted: %v", err)
		}
	})
	t.Run("OK out of turns fails with a system error", func(t *testing.T) {
		e := queued(t)
		for i := 1; i <= 3; i++ {
			st, err := e.Start(fmt.Sprint("r", i), "runc")
			if err != nil {
				t.Fatal(err)
			}
			mustApply(t, &e, st)
			evs, err := e.Abandon(fmt.Sprint("r", i), domain.AbandonLeaseExpired, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				mustApply(t, &e, ev)
			}
			if i < 3 && len(evs) != 1 || i == 3 && len(evs) != 2 {
				t.Fatalf("turn %d: %+v", i, evs)
			}
		}
		if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictSystemError {
			t.Fatalf("after three stopped runners: %+v", e)
		}
	})
	t.Run("ErrSequence gap refused", func(t *testing.T) {
		e := queued(t)
		if err := e.Apply("x", 3, time.Now(), domain.ExecutionStarted{}); err == nil {
			t.Fatal("applied an event after a gap")
		}
	})
}

func TestQueueValidation(t *testing.T) {
	ok := domain.Spec{Language: "python", Version: "3.11", Script: "print(1)", Limits: domain.DefaultLimits, Owner: "a"}
	cases := map[string]struct {
		mut  func(*domain.Spec)
		code string
	}{
		"ErrScriptEmpty":    {func(s *domain.Spec) { s.Script = "" }, domain.EUNPROCESSABLE},
		"ErrScriptTooLarge": {func(s *domain.Spec) { s.Script = string(make([]byte, domain.MaxScriptBytes+1)) }, domain.ETOOLARGE},
		"ErrStdinTooLarge":  {func(s *domain.Spec) { s.Stdin = string(make([]byte, domain.MaxStdinBytes+1)) }, domain.ETOOLARGE},
		"ErrInvalidUTF8":    {func(s *domain.Spec) { s.Script = "\xff\xfe" }, domain.EUNPROCESSABLE},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := ok
			c.mut(&s)
			if _, err := domain.Queue(s, sealPlain); domain.ErrorCode(err) != c.code {
				t.Fatalf("got %v, want code %s", err, c.code)
			}
		})
	}
}

func TestResolveLimits(t *testing.T) {
	max := domain.DefaultMaxLimits
	t.Run("OK defaults fill zeros", func(t *testing.T) {
		l, err := domain.ResolveLimits(domain.Limits{TimeoutMs: 1000}, domain.DefaultLimits, max)
		if err != nil || l.TimeoutMs != 1000 || l.MemoryBytes != 128<<20 || l.CPUMillicores != 100 {
			t.Fatalf("got %+v %v", l, err)
		}
	})
	t.Run("ErrAboveMaximum", func(t *testing.T) {
		_, err := domain.ResolveLimits(domain.Limits{MemoryBytes: max.MemoryBytes + 1, TimeoutMs: max.TimeoutMs + 1}, domain.DefaultLimits, max)
		if domain.ErrorCode(err) != domain.EUNPROCESSABLE {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrBelowFloor", func(t *testing.T) {
		_, err := domain.ResolveLimits(domain.Limits{MemoryBytes: 1}, domain.DefaultLimits, max)
		if domain.ErrorCode(err) != domain.EUNPROCESSABLE {
			t.Fatalf("got %v", err)
		}
	})
}
