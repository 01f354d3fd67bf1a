package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// ErrRejected wraps the API's answer when the cluster refuses a sandbox pod
// (Pod Security admission, a quota, an invalid field): a platform fault to
// fix in the cluster or the configuration, never the script's.
var ErrRejected = errors.New("the cluster rejected the sandbox pod")

// Run runs job in its pod and reports how it ended. It returns an error
// only when the sandbox failed (the pod was rejected, could not start, or
// its outcome could not be read); every outcome of the script is a Result.
//
// The pod is named after the execution and attempt: a second Run of the
// same job, concurrent or after a runner restart, adopts the pod the first
// one created and reports the same outcome instead of running the script
// again.
func (p *Pods) Run(ctx context.Context, job runner.Job) (domain.Result, error) {
	res, _, err := p.run(ctx, job, false)
	return res, err
}

// Resume follows the pod of job's execution and attempt, which a runner
// that stopped left behind, to its end (runner.Resumer). found is false
// when there is no such pod; it never creates one, except to replace a pod
// that never received its script (the script never ran).
func (p *Pods) Resume(ctx context.Context, job runner.Job) (domain.Result, bool, error) {
	return p.run(ctx, job, true)
}

var errNoPod = errors.New("no pod to resume")

func (p *Pods) run(ctx context.Context, job runner.Job, resume bool) (domain.Result, bool, error) {
	if err := checkJob(job); err != nil {
		return domain.Result{}, true, err
	}
	if ctx.Err() != nil {
		return domain.Result{Verdict: domain.VerdictCancelled, Message: "cancelled before it started"}, true, nil
	}
	name := podName(job.ExecutionID, job.Attempt)
	log := p.log.With("execution_id", job.ExecutionID, "attempt", job.Attempt, "pod", name)
	if !resume {
		done := p.pool.begin()
		defer done()
	}
	for fresh := true; ; fresh = false {
		var pod *corev1.Pod
		var created bool
		var err error
		if fresh {
			// A pod of the warm pool claimed for this job has a name of
			// its own: look for it, or claim one.
			pod, created, err = p.findOrClaim(ctx, name, job, resume, log)
		}
		if pod == nil && err == nil {
			pod, created, err = p.createOrAdopt(ctx, name, job, resume && fresh, log)
		}
		if pod != nil && pod.Name != name {
			log = log.With("pod", pod.Name)
			name = pod.Name
		}
		if errors.Is(err, errNoPod) {
			log.Info("no pod to resume")
			return domain.Result{}, false, nil
		}
		if err != nil {
			if errors.Is(context.Cause(ctx), runner.ErrDetached) {
				// A pod this run may have just created waits for a script
				// that never comes; whoever resumes the job replaces it.
				return domain.Result{Verdict: domain.VerdictCancelled, Message: "left for the next runner"}, true, nil
			}
			if ctx.Err() != nil {
				p.cleanup(ctx, name, log)
				return domain.Result{Verdict: domain.VerdictCancelled, Message: "cancelled"}, true, nil
			}
			return domain.Result{}, true, fmt.Errorf("kubernetes sandbox: %w", err)
		}
		f := p.newFollower(ctx, log, pod, created, job)
		out, err := f.run(ctx)
		switch {
		case out.leave:
			log.Info("run detached: pod left running for the next runner")
			return out.res, true, nil
		case err == nil && out.undelivered && fresh:
			// Whoever created the pod died before handing the script over:
			// the script never ran, so running it now runs it once.
			log.Warn("pod never received its script; creating it afresh")
			if err := p.deletePod(ctx, name); err != nil {
				return domain.Result{}, true, fmt.Errorf("kubernetes sandbox: %w", err)
			}
			name = podName(job.ExecutionID, job.Attempt)
			continue
		}
		p.cleanup(ctx, name, log)
		if err == nil && out.undelivered {
			err = errors.New("the pod never received its script")
		}
		if err != nil {
			return domain.Result{}, true, fmt.Errorf("kubernetes sandbox: pod %s: %w", name, err)
		}
		return out.res, true, nil
	}
}

func (p *Pods) cleanup(ctx context.Context, name string, log *slog.Logger) {
	if err := p.deletePod(ctx, name); err != nil {
		// GC deletes it later; the pod's activeDeadlineSeconds stops it.
		log.Warn("could not delete the sandbox pod", "err", err)
	}
}

