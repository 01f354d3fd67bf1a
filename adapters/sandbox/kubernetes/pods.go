package kubernetes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/integr8scode/integr8scode/runner"
)

// Pods runs each job in a pod of its own. It implements runner.Sandbox.
type Pods struct {
	cfg    Config
	rest   *rest.Config
	client kubernetes.Interface
	log    *slog.Logger

	// deliveryWait is how long a pod waits for its script (see
	// defaultDeliveryWait); tests shorten it.
	deliveryWait time.Duration
	// mutatePod, if set, changes each pod before it is created (tests).
	mutatePod func(*corev1.Pod)

	pool      *warmPool
	closeOnce sync.Once
	// claiming serializes, per pod name of a job (striped), looking for
	// the job's pod and claiming a warm one, so that two runs of the same
	// job in this process never claim two pods.
	claiming [64]sync.Mutex
}

// New connects to the cluster (Kubeconfig, or the in-cluster configuration)
// without calling it.
func New(cfg Config) (*Pods, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes sandbox: %w", err)
	}
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig == "" {
		rc, err = rest.InClusterConfig()
	} else {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes sandbox: client configuration: %w", err)
	}
	// Each run makes a handful of calls; client-go's default of 5 per
	// second would queue the runs of a busy runner behind each other.
	rc.QPS, rc.Burst = 100, 200
	rc.UserAgent = "integr8scode-runner"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes sandbox: client: %w", err)
	}
	p := &Pods{cfg: cfg, rest: rc, client: client, log: cfg.Logger, deliveryWait: defaultDeliveryWait}
	p.pool = newWarmPool(p)
	return p, nil
}

// Name identifies this sandbox in ExecutionStarted.
func (p *Pods) Name() string { return "kubernetes" }

// Namespace is where the pods run.
func (p *Pods) Namespace() string { return p.cfg.Namespace }

func (p *Pods) pods() typedcorev1.PodInterface { return p.client.CoreV1().Pods(p.cfg.Namespace) }

// deletePod removes a pod at once (no grace: SIGKILL to everything in it),
// whatever state ctx is in. A pod already gone is not an error.
func (p *Pods) deletePod(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), apiTimeout)
	defer cancel()
	err := p.pods().Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To(int64(0)),
		PropagationPolicy:  ptr.To(metav1.DeletePropagationBackground),
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s: %w", name, err)
	}
	return nil
}

// The runner's optional sandbox interfaces that Pods implements.
var (
	_ runner.Resumer   = (*Pods)(nil)
	_ runner.Collector = (*Pods)(nil)
)
