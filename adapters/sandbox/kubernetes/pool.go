package kubernetes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// warmPool keeps pods created, started and waiting for a script, so that a
// run skips the pod's creation, the kubelet's set-up and its relist (about
// a second, see doc.go) and Python's start-up. Each pod runs one script at
// most: a run claims it (claim) and deletes it after that run, like a pod
// of its own. How many wait follows demand, as in the runc sandbox's pool:
// as many as runs were in flight at once over the last minute or so, within
// [min, max]; an idle platform keeps min. Pods that waited WarmMaxAge are
// replaced.
//
// A waiting pod is labelled with the pool's owner (Config.PoolOwner) and
// this process's life (a random id), and has no execution: GC and the
// resumption of runs never take it for a run's pod. A claim relabels it
// as the pod of one execution and attempt, so that from then on it is
// found, resumed and collected exactly as a pod created for the run.
type warmPool struct {
	p        *Pods
	min, max int
	limits   domain.Limits
	maxAge   time.Duration
	life     string
	window   time.Duration // demandWindow; shorter in tests

	mu       sync.Mutex
	idle     []*warmPod // oldest first
	starting int
	inFlight int
	peak     [2]int
	recent   []time.Time   // when the last runs began (at most recentRuns), oldest first
	startDur time.Duration // how long a pod takes from creation to running (a moving average)
	windowAt time.Time
	closed   bool
	hits     int64
	misses   int64
	failedAt time.Time // the last pod that failed to start: slows refills
	failures int       // pods that failed to start in a row

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and the pods' keepers
	kick   chan struct{}
}

// warmPod is a pod of the pool that runs, waiting for a script.
type warmPod struct {
	name    string
	born    time.Time
	started time.Time          // the pod's status.startTime, which activeDeadlineSeconds counts from
	stop    context.CancelFunc // ends its keeper's watch
}

const (
	// demandWindow is half of how long a burst of runs keeps the pool
	// sized for it.
	demandWindow = 30 * time.Second
	// poolTick is how often the pool looks at its size without a kick.
	poolTick = 2 * time.Second
	// maxStarting bounds the pods the pool starts at once: starting a pod
	// takes the node's container runtime a moment of CPU, which runs in
	// flight need more.
	maxStarting = 6
	// recentRuns is how many of the last runs' beginnings the pool keeps
	// to estimate their rate.
	recentRuns = 16
	// waitSlack is how long past WarmMaxAge a waiting pod's supervisor
	// waits before it gives up by itself (the pool replaces it before).
	waitSlack = time.Minute
)

