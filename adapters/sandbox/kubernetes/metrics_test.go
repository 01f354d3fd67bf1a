package kubernetes

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// The pod phase series against client-go's fake clientset: the real API
// server cannot be made to fail a list on demand. The test cluster's
// suites (cluster_lifecycle_test.go) read the same series off real pods.

func phasePod(name string, phase corev1.PodPhase, ours bool) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: defaultNamespace}, Status: corev1.PodStatus{Phase: phase}}
	if ours {
		pod.Labels = map[string]string{labelManagedBy: managedBy}
	}
	return pod
}

// waitingPod is a pod of a warm pool that no run claimed yet.
func waitingPod(name string) *corev1.Pod {
	pod := phasePod(name, corev1.PodRunning, true)
	pod.Labels[labelPool] = "runner-a"
	return pod
}

func TestPodPhaseMetrics(t *testing.T) {
	client := fake.NewClientset(
		phasePod("a", corev1.PodRunning, true), phasePod("b", corev1.PodRunning, true),
		phasePod("c", corev1.PodPending, true), phasePod("d", corev1.PodFailed, true),
		phasePod("e", "Mystery", true),
		phasePod("not-ours", corev1.PodRunning, false),
		waitingPod("warm-1"),
	)
	cfg := Config{Image: "python:test"}
	cfg.setDefaults()
	p := &Pods{cfg: cfg, client: client, log: cfg.Logger}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(p.Collector())

	t.Run("OK every phase at 0 before there is any pod", func(t *testing.T) {
		empty := &Pods{cfg: cfg, client: fake.NewClientset(), log: cfg.Logger}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(empty.Collector())
		if err := testutil.GatherAndCompare(reg, strings.NewReader(wantPhases(0, 0, 0, 0, 0, 0))); err != nil {
			t.Error(err)
		}
	})

	t.Run("OK counts this package's pods by phase, every phase present", func(t *testing.T) {
		// Succeeded has no pod and still shows, at 0; a phase outside
		// the closed set counts as Unknown; a pod of someone else's, and
		// one waiting in a warm pool, are not counted.
		if err := testutil.GatherAndCompare(reg, strings.NewReader(wantPhases(1, 2, 0, 1, 1, 0))); err != nil {
			t.Error(err)
		}
	})

	t.Run("OK a failed listing keeps the last values and counts the error", func(t *testing.T) {
		client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errors.New("apiserver unavailable")
		})
		if err := testutil.GatherAndCompare(reg, strings.NewReader(wantPhases(1, 2, 0, 1, 1, 1))); err != nil {
			t.Error(err)
		}
	})
}

// wantPhases is the exposition of the collector with these values.
func wantPhases(pending, running, succeeded, failed, unknown, errs int) string {
	n := strconv.Itoa
	return strings.NewReplacer("PENDING", n(pending), "RUNNING", n(running), "SUCCEEDED", n(succeeded),
		"FAILED", n(failed), "UNKNOWN", n(unknown), "ERRS", n(errs)).Replace(`
# HELP integr8scode_sandbox_pod_list_errors_total Scrapes at which the sandbox pods could not be listed (integr8scode_sandbox_pods kept its last values).
# TYPE integr8scode_sandbox_pod_list_errors_total counter
integr8scode_sandbox_pod_list_errors_total ERRS
# HELP integr8scode_sandbox_pods Sandbox pods of runs in the sandbox namespace by phase (not those waiting in a warm pool), listed from the API server at each scrape (every runner reports the same namespace: read with max).
# TYPE integr8scode_sandbox_pods gauge
integr8scode_sandbox_pods{phase="Failed"} FAILED
integr8scode_sandbox_pods{phase="Pending"} PENDING
integr8scode_sandbox_pods{phase="Running"} RUNNING
integr8scode_sandbox_pods{phase="Succeeded"} SUCCEEDED
integr8scode_sandbox_pods{phase="Unknown"} UNKNOWN
`)
}
