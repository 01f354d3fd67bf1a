//go:build kubernetes

package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// poolPods lists the pods of f's namespace that wait in some warm pool.
func (f fixture) poolPods(t testing.TB) []string {
	t.Helper()
	list, err := f.client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: labelPool})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			names = append(names, pod.Name)
		}
	}
	return names
}

// waitPoolPods waits until n pool pods exist in the namespace.
func (f fixture) waitPoolPods(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(f.poolPods(t)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("pool pods %v, want %d", f.poolPods(t), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWarm is what the warm pool promises beyond the contract and the
// isolation suite, which run on it too (TestSandboxContract/Warm, the
// Warm cases of TestHardening, TestNetwork, TestForkBomb, TestSelfTest).
func TestWarm(t *testing.T) {
	t.Run("OK a run takes a waiting pod, which is deleted after it, and the pool refills", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 2, 1 })
		f.warm = true
		waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		waiting := f.poolPods(t)
		j := job(t, "import socket\nprint(socket.gethostname())")
		res := f.run(t, j)
		if res.Verdict != domain.VerdictCompleted || res.Stdout != waiting[0]+"\n" {
			t.Fatalf("got %+v, want it to run in %v", res, waiting)
		}
		if s := f.pods.PoolStats(); s.Hits != 1 || s.Misses != 0 {
			t.Fatalf("%+v", s)
		}
		waitPool(t, f.pods, "refilling", func(s PoolStats) bool { return s.Waiting == 1 })
		if now := f.poolPods(t); len(now) != 1 || now[0] == waiting[0] {
			t.Fatalf("pool pods %v after the run took %s", now, waiting[0])
		}
	})
	t.Run("OK the timeout, CPU time and wall time count from the script's start", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 1, 1 })
		f.warm = true
		// The pod waited a while before the run: none of it counts.
		waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		time.Sleep(2 * time.Second)
		j := job(t, "print('spin', flush=True)\nwhile True: pass\n")
		j.Limits.TimeoutMs = 700 // the pool's pods were made for 5 s
		res := f.run(t, j)
		if res.Verdict != domain.VerdictTimeout || res.Stdout != "spin\n" {
			t.Fatalf("got %+v", res)
		}
		if u := res.Usage; u.WallTimeMs < 700 || u.WallTimeMs > 1500 || u.CPUTimeMs > u.WallTimeMs {
			t.Fatalf("usage %+v for a 700 ms timeout at 100m CPU", u)
		}
		res = f.run(t, job(t, `print("hi")`))
		if res.Verdict != domain.VerdictCompleted || res.Usage.CPUTimeMs < 1 || res.Usage.CPUTimeMs > 50 {
			// Python's start-up alone takes some 20 ms of CPU; the
			// supervisor started long before and it is not the script's.
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("OK other memory or CPU than the pool's: a pod of its own, with its limits", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 1, 1 })
		waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		for _, l := range []domain.Limits{
			{TimeoutMs: 5000, MemoryBytes: 64 << 20, CPUMillicores: 100},
			{TimeoutMs: 5000, MemoryBytes: 128 << 20, CPUMillicores: 250},
		} {
			j := job(t, `print(open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip(), open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read().strip())`)
			j.Limits = l
			res := f.run(t, j)
			if want := fmt.Sprintf("%d %d\n", l.MemoryBytes, l.CPUMillicores*100); res.Verdict != domain.VerdictCompleted || res.Stdout != want {
				t.Fatalf("got %+v, want %q", res, want)
			}
		}
		if s := f.pods.PoolStats(); s.Hits != 0 || s.Misses != 2 || s.Waiting != 1 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("OK a pod runs one script only", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 2, 2 })
		f.warm = true
		script := `import glob, os, socket
found = glob.glob("/tmp/mark-*") + glob.glob("/sandbox/mark-*")
for d in ("/tmp", "/sandbox"):
    open(d + "/mark-%d" % os.getpid(), "w").write("x")
print(socket.gethostname(), found)
`
		seen := map[string]bool{}
		for range 4 {
			waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 2 })
			res := f.run(t, job(t, script))
			host, found, _ := strings.Cut(strings.TrimSpace(res.Stdout), " ")
			if res.Verdict != domain.VerdictCompleted || found != "[]" || seen[host] {
				t.Fatalf("a run met an earlier run's pod or traces: %+v", res)
			}
			seen[host] = true
		}
	})
	t.Run("OK the pool grows with demand and shrinks when idle", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 3, 1 })
		f.pods.pool.mu.Lock()
		// Demand is remembered for one to two windows: long enough for
		// three pods to start on a loaded machine (2 s was not: the pool
		// shrank back before it had grown), short enough to see it shrink
		// within waitPool's two minutes.
		f.pods.pool.window = 15 * time.Second
		f.pods.pool.mu.Unlock()
		waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := f.pods.Run(context.Background(), job(t, "import time\ntime.sleep(2)\n"))
				if err != nil || res.Verdict != domain.VerdictCompleted {
					t.Errorf("%+v %v", res, err)
				}
			}()
		}
		wg.Wait()
		waitPool(t, f.pods, "growing to the 3 runs in flight", func(s PoolStats) bool { return s.Waiting == 3 })
		waitPool(t, f.pods, "shrinking when idle", func(s PoolStats) bool { return s.Waiting == 1 })
		f.waitPoolPods(t, 1)
	})
	t.Run("OK closing deletes the waiting pods", func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 2, 2 })
		waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 2 })
		if err := f.pods.Close(); err != nil {
			t.Fatal(err)
		}
		f.waitPoolPods(t, 0)
	})
}

