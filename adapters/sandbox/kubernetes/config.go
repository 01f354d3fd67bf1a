package kubernetes

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/integr8scode/integr8scode/domain"
)

// Config configures the Kubernetes sandbox.
type Config struct {
	// Kubeconfig is the path of a kubeconfig file. Empty: the in-cluster
	// configuration (the runner runs in a pod with a service account).
	Kubeconfig string
	// Namespace holds the sandbox pods. It should enforce the Pod Security
	// `restricted` profile and deny all network traffic. Default
	// "integr8scode-sandbox".
	Namespace string
	// Image is the Python image the pods run; it must have /usr/bin/python3
	// (3.9 or newer) and need nothing else. Required.
	Image string
	// ImagePullPolicy defaults to IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// RuntimeClass, when set, names a RuntimeClass (gVisor, Kata) the pods
	// run under.
	RuntimeClass string
	// NodeName, when set, binds every pod to that node directly, for
	// clusters without a scheduler.
	NodeName string
	// HostUsers false (the default) gives each pod its own user namespace
	// (`hostUsers: false`): uid 65534 inside maps to an unprivileged host
	// range. Set it true only on clusters that cannot run user namespaces;
	// a pod that the cluster cannot start fails its run, it is never
	// retried with weaker isolation.
	HostUsers bool
	// OutputCapBytes bounds stdout and stderr, each. Default 1 MiB.
	OutputCapBytes int
	// TmpBytes is the size of the memory-backed /tmp (it counts against the
	// memory limit). Default 16 MiB.
	TmpBytes int64
	// StartTimeout bounds the time from creating a pod to its container
	// running (scheduling, image pull, sandbox set-up). Default 60 s.
	StartTimeout time.Duration
	// Warm is the most pods kept created, started and waiting for a script
	// (the warm pool, see pool.go): each runs one script at most and is
	// deleted after it. How many wait follows demand, at least WarmMin.
	// 0, the default, keeps none: every run creates its own pod.
	Warm int
	// WarmMin is how many pods wait even on an idle platform. Default 1
	// when Warm is set; at most Warm.
	WarmMin int
	// WarmLimits are the memory and CPU the waiting pods are created with
	// (requests = limits cannot change on a live pod here); a run with
	// other memory or CPU creates a pod of its own. Their timeout is the
	// run's own. Default domain.DefaultLimits.
	WarmLimits domain.Limits
	// WarmMaxAge is how long a pod may wait for a script before the pool
	// replaces it (and its supervisor gives up on its own soon after).
	// Default 10 minutes.
	WarmMaxAge time.Duration
	// PoolOwner names this runner among those that share the namespace:
	// the pods of its warm pool carry it in a label, and a runner that
	// starts deletes the waiting pods its previous life left under the
	// same name. Default: the host name (a runner's pod name).
	PoolOwner string
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
}

const (
	defaultNamespace    = "integr8scode-sandbox"
	defaultOutputCap    = 1 << 20
	defaultTmpBytes     = 16 << 20
	defaultStartTimeout = 60 * time.Second
	defaultWarmMaxAge   = 10 * time.Minute
	// deliveryWait is how long a pod's supervisor waits for its script
	// after its container started. Past it the pod reports "undelivered"
	// and ends: the runner that created it died before handing the script
	// over, and whoever adopts the pod creates it afresh.
	defaultDeliveryWait = 20 * time.Second
	// killGrace is how long past the script's timeout the runner lets the
	// pod's supervisor report the timeout itself (with the run's
	// accounting) before it deletes the pod.
	killGrace = 2 * time.Second
	// deadlineSlack is added to timeout and deliveryWait for the pod's
	// activeDeadlineSeconds, the last backstop when no runner watches it.
	deadlineSlack = 30 * time.Second
	// settleTimeout bounds waiting for the kubelet to report how a
	// container ended after its output closed.
	settleTimeout = 30 * time.Second
	// apiTimeout bounds single API calls made after the run's context ended
	// (deleting the pod).
	apiTimeout = 10 * time.Second
)

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if c.OutputCapBytes == 0 {
		c.OutputCapBytes = defaultOutputCap
	}
	if c.TmpBytes == 0 {
		c.TmpBytes = defaultTmpBytes
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = defaultStartTimeout
	}
	if c.Warm > 0 && c.WarmMin == 0 {
		c.WarmMin = 1
	}
	if c.WarmLimits == (domain.Limits{}) {
		c.WarmLimits = domain.DefaultLimits
	}
	if c.WarmMaxAge == 0 {
		c.WarmMaxAge = defaultWarmMaxAge
	}
	if c.PoolOwner == "" {
		host, _ := os.Hostname()
		c.PoolOwner = poolOwnerLabel(host)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports every configuration problem at once.
func (c Config) Validate() error {
	var errs []error
	for _, msg := range validation.IsDNS1123Label(c.Namespace) {
		errs = append(errs, fmt.Errorf("Namespace %q: %s", c.Namespace, msg))
	}
	if c.Image == "" {
		errs = append(errs, errors.New("Image is required"))
	}
	switch c.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("ImagePullPolicy %q is not Always, IfNotPresent or Never", c.ImagePullPolicy))
	}
	if c.RuntimeClass != "" {
		for _, msg := range validation.IsDNS1123Subdomain(c.RuntimeClass) {
			errs = append(errs, fmt.Errorf("RuntimeClass %q: %s", c.RuntimeClass, msg))
		}
	}
	if c.OutputCapBytes < 1 {
		errs = append(errs, fmt.Errorf("OutputCapBytes must be positive, got %d", c.OutputCapBytes))
	}
	if c.TmpBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("TmpBytes must be at least 1 MiB, got %d", c.TmpBytes))
	}
	if c.StartTimeout < time.Second {
		errs = append(errs, fmt.Errorf("StartTimeout must be at least 1s, got %s", c.StartTimeout))
	}
	if c.Warm < 0 || c.WarmMin < 0 || c.WarmMin > c.Warm {
		errs = append(errs, fmt.Errorf("Warm %d and WarmMin %d must satisfy 0 <= WarmMin <= Warm", c.Warm, c.WarmMin))
	}
	if c.Warm > 0 && (c.WarmLimits.MemoryBytes <= 0 || c.WarmLimits.CPUMillicores <= 0) {
		errs = append(errs, fmt.Errorf("WarmLimits need a memory and CPU limit, got %+v", c.WarmLimits))
	}
	if c.Warm > 0 && c.WarmMaxAge < 10*time.Second {
		errs = append(errs, fmt.Errorf("WarmMaxAge must be at least 10s, got %s", c.WarmMaxAge))
	}
	for _, msg := range validation.IsValidLabelValue(c.PoolOwner) {
		errs = append(errs, fmt.Errorf("PoolOwner %q: %s", c.PoolOwner, msg))
	}
	return errors.Join(errs...)
}
