//go:build kubernetes

package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

func TestCancel(t *testing.T) {
	f := newFixture(t, nil)
	j := job(t, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		f.waitRunning(t, j)
		time.Sleep(500 * time.Millisecond)
		cancel()
	}()
	res, err := f.pods.Run(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != domain.VerdictCancelled {
		t.Fatalf("got %+v", res)
	}
	f.noPodLeft(t, j)
}

// TestRedelivery runs the same job twice at once: one pod, one run of the
// script, the same result for both.
func TestRedelivery(t *testing.T) {
	f := newFixture(t, nil)
	j := job(t, "import os, sys, time\nprint(os.urandom(8).hex(), flush=True)\nprint('to stderr', file=sys.stderr)\ntime.sleep(1)\n")
	var wg sync.WaitGroup
	results := make([]domain.Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(50 * time.Millisecond)
			}
			results[i], errs[i] = f.pods.Run(context.Background(), j)
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		if results[i].Verdict != domain.VerdictCompleted || len(results[i].Stdout) != 17 || results[i].Stderr != "to stderr\n" {
			t.Fatalf("run %d: %+v", i, results[i])
		}
	}
	if results[0].Stdout != results[1].Stdout {
		t.Fatalf("the script ran twice: %q and %q", results[0].Stdout, results[1].Stdout)
	}
	f.noPodLeft(t, j)
}

// TestRestart is a runner that stops mid-run (runner.ErrDetached) and its next
// life, which adopts the pod and reads the whole output from its log.
func TestRestart(t *testing.T) {
	f := newFixture(t, nil)
	j := job(t, "import sys, time\nprint('first life', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(3)\nsys.stdout.buffer.write(b'second life\\x00\\r\\xff')\n")
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		f.waitRunning(t, j)
		time.Sleep(time.Second)
		cancel(runner.ErrDetached)
	}()
	res, err := f.pods.Run(ctx, j)
	if err != nil || res.Verdict != domain.VerdictCancelled {
		t.Fatalf("first life: %+v, %v", res, err)
	}
	if _, err := f.client.CoreV1().Pods(f.ns).Get(context.Background(), podName(j.ExecutionID, j.Attempt), metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod is gone after a detached run: %v", err)
	}
	res, found, err := f.pods.Resume(context.Background(), j)
	if err != nil || !found || res.Verdict != domain.VerdictCompleted ||
		res.Stdout != "first life\nsecond life\x00\r\xff" || res.Stderr != "err\n" {
		t.Fatalf("second life: %+v, found %v, %v", res, found, err)
	}
	f.noPodLeft(t, j)
	// Nothing is left to resume, and Resume does not create a pod.
	res, found, err = f.pods.Resume(context.Background(), j)
	if err != nil || found {
		t.Fatalf("resume without a pod: %+v, found %v, %v", res, found, err)
	}
	f.noPodLeft(t, j)
}

// TestDetachAtAnyMoment: a runner that stops (runner.ErrDetached) at any
// point of a run — before the pod exists, while it starts, while the script
// is handed over or runs — never deletes the pod, and Resume then reports
// the one run's whole output (or finds no pod, when there was none yet: the
// runner then runs the script as a new attempt).
func TestDetachAtAnyMoment(t *testing.T) {
	f := newFixture(t, nil)
	f.pods.deliveryWait = 3 * time.Second
	for _, after := range []time.Duration{0, 20 * time.Millisecond, 150 * time.Millisecond, 500 * time.Millisecond,
		900 * time.Millisecond, 1300 * time.Millisecond, 2 * time.Second} {
		t.Run(after.String(), func(t *testing.T) {
			t.Parallel()
			j := job(t, "import time\nprint('one', flush=True)\ntime.sleep(1)\nprint('two')\n")
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(after, func() { cancel(runner.ErrDetached) })
			res, err := f.pods.Run(ctx, j)
			if err != nil {
				t.Fatalf("detached run: %v", err)
			}
			if res.Verdict != domain.VerdictCancelled {
				// It ended before the detach: a real result, pod deleted.
				if res.Verdict != domain.VerdictCompleted || res.Stdout != "one\ntwo\n" {
					t.Fatalf("got %+v", res)
				}
				f.noPodLeft(t, j)
				return
			}
			res, found, err := f.pods.Resume(context.Background(), j)
			switch {
			case err != nil:
				t.Fatalf("resume: %v", err)
			case !found:
				t.Logf("detached after %s: no pod yet, nothing to resume", after)
			case res.Verdict != domain.VerdictCompleted || res.Stdout != "one\ntwo\n":
				t.Fatalf("resumed: %+v", res)
			}
			f.noPodLeft(t, j)
		})
	}
}

