// Package manifests renders the platform's Kubernetes manifests
// (deploy/kubernetes) with the kustomize API, the code `kubectl apply -k`
// runs (kustomize/api v0.21.1, as in kubectl v1.37.2), for the tests that
// check them: offline invariants here, and with the build tag `kubernetes` a
// server-side dry-run of every object against the test cluster.
//
// It lives in this module, not the root one, so that the platform's module
// never depends on kustomize or client-go for the sake of a test.
package manifests

import (
	"fmt"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kustomizations under deploy/kubernetes, relative to the repository root.
const (
	Base        = "deploy/kubernetes/base"
	TestCluster = "deploy/kubernetes/overlays/testcluster"
)

// The namespaces the base fixes. The test cluster makes the sandbox one at
// up, as the base does (cluster.SandboxNamespace).
const (
	PlatformNamespace = "integr8scode"
	SandboxNamespace  = cluster.SandboxNamespace
)

// RepoRoot is the repository root above dir (see cluster.RepoRoot).
func RepoRoot(dir string) (string, error) { return cluster.RepoRoot(dir) }

// Render runs the kustomization in dir (an absolute path, or relative to the
// working directory) and returns its objects in kustomize's order
// (namespaces first).
func Render(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		// Through JSON, so that numbers are int64 and float64 as client-go
		// expects of unstructured objects (kustomize's maps hold int).
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("kustomize %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, u)
	}
	return out, nil
}
