package manifests

import (
	"os"
	"path/filepath"
	"testing"
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
