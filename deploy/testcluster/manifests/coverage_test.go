//go:build kubernetes

package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"
)

// Coverage of the platform in the cluster. The root module's `go tool task
// test` sets coverDirEnv to its coverage directory: the end-to-end test then
// builds the platform image's binary for coverage (cluster.CoverFlags), the
// host-side processes (`integr8scode stores`, `ledger keys`) write there
// directly, and each platform pod writes into podCoverDir below it through a
// hostPath volume (the test cluster is this machine). Only the test adds
// that volume, to its own copy of the test overlay: no manifest a user
// applies carries it, and no image but the test's carries a coverage build.
//
// A Go binary writes its counters when it exits by itself: the pods get
// SIGTERM when the test deletes a runner pod and when it deletes its
// namespaces at the end (and waits for them to be gone), and the platform
// stops cleanly on SIGTERM within the pods' grace period.
const (
	coverDirEnv = "INTEGR8SCODE_TEST_COVERDIR"
	// podCoverDir is where the pods' counters land under the coverage
	// directory; it belongs to the pods' user.
	podCoverDir = "cluster-pods"
	// coverMount is where a pod sees it.
	coverMount = "/var/run/integr8scode-coverage"
)

// coverEnv is the environment that makes a coverage build of the binary,
// run on the host, write its counters; none without coverage.
func coverEnv() []string {
	if dir := os.Getenv(coverDirEnv); dir != "" {
		return []string{"GOCOVERDIR=" + dir}
	}
	return nil
}

// withCoverage returns objs with every platform Deployment's pod writing its
// coverage counters (GOCOVERDIR) to dir/podCoverDir on the host.
func withCoverage(t *testing.T, objs []*unstructured.Unstructured, dir string) []*unstructured.Unstructured {
	t.Helper()
	host := filepath.Join(dir, podCoverDir)
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(host, cluster.PlatformUID, cluster.PlatformUID); err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		// The platform's Deployments only: Prometheus and Alertmanager
		// are not Go coverage builds of this module.
		if o.GetKind() != "Deployment" || o.GetLabels()["app.kubernetes.io/name"] != "integr8scode" {
			out = append(out, o)
			continue
		}
		u := o.DeepCopy()
		spec := []string{"spec", "template", "spec"}
		volumes, _, _ := unstructured.NestedSlice(u.Object, append(spec, "volumes")...)
		volumes = append(volumes, map[string]any{
			"name":     "coverage",
			"hostPath": map[string]any{"path": host, "type": "Directory"},
		})
		if err := unstructured.SetNestedSlice(u.Object, volumes, append(spec, "volumes")...); err != nil {
			t.Fatal(err)
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, append(spec, "containers")...)
		for _, c := range containers {
			c := c.(map[string]any)
			mounts, _ := c["volumeMounts"].([]any)
			c["volumeMounts"] = append(mounts, map[string]any{"name": "coverage", "mountPath": coverMount})
			env, _ := c["env"].([]any)
			c["env"] = append(env, map[string]any{"name": "GOCOVERDIR", "value": coverMount})
		}
		if err := unstructured.SetNestedSlice(u.Object, containers, append(spec, "containers")...); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}
