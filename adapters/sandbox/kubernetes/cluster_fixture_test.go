//go:build kubernetes

package kubernetes

// These tests need the real test cluster (`go tool task cluster:up`, which
// writes .cluster/kubeconfig at the repository root):
//
//	go test -tags kubernetes ./adapters/sandbox/kubernetes/ -count=1
//
// Each test package run makes its own namespaces, with Pod Security
// `restricted` enforced, and deletes them at the end.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// testImage is the Python image deploy/testcluster builds and imports.
const testImage = "localhost/integr8scode/python:3.11"

// kubeconfig finds .cluster/kubeconfig above this directory.
func kubeconfig(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		path := filepath.Join(dir, ".cluster", "kubeconfig")
		if _, err := os.Stat(path); err == nil {
			return path
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no .cluster/kubeconfig above this directory: start the test cluster with `go tool task cluster:up`")
		}
		dir = parent
	}
}

// testNamespace creates a namespace that enforces the `restricted` Pod
// Security profile, with its default ServiceAccount, and deletes it when
// the test ends.
func testNamespace(t testing.TB, client kubernetes.Interface, prefix string, extra map[string]string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	lbl := map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}
	for k, v := range extra {
		lbl[k] = v
	}
	ctx := context.Background()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	// Pods are refused until the namespace has its default ServiceAccount;
	// the controller-manager makes it, but maybe not before the first pod.
	_, err = client.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create default service account: %v", err)
	}
	return name
}

type fixture struct {
	pods   *Pods
	client kubernetes.Interface
	ns     string
	warm   bool // run waits for a pod of the pool and checks it took it
}

func newFixture(t testing.TB, mutate func(*Config)) fixture {
	t.Helper()
	cfg := Config{Kubeconfig: kubeconfig(t), Image: testImage, Namespace: "placeholder",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if !testing.Verbose() {
		cfg.Logger = nil
	}
	boot, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Namespace = testNamespace(t, boot.client, "i8s-sandbox-test", nil)
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return fixture{pods: p, client: p.client, ns: cfg.Namespace}
}

func job(t testing.TB, script string) runner.Job {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return runner.Job{ExecutionID: "t-" + hex.EncodeToString(b), Attempt: 1, Language: "python",
		Script: script, Limits: domain.DefaultLimits}
}

func (f fixture) run(t testing.TB, j runner.Job) domain.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var hits int64
	if f.warm {
		waitPool(t, f.pods, "a pod waiting", func(s PoolStats) bool { return s.Waiting > 0 })
		hits = f.pods.PoolStats().Hits
	}
	begin := time.Now()
	res, err := f.pods.Run(ctx, j)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if f.warm && f.pods.PoolStats().Hits != hits+1 {
		t.Fatalf("the run did not take a pod of the warm pool: %+v", f.pods.PoolStats())
	}
	t.Logf("%s in %s: verdict %s exit %v signal %q message %q usage %+v stdout %d B stderr %d B",
		j.ExecutionID, time.Since(begin).Round(time.Millisecond), res.Verdict, deref(res.ExitCode), res.Signal,
		res.Message, res.Usage, len(res.Stdout), len(res.Stderr))
	f.noPodLeft(t, j)
	return res
}

// noPodLeft checks that Run deleted the pod of j, whether created for it
// or claimed from the warm pool.
func (f fixture) noPodLeft(t testing.TB, j runner.Job) {
	t.Helper()
	_, err := f.client.CoreV1().Pods(f.ns).Get(context.Background(), podName(j.ExecutionID, j.Attempt), metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("pod of %s still exists after Run (err %v)", j.ExecutionID, err)
	}
	list, err := f.client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(podLabels(j.ExecutionID, j.Attempt)).String()})
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			t.Errorf("pod %s of %s still exists after Run", pod.Name, j.ExecutionID)
		}
	}
}

// warmOrCold runs body against a sandbox that creates a pod for each run
// (Cold) and one that takes a pod of its warm pool (Warm); in Warm, every
// fixture.run waits for a waiting pod and checks that the run took it.
func warmOrCold(t *testing.T, mutate func(*Config), body func(t *testing.T, f fixture)) {
	for _, warm := range []bool{false, true} {
		name := "Cold"
		if warm {
			name = "Warm"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if warm {
					c.Warm, c.WarmMin = 2, 1
				}
				if mutate != nil {
					mutate(c)
				}
			})
			f.warm = warm
			body(t, f)
		})
	}
}

// waitPool polls the pool until ok holds, for at most two minutes (pods
// start in a second or two on an idle test cluster).
func waitPool(t testing.TB, p *Pods, what string, ok func(PoolStats) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok(p.PoolStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the pool is at %+v after 2 minutes", what, p.PoolStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// waitRunning waits until j's pod runs its container.
func (f fixture) waitRunning(t testing.TB, j runner.Job) {
	for range 600 {
		pod, err := f.client.CoreV1().Pods(f.ns).Get(context.Background(), podName(j.ExecutionID, j.Attempt), metav1.GetOptions{})
		if err == nil {
			if cs := container(pod); cs != nil && cs.State.Running != nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("the pod never ran")
}
