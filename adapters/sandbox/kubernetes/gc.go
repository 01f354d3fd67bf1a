package kubernetes

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// GC deletes the sandbox pods of executions that already ended, as
// isTerminal tells from the ledger, and returns how many it deleted. The
// runner calls it when it starts: pods of a runner that died are either
// adopted by the re-run of their execution or collected here. Pods of other
// executions are left alone; pods without the execution annotation are not
// this package's.
func (p *Pods) GC(ctx context.Context, isTerminal func(executionID string) bool) (int, error) {
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
			if id == "" || pod.DeletionTimestamp != nil || !isTerminal(id) {
				continue
			}
			if err := p.deletePod(ctx, pod.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted++
			p.log.Info("deleted the pod of an ended execution", "pod", pod.Name, "execution_id", id)
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
