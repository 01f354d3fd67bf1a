package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/internal/testenv"
)

// flakySandbox fails its first self-tests.
type flakySandbox struct{ failures int }

func (f *flakySandbox) SelfTest(context.Context) error {
	if f.failures > 0 {
		f.failures--
		return errors.New("no seccomp")
	}
	return nil
}

func TestProveSandbox(t *testing.T) {
	old := selfTestRetry
	selfTestRetry.first, selfTestRetry.max = 10*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { selfTestRetry = old })
	platformFor := func(role string) *platform {
		p := &platform{role: role, log: testenv.Quiet(), reg: prometheus.NewRegistry()}
		p.ready.set(errors.New("starting"))
		return p
	}
	// metric reads a gauge, or the counter of the given label value.
	metric := func(p *platform, name, label string) float64 {
		mfs, err := p.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if label == "" {
					return m.GetGauge().GetValue()
				}
				if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
		t.Fatalf("no %s %s", name, label)
		return 0
	}
	t.Run("ErrUpGivesUpAtOnce", func(t *testing.T) {
		p := platformFor("up")
		sb := &flakySandbox{failures: 1}
		err := p.proveSandbox(t.Context(), sb)
		if err == nil || !strings.Contains(err.Error(), "refusing to run scripts") {
			t.Fatalf("got %v", err)
		}
		if got := metric(p, "integr8scode_sandbox_selftest_ok", ""); got != 0 {
			t.Errorf("selftest_ok %v after a failure", got)
		}
	})
	t.Run("OK a runner stays, not ready, until a self-test passes", func(t *testing.T) {
		p := platformFor("runner")
		sb := &flakySandbox{failures: 3}
		if err := p.proveSandbox(t.Context(), sb); err != nil {
			t.Fatal(err)
		}
		if got := metric(p, "integr8scode_sandbox_selftest_ok", ""); got != 1 {
			t.Errorf("selftest_ok %v after a pass", got)
		}
		failed := metric(p, "integr8scode_sandbox_selftests_total", "failed")
		if failed != 3 {
			t.Errorf("%v failed self-tests counted, want 3", failed)
		}
	})
	t.Run("ErrRunnerStopsWaitingWhenTheProcessStops", func(t *testing.T) {
		p := platformFor("runner")
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		err := p.proveSandbox(ctx, &flakySandbox{failures: 1 << 30})
		if err == nil {
			t.Fatal("a cancelled wait for a self-test returned no error")
		}
		if r := p.ready.get(); r == nil || !strings.Contains(r.Error(), "self-test failed") {
			t.Errorf("readiness while failing: %v", r)
		}
	})
}
