//go:build kubernetes

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/integr8scode/integr8scode/domain"
)

// These need the test cluster (go tool task cluster:up):
//
//	go test -tags kubernetes -run TestUpOnKubernetes ./cmd/integr8scode/

// testClusterKubeconfig is .cluster/kubeconfig at the repository root.
func testClusterKubeconfig(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		kc := filepath.Join(dir, ".cluster", "kubeconfig")
		if _, err := os.Stat(kc); err == nil {
			return kc
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no .cluster/kubeconfig above this directory: run `go tool task cluster:up` at the repository root")
		}
	}
}

// TestUpOnKubernetes runs the all-in-one process with the Kubernetes sandbox
// (`up --runner kubernetes --kubeconfig … --namespace … --sandbox-image …`)
// against the test cluster: scripts run in pods of the given namespace. Then
// the process is killed with SIGKILL while a script runs (no graceful
// detach: its pod simply keeps running) and restarted on the same data
// directory: its next life (the same runner identity) resumes that pod, and
// the execution completes with the whole output of its one run.
func TestUpOnKubernetes(t *testing.T) {
	kc := testClusterKubeconfig(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "i8c-up-" + hex.EncodeToString(b)
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})

	bin := buildBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	base := "http://" + addr
	flags := []string{"--runner", "kubernetes", "--kubeconfig", kc, "--namespace", ns,
		"--sandbox-image", "localhost/integr8scode/python:3.11"}
	first, _ := startProcess(t, bin, dir, addr, flags...)

	hello := submit(t, base, map[string]any{"script": "import sys\nprint('hi')\nprint('err', file=sys.stderr)"})
	if e := waitDone(t, base, hello.ID, 2*time.Minute); e.Status != domain.StatusCompleted || e.Output != "hi\n" || e.Errors != "err\n" {
		t.Fatalf("hello: %+v", e)
	}
	evs := waitEvents(t, base, hello.ID, 30*time.Second)
	var started domain.ExecutionStarted
	if len(evs) != 3 || json.Unmarshal(evs[1].Data, &started) != nil || started.Sandbox != "kubernetes" {
		t.Fatalf("hello's events: %+v", evs)
	}

	slow := submit(t, base, map[string]any{"script": "import time\nprint('before', flush=True)\ntime.sleep(4)\nprint('after')"})
	var pod string
	for deadline := time.Now().Add(time.Minute); pod == ""; time.Sleep(100 * time.Millisecond) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.Annotations["integr8scode.io/execution-id"] == slow.ID && p.Status.Phase == corev1.PodRunning {
				pod = p.Name
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow script's pod never ran")
		}
	}
	_ = syscall.Kill(-first.Process.Pid, syscall.SIGKILL)
	// startProcess's own goroutine waits for (and reaps) the process: a
	// second Wait here could race it and block forever. The pid is gone
	// once it has been reaped.
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(first.Process.Pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the killed process was not reaped")
		}
	}
	if _, err := client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err != nil {
		t.Fatalf("the pod did not outlive the killed process: %v", err)
	}

	startProcess(t, bin, dir, addr, flags...)
	e := waitDone(t, base, slow.ID, 2*time.Minute)
	if e.Status != domain.StatusCompleted || e.Output != "before\nafter\n" || e.Attempt != 1 {
		t.Fatalf("after the restart: %+v", e)
	}
	// The restarted process released its previous life's attempt and
	// resumed the same pod: the script ran once, and the log says so.
	var types []string
	for _, ev := range waitEvents(t, base, slow.ID, 30*time.Second) {
		types = append(types, ev.Type)
	}
	if want := "[ExecutionQueued ExecutionStarted ExecutionAbandoned ExecutionResumed ExecutionCompleted]"; fmt.Sprint(types) != want {
		t.Fatalf("events %v, want %s", types, want)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s is still there (err %v)", pod, err)
		}
	}
}
