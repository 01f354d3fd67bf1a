package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"
)

// The offline checks: render both kustomizations and hold them to the
// invariants the platform's security rests on. No cluster needed.

// rendered is one kustomization's output, decoded by kind.
type rendered struct {
	name        string
	objs        []*unstructured.Unstructured
	namespaces  map[string]*corev1.Namespace
	deployments map[string]*appsv1.Deployment
	configMaps  map[string]*corev1.ConfigMap
	accounts    map[string]*corev1.ServiceAccount
	policies    []*networkingv1.NetworkPolicy
	roles       []*rbacv1.Role
	bindings    []*rbacv1.RoleBinding
	// monitoring holds the objects labelled
	// app.kubernetes.io/component=monitoring (Prometheus and Alertmanager,
	// deploy/observability/prometheus), decoded the same way: they have
	// checks of their own (observability_test.go), and the platform's
	// invariants above are about the platform's objects only.
	monitoring *rendered
}

// monitoringLabel marks the objects of the Prometheus component.
const monitoringLabel = "app.kubernetes.io/component"

func render(t *testing.T, rel string) *rendered {
	t.Helper()
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Render(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var platform, monitoring []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetLabels()[monitoringLabel] == "monitoring" {
			monitoring = append(monitoring, u)
		} else {
			platform = append(platform, u)
		}
	}
	r := decodeRendered(t, rel, platform)
	r.objs = objs
	r.monitoring = decodeRendered(t, rel+" (monitoring)", monitoring)
	return r
}

func decodeRendered(t *testing.T, rel string, objs []*unstructured.Unstructured) *rendered {
	t.Helper()
	r := &rendered{name: rel, objs: objs,
		namespaces: map[string]*corev1.Namespace{}, deployments: map[string]*appsv1.Deployment{},
		configMaps: map[string]*corev1.ConfigMap{}, accounts: map[string]*corev1.ServiceAccount{}}
	for _, u := range objs {
		var into any
		switch u.GetKind() {
		case "Namespace":
			ns := &corev1.Namespace{}
			r.namespaces[u.GetName()] = ns
			into = ns
		case "Deployment":
			d := &appsv1.Deployment{}
			r.deployments[u.GetName()] = d
			into = d
		case "ConfigMap":
			cm := &corev1.ConfigMap{}
			r.configMaps[u.GetName()] = cm
			into = cm
		case "ServiceAccount":
			sa := &corev1.ServiceAccount{}
			r.accounts[u.GetName()] = sa
			into = sa
		case "NetworkPolicy":
			p := &networkingv1.NetworkPolicy{}
			r.policies = append(r.policies, p)
			into = p
		case "Role":
			ro := &rbacv1.Role{}
			r.roles = append(r.roles, ro)
			into = ro
		case "RoleBinding":
			b := &rbacv1.RoleBinding{}
			r.bindings = append(r.bindings, b)
			into = b
		case "Service", "Secret":
			continue
		default:
			// Anything else (a ClusterRole, a PodSecurityPolicy, a
			// DaemonSet...) needs its own review and its own checks here.
			t.Errorf("%s: unexpected object %s %s: add a check for it", rel, u.GetKind(), u.GetName())
			continue
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", rel, u.GetKind(), u.GetName(), err)
		}
	}
	return r
}

var kustomizations = []string{Base, TestCluster}

func TestRenders(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		if len(r.objs) == 0 {
			t.Fatalf("%s renders nothing", k)
		}
		// Every namespaced object sits in one of the two namespaces, which
		// the kustomization itself creates.
		for _, u := range r.objs {
			if u.GetKind() == "Namespace" {
				continue
			}
			if ns := u.GetNamespace(); ns != PlatformNamespace && ns != SandboxNamespace {
				t.Errorf("%s: %s %s is in namespace %q", k, u.GetKind(), u.GetName(), ns)
			}
		}
		for _, ns := range []string{PlatformNamespace, SandboxNamespace} {
			if r.namespaces[ns] == nil {
				t.Errorf("%s: namespace %s missing", k, ns)
			}
		}
		if len(r.namespaces) != 2 {
			t.Errorf("%s: %d namespaces, want 2", k, len(r.namespaces))
		}
	}
}

