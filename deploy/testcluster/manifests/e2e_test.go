//go:build kubernetes

package manifests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"
)

// The platform itself in the test cluster: the testcluster overlay applied
// for real, with this checkout's platform image built and imported, the api,
// runner and projector Deployments running in the cluster, and scripts
// submitted through the in-cluster API and run in sandbox pods; beside them
// the overlay's Prometheus and Alertmanager (deploy/observability/prometheus,
// their images made from the binaries deploy/observability builds from
// their Go modules), which must scrape every role, show the sandbox pods by
// phase, and fire an alert when the runner is gone with work queued.
//
// The overlay expects Kafka and MongoDB on the host's 127.0.0.1:19092 and
// 127.0.0.1:17017 (the platform pods use the host network): the test runs
// `integr8scode stores` there, from the same static binary as the image. The
// pods listen on 127.0.0.1:18080-18082. So one such test runs per machine.

const (
	e2eKafkaPort = "19092"
	e2eMongoPort = "17017"
	e2eAPI       = "http://127.0.0.1:18080"
)

func TestPlatformInCluster(t *testing.T) {
	c := connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	root, err := RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := cluster.New(root, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	coverDir := os.Getenv(coverDirEnv)
	binary, archive, err := cl.BuildPlatform(ctx, coverDir != "")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ImportImage(ctx, archive); err != nil {
		t.Fatal(err)
	}
	t.Logf("platform image built and imported in %s", time.Since(begin).Round(time.Millisecond))
	for _, port := range []string{"18080", "18081", "18082"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Fatalf("port %s, where the overlay's platform pods listen, is taken: %v", port, err)
		} else {
			ln.Close()
		}
	}
	storesDir := startStores(t, binary)

	objs, platformNS, sandboxNS := renderRenamed(t, TestCluster, "i8c-e2e-")
	importMonitoringImages(ctx, t, cl, objs)
	if coverDir != "" {
		objs = withCoverage(t, objs, coverDir)
	}
	t.Cleanup(func() { deleteNamespaces(t, c, platformNS, sandboxNS) })
	for _, o := range objs {
		if err := c.apply(ctx, o, false); err != nil {
			t.Fatalf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	// The Secrets the overlay mounts, made as an operator would: the
	// stores' credentials from their data directory, the ledger's keys
	// with `integr8scode ledger keys`, the token keys with `integr8scode
	// admin rotate-token-key`.
	keysDir := filepath.Join(t.TempDir(), "ledger-keys")
	keys := exec.Command(binary, "ledger", "keys", "--dir", keysDir)
	keys.Env = append(os.Environ(), coverEnv()...)
	if out, err := keys.CombinedOutput(); err != nil {
		t.Fatalf("ledger keys: %v\n%s", err, out)
	}
	createSecret(ctx, t, c, platformNS, "integr8scode-ledger-keys", dirFiles(t, keysDir))
	authDir := filepath.Join(t.TempDir(), "auth-keys")
	if out, err := exec.Command(binary, "admin", "rotate-token-key", "--auth-keys", authDir).CombinedOutput(); err != nil {
		t.Fatalf("admin rotate-token-key: %v\n%s", err, out)
	}
	createSecret(ctx, t, c, platformNS, "integr8scode-auth-keys", dirFiles(t, authDir))
	createSecret(ctx, t, c, platformNS, "integr8scode-stores", map[string][]byte{
		"sasl-password": readFile(t, filepath.Join(storesDir, "kafka", "sasl-password")),
		"ca.pem":        readFile(t, filepath.Join(storesDir, "mongo", "tls", "ca.pem")),
		"client.pem":    readFile(t, filepath.Join(storesDir, "mongo", "tls", "client.pem")),
	})
	c.warnings.take()
	waitDeployments(ctx, t, c, platformNS, objs)
	t.Logf("platform up in the cluster %s after the start", time.Since(begin).Round(time.Millisecond))

	t.Run("hello", func(t *testing.T) {
		e := runScript(ctx, t, "import sys\nprint('hello from a pod')\nprint('to stderr', file=sys.stderr)\n")
		if e.Status != "completed" || e.Output != "hello from a pod\n" || e.Errors != "to stderr\n" || e.ExitCode == nil || *e.ExitCode != 0 {
			t.Fatalf("got %+v", e)
		}
		checkEvents(ctx, t, e.ID)
	})
	t.Run("prometheus scrapes every role", func(t *testing.T) {
		checkPrometheusScrapes(t)
	})
	t.Run("sandbox pods by phase", func(t *testing.T) {
		checkPodPhases(ctx, t, c, sandboxNS)
	})
	t.Run("runtime error", func(t *testing.T) {
		e := runScript(ctx, t, "import sys\nprint('partial')\nsys.exit(3)\n")
		if e.Status != "failed" || e.FailureReason != "runtime_error" || e.Output != "partial\n" || e.ExitCode == nil || *e.ExitCode != 3 {
			t.Fatalf("got %+v", e)
		}
		checkEvents(ctx, t, e.ID, "ExecutionQueued", "ExecutionStarted", "ExecutionFailed")
	})
	t.Run("timeout", func(t *testing.T) {
		e := runScript(ctx, t, "import time\nprint('start', flush=True)\ntime.sleep(60)\n")
		if e.Status != "failed" || e.FailureReason != "timeout" || e.Output != "start\n" {
			t.Fatalf("got %+v", e)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		// A user's cancel while the script runs: the runner notices at its
		// next lease renewal and deletes the sandbox pod.
		id := submit(t, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
		waitSandboxPod(ctx, t, c, sandboxNS)
		resp, err := http.Post(e2eAPI+"/api/v1/executions/"+id+"/cancel", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("cancel: %d", resp.StatusCode)
		}
		if e := wait(ctx, t, id); e.Status != "failed" || e.FailureReason != "cancelled" {
			t.Fatalf("got %+v", e)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			pods, err := c.kube.CoreV1().Pods(sandboxNS).List(ctx, metav1.ListOptions{LabelSelector: runPods})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cancelled execution's pod %s is still there", pods.Items[0].Name)
			}
		}
	})

	t.Run("runner replaced mid-run", func(t *testing.T) {
		// The runner pod is deleted while its script runs: it lets go of
		// the sandbox pod and says so (ExecutionAbandoned); the Deployment
		// starts a new one (a new identity: its data dir is an emptyDir),
		// which resumes the attempt and follows the same sandbox pod: the
		// script runs once, one ExecutionStarted.
		id := submit(t, "import time\nprint('before', flush=True)\ntime.sleep(3)\nprint('after')\n")
		// Not at "running" in the view, which the claim sets before the pod
		// exists: a runner stopped before it created the pod has nothing to
		// hand over, and its successor rightly runs attempt 2.
		waitSandboxPod(ctx, t, c, sandboxNS)
		runners, err := c.kube.CoreV1().Pods(platformNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=runner"})
		if err != nil || len(runners.Items) != 1 {
			t.Fatalf("runner pods: %v, %v", runners, err)
		}
		if err := c.kube.CoreV1().Pods(platformNS).Delete(ctx, runners.Items[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e := wait(ctx, t, id)
		if e.Status != "completed" || e.Output != "before\nafter\n" || e.Attempt != 1 {
			t.Fatalf("got %+v", e)
		}
		checkEvents(ctx, t, e.ID, "ExecutionQueued", "ExecutionStarted", "ExecutionAbandoned", "ExecutionResumed", "ExecutionCompleted")
	})

	t.Run("no runner with work queued fires NoRunnerReady through Alertmanager", func(t *testing.T) {
		checkNoRunnerAlert(ctx, t, c, platformNS)
	})

	// Every sandbox pod of a run is gone (the runner's warm pool keeps
	// some waiting), and none ever ran in the platform's namespace.
	for _, ns := range []string{sandboxNS, platformNS} {
		pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=integr8scode," + runPods})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 {
			t.Errorf("%d sandbox pods left in %s", len(pods.Items), ns)
		}
	}
}

// startStores runs `integr8scode stores` on the ports the overlay names
// and returns its data directory.
func startStores(t *testing.T, binary string) string {
	t.Helper()
	dir := t.TempDir()
	for _, port := range []string{e2eKafkaPort, e2eMongoPort} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Fatalf("port %s, where the overlay expects Kafka or MongoDB, is taken: %v", port, err)
		} else {
			ln.Close()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(binary, "stores", "--listen", ops, "--data-dir", dir,
		"--embedded-kafka-port", e2eKafkaPort, "--embedded-mongodb-port", e2eMongoPort)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.Env = append(os.Environ(), coverEnv()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("stores log:\n%s", tail(logs.String(), 30))
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + ops + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return dir
			}
		}
		select {
		case <-done:
			t.Fatalf("integr8scode stores exited:\n%s", tail(logs.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("integr8scode stores not ready after 60 s:\n%s", tail(logs.String(), 30))
		}
	}
}

// waitDeployments waits until every Deployment has its replicas available
// (ready: /readyz answers 200, which the runner only does after its
// sandbox self-test passed in the sandbox namespace). On failure it shows
// the pods' states and logs.
func waitDeployments(ctx context.Context, t *testing.T, c *testCluster, ns string, objs []*unstructured.Unstructured) {
	t.Helper()
	var names []string
	for _, o := range objs {
		if o.GetKind() == "Deployment" {
			names = append(names, o.GetName())
		}
	}
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var waiting []string
		for _, n := range names {
			d, err := c.kube.AppsV1().Deployments(ns).Get(ctx, n, metav1.GetOptions{})
			if err != nil || !available(d) {
				waiting = append(waiting, n)
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			describePods(ctx, t, c, ns)
			t.Fatalf("deployments not available after 4 minutes: %v", waiting)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func available(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas >= want && d.Status.UpdatedReplicas >= want
}

func describePods(ctx context.Context, t *testing.T, c *testCluster, ns string) {
	pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		t.Logf("pod %s: phase %s, conditions %+v", p.Name, p.Status.Phase, p.Status.Conditions)
		for _, cs := range p.Status.ContainerStatuses {
			t.Logf("  container %s: ready %v restarts %d state %+v", cs.Name, cs.Ready, cs.RestartCount, cs.State)
		}
		logs, err := c.kube.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: ptr.To[int64](30)}).DoRaw(ctx)
		t.Logf("  log (err %v):\n%s", err, logs)
	}
}

// execution is the part of the API's execution view the test reads.
type execution struct {
	ID            string `json:"execution_id"`
	Status        string `json:"status"`
	Output        string `json:"output"`
	Errors        string `json:"errors"`
	ExitCode      *int   `json:"exit_code"`
	FailureReason string `json:"failure_reason"`
	Attempt       int    `json:"attempt"`
}

// runScript submits a script to the in-cluster API and waits for its end.
func runScript(ctx context.Context, t *testing.T, script string) execution {
	t.Helper()
	return wait(ctx, t, submit(t, script))
}

// submit submits a script to the in-cluster API and returns its id.
func submit(t *testing.T, script string) string {
	t.Helper()
	return submitRequest(t, map[string]any{"script": script})
}

// submitRequest submits a request body of the API's own.
func submitRequest(t *testing.T, req map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(req)
	resp, err := http.Post(e2eAPI+"/api/v1/executions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var e execution
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || e.ID == "" {
		t.Fatalf("submit: %d %v %+v", resp.StatusCode, err, e)
	}
	return e.ID
}

// runPods selects the sandbox pods of runs: not those waiting in the
// runner's warm pool (--warm), which carry the pool's label until a run
// claims one.
const runPods = "!integr8scode.io/pool"

// waitSandboxPod waits until the one sandbox pod of a run in ns runs its
// container.
func waitSandboxPod(ctx context.Context, t *testing.T, c *testCluster, ns string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		pods, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: runPods})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running sandbox pod: %d pods", len(pods.Items))
		}
	}
}

// wait waits for an execution's end, as the API's view shows it.
func wait(ctx context.Context, t *testing.T, id string) execution {
	t.Helper()
	begin := time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		got := getJSON[execution](t, e2eAPI+"/api/v1/executions/"+id)
		if got.Status == "completed" || got.Status == "failed" {
			t.Logf("%s: %s %s after %s", got.ID, got.Status, got.FailureReason, time.Since(begin).Round(time.Millisecond))
			return got
		}
	}
	t.Fatalf("%s did not end within 2 minutes", id)
	return execution{}
}

// checkEvents checks the execution's ledger as the API serves it: Queued,
// one Started by the kubernetes sandbox, one terminal event, a valid chain.
func checkEvents(ctx context.Context, t *testing.T, id string, want ...string) {
	t.Helper()
	if len(want) == 0 {
		want = []string{"ExecutionQueued", "ExecutionStarted", "ExecutionCompleted"}
	}
	type event struct {
		Verified struct{ Hash, Link, Signature bool } `json:"verified"`
		Record   struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"record"`
	}
	type ledger struct {
		Events     []event `json:"events"`
		ChainValid bool    `json:"chain_valid"`
	}
	var got ledger
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		got = getJSON[ledger](t, e2eAPI+"/api/v1/executions/"+id+"/events")
		if len(got.Events) >= len(want) {
			break
		}
	}
	var types []string
	for _, e := range got.Events {
		types = append(types, e.Record.Type)
	}
	if fmt.Sprint(types) != fmt.Sprint(want) || !got.ChainValid {
		t.Fatalf("events %v (want %v), chain valid %v", types, want, got.ChainValid)
	}
	var started struct {
		Sandbox string `json:"sandbox"`
	}
	if err := json.Unmarshal(got.Events[1].Record.Data, &started); err != nil || started.Sandbox != "kubernetes" {
		t.Fatalf("ExecutionStarted %s (%v): want sandbox kubernetes", got.Events[1].Record.Data, err)
	}
}

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	var v T
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// createSecret makes an Opaque Secret in ns.
func createSecret(ctx context.Context, t *testing.T, c *testCluster, ns, name string, data map[string][]byte) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: corev1.SecretTypeOpaque, Data: data}
	if _, err := c.kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Secret %s/%s: %v", ns, name, err)
	}
}

// dirFiles reads every regular file of dir (a key directory becomes a Secret).
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() {
			out[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
