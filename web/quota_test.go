package web

import (
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// TestAdmissionForgetsCallersWhoNeverCameBack: the memory of executions in
// flight per caller does not grow with every address that ever submitted.
func TestAdmissionForgetsCallersWhoNeverCameBack(t *testing.T) {
	a := newAdmission()
	old := domain.Execution{ID: "old", CreatedAt: time.Now().Add(-time.Hour), Limits: domain.DefaultLimits}
	a.remember("ip:203.0.113.1", old)
	a.swept = time.Time{} // the next remember sweeps
	a.remember("ip:203.0.113.2", domain.Execution{ID: "new", CreatedAt: time.Now(), Limits: domain.DefaultLimits})
	if len(a.inflight) != 1 || len(a.remembered("ip:203.0.113.1")) != 0 || len(a.remembered("ip:203.0.113.2")) != 1 {
		t.Fatalf("after a sweep: %v", a.inflight)
	}
}
