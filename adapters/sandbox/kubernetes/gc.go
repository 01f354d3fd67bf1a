package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// staleWarm tells whether an unclaimed pod of some runner's warm pool will
// never be claimed: it ended (its supervisor gave up waiting, past that
// runner's WarmMaxAge), or it has waited far longer than any pool keeps a
// pod (its runner is gone and it hangs). The waiting pods of this runner's
// own pool are its pool's business; an earlier life's are collected by the
// pool when it starts.
func (p *Pods) staleWarm(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Labels[labelPoolLife] == p.pool.life {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return true
	}
	since, err := time.Parse(time.RFC3339, pod.Annotations[annotWarmSince])
	return err == nil && time.Since(since) > 2*(max(p.cfg.WarmMaxAge, defaultWarmMaxAge)+waitSlack)
}

// GC deletes the sandbox pods that no runner will follow again, as stale
// tells from the ledger (the execution ended, or moved on to a later
// attempt), and returns how many it deleted. The runner calls it when it
// starts: pods that a stopped runner left are either resumed (their
// execution is still at their attempt) or collected here. Pods without the
// execution annotation or the attempt label are not this package's.
func (p *Pods) GC(ctx context.Context, stale func(executionID string, attempt int) bool) (int, error) {
	sel := labels.SelectorFromSet(labels.Set{labelManagedBy: managedBy}).String()
	deleted := 0
	var errs []error
	opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
	for {
		list, err := p.pods().List(ctx, opts)
		if err != nil {
			return deleted, fmt.Errorf("kubernetes sandbox: list pods: %w", err)
		}
		for _, pod := range list.Items {
			if _, pooled := pod.Labels[labelPool]; pooled {
				if p.staleWarm(&pod) {
					if err := p.deletePod(ctx, pod.Name); err != nil {
						errs = append(errs, err)
						continue
					}
					deleted++
					p.log.Info("deleted a warm pod no runner will claim", "pod", pod.Name, "phase", pod.Status.Phase)
				}
				continue
			}
			id := pod.Annotations[annotExecutionID]
			attempt, err := strconv.Atoi(pod.Labels[labelAttempt])
			if id == "" || err != nil || pod.DeletionTimestamp != nil || !stale(id, attempt) {
				continue
			}
			if err := p.deletePod(ctx, pod.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted++
			p.log.Info("deleted a sandbox pod nobody follows", "pod", pod.Name, "execution_id", id, "attempt", attempt)
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, fmt.Errorf("kubernetes sandbox: gc: %w", err)
	}
	return deleted, nil
}
