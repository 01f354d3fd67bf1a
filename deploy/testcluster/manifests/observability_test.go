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
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestObservabilityComponent: the overlay that includes
// deploy/observability ships every dashboard and the alert rules as they
// are in the repository (byte for byte, so a stale copy cannot creep in),
// and every role's pods are marked for scraping.
func TestObservabilityComponent(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	r := render(t, TestCluster)
	want := func(cm, key, file string) {
		t.Helper()
		c := r.configMaps[cm]
		if c == nil {
			t.Errorf("no ConfigMap %s", cm)
			return
		}
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		if c.Data[key] != string(b) {
			t.Errorf("ConfigMap %s key %s differs from %s", cm, key, file)
		}
	}
	dashboards, err := filepath.Glob(filepath.Join(root, "deploy/observability/dashboards/*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboards found: %v", err)
	}
	for _, f := range dashboards {
		want("integr8scode-grafana-dashboards", filepath.Base(f), filepath.Join("deploy/observability/dashboards", filepath.Base(f)))
	}
	if n := len(r.configMaps["integr8scode-grafana-dashboards"].Data); n != len(dashboards) {
		t.Errorf("the dashboards ConfigMap holds %d files, the repository %d", n, len(dashboards))
	}
	if got := r.configMaps["integr8scode-grafana-dashboards"].Labels["grafana_dashboard"]; got != "1" {
		t.Errorf("dashboards ConfigMap label grafana_dashboard=%q, want 1 (the Grafana sidecar's)", got)
	}
	want("integr8scode-prometheus-rules", "integr8scode.rules.yml", "deploy/observability/rules/integr8scode.rules.yml")
	want("integr8scode-grafana-provisioning", "dashboards.yaml", "deploy/observability/grafana/provisioning/dashboards/integr8scode.yaml")
	for _, role := range []string{"api", "runner", "projector"} {
		d := r.deployments[role]
		if d == nil {
			t.Errorf("no Deployment %s", role)
			continue
		}
		a := d.Spec.Template.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("Deployment %s: pod annotations %v, want prometheus.io/scrape=true and path /metrics", role, a)
		}
		if p := d.Spec.Template.Spec.Containers[0].Ports; len(p) == 0 || p[0].Name != "http" {
			t.Errorf("Deployment %s: the scrape job keeps the container port named http; ports %v", role, p)
		}
	}
}

