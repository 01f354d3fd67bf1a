//go:build kubernetes

package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// BenchmarkHelloWorld measures a whole Run of print("hi"), pod creation to
// result, one after another:
//
//	go test -tags kubernetes -run '^$' -bench . -benchtime 10x ./adapters/sandbox/kubernetes/
func BenchmarkHelloWorld(b *testing.B) {
	f := newFixture(b, nil)
	for _, cpu := range []int64{100, 1000} {
		b.Run(fmt.Sprintf("cpu=%dm", cpu), func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				j := job(b, `print("hi")`)
				j.Limits.CPUMillicores = cpu
				begin := time.Now()
				res, err := f.pods.Run(context.Background(), j)
				if err != nil || res.Verdict != domain.VerdictCompleted {
					b.Fatalf("%+v %v", res, err)
				}
				times = append(times, time.Since(begin))
			}
			slices.Sort(times)
			b.Logf("n=%d min %s median %s max %s", len(times), times[0], times[len(times)/2], times[len(times)-1])
		})
	}
}