func newWarmPool(p *Pods) *warmPool {
	ctx, cancel := context.WithCancel(context.Background())
	wp := &warmPool{p: p, min: p.cfg.WarmMin, max: p.cfg.Warm, limits: p.cfg.WarmLimits, maxAge: p.cfg.WarmMaxAge,
		life: randomHex(5), window: demandWindow, windowAt: time.Now(), ctx: ctx, cancel: cancel,
		kick: make(chan struct{}, 1)}
	if wp.max == 0 {
		return wp
	}
	wp.wg.Add(1)
	go wp.loop()
	return wp
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fits tells whether a run with limits can take a waiting pod: memory and
// CPU are fixed in a live pod's spec; the timeout travels with the script.
func (wp *warmPool) fits(l domain.Limits) bool {
	return wp.max > 0 && l.MemoryBytes == wp.limits.MemoryBytes && l.CPUMillicores == wp.limits.CPUMillicores
}

// begin counts a run in flight for the demand; the returned func ends it.
func (wp *warmPool) begin() func() {
	wp.mu.Lock()
	wp.inFlight++
	wp.roll(time.Now())
	wp.peak[0] = max(wp.peak[0], wp.inFlight)
	if len(wp.recent) == recentRuns {
		wp.recent = append(wp.recent[:0], wp.recent[1:]...)
	}
	wp.recent = append(wp.recent, time.Now())
	wp.mu.Unlock()
	wp.wake()
	return func() {
		wp.mu.Lock()
		wp.inFlight--
		wp.mu.Unlock()
	}
}

// take hands out the pod that waited least (the oldest are the first to be
// replaced), or nil when none waits. Its keeper stops watching it: the
// pod is the run's from here.
func (wp *warmPool) take() *warmPod {
	wp.mu.Lock()
	defer wp.mu.Unlock()
	if wp.max == 0 {
		return nil
	}
	defer wp.wake()
	if len(wp.idle) == 0 {
		wp.misses++
		return nil
	}
	wp.hits++
	w := wp.idle[len(wp.idle)-1]
	wp.idle = wp.idle[:len(wp.idle)-1]
	w.stop()
	return w
}

// miss counts a run that could not use the pool (its limits differ).
func (wp *warmPool) miss() {
	if wp.max == 0 {
		return
	}
	wp.mu.Lock()
	wp.misses++
	wp.mu.Unlock()
}

// roll moves the demand windows on. Called with mu held.
func (wp *warmPool) roll(now time.Time) {
	for now.Sub(wp.windowAt) >= wp.window {
		wp.peak[1], wp.peak[0] = wp.peak[0], wp.inFlight
		wp.windowAt = wp.windowAt.Add(wp.window)
		if now.Sub(wp.windowAt) >= 2*wp.window {
			wp.peak[1], wp.windowAt = wp.inFlight, now
		}
	}
}

// target is how many pods should wait now: as many as runs were in flight
// at once lately, and, while runs keep coming, one more than begin while a
// pod starts (a pod takes a second or so to start, so runs that follow
// each other faster than that would drain a pool sized by concurrency
// alone; the rate is that of the last runs up to now, so it decays as
// soon as they stop). Called with mu held.
func (wp *warmPool) target(now time.Time) int {
	wp.roll(now)
	need := max(wp.peak[0], wp.peak[1], wp.min)
	i := 0
	for i < len(wp.recent) && now.Sub(wp.recent[i]) > wp.window {
		i++
	}
	if n := len(wp.recent) - i; n >= 2 && wp.startDur > 0 {
		rate := float64(n-1) / max(now.Sub(wp.recent[i]).Seconds(), 1e-3)
		need = max(need, int(math.Ceil(rate*wp.startDur.Seconds()))+1)
	}
	return min(need, wp.max)
}

func (wp *warmPool) wake() {
	select {
	case wp.kick <- struct{}{}:
	default:
	}
}

// loop starts pods while fewer wait (or start) than the target, and
// deletes those past it or past maxAge.
func (wp *warmPool) loop() {
	defer wp.wg.Done()
	wp.collectPreviousLives()
	tick := time.NewTicker(poolTick)
	defer tick.Stop()
	for {
		now := time.Now()
		wp.mu.Lock()
		if wp.closed || wp.ctx.Err() != nil {
			wp.mu.Unlock()
			return
		}
		target := wp.target(now)
		var drop []*warmPod
		for len(wp.idle) > 0 && (len(wp.idle) > target || now.Sub(wp.idle[0].born) > wp.maxAge) {
			drop = append(drop, wp.idle[0])
			wp.idle = wp.idle[1:]
		}
		for len(wp.idle)+wp.starting < target && wp.starting < maxStarting && now.Sub(wp.failedAt) >= wp.backoff() {
			wp.starting++
			wp.wg.Add(1)
			go wp.keep()
		}
		wp.mu.Unlock()
		for _, w := range drop {
			w.stop()
			wp.p.cleanup(context.Background(), w.name, wp.p.log.With("pod", w.name))
		}
		select {
		case <-wp.ctx.Done():
		case <-tick.C:
		case <-wp.kick:
		}
	}
}

// keep creates one pod, waits until its container runs, offers it to runs,
// and watches it while it waits: a pod that ends or vanishes while it
// waits leaves the pool (and is deleted).
func (wp *warmPool) keep() {
	defer wp.wg.Done()
	name := "warm-" + randomHex(6)
	log := wp.p.log.With("pod", name)
	ctx, stop := context.WithCancel(wp.ctx)
	defer stop()
	w := &warmPod{name: name, stop: stop}
	begin := time.Now()
	running, err := wp.start(ctx, name)
	wp.mu.Lock()
	wp.starting--
	if err == nil {
		d := time.Since(begin)
		if wp.startDur == 0 {
			wp.startDur = d
		}
		wp.startDur = (wp.startDur*7 + d*3) / 10
	}
	added := err == nil && ctx.Err() == nil && !wp.closed
	if added {
		wp.failures = 0
		w.born, w.started = time.Now(), w.born
		if st := running.Status.StartTime; st != nil {
			w.started = st.Time
		}
		wp.idle = append(wp.idle, w)
	} else if err != nil && ctx.Err() == nil {
		wp.failedAt = time.Now()
		wp.failures++
	}
	wp.mu.Unlock()
	wp.wake()
	if !added {
		if err != nil && ctx.Err() == nil {
			log.Warn("a pod of the warm pool did not start", "err", err)
		}
		wp.p.cleanup(context.Background(), name, log)
		return
	}
	log.Debug("warm pod waiting for a script", "started_in", w.born.Sub(begin).Round(time.Millisecond))
	// Watch it while it waits; a claim stops the watch (take).
	w2, err := wp.p.watchPod(ctx, running)
	if err == nil {
		defer w2.stop()
		for !w2.gone {
			if cs := container(w2.cur); cs == nil || cs.State.Running == nil || w2.cur.DeletionTimestamp != nil {
				break
			}
			ev, ok := <-w2.events()
			if ctx.Err() != nil {
				return // taken, dropped or closed
			}
			if err := w2.apply(ctx, ev, ok); err != nil {
				break
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	wp.mu.Lock()
	for i, x := range wp.idle {
		if x == w {
			wp.idle = append(wp.idle[:i:i], wp.idle[i+1:]...)
			wp.mu.Unlock()
			log.Info("a waiting pod of the warm pool ended; replacing it", "err", err)
			wp.p.cleanup(context.Background(), name, log)
			wp.wake()
			return
		}
	}
	wp.mu.Unlock() // taken meanwhile: the run's now
}

// backoff is how long the pool waits after a pod failed to start before
// it starts another: doubling from poolTick up to a minute while starts
// keep failing (a cluster that refuses the pods, say), so that the runs,
// which create their own pods meanwhile, are not slowed by futile ones.
// Called with mu held.
func (wp *warmPool) backoff() time.Duration {
	if wp.failures == 0 {
		return 0
	}
	return min(poolTick<<min(wp.failures-1, 5), time.Minute)
}

// start creates a pool pod and waits until its container runs.
func (wp *warmPool) start(ctx context.Context, name string) (*corev1.Pod, error) {
	pod, err := wp.p.pods().Create(ctx, wp.p.warmSpec(name, wp), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wp.p.cfg.StartTimeout)
	defer cancel()
	w, err := wp.p.watchPod(ctx, pod)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	for {
		if w.gone {
			return nil, fmt.Errorf("deleted before it ran")
		}
		cs := container(w.cur)
		if err := startFailure(w.cur, cs); err != nil {
			return nil, err
		}
		if cs != nil && cs.State.Terminated != nil {
			return nil, fmt.Errorf("its container ended before it was used: %s, exit code %d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		}
		if cs != nil && cs.State.Running != nil {
			return w.cur, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.events():
			if err := w.apply(ctx, ev, ok); err != nil {
				return nil, err
			}
		}
	}
}

// claim makes a taken pod the pod of job's execution and attempt: one
// JSON patch, conditional on the pod still being of this pool's life, that
// swaps the pool's labels for the run's, notes when it was claimed, and
// sets the pod's activeDeadlineSeconds (unset while it waited) to a
// backstop for this run. It returns the pod as the API server has it now.
func (p *Pods) claim(ctx context.Context, w *warmPod, job runner.Job, pool *warmPool) (*corev1.Pod, error) {
	// The deadline counts from the pod's start (whole seconds: + 1 s):
	// its age, the wait for the script, the timeout and the slack, as for
	// a pod created for the run.
	age := time.Since(w.started) + time.Second
	backstop := age + p.deliveryWait + job.Limits.Timeout() + deadlineSlack
	esc := func(k string) string { return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1") }
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/labels/" + esc(labelPoolLife), "value": pool.life},
		{"op": "remove", "path": "/metadata/labels/" + esc(labelPoolLife)},
		{"op": "remove", "path": "/metadata/labels/" + esc(labelPool)},
		{"op": "add", "path": "/metadata/labels/" + esc(labelExecution), "value": executionKey(job.ExecutionID)},
		{"op": "add", "path": "/metadata/labels/" + esc(labelAttempt), "value": strconv.Itoa(job.Attempt)},
		{"op": "add", "path": "/metadata/annotations/" + esc(annotExecutionID), "value": job.ExecutionID},
		{"op": "add", "path": "/metadata/annotations/" + esc(annotClaimedAt), "value": time.Now().UTC().Format(time.RFC3339Nano)},
		{"op": "add", "path": "/spec/activeDeadlineSeconds", "value": int64(backstop/time.Second) + 1},
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	return p.pods().Patch(ctx, w.name, types.JSONPatchType, body, metav1.PatchOptions{})
}

// claimedAt is when a pod of the warm pool was claimed for its run; zero
// for a pod created for its run.
func claimedAt(pod *corev1.Pod) time.Time {
	t, err := time.Parse(time.RFC3339Nano, pod.Annotations[annotClaimedAt])
	if err != nil {
		return time.Time{}
	}
	return t
}

// collectPreviousLives deletes the waiting pods that earlier lives of this
// runner (the same PoolOwner) left: no one will claim them. Each delete is
// conditional on the version listed, and a pod claimed meanwhile no longer
// carries the pool's labels, so a pod that became a run's is never taken.
func (wp *warmPool) collectPreviousLives() {
	ctx, cancel := context.WithTimeout(wp.ctx, apiTimeout)
	defer cancel()
	notMine, err := labels.NewRequirement(labelPoolLife, selection.NotEquals, []string{wp.life})
	if err != nil {
		return
	}
	sel := labels.SelectorFromSet(labels.Set{labelManagedBy: managedBy, labelPool: wp.p.cfg.PoolOwner}).Add(*notMine)
	list, err := wp.p.pods().List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		wp.p.log.Warn("could not list the warm pods of earlier lives", "err", err)
		return
	}
	for _, pod := range list.Items {
		err := wp.p.pods().Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions: &metav1.Preconditions{UID: &pod.UID, ResourceVersion: &pod.ResourceVersion}})
		switch {
		case err == nil:
			wp.p.log.Info("deleted a waiting pod an earlier life of this runner left", "pod", pod.Name)
		case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
			wp.p.log.Warn("could not delete a waiting pod of an earlier life", "pod", pod.Name, "err", err)
		}
	}
}

// close stops the pool and deletes its waiting pods.
func (wp *warmPool) close() {
	wp.mu.Lock()
	wp.closed = true
	idle := wp.idle
	wp.idle = nil
	wp.mu.Unlock()
	wp.cancel()
	for _, w := range idle {
		wp.p.cleanup(context.Background(), w.name, wp.p.log.With("pod", w.name))
	}
	wp.wg.Wait() // the keepers delete the pods they were starting
}

// PoolStats is what the warm pool did so far.
type PoolStats struct {
	// Waiting is how many pods wait for a script now.
	Waiting int
	// Hits counts runs that took a waiting pod; Misses those that created
	// their own with a pool configured (none waited, or their memory or
	// CPU differ from the pool's).
	Hits, Misses int64
}

// PoolStats reports the warm pool's state and counters.
func (p *Pods) PoolStats() PoolStats {
	wp := p.pool
	wp.mu.Lock()
	defer wp.mu.Unlock()
	return PoolStats{Waiting: len(wp.idle), Hits: wp.hits, Misses: wp.misses}
}

// Close stops the warm pool and deletes the pods waiting in it. Runs in
// flight are not affected.
func (p *Pods) Close() error {
	p.closeOnce.Do(p.pool.close)
	return nil
}