// TestUndelivered: a runner created the pod and died before it handed the
// script over. The next one finds the pod waiting in vain, and runs the
// script in a fresh pod once the old one gave up.
func TestUndelivered(t *testing.T) {
	f := newFixture(t, nil)
	f.pods.deliveryWait = 3 * time.Second
	j := job(t, "print('ran')")
	if _, err := f.client.CoreV1().Pods(f.ns).Create(context.Background(), f.pods.podSpec(podName(j.ExecutionID, j.Attempt), j), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	res := f.run(t, j)
	if res.Verdict != domain.VerdictCompleted || res.Stdout != "ran\n" {
		t.Fatalf("got %+v", res)
	}
}

// TestRejected: pods the namespace's policies refuse are the platform's
// failure, with the API's reason in the error.
func TestRejected(t *testing.T) {
	t.Run("PodSecurity", func(t *testing.T) {
		f := newFixture(t, nil)
		f.pods.mutatePod = func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}
		_, err := f.pods.Run(context.Background(), job(t, "print('never')"))
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
	t.Run("LimitRange", func(t *testing.T) {
		f := newFixture(t, nil)
		_, err := f.client.CoreV1().LimitRanges(f.ns).Create(context.Background(), &corev1.LimitRange{
			ObjectMeta: metav1.ObjectMeta{Name: "small"},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.pods.Run(context.Background(), job(t, "print('never')"))
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "maximum memory usage per Container is 64Mi") {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
}

func TestGC(t *testing.T) {
	f := newFixture(t, nil)
	ended, running := job(t, "import time\ntime.sleep(30)"), job(t, "import time\ntime.sleep(30)")
	superseded := running
	running.Attempt = 2
	for _, j := range []runner.Job{ended, superseded, running} {
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() {
			f.waitRunning(t, j)
			cancel(runner.ErrDetached)
		}()
		if _, err := f.pods.Run(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	// The ledger: ended is terminal, running is at attempt 2.
	n, err := f.pods.GC(context.Background(), func(id string, attempt int) bool {
		return id == ended.ExecutionID || id == running.ExecutionID && attempt < running.Attempt
	})
	if err != nil || n != 2 {
		t.Fatalf("GC deleted %d pods, err %v", n, err)
	}
	f.noPodLeft(t, ended)
	f.noPodLeft(t, superseded)
	if _, err := f.client.CoreV1().Pods(f.ns).Get(context.Background(), podName(running.ExecutionID, running.Attempt), metav1.GetOptions{}); err != nil {
		t.Fatalf("GC deleted the pod of a running execution: %v", err)
	}
}

// TestConcurrentRuns: runs in flight at once keep to their own pods.
func TestConcurrentRuns(t *testing.T) {
	f := newFixture(t, nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := job(t, fmt.Sprintf("import sys\nprint(%d)\nprint(%d, file=sys.stderr)", i, -i))
			res, err := f.pods.Run(context.Background(), j)
			if err != nil || res.Verdict != domain.VerdictCompleted ||
				res.Stdout != fmt.Sprintf("%d\n", i) || res.Stderr != fmt.Sprintf("%d\n", -i) {
				t.Errorf("run %d: %+v %v", i, res, err)
			}
		}()
	}
	wg.Wait()
}
