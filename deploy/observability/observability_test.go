package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDashboardFilesAreGenerated(t *testing.T) {
	for _, d := range Dashboards {
		want, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("dashboards", d.UID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("dashboards/%s.json is not what dashboards.go makes: run `go generate ./deploy/observability`", d.UID)
		}
	}
	files, _ := filepath.Glob("dashboards/*.json")
	if len(files) != len(Dashboards) {
		t.Errorf("%d files in dashboards/, %d dashboards in the code: remove the stale ones", len(files), len(Dashboards))
	}
}

// grafanaDashboard is the part of Grafana's JSON model the checks read.
type grafanaDashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
		GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	} `json:"panels"`
}

func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]bool{}
	for _, want := range []string{"integr8scode-overview", "integr8scode-ledger", "integr8scode-sandboxes", "integr8scode-api", "integr8scode-go-runtime"} {
		b, err := os.ReadFile(filepath.Join("dashboards", want+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		if d.UID != want || uids[d.UID] || d.Title == "" {
			t.Errorf("%s: uid %q title %q (uids must be unique and match the file)", want, d.UID, d.Title)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		graphs := 0
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", want, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W == 0 {
				t.Errorf("%s: panel %q outside Grafana's 24-column grid: %+v", want, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			graphs++
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", want, p.Title)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" {
					t.Errorf("%s: panel %q has an empty query", want, p.Title)
				}
			}
		}
		if graphs < 4 {
			t.Errorf("%s: only %d panels", want, graphs)
		}
	}
}

// ruleFile is the part of a Prometheus rule file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// Alerts reads the alert names of the rule file.
func readRules(t *testing.T, path string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	return rf
}

// anchors are the GitHub anchors of the markdown headings in doc.
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		out[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
	}
	return out
}

// TestEveryAlertHasARunbookAndATest: the promises of the rule file's
// header, checked.
func TestEveryAlertHasARunbookAndATest(t *testing.T) {
	rf := readRules(t, "rules/integr8scode.rules.yml")
	ops, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	heads := anchors(string(ops))
	tests, err := os.ReadFile("rules/integr8scode.rules_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			for _, a := range []string{"summary", "description", "runbook"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			if sev := r.Labels["severity"]; sev != "critical" && sev != "warning" && sev != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, sev)
			}
			doc, anchor, _ := strings.Cut(r.Annotations["runbook"], "#")
			if doc != "docs/operations.md" || !heads[anchor] {
				t.Errorf("%s: runbook %q is not a heading of docs/operations.md", r.Alert, r.Annotations["runbook"])
			}
			if !regexp.MustCompile(`alertname: ` + r.Alert + `\b`).Match(tests) {
				t.Errorf("%s: no unit test in rules/integr8scode.rules_test.yml", r.Alert)
			}
		}
	}
	if alerts < 10 {
		t.Errorf("only %d alerts", alerts)
	}
}

// TestPromtool runs the real promtool (built from the Prometheus module,
// cached per machine) over the rules and their unit tests, and checks the
// Prometheus and Alertmanager configurations that the stack writes.
func TestPromtool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	var log bytes.Buffer
	b, err := Ensure(ctx, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var out bytes.Buffer
	if err := CheckRules(ctx, b, "rules", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("promtool:\n%s", out.String())

	dir := t.TempDir()
	rules, _ := filepath.Abs("rules/integr8scode.rules.yml")
	cfg := StackConfig{Targets: map[string][]string{"integr8scode-api": {"127.0.0.1:8080"}, "integr8scode-runner": {"127.0.0.1:8081"}},
		RuleFiles: []string{rules}, Interval: 15 * time.Second, AlertmanagerAddr: "127.0.0.1:9093", WebhookURL: "http://127.0.0.1:5001/hook"}
	for _, c := range []struct {
		bin, file, text string
		args            []string
	}{
		{b.Promtool, "prometheus.yml", PrometheusYAML(cfg), []string{"check", "config"}},
		{b.Amtool, "alertmanager.yml", AlertmanagerYAML(cfg), []string{"check-config"}},
	} {
		f := filepath.Join(dir, c.file)
		if err := os.WriteFile(f, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.CommandContext(ctx, c.bin, append(c.args, f)...).CombinedOutput(); err != nil {
			t.Errorf("%s %v %s: %v\n%s\n%s", filepath.Base(c.bin), c.args, c.file, err, out, c.text)
		}
	}

	// The configurations the Kubernetes component ships, and the test
	// cluster's, with the paths where the pods mount the ConfigMaps
	// pointed at copies here.
	k8s, k8sRules := t.TempDir(), t.TempDir()
	for f, dir := range map[string]string{"prometheus/kubernetes-scrape.yml": k8s, "rules/integr8scode.rules.yml": k8sRules} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mounts := strings.NewReplacer("/etc/prometheus/config/", k8s+"/", "/etc/prometheus/rules/", k8sRules+"/")
	for _, c := range []struct {
		bin, file string
		args      []string
	}{
		{b.Promtool, "prometheus/prometheus.yml", []string{"check", "config"}},
		{b.Promtool, "../kubernetes/overlays/testcluster/prometheus/prometheus.yml", []string{"check", "config"}},
		{b.Amtool, "prometheus/alertmanager.yml", []string{"check-config"}},
	} {
		text, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(k8s, "checked-"+filepath.Base(c.file))
		if err := os.WriteFile(f, []byte(mounts.Replace(string(text))), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, c.bin, append(c.args, f)...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %v %s: %v\n%s", filepath.Base(c.bin), c.args, c.file, err, out)
		}
		// promtool loads the rule files the configuration names.
		if c.bin == b.Promtool && !strings.Contains(string(out), "integr8scode.rules.yml") {
			t.Errorf("promtool check config %s loaded no rules:\n%s", c.file, out)
		}
	}
}
