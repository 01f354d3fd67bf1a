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

// BenchmarkHelloWorld measures a whole Run of print("hi"), pod creation to
// result, one after another, and the runc sandbox's Run of the same job in
// the same run, as the baseline:
//
//	go test -tags kubernetes -run '^$' -bench . -benchtime 10x ./adapters/sandbox/kubernetes/
func BenchmarkHelloWorld(b *testing.B) {
	f := newFixture(b, nil)
	runc, err := oci.New(oci.Config{RuncPath: "runc", StateDir: filepath.Join(b.TempDir(), "sandbox")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { runc.Close() })
	for _, sb := range []runner.Sandbox{f.pods, runc} {
		for _, cpu := range []int64{100, 1000} {
			b.Run(fmt.Sprintf("%s/cpu=%dm", sb.Name(), cpu), func(b *testing.B) {
				var times []time.Duration
				for b.Loop() {
					j := job(b, `print("hi")`)
					j.Limits.CPUMillicores = cpu
					begin := time.Now()
					res, err := sb.Run(context.Background(), j)
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
}
