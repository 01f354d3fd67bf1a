//go:build kubernetes

package kubernetes

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestNotStarted: a pod that cannot start within StartTimeout (here: no
// node matches it) fails the run as the platform's fault, with what the
// cluster says about the pod, and is deleted; the script never ran.
func TestNotStarted(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.StartTimeout = time.Second })
	f.pods.mutatePod = func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{"integr8scode.io/no-such-node": "true"}
	}
	j := job(t, "print('never')")
	begin := time.Now()
	_, err := f.pods.Run(context.Background(), j)
	if err == nil || !strings.Contains(err.Error(), "the pod did not start within 1s (Pending; PodScheduled:") ||
		!strings.Contains(err.Error(), "node(s) didn't match Pod's node affinity/selector") {
		t.Fatalf("got %v", err)
	}
	if took := time.Since(begin); took > 30*time.Second {
		t.Fatalf("the run gave up after %s, not about StartTimeout", took)
	}
	f.noPodLeft(t, j)
}