// TestPrometheusComponent: what deploy/observability/prometheus adds to the
// test overlay, held to the platform's own standards (restricted pod
// security, a least-privilege account) and to the test cluster's limits
// (host network, loopback only, local images).
func TestPrometheusComponent(t *testing.T) {
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if m := render(t, Base).monitoring; len(m.objs) > 0 {
		t.Errorf("the base deploys %d monitoring objects; only overlays that include the component should", len(m.objs))
	}
	r := render(t, TestCluster)
	m := r.monitoring
	for _, u := range m.objs {
		switch u.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service", "ConfigMap":
		default:
			t.Errorf("unexpected monitoring object %s %s: review it and check it here", u.GetKind(), u.GetName())
		}
	}

	// Prometheus may read pods in the platform's namespace, nothing else.
	if len(m.roles) != 1 || len(m.bindings) != 1 {
		t.Fatalf("%d Roles and %d RoleBindings, want Prometheus's one of each", len(m.roles), len(m.bindings))
	}
	ro, b := m.roles[0], m.bindings[0]
	if ro.Namespace != PlatformNamespace || len(ro.Rules) != 1 || !slices.Equal(ro.Rules[0].APIGroups, []string{""}) ||
		!slices.Equal(ro.Rules[0].Resources, []string{"pods"}) || !slices.Equal(ro.Rules[0].Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("Role %s/%s: %+v, want get, list and watch on pods only", ro.Namespace, ro.Name, ro.Rules)
	}
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: "prometheus", Namespace: PlatformNamespace}
	if b.Namespace != PlatformNamespace || b.RoleRef.Name != ro.Name || len(b.Subjects) != 1 || b.Subjects[0] != want {
		t.Errorf("RoleBinding %s/%s: %s for %+v", b.Namespace, b.Name, b.RoleRef.Name, b.Subjects)
	}

	versions := mustRead(t, filepath.Join(root, "deploy/observability/tools.go"))
	listen := map[string]string{}
	for name, wantTag := range map[string]string{
		// Prometheus's module v0.3MM.P is release v3.MM.P.
		"prometheus":   "v3." + strings.TrimPrefix(strings.TrimPrefix(constValue(t, versions, "PrometheusVersion"), "v0.3"), "0"),
		"alertmanager": constValue(t, versions, "AlertmanagerVersion"),
	} {
		d := m.deployments[name]
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		where := "Deployment " + name
		spec := d.Spec.Template.Spec
		checkPodSecurity(t, where, spec, 65534) // the upstream images' nobody
		if sa := m.accounts[name]; sa == nil || spec.ServiceAccountName != name {
			t.Errorf("%s: runs as ServiceAccount %q; want its own", where, spec.ServiceAccountName)
		}
		token := name == "prometheus" // pod discovery; Alertmanager needs no API
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != token ||
			m.accounts[name] == nil || deref(m.accounts[name].AutomountServiceAccountToken) != token {
			t.Errorf("%s: automountServiceAccountToken %v, want %v", where, deref(spec.AutomountServiceAccountToken), token)
		}
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || deref(d.Spec.Replicas) != int32(1) {
			t.Errorf("%s: strategy %s replicas %v, want one pod, replaced after the old one stopped", where, d.Spec.Strategy.Type, deref(d.Spec.Replicas))
		}
		c := spec.Containers[0]
		if img := "localhost/integr8scode/" + name + ":" + wantTag; c.Image != img || c.ImagePullPolicy != corev1.PullNever {
			t.Errorf("%s: image %s (%s), want %s, Never pulled (built from the version deploy/observability/tools.go pins)", where, c.Image, c.ImagePullPolicy, img)
		}
		if !spec.HostNetwork {
			t.Errorf("%s: not on the host network", where)
		}
		addr := flagValue(c.Args, "--web.listen-address")
		if !strings.HasPrefix(addr, "127.0.0.1:") || len(c.Ports) != 1 || "127.0.0.1:"+fmt.Sprint(c.Ports[0].ContainerPort) != addr {
			t.Errorf("%s: listens on %q, port %v; want 127.0.0.1 and the same port", where, addr, c.Ports)
		}
		listen[name] = addr
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" {
				t.Errorf("%s: a probe does not ask 127.0.0.1: %+v", where, p)
			}
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && r.configMaps[v.ConfigMap.Name] == nil && m.configMaps[v.ConfigMap.Name] == nil {
				t.Errorf("%s: mounts ConfigMap %s, which is not rendered", where, v.ConfigMap.Name)
			}
		}
	}
	if a := flagValue(m.deployments["alertmanager"].Spec.Template.Spec.Containers[0].Args, "--cluster.listen-address"); a != "" {
		t.Errorf("Alertmanager gossips on %q (every interface)", a)
	}
	env := map[string]string{}
	for _, e := range m.deployments["prometheus"].Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != "127.0.0.1" {
		t.Errorf("Prometheus finds the API server through %q, want 127.0.0.1", env["KUBERNETES_SERVICE_HOST"])
	}

	// The test cluster's configuration replaced the component's, and sends
	// alerts where Alertmanager listens.
	cm := configMap(t, m, "integr8scode-prometheus")
	if cm == nil {
		return
	}
	overlayCfg := mustRead(t, filepath.Join(root, TestCluster, "prometheus/prometheus.yml"))
	if cm.Data["prometheus.yml"] != string(overlayCfg) {
		t.Errorf("prometheus.yml is not the test overlay's")
	}
	if !strings.Contains(cm.Data["prometheus.yml"], fmt.Sprintf("%q", listen["alertmanager"])) {
		t.Errorf("prometheus.yml does not send alerts to %s", listen["alertmanager"])
	}
}

// constValue reads a string constant's value from Go source.
func constValue(t *testing.T, src []byte, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + name + `\s*=\s*"([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("no constant %s", name)
	}
	return string(m[1])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
