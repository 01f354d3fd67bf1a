package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

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
