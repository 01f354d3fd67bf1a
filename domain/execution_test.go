package domain_test

import (
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func queued(t *testing.T) domain.Execution {
	t.Helper()
	ev, err := domain.Queue(domain.Spec{Language: "python", Version: "3.11", Script: "print(1)", Limits: domain.DefaultLimits, Owner: "anonymous"})
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
	t.Run("OK restart is a new attempt", func(t *testing.T) {
		e := queued(t)
		st, _ := e.Start("r1", "runc")
		mustApply(t, &e, st)
		st2, err := e.Start("r2", "runc")
		if err != nil || st2.Attempt != 2 {
			t.Fatalf("restart: %v attempt %d", err, st2.Attempt)
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
			if _, err := domain.Queue(s); domain.ErrorCode(err) != c.code {
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
