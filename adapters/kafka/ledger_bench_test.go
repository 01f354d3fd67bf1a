package kafka_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

	// submit submits n new executions, 64 at a time; projected waits
	// until each has its view.
	submit := func(b *testing.B, n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7()).String()
		}
		parallel(b, n, func(i int) error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			q := queued
			r, err := ask.Ask(ctx, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: ids[i], Actor: "anonymous", Submit: &q})
			if err == nil {
				err = r.Err()
			}
			return err
		})
		return ids
	}
	projected := func(ids []string) {
		for _, id := range ids {
			for {
				if _, err := l.Views.View(context.Background(), id); err == nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}

	b.Run("ledger", func(b *testing.B) {
		projected(submit(b, warmUp))
		b.ResetTimer()
		projected(submit(b, b.N))
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	})

	b.Run("ledger-append-only", func(b *testing.B) {
		projected(submit(b, warmUp))
		b.ResetTimer()
		ids := submit(b, b.N)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
		// The projection catches up off the clock, so that it does not
		// compete with the floor measured next.
		projected(ids)
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
		b.ResetTimer()
		parallel(b, b.N, func(i int) error { return write(warmUp + i) })
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "executions/s")
	})
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
