package web

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// listedBacklog is a backlog with fixed contents, or a failing one.
type listedBacklog struct {
	queued, running []domain.Execution
	err             error
}

func (b listedBacklog) Queued(context.Context, int) ([]domain.Execution, error) {
	return b.queued, b.err
}
func (b listedBacklog) Running(context.Context, int) ([]domain.Execution, error) {
	return b.running, b.err
}

// queueSeries scrapes the collector: series name (with the status label,
// if any) → value.
func queueSeries(t *testing.T, b Backlog) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(&queueCollector{q: &queue{backlog: b}, log: testenv.Quiet()})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestQueueMetrics(t *testing.T) {
	t.Run("OK counts and the oldest queued execution's age", func(t *testing.T) {
		now := time.Now()
		got := queueSeries(t, listedBacklog{
			queued:  []domain.Execution{{ID: "a", CreatedAt: now.Add(-90 * time.Second)}, {ID: "b", CreatedAt: now.Add(-time.Second)}},
			running: []domain.Execution{{ID: "c"}},
		})
		if got["integr8scode_queue_executions{status=queued}"] != 2 || got["integr8scode_queue_executions{status=running}"] != 1 {
			t.Errorf("series %v, want 2 queued and 1 running", got)
		}
		if age := got["integr8scode_queue_oldest_seconds"]; age < 89 || age > 120 {
			t.Errorf("oldest queued age %v s, want about 90", age)
		}
	})
	t.Run("OK nothing queued is age 0", func(t *testing.T) {
		got := queueSeries(t, listedBacklog{})
		if age, ok := got["integr8scode_queue_oldest_seconds"]; !ok || age != 0 {
			t.Errorf("series %v, want an age of 0", got)
		}
	})
	t.Run("ErrStoreDown reports no numbers rather than wrong ones", func(t *testing.T) {
		if got := queueSeries(t, listedBacklog{err: errors.New("store down")}); len(got) != 0 {
			t.Errorf("series %v from a backlog that cannot be read", got)
		}
	})
}
