package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// concurrency is how many submissions are in flight at once, as from
// many API requests.
const concurrency = 64

// warmUp is how many executions each round runs before its clock starts:
// the first writes of a round pay for connections, a new collection and
// caches (the floor's rate had grown by a third from 1000 to 3000
// executions), and the rounds compare steady states.
const warmUp = 300

// BenchmarkAppendAndProject: b.N executions submitted through the ledger
// writer (a command, a transaction with the event, the head, the reply
// and the offset) and projected into the views (verify, archive, view
// write), until every view exists — against, in the same run, the floor:
// the same record produced with raw sarama (idempotent, acks from all,
// synced broker) and a view document inserted with the raw driver.
func BenchmarkAppendAndProject(b *testing.B) {
	l := testenv.StartLedger(b, "bench", 15*time.Second)
	ask := l.Asker(b, "bench")
	queued := domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("print('hi')"), Limits: domain.DefaultLimits, Owner: "anonymous"}

	// submit submits n new executions, 64 at a time, each heard on the
	// hub from before its command is sent; projected waits until the
	// projector has written each one's view. Waiting costs the system
	// under test nothing: reading every view by _id while the clock runs
	// (as this benchmark did until session 7) took a query of the store
	// per execution, plus one every millisecond while the next was not
	// there, from the same two cores. viewsExist reads them after the
	// clock stops.
	submit := func(b *testing.B, n int) submitted {
		s := submitted{ids: make([]string, n), heard: make([]<-chan struct{}, n)}
		for i := range s.ids {
			s.ids[i] = uuid.Must(uuid.NewV7()).String()
			ch, stop := l.Hub.Subscribe(s.ids[i])
			s.heard[i] = ch
			b.Cleanup(stop)
		}
		parallel(b, n, func(i int) error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q := queued
			r, err := ask.Ask(ctx, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: s.ids[i], Actor: "anonymous", Submit: &q})
			if err == nil {
				err = r.Err()
			}
			return err
		})
		return s
	}
	projected := func(b *testing.B, s submitted) {
		timeout := time.After(time.Minute)
		for i, ch := range s.heard {
			select {
			case <-ch:
			case <-timeout:
				b.Fatalf("no view of %s after a minute", s.ids[i])
			}
		}
	}
	viewsExist := func(b *testing.B, s submitted) {
		for _, id := range s.ids {
			if _, err := l.Views.View(context.Background(), id); err != nil {
				b.Fatalf("the projector said it wrote the view of %s: %v", id, err)
			}
		}
	}

	b.Run("ledger", func(b *testing.B) {
		projected(b, submit(b, warmUp))
		c := startClock(b)
		s := submit(b, b.N)
		projected(b, s)
		c.stop(b)
		viewsExist(b, s)
	})

	b.Run("ledger-append-only", func(b *testing.B) {
		projected(b, submit(b, warmUp))
		c := startClock(b)
		s := submit(b, b.N)
		c.stop(b)
		// The projection catches up off the clock, so that it does not
		// compete with the floor measured next.
		projected(b, s)
		viewsExist(b, s)
	})

	b.Run("raw-sarama-and-driver", func(b *testing.B) {
		prod := rawProducer(b, l.Brokers)
		db := testenv.Store(b, "bench_raw")
		coll := db.Database().Collection("raw")
		signer := testenv.Keys(b).Signer
		recs := make([][]byte, warmUp+b.N)
		for i := range recs {
			data, _ := eventstore.Encode(queued)
			env := eventstore.Envelope{EventID: uuid.NewString(), Type: queued.EventType(), SchemaVersion: 1,
				ExecutionID: uuid.NewString(), Sequence: 1, OccurredAt: time.Now(), Actor: "anonymous", Data: data}
			recs[i], _ = env.Seal("", signer)
		}
		write := func(i int) error {
			if err := prod(recs[i]); err != nil {
				return err
			}
			_, err := coll.InsertOne(context.Background(), bson.D{{Key: "_id", Value: fmt.Sprint(i)}, {Key: "record", Value: string(recs[i])}})
			return err
		}
		parallel(b, warmUp, write)
		c := startClock(b)
		parallel(b, b.N, func(i int) error { return write(warmUp + i) })
		c.stop(b)
	})
}

// clock times a round: executions/s, and the CPU the whole process (the
// embedded broker and store included) spent per execution, which this
// shared machine's neighbours disturb far less than the rate: its disk's
// fsyncs vary from run to run, the floor's rate by up to 2x.
type clock struct{ cpu time.Duration }

func startClock(b *testing.B) clock {
	b.ResetTimer()
	return clock{cpu: processCPU(b)}
}

func (c clock) stop(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	b.ReportMetric(float64(processCPU(b)-c.cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/execution")
}

// processCPU is the user and system time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// submitted is what submit sent: the executions' ids and, for each, the
// hub's channel that hears of its view.
type submitted struct {
	ids   []string
	heard []<-chan struct{}
}

// parallel runs n calls of f, concurrency at a time, failing b on the
// first error.
func parallel(b *testing.B, n int, f func(i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		b.Fatal(err)
	}
}

// rawProducer is the floor's producer: a sarama SyncProducer with the
// ledger's producer settings (idempotent, acks from all), to a topic of
// the same broker.
func rawProducer(b *testing.B, brokers []string) func([]byte) error {
	addrs, conf, err := kafka.ClientConfig(brokers, "bench-raw")
	if err != nil {
		b.Fatal(err)
	}
	prod, err := sarama.NewSyncProducer(addrs, conf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { prod.Close() })
	return func(rec []byte) error {
		_, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: eventstore.ParkedTopic,
			Key: sarama.StringEncoder(uuid.NewString()), Value: sarama.ByteEncoder(rec)})
		return err
	}
}