// findOrClaim returns the pod of the pool that a run of job claimed
// earlier (created=false: adopt it), or, for a run that may create its
// pod, claims a waiting one from the pool (created=true: this run hands it
// the script). nil, without an error, when neither: the run creates or
// adopts the pod named after the job.
func (p *Pods) findOrClaim(ctx context.Context, name string, job runner.Job, resume bool, log *slog.Logger) (*corev1.Pod, bool, error) {
	mu := &p.claiming[fnv32(name)%uint32(len(p.claiming))]
	mu.Lock()
	defer mu.Unlock()
	sel := labels.SelectorFromSet(podLabels(job.ExecutionID, job.Attempt)).String()
	list, err := p.pods().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, false, fmt.Errorf("list the pods of %s: %w", name, err)
	}
	for i := range list.Items {
		pod := &list.Items[i]
		if pod.Name == name {
			return nil, false, nil // created for the run: createOrAdopt's
		}
		if pod.Annotations[annotExecutionID] == job.ExecutionID && pod.DeletionTimestamp == nil {
			log.Info("adopting the warm pod this job claimed", "pod", pod.Name)
			return pod, false, nil
		}
	}
	if resume {
		return nil, false, nil
	}
	if !p.pool.fits(job.Limits) {
		p.pool.miss()
		return nil, false, nil
	}
	for {
		w := p.pool.take()
		if w == nil {
			return nil, false, nil
		}
		pod, err := p.claim(ctx, w, job, p.pool)
		if err == nil {
			if cs := container(pod); cs != nil && cs.State.Running != nil && pod.DeletionTimestamp == nil {
				log.Debug("warm pod claimed", "pod", w.name, "waited", time.Since(w.born).Round(time.Millisecond))
				return pod, true, nil
			}
			err = errors.New("it no longer runs")
		}
		if ctx.Err() != nil {
			p.cleanup(ctx, w.name, log)
			return nil, false, ctx.Err()
		}
		// It ended or vanished while it waited, which its keeper had not
		// seen yet: the script never reached it. Take the next.
		log.Warn("a warm pod could not be claimed; deleting it", "pod", w.name, "err", err)
		p.cleanup(ctx, w.name, log)
	}
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func checkJob(job runner.Job) error {
	if job.Language != "" && job.Language != "python" {
		return domain.Errorf(domain.EUNPROCESSABLE, "the kubernetes sandbox runs python, not %q", job.Language)
	}
	l := job.Limits
	if l.TimeoutMs <= 0 || l.MemoryBytes <= 0 || l.CPUMillicores <= 0 {
		return domain.Errorf(domain.EINVALID, "sandbox limits must be resolved before a run (got %+v)", l)
	}
	if job.ExecutionID == "" {
		return domain.Errorf(domain.EINVALID, "a job needs an execution id")
	}
	return nil
}

// createOrAdopt creates the job's pod, or returns the one that exists
// (created=false). A pod on its way out is waited for and replaced. With
// adoptOnly it never creates one: errNoPod when there is none (or only one
// on its way out).
func (p *Pods) createOrAdopt(ctx context.Context, name string, job runner.Job, adoptOnly bool, log *slog.Logger) (*corev1.Pod, bool, error) {
	spec := p.podSpec(name, job)
	for try := 0; ; try++ {
		var pod *corev1.Pod
		var err error = apierrors.NewAlreadyExists(corev1.Resource("pods"), name)
		if !adoptOnly {
			pod, err = p.pods().Create(ctx, spec, metav1.CreateOptions{})
		}
		switch {
		case err == nil:
			log.Debug("pod created")
			return pod, true, nil
		case apierrors.IsForbidden(err), apierrors.IsInvalid(err):
			// The API server's reason (which policy, which field) is what
			// the execution's owner and the operator need to see.
			return nil, false, &runner.PublicError{Err: fmt.Errorf("%w: %w", ErrRejected, err)}
		case !apierrors.IsAlreadyExists(err) || try == 3:
			return nil, false, fmt.Errorf("create pod %s: %w", name, err)
		}
		pod, err = p.pods().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err) && adoptOnly:
			return nil, false, errNoPod
		case apierrors.IsNotFound(err):
			continue // deleted in between: create it
		case err != nil:
			return nil, false, fmt.Errorf("get pod %s: %w", name, err)
		case pod.Annotations[annotExecutionID] != job.ExecutionID:
			return nil, false, fmt.Errorf("pod %s exists but belongs to execution %q", name, pod.Annotations[annotExecutionID])
		case pod.DeletionTimestamp != nil:
			log.Info("pod of this job is being deleted; waiting to create it afresh")
			if err := p.waitGone(ctx, pod); err != nil {
				return nil, false, err
			}
			if adoptOnly {
				return nil, false, errNoPod
			}
			continue
		}
		log.Info("adopting the existing pod of this job")
		return pod, false, nil
	}
}

// waitGone waits until pod no longer exists.
func (p *Pods) waitGone(ctx context.Context, pod *corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	w, err := p.watchPod(ctx, pod)
	if err != nil {
		return err
	}
	defer w.stop()
	for !w.gone {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s is still being deleted: %w", pod.Name, ctx.Err())
		case ev, ok := <-w.events():
			if err := w.apply(ctx, ev, ok); err != nil {
				return err
			}
		}
	}
	return nil
}

// startDeadline is when a pod that has not started counts as failed.
func (p *Pods) startDeadline(pod *corev1.Pod) time.Time {
	return pod.CreationTimestamp.Add(p.cfg.StartTimeout + time.Second) // 1 s: the timestamp's precision
}
