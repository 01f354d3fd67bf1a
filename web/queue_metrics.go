package web

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// queueCollector reports the backlog at each scrape. It lives in the API
// rather than the runner because the alerts that need it ("work waits and
// no runner takes it") must keep working when every runner is gone.
// Each API replica reports the same numbers; take max, not sum.
type queueCollector struct {
	q   *queue
	log *slog.Logger
}

var (
	queueExecutionsDesc = prometheus.NewDesc("integr8scode_queue_executions",
		"Executions waiting for a sandbox (queued) or in one (running), from the executions view; at most 1000 of each are counted.",
		[]string{"status"}, nil)
	queueOldestDesc = prometheus.NewDesc("integr8scode_queue_oldest_seconds",
		"Age of the oldest execution still queued (0 when none waits).", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueExecutionsDesc
	ch <- queueOldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := c.q.view(ctx)
	if err != nil {
		// No numbers rather than wrong ones: the series go missing, and
		// the store's trouble shows in the API's errors and in this log.
		c.log.Warn("queue metrics: reading the backlog failed", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueExecutionsDesc, prometheus.GaugeValue, float64(len(v.queued)), "queued")
	ch <- prometheus.MustNewConstMetric(queueExecutionsDesc, prometheus.GaugeValue, float64(v.running), "running")
	age := 0.0
	if !v.oldest.IsZero() {
		age = max(time.Since(v.oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, age)
}
