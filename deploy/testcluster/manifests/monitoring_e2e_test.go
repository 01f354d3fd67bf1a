//go:build kubernetes

package manifests

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"
)

// Prometheus and Alertmanager of the test overlay
// (deploy/observability/prometheus, patched onto the host's loopback by
// deploy/kubernetes/overlays/testcluster).
const (
	e2ePrometheus   = "http://127.0.0.1:19090"
	e2eAlertmanager = "http://127.0.0.1:19093"
)

// importMonitoringImages builds the images the overlay's Prometheus and
// Alertmanager Deployments name from the binaries deploy/observability
// builds from their Go modules (cached per machine), packaged as the
// platform's image is, and imports them into the cluster.
func importMonitoringImages(ctx context.Context, t *testing.T, cl *cluster.Cluster, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, port := range []string{"19090", "19093"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Fatalf("port %s, where the overlay's Prometheus or Alertmanager listens, is taken: %v", port, err)
		} else {
			ln.Close()
		}
	}
	bins, err := cl.MonitoringBinaries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prometheus", "alertmanager"} {
		ref := ""
		for _, o := range objs {
			if o.GetKind() == "Deployment" && o.GetName() == name {
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				if len(containers) > 0 {
					ref, _ = containers[0].(map[string]any)["image"].(string)
				}
			}
		}
		if ref == "" {
			t.Fatalf("the overlay has no %s Deployment", name)
		}
		archive, err := cl.BuildMonitoringImage(ref, name, bins[name])
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ImportImage(ctx, archive); err != nil {
			t.Fatal(err)
		}
	}
}

// promSample is one series of an instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  float64
}

// promAnswer is Prometheus's answer to an instant query.
type promAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"` // [time, "value"]
		} `json:"result"`
	} `json:"data"`
}

// promQuery runs an instant query against the in-cluster Prometheus.
func promQuery(t *testing.T, q string) []promSample {
	t.Helper()
	r := getJSON[promAnswer](t, e2ePrometheus+"/api/v1/query?query="+url.QueryEscape(q))
	if r.Status != "success" {
		t.Fatalf("query %s: %s", q, r.Error)
	}
	var out []promSample
	for _, s := range r.Data.Result {
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err != nil {
			t.Fatalf("query %s: value %v", q, s.Value)
		}
		out = append(out, promSample{Metric: s.Metric, Value: v})
	}
	return out
}

// promUntil polls query q until ok accepts its answer, for up to d.
func promUntil(t *testing.T, q string, d time.Duration, ok func([]promSample) bool) []promSample {
	t.Helper()
	var got []promSample
	for deadline := time.Now().Add(d); ; time.Sleep(time.Second) {
		if got = promQuery(t, q); ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s answers %+v", d, q, got)
		}
	}
}

// checkPrometheusScrapes: Prometheus found every role's pod through the
// API server and scrapes it, loaded the platform's rules and sends to the
// Alertmanager beside it.
func checkPrometheusScrapes(t *testing.T) {
	promUntil(t, `up{job=~"integr8scode-.*"} == 1`, 90*time.Second, func(s []promSample) bool {
		jobs := map[string]bool{}
		for _, x := range s {
			jobs[x.Metric["job"]] = true
		}
		return jobs["integr8scode-api"] && jobs["integr8scode-runner"] && jobs["integr8scode-projector"]
	})
	rules := getJSON[struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}](t, e2ePrometheus+"/api/v1/rules?type=alert")
	alerts := 0
	for _, g := range rules.Data.Groups {
		alerts += len(g.Rules)
	}
	if alerts < 20 {
		t.Errorf("Prometheus loaded %d alert rules, want the platform's (%+v)", alerts, rules.Data.Groups)
	}
	ams := getJSON[struct {
		Data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		} `json:"data"`
	}](t, e2ePrometheus+"/api/v1/alertmanagers")
	if len(ams.Data.Active) != 1 || !strings.HasPrefix(ams.Data.Active[0].URL, e2eAlertmanager+"/") {
		t.Errorf("Prometheus sends alerts to %+v, want %s", ams.Data.Active, e2eAlertmanager)
	}
}