// TestWarmRestart is a runner that stops while the script of a pod it
// claimed runs, and its next life: the pod is found by its execution and
// attempt and resumed, the waiting pods of the earlier life are deleted,
// and GC treats the claimed pod as the pod of its run.
func TestWarmRestart(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin, c.PoolOwner = 2, 2, "runner-a" })
	waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 2 })
	j := job(t, "import sys, time\nprint('first life', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(3)\nprint('second life')\n")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(time.Second, func() { cancel(runner.ErrDetached) })
	res, err := f.pods.Run(ctx, j)
	if err != nil || res.Verdict != domain.VerdictCancelled {
		t.Fatalf("first life: %+v, %v", res, err)
	}
	if s := f.pods.PoolStats(); s.Hits != 1 {
		t.Fatalf("the first life did not claim a warm pod: %+v", s)
	}
	// The first life dies without closing its pool: its waiting pods stay.
	old := f.pods.pool
	old.cancel()
	old.wg.Wait()
	waitingBefore := f.poolPods(t)
	if len(waitingBefore) == 0 {
		t.Fatal("no waiting pod left by the first life")
	}
	next, err := New(Config{Kubeconfig: kubeconfig(t), Image: testImage, Namespace: f.ns, Warm: 1, PoolOwner: "runner-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	res, found, err := next.Resume(context.Background(), j)
	if err != nil || !found || res.Verdict != domain.VerdictCompleted || res.Stdout != "first life\nsecond life\n" || res.Stderr != "err\n" {
		t.Fatalf("second life: %+v, found %v, %v", res, found, err)
	}
	f.noPodLeft(t, j)
	// The earlier life's waiting pods are gone, the new life's wait.
	waitPool(t, next, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
	deadline := time.Now().Add(time.Minute)
	for {
		now := f.poolPods(t)
		if len(now) == 1 && !strings.Contains(strings.Join(waitingBefore, " "), now[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool pods %v; the earlier life's were %v", now, waitingBefore)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// GC: a claimed pod is its run's (kept while its attempt is current,
	// collected once it is stale); a waiting pod of a live pool is kept.
	j2 := job(t, "import time\ntime.sleep(30)")
	ctx, cancel = context.WithCancelCause(context.Background())
	time.AfterFunc(time.Second, func() { cancel(runner.ErrDetached) })
	if _, err := next.Run(ctx, j2); err != nil {
		t.Fatal(err)
	}
	if n, err := next.GC(context.Background(), func(string, int) bool { return false }); err != nil || n != 0 {
		t.Fatalf("GC of nothing stale deleted %d pods, err %v", n, err)
	}
	sel := labels.SelectorFromSet(podLabels(j2.ExecutionID, j2.Attempt)).String()
	list, err := f.client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil || len(list.Items) != 1 || !strings.HasPrefix(list.Items[0].Name, "warm-") {
		t.Fatalf("the claimed pod of a running execution: %+v, %v", list, err)
	}
	n, err := next.GC(context.Background(), func(id string, _ int) bool { return id == j2.ExecutionID })
	if err != nil || n != 1 {
		t.Fatalf("GC deleted %d pods, err %v", n, err)
	}
	f.noPodLeft(t, j2)
}

// TestWarmUndelivered: a runner claimed a waiting pod and died before it
// handed the script over. The pod's supervisor would wait until the
// pool's age limit; the runner that resumes the attempt sees that the
// script never arrived, deletes the pod and runs the script once, in a
// pod of its own.
func TestWarmUndelivered(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Warm, c.WarmMin = 1, 1 })
	f.pods.deliveryWait = 3 * time.Second
	waitPool(t, f.pods, "filling", func(s PoolStats) bool { return s.Waiting == 1 })
	j := job(t, "print('ran')")
	w := f.pods.pool.take()
	if w == nil {
		t.Fatal("no waiting pod")
	}
	if _, err := f.pods.claim(context.Background(), w, j, f.pods.pool); err != nil {
		t.Fatal(err)
	}
	res, found, err := f.pods.Resume(context.Background(), j)
	if err != nil || !found || res.Verdict != domain.VerdictCompleted || res.Stdout != "ran\n" {
		t.Fatalf("got %+v, found %v, %v", res, found, err)
	}
	f.noPodLeft(t, j)
}
