package kubernetes

import (
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// The pool's arithmetic without a cluster; the pool itself is tested on
// the test cluster (cluster_warm_test.go).

func TestPoolTarget(t *testing.T) {
	t0 := time.Now()
	wp := &warmPool{min: 1, max: 4, window: time.Minute, windowAt: t0}
	if got := wp.target(t0); got != 1 {
		t.Fatalf("idle: target %d, want the minimum 1", got)
	}
	var ends []func()
	for range 6 {
		ends = append(ends, wp.begin())
	}
	if got := wp.target(time.Now()); got != 4 {
		t.Fatalf("6 runs in flight: target %d, want the maximum 4", got)
	}
	for _, end := range ends[:4] {
		end()
	}
	// Two still in flight; the peak of this window (6) holds it at 4, and
	// in the next window the peak of the last one does.
	if got := wp.target(t0.Add(90 * time.Second)); got != 4 {
		t.Fatalf("one window later: target %d, want 4", got)
	}
	if got := wp.target(t0.Add(150 * time.Second)); got != 2 {
		t.Fatalf("two windows later: target %d, want the 2 in flight", got)
	}
	for _, end := range ends[4:] {
		end()
	}
	if got := wp.target(t0.Add(10 * time.Minute)); got != 1 {
		t.Fatalf("idle for long: target %d, want the minimum 1", got)
	}
}

// Runs that follow each other faster than a pod starts need more waiting
// pods than runs in flight: one more than begin while one starts.
func TestPoolTargetFollowsTheRate(t *testing.T) {
	t0 := time.Now()
	wp := &warmPool{min: 1, max: 10, window: 30 * time.Second, windowAt: t0, startDur: 1500 * time.Millisecond}
	for i := range 9 { // one at a time, 4 a second
		wp.recent = append(wp.recent, t0.Add(time.Duration(i)*250*time.Millisecond))
	}
	// 8 intervals over 2 s: 4 a second × 1.5 s = 6, plus one.
	if got := wp.target(t0.Add(2 * time.Second)); got != 7 {
		t.Fatalf("target %d, want 7", got)
	}
	// The rate decays once the runs stop: 8 over 8 s.
	if got := wp.target(t0.Add(8 * time.Second)); got != 3 {
		t.Fatalf("target %d, want 3", got)
	}
	wp.startDur = 10 * time.Second
	if got := wp.target(t0.Add(2 * time.Second)); got != 10 {
		t.Fatalf("target %d, want the maximum 10", got)
	}
	if got := wp.target(t0.Add(time.Minute)); got != 1 {
		t.Fatalf("idle: target %d, want the minimum 1", got)
	}
	// begin keeps the last recentRuns.
	for range 40 {
		wp.begin()()
	}
	if len(wp.recent) != recentRuns {
		t.Fatalf("%d runs remembered", len(wp.recent))
	}
}

func TestPoolBackoff(t *testing.T) {
	wp := &warmPool{}
	var got []time.Duration
	for range 9 {
		got = append(got, wp.backoff())
		wp.failures++
	}
	want := []time.Duration{0, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		time.Minute, time.Minute, time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", got, want)
		}
	}
}

func TestPoolFits(t *testing.T) {
	wp := &warmPool{max: 2, limits: domain.DefaultLimits}
	l := domain.DefaultLimits
	l.TimeoutMs = 30000 // the timeout travels with the script
	if !wp.fits(l) {
		t.Fatal("a run with the pool's memory and CPU and another timeout does not fit")
	}
	for _, other := range []domain.Limits{
		{TimeoutMs: 5000, MemoryBytes: 64 << 20, CPUMillicores: 100},
		{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 250},
	} {
		if wp.fits(other) {
			t.Fatalf("%+v fits a pool of %+v", other, wp.limits)
		}
	}
	if (&warmPool{limits: domain.DefaultLimits}).fits(domain.DefaultLimits) {
		t.Fatal("a pool of size 0 takes runs")
	}
}