func TestSandboxNamespaceEnforcesRestricted(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		ns := r.namespaces[SandboxNamespace]
		if ns == nil {
			t.Fatalf("%s: no namespace %s", k, SandboxNamespace)
		}
		for _, mode := range []string{"enforce", "audit", "warn"} {
			if got := ns.Labels["pod-security.kubernetes.io/"+mode]; got != "restricted" {
				t.Errorf("%s: %s has pod-security.kubernetes.io/%s=%q, want restricted", k, SandboxNamespace, mode, got)
			}
		}
		// A version pin other than latest would freeze the profile.
		for _, mode := range []string{"enforce", "audit", "warn"} {
			if v, ok := ns.Labels["pod-security.kubernetes.io/"+mode+"-version"]; ok && v != "latest" {
				t.Errorf("%s: %s pins the %s profile to %s", k, SandboxNamespace, mode, v)
			}
		}
	}
	// The base's own namespace enforces restricted too; only the test
	// cluster's overlay relaxes it, for hostNetwork.
	if got := render(t, Base).namespaces[PlatformNamespace].Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("base: %s enforces %q, want restricted", PlatformNamespace, got)
	}
}

func TestSandboxDenyAllNetworkPolicy(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		found := false
		for _, p := range r.policies {
			if p.Namespace != SandboxNamespace {
				continue
			}
			if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
				slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) &&
				slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) &&
				len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no deny-all (every pod, ingress and egress, no rule) NetworkPolicy in %s", k, SandboxNamespace)
		}
		// No other policy in the sandbox namespace may open anything.
		for _, p := range r.policies {
			if p.Namespace == SandboxNamespace && (len(p.Spec.Ingress) > 0 || len(p.Spec.Egress) > 0) {
				t.Errorf("%s: NetworkPolicy %s allows traffic in the sandbox namespace", k, p.Name)
			}
		}
	}
}

// allowedRunnerVerbs is everything the runner may do, and only in the
// sandbox namespace (pods/attach: the script and stdin go through an attach;
// get for the WebSocket transport, create for SPDY and, since 1.35, for
// WebSocket too; pods patch: a run claims a pod of the warm pool: see
// runner-rbac.yaml).
var allowedRunnerVerbs = map[string][]string{
	"pods":        {"create", "get", "list", "watch", "delete", "patch"},
	"pods/log":    {"get"},
	"pods/attach": {"create", "get"},
}

func TestRBAC(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		if len(r.roles) != 1 {
			t.Errorf("%s: %d Roles, want 1 (the runner's)", k, len(r.roles))
		}
		for _, ro := range r.roles {
			if ro.Namespace != SandboxNamespace {
				t.Errorf("%s: Role %s is in %q, want %s", k, ro.Name, ro.Namespace, SandboxNamespace)
			}
			for _, rule := range ro.Rules {
				if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
					t.Errorf("%s: Role %s: unexpected rule %+v", k, ro.Name, rule)
				}
				if !slices.Equal(rule.APIGroups, []string{""}) {
					t.Errorf("%s: Role %s: API groups %q, want only the core group", k, ro.Name, rule.APIGroups)
				}
				for _, res := range rule.Resources {
					allowed, ok := allowedRunnerVerbs[res]
					if !ok {
						t.Errorf("%s: Role %s grants resource %q", k, ro.Name, res)
						continue
					}
					for _, v := range rule.Verbs {
						if !slices.Contains(allowed, v) {
							t.Errorf("%s: Role %s grants %s on %s", k, ro.Name, v, res)
						}
					}
				}
			}
			// And everything the runner needs is there.
			for res, verbs := range allowedRunnerVerbs {
				for _, v := range verbs {
					if !grants(ro, res, v) {
						t.Errorf("%s: Role %s does not grant %s on %s", k, ro.Name, v, res)
					}
				}
			}
		}
		if len(r.bindings) != 1 {
			t.Fatalf("%s: %d RoleBindings, want 1", k, len(r.bindings))
		}
		b := r.bindings[0]
		if b.Namespace != SandboxNamespace || b.RoleRef.Kind != "Role" || len(r.roles) == 0 || b.RoleRef.Name != r.roles[0].Name {
			t.Errorf("%s: RoleBinding %s/%s refers to %s %s", k, b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
		}
		want := rbacv1.Subject{Kind: "ServiceAccount", Name: "runner", Namespace: PlatformNamespace}
		if len(b.Subjects) != 1 || b.Subjects[0] != want {
			t.Errorf("%s: RoleBinding subjects %+v, want only %+v", k, b.Subjects, want)
		}
		if d := r.deployments["runner"]; d == nil || d.Spec.Template.Spec.ServiceAccountName != "runner" {
			t.Errorf("%s: the runner Deployment does not run as ServiceAccount runner", k)
		}
	}
}

