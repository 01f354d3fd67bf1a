package runner

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the runner's Prometheus series.
type Metrics struct {
	started  prometheus.Counter
	resumed  prometheus.Counter
	finished *prometheus.CounterVec
	duration prometheus.Histogram
	queued   prometheus.Gauge
	busy     prometheus.Gauge
}

// NewMetrics creates the runner's series and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "runs_started_total", Help: "Sandbox runs started."}),
		resumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "runs_resumed_total", Help: "Sandboxes of a stopped runner followed to their end by another runner or its next life."}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "runs_finished_total", Help: "Sandbox runs finished, by verdict."}, []string{"verdict"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "run_duration_seconds", Help: "Time from claim to sandbox exit.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "queued_executions", Help: "Executions waiting for a sandbox, as of the last sweep."}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "busy_slots", Help: "Sandboxes running now."}),
	}
	if reg != nil {
		reg.MustRegister(m.started, m.resumed, m.finished, m.duration, m.queued, m.busy)
	}
	return m
}
