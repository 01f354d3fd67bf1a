package kubernetes

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PodPhases are the values of the phase label of integr8scode_sandbox_pods:
// Kubernetes' pod phases, a closed set. A phase the API server reports
// that is not among them (none exists today) counts as Unknown.
var PodPhases = []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown}

// listTimeout bounds the pod listing a scrape makes: a slow API server
// makes the series stale by one scrape, never the scrape itself slow.
const listTimeout = 3 * time.Second

// phaseCollector reports the sandbox pods by phase, listed from the API
// server when Prometheus scrapes. Listing at scrape time (from the API
// server's watch cache: resourceVersion 0) keeps the numbers as fresh as
// the scrape and costs one call per scrape and runner; every runner
// reports the same namespace, so dashboards read it with max.
type phaseCollector struct {
	p      *Pods
	pods   *prometheus.Desc
	errors prometheus.Counter

	mu   sync.Mutex
	last map[corev1.PodPhase]float64
}

// Collector returns the Prometheus collector of this sandbox's pods:
// integr8scode_sandbox_pods{phase} (every phase present, at 0 when no pod
// is in it) and integr8scode_sandbox_pod_list_errors_total. When the
// listing fails, the pods series keep their last values and the error
// counter rises. Register it once.
func (p *Pods) Collector() prometheus.Collector {
	c := &phaseCollector{p: p,
		pods: prometheus.NewDesc("integr8scode_sandbox_pods",
			"Sandbox pods of runs in the sandbox namespace by phase (not those waiting in a warm pool), listed from the API server at each scrape (every runner reports the same namespace: read with max).",
			[]string{"phase"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "sandbox",
			Name: "pod_list_errors_total", Help: "Scrapes at which the sandbox pods could not be listed (integr8scode_sandbox_pods kept its last values)."}),
		last: map[corev1.PodPhase]float64{},
	}
	for _, ph := range PodPhases {
		c.last[ph] = 0
	}
	return c
}

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pods
	c.errors.Describe(ch)
}

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if counts, err := c.count(); err != nil {
		c.errors.Inc()
		c.p.log.Warn("could not list the sandbox pods for the metrics", "namespace", c.p.cfg.Namespace, "err", err)
	} else {
		c.last = counts
	}
	for _, ph := range PodPhases {
		ch <- prometheus.MustNewConstMetric(c.pods, prometheus.GaugeValue, c.last[ph], string(ph))
	}
	c.errors.Collect(ch)
}

// count lists this package's pods (all pages) and counts them by phase.
func (c *phaseCollector) count() (map[corev1.PodPhase]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	counts := map[corev1.PodPhase]float64{}
	for _, ph := range PodPhases {
		counts[ph] = 0
	}
	// The pods of runs: those waiting in a warm pool are not (yet) any
	// run's, and integr8scode_sandbox_warm_waiting counts them.
	opts := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{labelManagedBy: managedBy}).String() + ",!" + labelPool,
		ResourceVersion: "0"}
	for {
		list, err := c.p.pods().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, pod := range list.Items {
			ph := pod.Status.Phase
			if _, known := counts[ph]; !known {
				ph = corev1.PodUnknown
			}
			counts[ph]++
		}
		if list.Continue == "" {
			return counts, nil
		}
		// A continued list must name no resource version.
		opts.Continue, opts.ResourceVersion = list.Continue, ""
	}
}
