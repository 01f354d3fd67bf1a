//go:build kubernetes

package manifests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// The checks against the running test cluster (go tool task cluster:up):
//
//	go test -tags kubernetes ./manifests/   (from deploy/testcluster)
//
// Every rendered object of both kustomizations goes through server-side apply
// with dryRun=All: schema (unknown fields are errors), defaulting, validation
// and every admission plugin, nothing stored. So that the objects land where
// they would, their two namespaces are created for real, under names unique
// to the run (i8c-mt-<random> and i8c-mt-<random>-sandbox, never the real
// integr8scode namespaces another test or a colleague may be using), with the
// ServiceAccounts and RBAC, which the pod and access checks need; all of it is
// deleted at the end.

const fieldManager = "integr8scode-manifests-test"

type testCluster struct {
	cfg      *rest.Config
	dyn      *dynamic.DynamicClient
	kube     *kubernetes.Clientset
	mapper   meta.RESTMapper
	warnings *warnings
}

// warnings collects the API server's Warning headers (PodSecurity's among
// them) per request.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.list
	w.list = nil
	return l
}

func connect(t *testing.T) *testCluster {
	t.Helper()
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(root, ".cluster", "kubeconfig")
	if _, err := os.Stat(kubeconfig); err != nil {
		t.Fatalf("the test cluster is not up (%v): run `go tool task cluster:up` at the repository root", err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	w := &warnings{}
	cfg.WarningHandler = w
	cfg.Timeout = 30 * time.Second
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dc.ServerVersion(); err != nil {
		t.Fatalf("the test cluster does not answer (%v): run `go tool task cluster:up` at the repository root", err)
	} else {
		t.Logf("API server %s", v.GitVersion)
	}
	return &testCluster{cfg: cfg, dyn: dyn, kube: kube, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), warnings: w}
}

// apply server-side applies u, as a dry run or for real.
func (c *testCluster) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	var ri dynamic.ResourceInterface = c.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if u.GetNamespace() == "" {
			return fmt.Errorf("%s %s is namespaced but has no namespace", u.GetKind(), u.GetName())
		}
		ri = c.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	} else if u.GetNamespace() != "" {
		return fmt.Errorf("%s %s is cluster-scoped but names namespace %s", u.GetKind(), u.GetName(), u.GetNamespace())
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = ri.Apply(ctx, u.GetName(), u, opts)
	return err
}

func randomSuffix(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// renderRenamed renders the kustomization k (relative to the repository
// root) with its two namespaces renamed to prefix<random> and
// prefix<random>-sandbox, names unique to the run.
func renderRenamed(t *testing.T, k, prefix string) (objs []*unstructured.Unstructured, platformNS, sandboxNS string) {
	t.Helper()
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	objs, err = Render(filepath.Join(root, k))
	if err != nil {
		t.Fatal(err)
	}
	suffix := randomSuffix(t)
	platformNS, sandboxNS = prefix+suffix, prefix+suffix+"-sandbox"
	return renamed(t, objs, map[string]string{PlatformNamespace: platformNS, SandboxNamespace: sandboxNS}), platformNS, sandboxNS
}

// renamed returns deep copies of objs with the two namespaces renamed
// wherever the manifests name them: Namespace objects, metadata.namespace,
// RoleBinding subjects, and ConfigMap values (the runner's
// INTEGR8SCODE_NAMESPACE).
func renamed(t *testing.T, objs []*unstructured.Unstructured, names map[string]string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, o := range objs {
		u := o.DeepCopy()
		if u.GetKind() == "Namespace" {
			if n, ok := names[u.GetName()]; ok {
				u.SetName(n)
			}
		}
		if n, ok := names[u.GetNamespace()]; ok {
			u.SetNamespace(n)
		}
		switch u.GetKind() {
		case "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(u.Object, "subjects")
			for _, s := range subjects {
				if s, ok := s.(map[string]any); ok {
					if n, ok := names[fmt.Sprint(s["namespace"])]; ok {
						s["namespace"] = n
					}
				}
			}
			if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
				t.Fatal(err)
			}
		case "ConfigMap":
			// Only the settings that name a namespace: another value may
			// equal a namespace's name by chance (the SASL user
			// "integr8scode" of the test overlay does).
			data, _, _ := unstructured.NestedStringMap(u.Object, "data")
			for k, v := range data {
				if n, ok := names[v]; ok && k == "INTEGR8SCODE_NAMESPACE" {
					data[k] = n
				}
			}
			if err := unstructured.SetNestedStringMap(u.Object, data, "data"); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, u)
	}
	return out
}

func TestDryRunOnTestCluster(t *testing.T) {
	c := connect(t)
	for _, k := range kustomizations {
		t.Run(filepath.Base(k), func(t *testing.T) {
			objs, platformNS, sandboxNS := renderRenamed(t, k, "i8c-mt-")
			dryRunKustomization(t, c, k == Base, objs, platformNS, sandboxNS)
		})
	}
}