func grants(ro *rbacv1.Role, res, verb string) bool {
	for _, rule := range ro.Rules {
		if slices.Contains(rule.Resources, res) && slices.Contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

// TestServiceAccountTokens: only the runner's pods carry a token.
func TestServiceAccountTokens(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		for name, sa := range r.accounts {
			wantToken := name == "runner"
			if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken != wantToken {
				t.Errorf("%s: ServiceAccount %s automountServiceAccountToken=%v, want %v", k, name, deref(sa.AutomountServiceAccountToken), wantToken)
			}
		}
		for _, name := range []string{"api", "runner", "projector"} {
			if r.accounts[name] == nil {
				t.Errorf("%s: no ServiceAccount %s", k, name)
			}
			d := r.deployments[name]
			if d == nil {
				t.Errorf("%s: no Deployment %s", k, name)
				continue
			}
			spec := d.Spec.Template.Spec
			if spec.ServiceAccountName != name {
				t.Errorf("%s: Deployment %s runs as ServiceAccount %q", k, name, spec.ServiceAccountName)
			}
			wantToken := name == "runner"
			if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != wantToken {
				t.Errorf("%s: Deployment %s automountServiceAccountToken=%v, want %v", k, name, deref(spec.AutomountServiceAccountToken), wantToken)
			}
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// platformUID is the user of the platform image (deploy/docker/Dockerfile.platform).
const platformUID = 65532

func TestDeployments(t *testing.T) {
	wantReplicas := map[string]int32{Base: 2, TestCluster: 1}
	for _, k := range kustomizations {
		r := render(t, k)
		if len(r.deployments) != 3 {
			t.Errorf("%s: %d Deployments, want 3 (api, runner, projector)", k, len(r.deployments))
		}
		for name, d := range r.deployments {
			where := fmt.Sprintf("%s: Deployment %s", k, name)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != wantReplicas[k] {
				t.Errorf("%s: replicas %v, want %d", where, deref(d.Spec.Replicas), wantReplicas[k])
			}
			spec := d.Spec.Template.Spec
			checkPodSecurity(t, where, spec, platformUID)
			if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
				t.Errorf("%s: enableServiceLinks is not false (a Service named integr8scode-* would inject INTEGR8SCODE_* variables)", where)
			}
			if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
				t.Fatalf("%s: want exactly one container", where)
			}
			c := spec.Containers[0]
			if len(c.Args) == 0 || c.Args[0] != name {
				t.Errorf("%s: args %q, want the role %q first", where, c.Args, name)
			}
			if len(c.Command) != 0 {
				t.Errorf("%s: command %q overrides the image's entrypoint", where, c.Command)
			}
			listen := flagValue(c.Args, "--listen")
			if listen == "" {
				t.Errorf("%s: no --listen", where)
			}
			if !strings.Contains(c.Image, "integr8scode/platform") {
				t.Errorf("%s: image %q is not the platform image", where, c.Image)
			}
			for _, probe := range []struct {
				what string
				p    *corev1.Probe
				path string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if probe.p == nil || probe.p.HTTPGet == nil {
					t.Errorf("%s: no %s HTTP probe", where, probe.what)
					continue
				}
				if probe.p.HTTPGet.Path != probe.path {
					t.Errorf("%s: %s probe on %q, want %s", where, probe.what, probe.p.HTTPGet.Path, probe.path)
				}
				// The probe must hit the port the process listens on.
				port := probe.p.HTTPGet.Port.String()
				for _, p := range c.Ports {
					if p.Name == port {
						port = fmt.Sprint(p.ContainerPort)
					}
				}
				if !strings.HasSuffix(listen, ":"+port) {
					t.Errorf("%s: %s probe on port %s, the process listens on %q", where, probe.what, port, listen)
				}
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := c.Resources.Requests[res]
				lim, hasLim := c.Resources.Limits[res]
				if !hasReq || !hasLim || req.IsZero() || lim.IsZero() {
					t.Errorf("%s: %s request and limit must both be set", where, res)
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s above limit %s", where, res, req.String(), lim.String())
				}
			}
			// Every ConfigMap it reads is one the kustomization renders
			// (generator names carry a hash suffix).
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && r.configMaps[ef.ConfigMapRef.Name] == nil {
					t.Errorf("%s: reads ConfigMap %q, which is not rendered", where, ef.ConfigMapRef.Name)
				}
				if ef.SecretRef != nil && (ef.SecretRef.Optional == nil || !*ef.SecretRef.Optional) {
					t.Errorf("%s: Secret %q is not optional: the pods would not start without it", where, ef.SecretRef.Name)
				}
			}
			if name == "runner" {
				if got := flagValue(c.Args, "--runner"); got != "kubernetes" {
					t.Errorf("%s: --runner %q, want kubernetes", where, got)
				}
				dataDir := flagValue(c.Args, "--data-dir")
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dataDir && !m.ReadOnly }) {
					t.Errorf("%s: --data-dir %q is not a writable volume (the root file system is read-only)", where, dataDir)
				}
			}
		}
	}
}

