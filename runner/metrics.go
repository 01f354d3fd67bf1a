package runner

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/domain"
)

// Metrics are the runner's Prometheus series.
type Metrics struct {
	started  prometheus.Counter
	resumed  prometheus.Counter
	finished *prometheus.CounterVec
	duration prometheus.Histogram
	// overhead is the part of a run the script's measured wall time does
	// not cover: the sandbox's setup and teardown as the runner sees them.
	overhead prometheus.Histogram
	queued   prometheus.Gauge
	busy     prometheus.Gauge
	// ready and slots let an alert tell "no runner takes work" apart from
	// "runners are busy": a runner's series vanish when it stops.
	ready prometheus.Gauge
	slots prometheus.Gauge
	// The CPU and memory limits of the runs in flight, against the budgets.
	cpuInUse, cpuBudget prometheus.Gauge
	memInUse, memBudget prometheus.Gauge
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
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "sandbox_overhead_seconds", Help: "Time of a run outside the script's measured wall time: preparing and removing the sandbox (runc bundle and cgroups; pod creation, scheduling and deletion).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "queued_executions", Help: "Executions waiting for a sandbox, as of the last sweep."}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "busy_slots", Help: "Sandboxes running now."}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "ready", Help: "1 while this runner takes work (its sandbox passed the self-test and it sweeps the backlog), else 0."}),
		slots: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "slots", Help: "Sandboxes this runner may run at once (--slots)."}),
		cpuInUse: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "cpu_millicores_in_use", Help: "Sum of the CPU limits of the sandboxes running now, as of the last sweep."}),
		cpuBudget: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "cpu_millicores_budget", Help: "Sum of CPU limits this runner runs at once at most (--cpu-budget; 0: unbounded)."}),
		memInUse: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "memory_bytes_in_use", Help: "Sum of the memory limits of the sandboxes running now, as of the last sweep."}),
		memBudget: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "runner",
			Name: "memory_bytes_budget", Help: "Sum of memory limits this runner runs at once at most (--memory-budget; 0: unbounded)."}),
	}
	for _, v := range []domain.Verdict{domain.VerdictCompleted, domain.VerdictRuntimeErr, domain.VerdictTimeout,
		domain.VerdictMemoryLimit, domain.VerdictOutputLimit, domain.VerdictCancelled, domain.VerdictSystemError} {
		m.finished.WithLabelValues(string(v)) // every verdict visible from the start, at 0, so ratios have a denominator
	}
	if reg != nil {
		reg.MustRegister(m.started, m.resumed, m.finished, m.duration, m.overhead, m.queued, m.busy, m.ready, m.slots,
			m.cpuInUse, m.cpuBudget, m.memInUse, m.memBudget)
	}
	return m
}
