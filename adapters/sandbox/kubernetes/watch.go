package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// podWatch follows one pod through a watch on its name. When the watch
// breaks (the apiserver closes watches after a while, or the resource
// version expired), it reads the pod afresh and watches again from there:
// the current state, not the events, is what counts, so nothing is lost.
type podWatch struct {
	p    *Pods
	name string
	w    watch.Interface
	cur  *corev1.Pod
	gone bool // the pod no longer exists
}

func (p *Pods) watchPod(ctx context.Context, pod *corev1.Pod) (*podWatch, error) {
	pw := &podWatch{p: p, name: pod.Name, cur: pod}
	if err := pw.start(ctx, pod.ResourceVersion); err != nil {
		return nil, err
	}
	return pw, nil
}

func (pw *podWatch) start(ctx context.Context, rv string) error {
	w, err := pw.p.pods().Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", pw.name).String(),
		ResourceVersion: rv,
	})
	if err != nil {
		return fmt.Errorf("watch pod %s: %w", pw.name, err)
	}
	pw.w = w
	return nil
}

// events is the channel to select on; nil once the pod is gone.
func (pw *podWatch) events() <-chan watch.Event {
	if pw.gone || pw.w == nil {
		return nil
	}
	return pw.w.ResultChan()
}

// apply takes one receive from events().
func (pw *podWatch) apply(ctx context.Context, ev watch.Event, ok bool) error {
	if ok {
		switch ev.Type {
		case watch.Added, watch.Modified:
			if pod, isPod := ev.Object.(*corev1.Pod); isPod {
				pw.cur = pod
			}
			return nil
		case watch.Deleted:
			pw.gone = true
			pw.stop()
			return nil
		case watch.Bookmark:
			return nil
		}
	}
	return pw.resync(ctx)
}

// resync replaces a broken watch: read the pod, watch from its version.
// It retries for a few seconds, so that an apiserver restart or a network
// blip does not fail the run.
func (pw *podWatch) resync(ctx context.Context) error {
	pw.stop()
	var err error
	for try, wait := 0, 100*time.Millisecond; try < 6; try, wait = try+1, wait*2 {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		var pod *corev1.Pod
		pod, err = pw.p.pods().Get(ctx, pw.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			pw.gone = true
			return nil
		}
		if err == nil {
			pw.cur = pod
			if err = pw.start(ctx, pod.ResourceVersion); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("follow pod %s: %w", pw.name, err)
}

func (pw *podWatch) stop() {
	if pw.w != nil {
		pw.w.Stop()
		pw.w = nil
	}
}

// container returns the status of the script's container, or nil before the
// kubelet reported one.
func container(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == containerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}