// checkPodSecurity holds a pod spec to the restricted Pod Security profile
// and to what the platform adds (read-only root, the image's fixed non-root
// uid).
func checkPodSecurity(t *testing.T, where string, spec corev1.PodSpec, uid int64) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		t.Errorf("%s: no pod securityContext", where)
		return
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	if psc.RunAsUser == nil || *psc.RunAsUser != uid || psc.RunAsGroup == nil || *psc.RunAsGroup != uid {
		t.Errorf("%s: runAsUser/runAsGroup %v/%v, want %d (the image's user)", where, deref(psc.RunAsUser), deref(psc.RunAsGroup), uid)
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile is not RuntimeDefault", where)
	}
	if spec.HostPID || spec.HostIPC {
		t.Errorf("%s: shares the host's PID or IPC namespace", where)
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("%s: hostPath volume %s", where, v.Name)
		}
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: container %s has no securityContext", where, c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s: allowPrivilegeEscalation is not false", where, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: container %s: readOnlyRootFilesystem is not true", where, c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: container %s is privileged", where, c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: container %s: capabilities %+v, want drop [ALL] and nothing added", where, c.Name, sc.Capabilities)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("%s: container %s runs as root", where, c.Name)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: container %s: seccompProfile %s", where, c.Name, sc.SeccompProfile.Type)
		}
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestBaseUsesNoHostNamespaces walks every object of the base: nothing may
// ask for the host's network, PID or IPC namespace or a host port, whatever
// its kind.
func TestBaseUsesNoHostNamespaces(t *testing.T) {
	r := render(t, Base)
	for _, u := range r.objs {
		walk(u.Object, "", func(path string, key string, v any) {
			switch key {
			case "hostNetwork", "hostPID", "hostIPC", "hostUsers":
				if b, _ := v.(bool); b {
					t.Errorf("base: %s %s sets %s%s: true", u.GetKind(), u.GetName(), path, key)
				}
			case "hostPort", "hostPath":
				t.Errorf("base: %s %s sets %s%s", u.GetKind(), u.GetName(), path, key)
			}
		})
	}
}

