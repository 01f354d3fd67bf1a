package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memProjection is a read model in memory that keeps its positions with
// itself, as Project wants, and can be told to fail.
type memProjection struct {
	mu        sync.Mutex
	positions map[int32]int64
	handled   map[int32][]int64 // offsets, in the order applied
	failing   int               // how many more calls of Handle fail
	failed    int               // failures returned
	widest    int               // the most partitions one Handle was given records of
}

func newMemProjection() *memProjection {
	return &memProjection{positions: map[int32]int64{}, handled: map[int32][]int64{}}
}

func (m *memProjection) Position(_ context.Context, p int32) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.positions[p], nil
}

func (m *memProjection) SavePositions(_ context.Context, next map[int32]int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range next {
		m.positions[p] = n
	}
	return nil
}

// Handle applies the records, or none of them while the store "fails".
func (m *memProjection) Handle(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failing > 0 {
		m.failing--
		m.failed++
		return errors.New("the store is down")
	}
	parts := map[int32]bool{}
	for _, rec := range recs {
		m.handled[rec.Partition] = append(m.handled[rec.Partition], rec.Offset)
		parts[rec.Partition] = true
	}
	m.widest = max(m.widest, len(parts))
	return nil
}

func (m *memProjection) snapshot() (map[int32][]int64, map[int32]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, pos := map[int32][]int64{}, map[int32]int64{}
	for p, offs := range m.handled {
		h[p] = append([]int64(nil), offs...)
	}
	for p, o := range m.positions {
		pos[p] = o
	}
	return h, pos
}

// projectUntil runs Project until every partition's saved position reaches
// want (the partitions' ends), then stops it.
func projectUntil(t *testing.T, brokers []string, topic string, proj *memProjection, lag *prometheus.GaugeVec, want map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Project(ctx, ProjectConfig{Brokers: brokers, Topic: topic, Group: "test-projection", SaveEvery: 50 * time.Millisecond,
			Logger: testLogger(), Lag: lag}, proj)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Project: %v", err)
		}
	}()
	deadline := time.Now().Add(waitFor)
	for {
		_, pos := proj.snapshot()
		reached := true
		for p, end := range want {
			reached = reached && pos[p] >= end
		}
		if reached {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("positions %v within %s, want %v", pos, waitFor, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produceKeyed writes n records keyed k0…k(n-1) and returns every
// partition's end offset.
func produceKeyed(t *testing.T, brokers []string, topic string, from, n int) map[int32]int64 {
	t.Helper()
	addrs, conf, err := clientConfig(brokers, "project-test")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(addrs, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ends := map[int32]int64{}
	for i := from; i < from+n; i++ {
		p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprint("k", i)),
			Value: sarama.StringEncoder(fmt.Sprint("v", i))})
		if err != nil {
			t.Fatal(err)
		}
		ends[p] = max(ends[p], off+1)
	}
	return ends
}

// A projection keeps its own positions: Project reads each partition from
// there (never from the group's offsets), applies every record once and in
// order, offers a record the store failed on again rather than skip it, and
// saves the position it reached, so that a second run reads only what came
// after. What waits in several partitions goes to the store in one batch.
func TestProjectAppliesEveryRecordOnceInOrderFromItsOwnPosition(t *testing.T) {
	e := startBroker(t, t.TempDir())
	const topic = "projected"
	if err := EnsureTopic(context.Background(), e.Brokers(), topic, 3, 1); err != nil {
		t.Fatal(err)
	}
	ends := produceKeyed(t, e.Brokers(), topic, 0, 30)
	proj := newMemProjection()
	// The store fails on the first batch twice: Project must offer it
	// again, not skip to the next.
	proj.failing = 2
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lag"}, []string{"partition"})

	projectUntil(t, e.Brokers(), topic, proj, lag, ends)
	handled, pos := proj.snapshot()
	for p, end := range ends {
		if len(handled[p]) != int(end) {
			t.Fatalf("partition %d: applied %v, want offsets 0..%d once each", p, handled[p], end-1)
		}
		for i, off := range handled[p] {
			if off != int64(i) {
				t.Fatalf("partition %d: applied %v, not in order", p, handled[p])
			}
		}
		if pos[p] != end {
			t.Fatalf("partition %d: position %d, want %d", p, pos[p], end)
		}
	}
	if proj.failed != 2 {
		t.Fatalf("the store failed %d times, want 2 (the record offered again each time)", proj.failed)
	}
	// While the store failed on the first batch (two seconds), every
	// partition's records were read and waited: the next batch took what
	// the first left, of at least two partitions, together.
	if proj.widest < 2 {
		t.Fatalf("every batch held records of one partition; what waits in several must go together")
	}
	// The gauge's series of every partition went with the hand-over.
	if n := testutil.CollectAndCount(lag); n != 0 {
		t.Fatalf("%d lag series left after Project stopped", n)
	}

	// A second run starts at the saved positions: only the new records.
	more := produceKeyed(t, e.Brokers(), topic, 30, 9)
	for p, end := range ends {
		if _, ok := more[p]; !ok {
			more[p] = end
		}
	}
	projectUntil(t, e.Brokers(), topic, proj, nil, more)
	handled, _ = proj.snapshot()
	total := 0
	for p, end := range more {
		total += len(handled[p])
		if len(handled[p]) != int(end) {
			t.Fatalf("partition %d after the second run: %v, want each of 0..%d once", p, handled[p], end-1)
		}
	}
	if total != 39 {
		t.Fatalf("%d records applied in all, want 39", total)
	}
}

// What was read and waits, of any partition, is handed over at once (so
// the store can write it together), up to maxBatch, in the order read, and
// a batch never waits for more.
func TestBatchOfTakesWhatWaitsAndNeverWaitsForMore(t *testing.T) {
	rec := func(off int64) Record { return Record{Partition: int32(off % 3), Offset: off} }
	waiting := make(chan Record, maxBatch+10)
	if got := batchOf(rec(0), waiting); len(got) != 1 || got[0].Offset != 0 || got[0].Partition != 0 {
		t.Fatalf("nothing waiting: %+v, want the one record", got)
	}
	for off := int64(1); off <= maxBatch+5; off++ {
		waiting <- rec(off)
	}
	first := batchOf(rec(0), waiting)
	if len(first) != maxBatch {
		t.Fatalf("a batch of %d, want maxBatch (%d)", len(first), maxBatch)
	}
	for i, r := range first {
		if r.Offset != int64(i) || r.Partition != int32(i%3) {
			t.Fatalf("record %d is %d:%d: not in the order read", i, r.Partition, r.Offset)
		}
	}
	rest := batchOf(<-waiting, waiting)
	if len(rest) != 6 || rest[0].Offset != maxBatch || rest[5].Offset != maxBatch+5 {
		t.Fatalf("the rest: %d records from %d", len(rest), rest[0].Offset)
	}
	close(waiting)
	if got := batchOf(rec(9), waiting); len(got) != 1 {
		t.Fatalf("a closed stream: %d records, want the one", len(got))
	}
}
