//go:build kubernetes

package kubernetes

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/integr8scode/integr8scode/domain"
)

// phases gathers integr8scode_sandbox_pods from reg, by phase.
func phases(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "integr8scode_sandbox_pods" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[phaseOf(m)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func phaseOf(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "phase" {
			return l.GetValue()
		}
	}
	return ""
}

// TestPodPhaseMetricsOnCluster: the series follow a real sandbox pod: every
// phase at 0 in an empty namespace, the pod counted Running while its
// script runs, and gone again once the run ended and deleted it.
func TestPodPhaseMetricsOnCluster(t *testing.T) {
	f := newFixture(t, nil)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.pods.Collector())
	if got := phases(t, reg); len(got) != len(PodPhases) || got["Running"] != 0 || got["Pending"] != 0 {
		t.Fatalf("empty namespace: %v, want every phase at 0", got)
	}

	j := job(t, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan domain.Result, 1)
	go func() {
		res, err := f.pods.Run(ctx, j)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	f.waitRunning(t, j)
	// The listing reads the API server's watch cache, which may trail the
	// Get that saw the container run by a moment.
	waitPhases(t, reg, func(p map[string]float64) bool { return p["Running"] == 1 && p["Pending"] == 0 })
	cancel()
	if res := <-done; res.Verdict != domain.VerdictCancelled {
		t.Fatalf("got %+v", res)
	}
	waitPhases(t, reg, func(p map[string]float64) bool {
		return p["Running"] == 0 && p["Pending"] == 0 && p["Succeeded"] == 0 && p["Failed"] == 0
	})
}

func waitPhases(t *testing.T, reg prometheus.Gatherer, ok func(map[string]float64) bool) {
	t.Helper()
	var got map[string]float64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = phases(t, reg); ok(got) {
			return
		}
	}
	t.Fatalf("pods by phase %v", got)
}