func dryRunKustomization(t *testing.T, c *testCluster, strict bool, objs []*unstructured.Unstructured, platformNS, sandboxNS string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	byKind := func(kinds ...string) []*unstructured.Unstructured {
		var out []*unstructured.Unstructured
		for _, o := range objs {
			for _, k := range kinds {
				if o.GetKind() == k {
					out = append(out, o)
				}
			}
		}
		return out
	}

	// 1. The namespaces: a dry run, then for real (a dry-run namespace
	// does not exist for the objects that go in it).
	namespaces := byKind("Namespace")
	if len(namespaces) != 2 {
		t.Fatalf("%d namespaces rendered, want 2", len(namespaces))
	}
	for _, ns := range namespaces {
		if err := c.apply(ctx, ns, true); err != nil {
			t.Fatalf("dry run of Namespace %s: %v", ns.GetName(), err)
		}
	}
	t.Cleanup(func() { deleteNamespaces(t, c, platformNS, sandboxNS) })
	for _, ns := range namespaces {
		if err := c.apply(ctx, ns, false); err != nil {
			t.Fatalf("create Namespace %s: %v", ns.GetName(), err)
		}
	}
	c.warnings.take()

	// 2. Every object, server-side apply with dryRun=All.
	refused := false
	for _, o := range objs {
		err := c.apply(ctx, o, true)
		w := c.warnings.take()
		if err != nil {
			refused = true
			t.Errorf("dry run of %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		for _, text := range w {
			if strict {
				t.Errorf("dry run of %s %s/%s: warning: %s", o.GetKind(), o.GetNamespace(), o.GetName(), text)
			} else {
				t.Logf("dry run of %s %s/%s: warning (expected in this overlay): %s", o.GetKind(), o.GetNamespace(), o.GetName(), text)
			}
		}
	}
	if refused {
		return // the checks below build on these objects
	}

	// 3. ServiceAccounts and RBAC for real: a pod names its ServiceAccount,
	// which must exist, and access reviews read the stored bindings.
	for _, o := range byKind("ServiceAccount", "Role", "RoleBinding") {
		if err := c.apply(ctx, o, false); err != nil {
			t.Fatalf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	c.warnings.take()

	// 4. Each Deployment's pod, as the ReplicaSet would create it: the
	// namespace's Pod Security level is enforced on pods, not on the
	// Deployment (which only warns).
	for _, o := range byKind("Deployment") {
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-dryrun", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
			Spec:       d.Spec.Template.Spec,
		}
		_, err := c.kube.CoreV1().Pods(d.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		w := c.warnings.take()
		if err != nil {
			t.Errorf("dry run of Deployment %s's pod: %v", d.Name, err)
		}
		for _, text := range w {
			if strict {
				t.Errorf("dry run of Deployment %s's pod: warning: %s", d.Name, text)
			} else {
				t.Logf("dry run of Deployment %s's pod: warning (expected in this overlay): %s", d.Name, text)
			}
		}
	}

	// 5. What the runner's ServiceAccount may do, as the API server decides.
	runner := "system:serviceaccount:" + platformNS + ":runner"
	for _, a := range []struct {
		user, ns, verb, resource, sub string
		allowed                       bool
	}{
		{runner, sandboxNS, "create", "pods", "", true},
		{runner, sandboxNS, "get", "pods", "", true},
		{runner, sandboxNS, "list", "pods", "", true},
		{runner, sandboxNS, "watch", "pods", "", true},
		{runner, sandboxNS, "delete", "pods", "", true},
		{runner, sandboxNS, "get", "pods", "log", true},
		{runner, sandboxNS, "create", "pods", "attach", true},
		{runner, sandboxNS, "get", "pods", "attach", true},
		{runner, sandboxNS, "update", "pods", "", false},
		{runner, sandboxNS, "update", "pods", "status", false},
		{runner, sandboxNS, "create", "pods", "eviction", false},
		{runner, sandboxNS, "create", "pods", "portforward", false},
		{runner, sandboxNS, "get", "pods", "proxy", false},
		{runner, sandboxNS, "patch", "pods", "ephemeralcontainers", false},
		{runner, sandboxNS, "create", "pods", "exec", false},
		{runner, sandboxNS, "patch", "pods", "", true}, // a run claims a pod of its warm pool
		{runner, sandboxNS, "deletecollection", "pods", "", false},
		{runner, sandboxNS, "get", "secrets", "", false},
		{runner, sandboxNS, "create", "configmaps", "", false},
		{runner, sandboxNS, "delete", "networkpolicies", "", false},
		{runner, platformNS, "create", "pods", "", false},
		{runner, platformNS, "get", "secrets", "", false},
		{runner, "", "list", "pods", "", false}, // cluster-wide
		{runner, "", "get", "namespaces", "", false},
		{"system:serviceaccount:" + platformNS + ":api", sandboxNS, "create", "pods", "", false},
		{"system:serviceaccount:" + platformNS + ":projector", sandboxNS, "list", "pods", "", false},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               a.user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + platformNS, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: a.ns, Verb: a.verb, Resource: a.resource, Subresource: a.sub},
		}}
		res, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		if res.Status.Allowed != a.allowed {
			t.Errorf("%s may %s %s/%s in %q: %v, want %v (%s)", a.user, a.verb, a.resource, a.sub, a.ns, res.Status.Allowed, a.allowed, res.Status.Reason)
		}
	}

	// 5b. Prometheus's ServiceAccount (the overlays with the prometheus
	// component): it reads pods in the platform's namespace to find the
	// roles, and nothing else.
	for _, o := range byKind("ServiceAccount") {
		if o.GetName() != "prometheus" {
			continue
		}
		prom := "system:serviceaccount:" + platformNS + ":prometheus"
		for _, a := range []struct {
			ns, verb, resource string
			allowed            bool
		}{
			{platformNS, "list", "pods", true},
			{platformNS, "watch", "pods", true},
			{platformNS, "get", "secrets", false},
			{platformNS, "create", "pods", false},
			{sandboxNS, "list", "pods", false},
			{"", "list", "pods", false},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               prom,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + platformNS, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: a.ns, Verb: a.verb, Resource: a.resource},
			}}
			res, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("access review: %v", err)
			}
			if res.Status.Allowed != a.allowed {
				t.Errorf("%s may %s %s in %q: %v, want %v", prom, a.verb, a.resource, a.ns, res.Status.Allowed, a.allowed)
			}
		}
	}

	// 6. The sandbox namespace, through the runner's own eyes: as its
	// ServiceAccount, a pod hardened like the smoke pod is admitted (dry
	// run), the same pod on the host network is refused by Pod Security, and
	// nothing may be created in the platform's namespace.
	imp := rest.CopyConfig(c.cfg)
	imp.Impersonate = rest.ImpersonationConfig{UserName: runner}
	asRunner, err := kubernetes.NewForConfig(imp)
	if err != nil {
		t.Fatal(err)
	}
	image := sandboxImage(t, objs)
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
	if _, err := asRunner.CoreV1().Pods(sandboxNS).Create(ctx, sandboxPod("hardened", image), dry); err != nil {
		t.Errorf("the runner cannot create a hardened sandbox pod: %v", err)
	}
	if w := c.warnings.take(); len(w) > 0 {
		t.Errorf("hardened sandbox pod: warnings %q", w)
	}
	// The two refused pods share the host's user namespace: the API server
	// validates hostNetwork with hostUsers: false as invalid before Pod
	// Security sees it, and Pod Security lets a user-namespaced pod run as
	// (its own, unprivileged) root.
	bad := sandboxPod("host-network", image)
	bad.Spec.HostUsers = nil
	bad.Spec.HostNetwork = true
	_, err = asRunner.CoreV1().Pods(sandboxNS).Create(ctx, bad, dry)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a sandbox pod on the host network: %v, want Forbidden by PodSecurity", err)
	}
	root := sandboxPod("root", image)
	root.Spec.HostUsers = nil
	root.Spec.SecurityContext.RunAsUser = ptr.To[int64](0)
	root.Spec.SecurityContext.RunAsNonRoot = nil
	_, err = asRunner.CoreV1().Pods(sandboxNS).Create(ctx, root, dry)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a sandbox pod running as root: %v, want Forbidden by PodSecurity", err)
	}
	_, err = asRunner.CoreV1().Pods(platformNS).Create(ctx, sandboxPod("elsewhere", image), dry)
	if !apierrors.IsForbidden(err) {
		t.Errorf("the runner creating a pod in the platform namespace: %v, want Forbidden", err)
	}
	c.warnings.take()
}