func walk(v any, path string, f func(path, key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			f(path, k, x)
			walk(x, path+k+".", f)
		}
	case []any:
		for i, x := range v {
			walk(x, fmt.Sprintf("%s%d.", path, i), f)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, k := range kustomizations {
		r := render(t, k)
		platform := configMap(t, r, "integr8scode")
		runner := configMap(t, r, "integr8scode-runner")
		if platform == nil || runner == nil {
			continue
		}
		for _, key := range []string{"INTEGR8SCODE_KAFKA_BROKERS", "INTEGR8SCODE_MONGODB_URI"} {
			if platform.Data[key] == "" {
				t.Errorf("%s: ConfigMap integr8scode has no %s", k, key)
			}
		}
		if got := runner.Data["INTEGR8SCODE_NAMESPACE"]; got != SandboxNamespace {
			t.Errorf("%s: the runner's sandbox namespace is %q, want %s (where its Role is)", k, got, SandboxNamespace)
		}
		if runner.Data["INTEGR8SCODE_SANDBOX_IMAGE"] == "" {
			t.Errorf("%s: no INTEGR8SCODE_SANDBOX_IMAGE", k)
		}
		for _, cm := range []*corev1.ConfigMap{platform, runner} {
			for key := range cm.Data {
				if !regexp.MustCompile(`^INTEGR8SCODE_[A-Z0-9_]+$`).MatchString(key) {
					t.Errorf("%s: ConfigMap %s key %q is not an INTEGR8SCODE_* variable", k, cm.Name, key)
				}
				if strings.Contains(strings.ToLower(key), "password") || strings.Contains(strings.ToLower(key), "secret") {
					t.Errorf("%s: ConfigMap %s holds %s: credentials belong in the Secret", k, cm.Name, key)
				}
			}
		}
		// A URI with credentials belongs in the Secret, not here.
		if strings.Contains(platform.Data["INTEGR8SCODE_MONGODB_URI"], "@") {
			t.Errorf("%s: the ConfigMap's MongoDB URI carries credentials", k)
		}
	}
	// The base ships placeholders that never resolve.
	r := render(t, Base)
	if cm := configMap(t, r, "integr8scode"); cm != nil {
		for _, key := range []string{"INTEGR8SCODE_KAFKA_BROKERS", "INTEGR8SCODE_MONGODB_URI"} {
			if !strings.Contains(cm.Data[key], ".invalid") {
				t.Errorf("base: %s=%q is not a .invalid placeholder", key, cm.Data[key])
			}
		}
	}
}

// configMap finds a generated ConfigMap by its name before the hash suffix.
func configMap(t *testing.T, r *rendered, name string) *corev1.ConfigMap {
	t.Helper()
	var found *corev1.ConfigMap
	for n, cm := range r.configMaps {
		if n == name || regexp.MustCompile("^"+regexp.QuoteMeta(name)+"-[a-z0-9]{10}$").MatchString(n) {
			if found != nil {
				t.Errorf("%s: two ConfigMaps named %s", r.name, name)
			}
			found = cm
		}
	}
	if found == nil {
		t.Errorf("%s: no ConfigMap %s", r.name, name)
	}
	return found
}

// TestTestClusterOverlay: what the test cluster needs (its README, "Limits").
func TestTestClusterOverlay(t *testing.T) {
	r := render(t, TestCluster)
	ports := map[string]string{}
	for name, d := range r.deployments {
		where := "testcluster: Deployment " + name
		spec := d.Spec.Template.Spec
		if !spec.HostNetwork {
			t.Errorf("%s: not on the host network (pods on the bridge have no route to Kafka, MongoDB or the API server)", where)
		}
		c := spec.Containers[0]
		if c.ImagePullPolicy != corev1.PullNever {
			t.Errorf("%s: imagePullPolicy %s, want Never (no registry)", where, c.ImagePullPolicy)
		}
		if !strings.HasPrefix(c.Image, "localhost/") {
			t.Errorf("%s: image %q is not a locally imported one", where, c.Image)
		}
		listen := flagValue(c.Args, "--listen")
		if !strings.HasPrefix(listen, "127.0.0.1:") {
			t.Errorf("%s: listens on %q, want 127.0.0.1 only (nothing on the test host listens elsewhere)", where, listen)
		}
		if other, dup := ports[listen]; dup {
			t.Errorf("%s and %s both listen on %s on the host network", name, other, listen)
		}
		ports[listen] = name
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Host != "127.0.0.1" {
				t.Errorf("%s: probe host %q, want 127.0.0.1", where, p.HTTPGet.Host)
			}
		}
		if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxSurge == nil || s.MaxSurge.IntValue() != 0 {
			t.Errorf("%s: a surge pod could never bind the same host port", where)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		if name == "runner" {
			if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" || env["KUBERNETES_SERVICE_PORT"] != fmt.Sprint(cluster.APIServerPort) {
				t.Errorf("%s: KUBERNETES_SERVICE_HOST/PORT %q/%q, want 127.0.0.1/%d", where, env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"], cluster.APIServerPort)
			}
		}
	}
	if cm := configMap(t, r, "integr8scode-runner"); cm != nil && cm.Data["INTEGR8SCODE_SANDBOX_IMAGE"] != cluster.PythonImage {
		t.Errorf("testcluster: sandbox image %q, want the cluster's %s", cm.Data["INTEGR8SCODE_SANDBOX_IMAGE"], cluster.PythonImage)
	}
	if cm := configMap(t, r, "integr8scode"); cm != nil {
		for _, key := range []string{"INTEGR8SCODE_KAFKA_BROKERS", "INTEGR8SCODE_MONGODB_URI"} {
			if !strings.Contains(cm.Data[key], "127.0.0.1:") {
				t.Errorf("testcluster: %s=%q does not point at the host's loopback", key, cm.Data[key])
			}
		}
	}
}

// TestDockerfilesMatchManifests: the images' users are the ones the
// manifests and the test cluster run as.
func TestDockerfilesMatchManifests(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for file, user := range map[string]string{
		"deploy/docker/Dockerfile.platform": fmt.Sprintf("USER %d:%d", platformUID, platformUID),
		"deploy/docker/Dockerfile.sandbox":  "USER 65534:65534", // the test cluster's Python image: User 65534:65534
	} {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(user) + `\s*$`).Match(data) {
			t.Errorf("%s: no %q line", file, user)
		}
	}
}
