//go:build kubernetes

package kubernetes

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/sandbox/oci"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
)

// BenchmarkHelloWorld measures a whole Run of print("hi"), one after
// another: on Kubernetes from pod creation to result (cold) or from taking
// a waiting pod of the warm pool to result (warm: each run waits, outside
// the measurement, until a pod waits, so that every run is a hit), and the
// runc sandbox's Run of the same job in the same run, as the baseline:
//
//	go test -tags kubernetes -run '^$' -bench . -benchtime 10x ./adapters/sandbox/kubernetes/
func BenchmarkHelloWorld(b *testing.B) {
	f := newFixture(b, nil)
	runc, err := oci.New(oci.Config{RuncPath: "runc", StateDir: filepath.Join(b.TempDir(), "sandbox")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { runc.Close() })
	type sandbox struct {
		name string
		sb   runner.Sandbox
		warm bool // a warm pool with the run's limits, closed after
	}
	for _, s := range []sandbox{{"kubernetes", f.pods, false}, {"kubernetes-warm", nil, true}, {"runc", runc, false}} {
		for _, cpu := range []int64{100, 1000} {
			b.Run(fmt.Sprintf("%s/cpu=%dm", s.name, cpu), func(b *testing.B) {
				sb := s.sb
				var pool *Pods
				if s.warm {
					// Its waiting pod holds its CPU request on the node (a
					// 1000m pod of a 2-CPU node): closed when done.
					w := newFixture(b, func(c *Config) {
						c.Warm, c.WarmMin = 1, 1
						c.WarmLimits = domain.DefaultLimits
						c.WarmLimits.CPUMillicores = cpu
					})
					defer w.pods.Close()
					sb, pool = w.pods, w.pods
				}
				var times []time.Duration
				for b.Loop() {
					j := job(b, `print("hi")`)
					j.Limits.CPUMillicores = cpu
					if pool != nil {
						b.StopTimer()
						waitPool(b, pool, "a pod waiting", func(s PoolStats) bool { return s.Waiting > 0 })
						b.StartTimer()
					}
					begin := time.Now()
					res, err := sb.Run(context.Background(), j)
					if err != nil || res.Verdict != domain.VerdictCompleted {
						b.Fatalf("%+v %v", res, err)
					}
					times = append(times, time.Since(begin))
				}
				if pool != nil {
					if st := pool.PoolStats(); st.Misses > 0 {
						b.Fatalf("a run missed the pool: %+v", st)
					}
				}
				slices.Sort(times)
				b.Logf("n=%d min %s median %s max %s", len(times), times[0], times[len(times)/2], times[len(times)-1])
			})
		}
	}
}