// checkPodPhases: the sandboxes dashboard's pod phase queries show a
// running sandbox pod while a script runs, as the runner in the cluster
// reports it.
func checkPodPhases(ctx context.Context, t *testing.T, c *testCluster, sandboxNS string) {
	// A timeout longer than the default 5 s: Prometheus scrapes every 5 s,
	// and the script must still run when the cancel comes (a pod of the
	// warm pool runs it at once).
	id := submitRequest(t, map[string]any{"script": "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
		"limits": map[string]any{"timeout_ms": 30000}})
	waitSandboxPod(ctx, t, c, sandboxNS)
	// The panel's query (deploy/observability/dashboards.go, "Sandbox pods
	// by phase"): five phases, Running counting this pod.
	promUntil(t, `max by (phase) (integr8scode_sandbox_pods)`, time.Minute, func(s []promSample) bool {
		phases := map[string]float64{}
		for _, x := range s {
			phases[x.Metric["phase"]] = x.Value
		}
		return len(phases) == 5 && phases["Running"] == 1
	})
	// And the listing errors panel's, at no error.
	promUntil(t, `sum(rate(integr8scode_sandbox_pod_list_errors_total[1m]))`, time.Minute, func(s []promSample) bool {
		return len(s) == 1 && s[0].Value == 0
	})
	resp, err := http.Post(e2eAPI+"/api/v1/executions/"+id+"/cancel", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e := wait(ctx, t, id); e.FailureReason != "cancelled" {
		t.Fatalf("got %+v", e)
	}
	promUntil(t, `max(integr8scode_sandbox_pods{phase="Running"})`, time.Minute, func(s []promSample) bool {
		return len(s) == 1 && s[0].Value == 0
	})
}

// amAlert is the part of Alertmanager's /api/v2/alerts the test reads.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func activeAlerts(t *testing.T, name string) []amAlert {
	t.Helper()
	return getJSON[[]amAlert](t, e2eAlertmanager+"/api/v2/alerts?active=true&silenced=false&inhibited=false&filter="+
		url.QueryEscape(`alertname="`+name+`"`))
}

// checkNoRunnerAlert: the fault the rules catch first with the shipped
// durations. The runner Deployment is scaled to 0 with an execution
// queued; Integr8scodeNoRunnerReady (for: 2m, unchanged) must reach the
// in-cluster Alertmanager; the runner scaled back runs the execution.
func checkNoRunnerAlert(ctx context.Context, t *testing.T, c *testCluster, platformNS string) {
	const alert = "Integr8scodeNoRunnerReady"
	if a := activeAlerts(t, alert); len(a) > 0 {
		t.Fatalf("%s is active while a runner is ready: %+v", alert, a)
	}
	scaleRunner(ctx, t, c, platformNS, 0)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		pods, err := c.kube.CoreV1().Pods(platformNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=runner"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner pod is still there a minute after scaling to 0")
		}
	}
	stopped := time.Now()
	id := submit(t, "print('ran after the runner came back')\n")
	var got []amAlert
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(2 * time.Second) {
		if got = activeAlerts(t, alert); len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not active in Alertmanager 5 minutes after the runner stopped; Prometheus says %+v",
				alert, promQuery(t, `ALERTS{alertname="`+alert+`"}`))
		}
	}
	t.Logf("%s active in Alertmanager %s after the runner stopped", alert, time.Since(stopped).Round(time.Second))
	if a := got[0]; a.Labels["severity"] != "critical" || a.Annotations["runbook"] != "docs/operations.md#no-runner-ready" || a.Status.State != "active" {
		t.Errorf("alert %+v", a)
	}
	if e := getJSON[execution](t, e2eAPI+"/api/v1/executions/"+id); e.Status != "queued" {
		t.Errorf("%s is %s with no runner", id, e.Status)
	}
	scaleRunner(ctx, t, c, platformNS, 1)
	if e := wait(ctx, t, id); e.Status != "completed" || e.Output != "ran after the runner came back\n" {
		t.Fatalf("after the runner came back: %+v", e)
	}
}

func scaleRunner(ctx context.Context, t *testing.T, c *testCluster, ns string, n int32) {
	t.Helper()
	deployments := c.kube.AppsV1().Deployments(ns)
	s, err := deployments.GetScale(ctx, "runner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = n
	if _, err := deployments.UpdateScale(ctx, "runner", s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
