//go:build linux

package oci

import (
	"context"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// TestThePoolYieldsSlotsToRunsAndRefillsAfter: with every uid slot held by
// runs in flight, the pool starts nothing (it never takes a slot a run
// could need, and does not fail), and it fills up again once a run ended.
func TestThePoolYieldsSlotsToRunsAndRefillsAfter(t *testing.T) {
	logged := &testenv.SyncBuffer{}
	r := newSandbox(t, Config{Slots: 1, Warm: 1, Logger: slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	waitPool(t, r, "one waiting", func(s PoolStats) bool { return s.Waiting == 1 })
	sleeper := job("import time\ntime.sleep(60)\n", domain.Limits{TimeoutMs: 60000, MemoryBytes: 64 << 20, CPUMillicores: 100})
	type ended struct {
		res domain.Result
		err error
	}
	start := func() (context.CancelFunc, <-chan ended) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan ended, 1)
		go func() {
			res, err := r.Run(ctx, sleeper)
			done <- ended{res, err}
		}()
		return cancel, done
	}
	// Two runs on the two slots (one for runs, one for the pool): each
	// takes the container waiting for it.
	cancelA, doneA := start()
	waitScripts(t, r, 1)
	waitPool(t, r, "refilled after the first run", func(s PoolStats) bool { return s.Waiting == 1 })
	cancelB, doneB := start()
	waitScripts(t, r, 2)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logged.String(), "no warm container started") {
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not try to refill with every slot taken:\n%s", logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := r.PoolStats(); s.Waiting != 0 || s.Hits != 2 || s.Misses != 0 {
		t.Fatalf("with every slot held by runs: %+v", s)
	}
	cancelA()
	if e := <-doneA; e.err != nil || e.res.Verdict != domain.VerdictCancelled {
		t.Fatalf("first run: %+v %v", e.res, e.err)
	}
	waitPool(t, r, "refilled once a slot was free", func(s PoolStats) bool { return s.Waiting == 1 })
	cancelB()
	if e := <-doneB; e.err != nil || e.res.Verdict != domain.VerdictCancelled {
		t.Fatalf("second run: %+v %v", e.res, e.err)
	}
	assertClean(t, r)
}
