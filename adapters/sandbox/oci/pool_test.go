//go:build linux

package oci

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// pause keeps the pool from starting or ending containers until resume,
// once a start in flight is over, and returns the ids of the containers
// waiting: what a host check must not take for a run's leftovers.
func (p *warmPool) pause(t *testing.T) map[string]bool {
	t.Helper()
	p.r.settle()
	deadline := time.Now().Add(readyTimeout + time.Second)
	for {
		p.mu.Lock()
		p.paused = true
		if p.starting == 0 && p.ending == 0 {
			ids := map[string]bool{}
			for _, w := range p.idle {
				ids[w.c.id] = true
			}
			p.mu.Unlock()
			return ids
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the warm pool's start in flight did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *warmPool) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
	p.wake()
}

// ofWaiting reports whether a leftover's description (a bundle, container
// or cgroup, see Runc.leftovers) names a waiting container.
func ofWaiting(left string, waiting map[string]bool) bool {
	i := strings.LastIndexAny(left, " /")
	return waiting[left[i+1:]]
}

// waitPool polls the pool until ok holds, for at most 30 s.
func waitPool(t *testing.T, r *Runc, what string, ok func(PoolStats) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok(r.PoolStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the pool is at %+v after 30 s", what, r.PoolStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// limitsScript prints the limits the script finds on itself.
const limitsScript = `import resource
def read(p):
    return open(p).read().strip()
print(read("/sys/fs/cgroup/memory/memory.limit_in_bytes"), read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
      resource.getrlimit(resource.RLIMIT_CPU)[0])
`

// TestWarm is what the warm pool promises beyond the contract and the
// hostile suite, which run on it too (TestSandboxContract, TestHostile).
func TestWarm(t *testing.T) {
	t.Run("OK a run takes a waiting container and the pool refills", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 2, Warm: 2, WarmMin: 1})
		waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		res := run(t, r, job(`print("warm")`, domain.DefaultLimits))
		wantVerdict(t, res, domain.VerdictCompleted)
		if s := r.PoolStats(); s.Hits != 1 || s.Misses != 0 {
			t.Fatalf("the run did not take the waiting container: %+v", s)
		}
		waitPool(t, r, "refilling", func(s PoolStats) bool { return s.Waiting >= 1 })
		assertClean(t, r)
	})
	t.Run("OK the script's own limits replace the pool's before it starts", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 2, Warm: 1, WarmLimits: domain.DefaultLimits})
		for _, l := range []domain.Limits{
			{TimeoutMs: 3000, MemoryBytes: 64 << 20, CPUMillicores: 250},
			{TimeoutMs: 20000, MemoryBytes: 300 << 20, CPUMillicores: 1000},
		} {
			waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
			res := run(t, r, job(limitsScript, l))
			wantVerdict(t, res, domain.VerdictCompleted)
			want := fmt.Sprintf("%d %d %d\n", l.MemoryBytes, cpuQuotaMicros(l), cpuBackstopSeconds(l))
			if res.Stdout != want {
				t.Fatalf("limits inside %q, want %q", res.Stdout, want)
			}
		}
		// And they hold: more than the pool's memory where the script may,
		// less where it may not.
		waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		res := run(t, r, job("a = bytearray(200 << 20)\nprint(len(a) >> 20)\n", domain.Limits{TimeoutMs: 20000, MemoryBytes: 300 << 20, CPUMillicores: 1000}))
		wantVerdict(t, res, domain.VerdictCompleted)
		waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		res = run(t, r, job("a = bytearray(100 << 20)\n", domain.Limits{TimeoutMs: 20000, MemoryBytes: 64 << 20, CPUMillicores: 1000}))
		wantVerdict(t, res, domain.VerdictMemoryLimit)
		if s := r.PoolStats(); s.Hits != 4 {
			t.Fatalf("not every run took a waiting container: %+v", s)
		}
	})
	t.Run("OK a container runs one script only", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 2, Warm: 2, WarmMin: 2})
		// Each run leaves marks where a script can write, and finds none
		// of an earlier run's.
		script := `import glob, os
found = glob.glob("/tmp/mark-*") + glob.glob("/dev/shm/mark-*")
for d in ("/tmp", "/dev/shm"):
    open(d + "/mark-%d" % os.getpid(), "w").write("x")
import sys
found += sorted(m for m in sys.modules if m.startswith("mark"))
sys.modules["marked"] = sys
print(found)
`
		for range 4 {
			waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 2 })
			res := run(t, r, job(script, domain.DefaultLimits))
			wantVerdict(t, res, domain.VerdictCompleted)
			if res.Stdout != "[]\n" {
				t.Fatalf("a run found an earlier run's traces: %q", res.Stdout)
			}
		}
		if s := r.PoolStats(); s.Hits != 4 {
			t.Fatalf("not every run took a waiting container: %+v", s)
		}
	})
	t.Run("OK the pool grows with demand and shrinks when idle", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 3, Warm: 3, WarmMin: 1})
		r.pool.mu.Lock()
		r.pool.window = time.Second
		r.pool.mu.Unlock()
		waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		done := make(chan domain.Result, 3)
		for range 3 {
			go func() {
				res, _ := r.Run(context.Background(), job("import time\ntime.sleep(1)\n", domain.Limits{TimeoutMs: 20000, MemoryBytes: 64 << 20, CPUMillicores: 100}))
				done <- res
			}()
		}
		for range 3 {
			wantVerdict(t, <-done, domain.VerdictCompleted)
		}
		waitPool(t, r, "growing to the 3 runs in flight", func(s PoolStats) bool { return s.Waiting == 3 })
		waitPool(t, r, "shrinking when idle", func(s PoolStats) bool { return s.Waiting == 1 })
		assertClean(t, r)
	})
	t.Run("OK closing ends the waiting containers", func(t *testing.T) {
		r := newSandbox(t, Config{Slots: 1, Warm: 2, WarmMin: 2})
		waitPool(t, r, "filling", func(s PoolStats) bool { return s.Waiting == 2 })
		parent := r.cgroups.parent
		if procs := processesUnder(t, parent); len(procs) != 2 {
			t.Fatalf("waiting containers' processes: %v", procs)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if procs := processesUnder(t, parent); len(procs) != 0 {
			t.Fatalf("processes left after Close: %v", procs)
		}
		if left, err := r.leftovers(); err != nil || len(left) != 0 {
			t.Fatalf("left after Close: %v %v", left, err)
		}
	})
}

// scriptProcesses lists the processes of r's containers that run a
// script: those of waiting containers run the bootstrap, whose command
// line names the script's path too, and are left out (the containers
// waiting before and after the listing, so that one that started meanwhile
// is not taken for a script).
func scriptProcesses(t *testing.T, r *Runc) []string {
	t.Helper()
	waiting := r.pool.waitingIDs()
	procs := processesUnder(t, r.cgroups.parent, waiting)
	after := r.pool.waitingIDs()
	var out []string
	for _, p := range procs {
		if !strings.Contains(p, scriptPath) {
			continue
		}
		if pid, _, _ := strings.Cut(p, " "); !inWaiting(pid, r, after) {
			out = append(out, p)
		}
	}
	return out
}

func (p *warmPool) waitingIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := map[string]bool{}
	for _, w := range p.idle {
		ids[w.c.id] = true
	}
	return ids
}

// inWaiting reports whether pid runs in one of the waiting containers.
func inWaiting(pid string, r *Runc, waiting map[string]bool) bool {
	cg, ok := pidsCgroup(pid)
	return ok && strings.HasPrefix(cg, r.cgroups.parent+"/") && waiting[cg[strings.LastIndex(cg, "/")+1:]]
}
