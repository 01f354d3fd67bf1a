package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// selfTestRetry bounds the wait between two self-tests of a runner whose
// sandbox failed one: the first retry comes soon (a node still starting),
// later ones every few minutes (each may start a pod).
var selfTestRetry = struct{ first, max time.Duration }{10 * time.Second, 5 * time.Minute}

// proveSandbox runs the sandbox's self-test. No script runs before it
// passes. `up` gives up at the first failure: a person at a terminal sees
// why at once. A `runner` process (Kubernetes, systemd) stays up instead,
// not ready, and tries again with backoff, so that its /metrics shows the
// failure (integr8scode_sandbox_selftest_ok 0) and alerts can say what is
// wrong rather than only that a pod restarts.
func (p *platform) proveSandbox(ctx context.Context, st selfTester) error {
	ok := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "integr8scode", Subsystem: "sandbox",
		Name: "selftest_ok", Help: "1 if the sandbox's last self-test passed (isolation proven), 0 if it failed."})
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "sandbox",
		Name: "selftests_total", Help: "Sandbox self-tests run, by result: passed or failed."}, []string{"result"})
	runs.WithLabelValues("passed")
	runs.WithLabelValues("failed")
	p.reg.MustRegister(ok, runs)
	wait := selfTestRetry.first
	for {
		stctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := st.SelfTest(stctx)
		cancel()
		if err == nil {
			ok.Set(1)
			runs.WithLabelValues("passed").Inc()
			return nil
		}
		ok.Set(0)
		runs.WithLabelValues("failed").Inc()
		err = fmt.Errorf("sandbox self-test failed, refusing to run scripts: %w", err)
		if p.role != "runner" || ctx.Err() != nil {
			return err
		}
		p.ready.set(err)
		p.log.Error("sandbox self-test failed; no script runs here until one passes", "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, selfTestRetry.max)
	}
}