// sandboxImage is the runner's INTEGR8SCODE_SANDBOX_IMAGE.
func sandboxImage(t *testing.T, objs []*unstructured.Unstructured) string {
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "integr8scode-runner") {
			if v, _, _ := unstructured.NestedString(o.Object, "data", "INTEGR8SCODE_SANDBOX_IMAGE"); v != "" {
				return v
			}
		}
	}
	t.Fatal("no INTEGR8SCODE_SANDBOX_IMAGE rendered")
	return ""
}

// sandboxPod is a pod hardened like the test cluster's smoke pod and the
// Kubernetes sandbox's pods: the restricted profile and more.
func sandboxPod(name, image string) *corev1.Pod {
	res := corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi"), corev1.ResourceCPU: resource.MustParse("100m")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dryrun-" + name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			ActiveDeadlineSeconds:         ptr.To[int64](60),
			HostUsers:                     ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65534),
				RunAsGroup:     ptr.To[int64](65534),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "python",
				Image:           image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"python3", "-c", `print("hi")`},
				Resources:       corev1.ResourceRequirements{Requests: res, Limits: res},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

// deleteNamespaces deletes what the test created for real (everything in
// it goes with the namespace) and waits for it to be gone.
func deleteNamespaces(t *testing.T, c *testCluster, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range names {
		if err := c.kube.CoreV1().Namespaces().Delete(ctx, n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", n, err)
		}
	}
	for _, n := range names {
		for {
			_, err := c.kube.CoreV1().Namespaces().Get(ctx, n, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				break
			}
			if ctx.Err() != nil {
				t.Logf("namespace %s is still terminating: %v", n, errors.Join(err, ctx.Err()))
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}
