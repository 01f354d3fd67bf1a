package projections

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// Statistics are a projection like the views: the projector keeps one Fact
// per execution, derived from the execution's view whenever its status
// changes, and GET /api/v1/stats summarises the facts of a time range. A
// fact is a function of the events applied so far, so replaying an event
// changes nothing, and a rebuild from offset 0 makes the same facts.

// Fact is one execution as statistics see it: no script, no output.
type Fact struct {
	ExecutionID string
	CreatedAt   time.Time
	Owner       string
	Language    string
	Version     string
	Status      domain.Status
	Reason      domain.Verdict // failure reason; empty unless failed
	Sequence    int64          // of the view the fact was taken from
	// QueueWaitMs is from the submit to the start of the attempt that ran
	// (nil until one started).
	QueueWaitMs *int64
	// Usage of the run, once it ended with a result.
	WallTimeMs      *int64
	CPUTimeMs       *int64
	PeakMemoryBytes *int64
}

// FactOf takes the fact of an execution's view.
func FactOf(e domain.Execution) Fact {
	f := Fact{ExecutionID: e.ID, CreatedAt: e.CreatedAt, Owner: e.Owner, Language: e.Language, Version: e.Version,
		Status: e.Status, Sequence: e.Sequence}
	if e.Status == domain.StatusFailed {
		f.Reason = e.FailureReason
	}
	if e.StartedAt != nil {
		w := e.StartedAt.Sub(e.CreatedAt).Milliseconds()
		f.QueueWaitMs = &w
	}
	if u := e.ResourceUsage; u != nil && e.Status.Terminal() {
		wall, cpu, mem := u.WallTimeMs, u.CPUTimeMs, u.PeakMemoryBytes
		f.WallTimeMs, f.CPUTimeMs, f.PeakMemoryBytes = &wall, &cpu, &mem
	}
	return f
}

// FactQuery selects facts by creation time, [From, To), and optionally owner.
type FactQuery struct {
	From, To time.Time
	Owner    string
}

// FactStore keeps the facts (implemented with the views' store).
type FactStore interface {
	// SaveFacts writes each fact over its execution's fact (an execution
	// at most once in fs).
	SaveFacts(ctx context.Context, fs []Fact) error
	// Facts returns the facts a query selects, in no particular order.
	Facts(ctx context.Context, q FactQuery) ([]Fact, error)
}

// Percentiles of one measure over the executions that have it.
type Percentiles struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50"`
	P95   int64 `json:"p95"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// Bucket is how many executions were submitted in [Start, Start+size).
type Bucket struct {
	Start      time.Time `json:"start"`
	Executions int       `json:"executions"`
}

// Stats summarise the executions submitted in a range.
type Stats struct {
	From            time.Time      `json:"from"`
	To              time.Time      `json:"to"`
	Bucket          string         `json:"bucket"`
	Executions      int            `json:"executions"`
	ByStatus        map[string]int `json:"by_status"`
	ByFailureReason map[string]int `json:"by_failure_reason"`
	ByRuntime       map[string]int `json:"by_runtime"` // "python 3.11"
	ByOwner         map[string]int `json:"by_owner,omitempty"`
	QueueWaitMs     Percentiles    `json:"queue_wait_ms"`
	WallTimeMs      Percentiles    `json:"wall_time_ms"`
	CPUTimeMs       Percentiles    `json:"cpu_time_ms"`
	PeakMemoryBytes Percentiles    `json:"peak_memory_bytes"`
	Buckets         []Bucket       `json:"buckets"`
}

// BucketSizes are the bucket widths a summary may use.
var BucketSizes = map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour}

// MaxBuckets bounds one summary's buckets (a year of hours).
const MaxBuckets = 366 * 24

// Summarize computes the statistics of facts over [from, to) in buckets of
// bucket ("hour" or "day", aligned to UTC); byOwner adds counts per owner.
func Summarize(facts []Fact, from, to time.Time, bucket string, byOwner bool) (Stats, error) {
	size, ok := BucketSizes[bucket]
	if !ok {
		return Stats{}, domain.Errorf(domain.EINVALID, "bucket must be hour or day")
	}
	from, to = from.UTC(), to.UTC()
	start := from.Truncate(size)
	n := int(math.Ceil(float64(to.Sub(start)) / float64(size)))
	if !from.Before(to) || n > MaxBuckets {
		return Stats{}, domain.Errorf(domain.EINVALID, "from must be before to, and the range at most %d buckets", MaxBuckets)
	}
	s := Stats{From: from, To: to, Bucket: bucket, ByStatus: map[string]int{}, ByFailureReason: map[string]int{},
		ByRuntime: map[string]int{}, Buckets: make([]Bucket, n)}
	if byOwner {
		s.ByOwner = map[string]int{}
	}
	for i := range s.Buckets {
		s.Buckets[i].Start = start.Add(time.Duration(i) * size)
	}
	var wait, wall, cpu, mem []int64
	for _, f := range facts {
		if f.CreatedAt.Before(from) || !f.CreatedAt.Before(to) {
			continue
		}
		s.Executions++
		s.ByStatus[string(f.Status)]++
		if f.Reason != "" {
			s.ByFailureReason[string(f.Reason)]++
		}
		s.ByRuntime[f.Language+" "+f.Version]++
		if byOwner {
			s.ByOwner[f.Owner]++
		}
		s.Buckets[int(f.CreatedAt.Sub(start)/size)].Executions++
		for _, m := range []struct {
			v    *int64
			into *[]int64
		}{{f.QueueWaitMs, &wait}, {f.WallTimeMs, &wall}, {f.CPUTimeMs, &cpu}, {f.PeakMemoryBytes, &mem}} {
			if m.v != nil {
				*m.into = append(*m.into, *m.v)
			}
		}
	}
	s.QueueWaitMs, s.WallTimeMs, s.CPUTimeMs, s.PeakMemoryBytes = percentiles(wait), percentiles(wall), percentiles(cpu), percentiles(mem)
	return s, nil
}

// percentiles by the nearest-rank method: p is the smallest value with at
// least p % of the values at or below it.
func percentiles(v []int64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	rank := func(p float64) int64 { return v[int(math.Ceil(p/100*float64(len(v))))-1] }
	return Percentiles{Count: len(v), P50: rank(50), P95: rank(95), P99: rank(99), Max: v[len(v)-1]}
}

// factIfMoved is the fact of the view after, when the events applied since
// before changed what statistics see of it. The projector saves it before
// the view: a fact ahead of its view is harmless (the same events make the
// same view when they are applied again), a view ahead of its fact would
// never be corrected.
func factIfMoved(before, after domain.Execution) (Fact, bool) {
	if before.Status == after.Status && before.Sequence != 0 {
		return Fact{}, false
	}
	return FactOf(after), true
}

// saveFactIfMoved saves factIfMoved's fact, if any.
func saveFactIfMoved(ctx context.Context, store FactStore, before, after domain.Execution) error {
	f, ok := factIfMoved(before, after)
	if !ok {
		return nil
	}
	if err := SaveFact(ctx, store, f); err != nil {
		return fmt.Errorf("save fact %s: %w", after.ID, err)
	}
	return nil
}
