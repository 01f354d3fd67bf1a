package domain_test

import (
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// sealPlain stands in for sealing: the domain only carries the result.
func sealPlain(in domain.Input) (domain.Sealed, error) {
	return domain.Sealed("sealed(" + in.Script + "|" + in.Stdin + ")"), nil
}

func TestQueueSealsTheContent(t *testing.T) {
	ev, err := domain.Queue(domain.Spec{Language: "python", Version: "3.11", Script: "print(1)", Stdin: "in",
		Limits: domain.DefaultLimits, Owner: "a"}, sealPlain)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Input != "sealed(print(1)|in)" {
		t.Fatalf("input %q", ev.Input)
	}
	var e domain.Execution
	if err := e.Apply("x", 1, time.Now(), ev); err != nil {
		t.Fatal(err)
	}
	if e.SealedInput != ev.Input || e.Script != "" {
		t.Fatalf("state holds %q / %q", e.SealedInput, e.Script)
	}
	t.Run("ErrSealFails", func(t *testing.T) {
		_, err := domain.Queue(domain.Spec{Language: "python", Version: "3.11", Script: "x", Limits: domain.DefaultLimits, Owner: "a"},
			func(domain.Input) (domain.Sealed, error) { return "", domain.Errorf(domain.ECONFLICT, "erased") })
		if domain.ErrorCode(err) != domain.ECONFLICT {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("InvalidIsRefusedBeforeSealing", func(t *testing.T) {
		_, err := domain.Queue(domain.Spec{Language: "python", Version: "3.11", Script: "", Limits: domain.DefaultLimits, Owner: "a"},
			func(domain.Input) (domain.Sealed, error) { t.Fatal("sealed an invalid spec"); return "", nil })
		if domain.ErrorCode(err) != domain.EUNPROCESSABLE {
			t.Fatalf("got %v", err)
		}
	})
}

func TestErase(t *testing.T) {
	ended := func(t *testing.T) domain.Execution {
		e := queued(t)
		start, _ := e.Start("r1", "runc")
		mustApply(t, &e, start)
		fin, _ := e.Finish(domain.Result{Verdict: domain.VerdictRuntimeErr, ExitCode: domain.IntPtr(1), Output: "sealed-out", Message: "exited with 1"})
		mustApply(t, &e, fin)
		return e
	}
	t.Run("OK", func(t *testing.T) {
		e := ended(t)
		evs, err := e.Erase(domain.EraseRequested)
		if err != nil || len(evs) != 1 || evs[0] != (domain.ExecutionErased{Reason: domain.EraseRequested}) {
			t.Fatalf("%v %v", evs, err)
		}
		at := time.Now()
		if err := e.Apply(e.ID, e.Sequence+1, at, evs[0]); err != nil {
			t.Fatal(err)
		}
		if !e.Erased || e.ErasedAt == nil || !e.ErasedAt.Equal(at.UTC()) || e.SealedInput != "" || e.SealedOutput != "" ||
			e.Script != "" || e.Output != "" || e.Errors != "" || e.Status != domain.StatusFailed || e.Sequence != 4 {
			t.Fatalf("after erasure: %+v", e)
		}
		// The verdict and the figures stay: they are not content.
		if e.FailureReason != domain.VerdictRuntimeErr || *e.ExitCode != 1 {
			t.Fatalf("lost the verdict: %+v", e)
		}
		again, err := e.Erase(domain.EraseRetention)
		if err != nil || len(again) != 0 {
			t.Fatalf("erasing twice: %v %v", again, err)
		}
		// Reveal after erasure reveals nothing new.
		e.Reveal(nil, nil)
		if e.Script != "" {
			t.Fatal("revealed")
		}
	})
	for name, state := range map[string]func(t *testing.T) domain.Execution{
		"ErrQueued": queued,
		"ErrRunning": func(t *testing.T) domain.Execution {
			e := queued(t)
			s, _ := e.Start("r1", "runc")
			mustApply(t, &e, s)
			return e
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := state(t)
			if _, err := e.Erase(domain.EraseRequested); domain.ErrorCode(err) != domain.ECONFLICT {
				t.Fatalf("erased a live execution: %v", err)
			}
		})
	}
	t.Run("ErrUnknownReason", func(t *testing.T) {
		e := ended(t)
		if _, err := e.Erase("because"); domain.ErrorCode(err) != domain.EINVALID {
			t.Fatalf("got %v", err)
		}
	})
}

func TestRevealComposesErrorsAsTheAPIShowsThem(t *testing.T) {
	for name, c := range map[string]struct {
		res    domain.Result
		stderr string
		want   string
	}{
		"RuntimeErrorIsStderrAlone": {domain.Result{Verdict: domain.VerdictRuntimeErr, Message: "exited with 1"}, "Traceback\n", "Traceback\n"},
		"TimeoutAddsTheMessage":     {domain.Result{Verdict: domain.VerdictTimeout, Message: "timed out after 5s"}, "partial", "partial\ntimed out after 5s"},
		"NewlineKept":               {domain.Result{Verdict: domain.VerdictTimeout, Message: "timed out"}, "line\n", "line\ntimed out"},
		"NoStderr":                  {domain.Result{Verdict: domain.VerdictTimeout, Message: "timed out"}, "", "timed out"},
	} {
		t.Run(name, func(t *testing.T) {
			e := queued(t)
			s, _ := e.Start("r1", "runc")
			mustApply(t, &e, s)
			fin, _ := e.Finish(c.res)
			mustApply(t, &e, fin)
			e.Reveal(&domain.Input{Script: "print(1)"}, &domain.Output{Stdout: "out", Stderr: c.stderr})
			if e.Errors != c.want || e.Output != "out" || e.Script != "print(1)" {
				t.Fatalf("errors %q output %q script %q", e.Errors, e.Output, e.Script)
			}
		})
	}
}
