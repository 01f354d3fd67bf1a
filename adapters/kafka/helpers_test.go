package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// waitFor bounds every wait on the broker; a healthy run needs well under a
// second for each.
const waitFor = 30 * time.Second

// testLogger shows warnings and errors only, on stderr: t.Log would panic
// when a client goroutine logs after its test has ended.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func wmLogger() watermill.LoggerAdapter { return watermill.NewSlogLogger(testLogger()) }

// startBroker starts an embedded broker on dir and closes it when the test
// ends (Close is idempotent, so tests may close it earlier).
func startBroker(t testing.TB, dir string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func newPublisher(t testing.TB, brokers []string) message.Publisher {
	t.Helper()
	pub, err := NewPublisher(brokers, wmLogger())
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}

func newSubscriber(t testing.TB, brokers []string, group string) message.Subscriber {
	t.Helper()
	sub, err := NewSubscriber(brokers, group, wmLogger())
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// event builds a ledger-like message: keyed on its execution, payload
// "<execution>/<n>" so a reader can check the order.
func event(execution string, n int) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("%s/%d", execution, n)))
	m.Metadata.Set(KeyMetadata, execution)
	m.Metadata.Set("type", "ExecutionQueued")
	return m
}

// publishEvents appends perExecution events to each of executions, one
// Publish per event, interleaving executions like concurrent traffic does.
func publishEvents(t testing.TB, pub message.Publisher, executions []string, perExecution int) []string {
	t.Helper()
	var payloads []string
	for n := range perExecution {
		for _, x := range executions {
			m := event(x, n)
			if err := pub.Publish(LedgerTopic, m); err != nil {
				t.Fatalf("publish %s: %v", m.Payload, err)
			}
			payloads = append(payloads, string(m.Payload))
		}
	}
	return payloads
}

func executionIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return ids
}

type received struct {
	payload   string
	execution string
	partition int32
	offset    int64
}

// consume reads n messages from sub, acking each. It fails the test if they
// do not all arrive within waitFor. The subscription lives as long as ctx.
func consume(t testing.TB, ctx context.Context, sub message.Subscriber, n int) []received {
	t.Helper()
	ch, err := sub.Subscribe(ctx, LedgerTopic)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	got := make([]received, 0, n)
	for len(got) < n {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed after %d of %d messages", len(got), n)
			}
			p, _ := wkafka.MessagePartitionFromCtx(m.Context())
			o, _ := wkafka.MessagePartitionOffsetFromCtx(m.Context())
			got = append(got, received{string(m.Payload), m.Metadata.Get(KeyMetadata), p, o})
			m.Ack()
		case <-deadline.C:
			t.Fatalf("received %d of %d messages within %s", len(got), n, waitFor)
		}
	}
	return got
}

// consumeAndCommit reads n messages as group and returns once the group's
// committed offsets cover all of them.
//
// It waits for the commit rather than closing at once: watermill-kafka
// marks an acked message in a select that also watches for shutdown, so an
// ack immediately followed by Close may go uncommitted (and be delivered
// again later).
func consumeAndCommit(t testing.TB, brokers []string, group string, n int) []received {
	t.Helper()
	sub, err := NewSubscriber(brokers, group, wmLogger())
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := consume(t, ctx, sub, n)

	want := map[int32]int64{}
	for _, r := range got {
		want[r.partition] = max(want[r.partition], r.offset+1)
	}
	waitCommitted(t, brokers, group, want)
	return got
}

// waitCommitted polls group's committed offsets until every partition in
// want has reached its offset, failing the test after waitFor.
func waitCommitted(t testing.TB, brokers []string, group string, want map[int32]int64) {
	t.Helper()
	admin := newAdmin(t, brokers)
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		have := committedWith(t, admin, group, want)
		done := true
		for p, o := range want {
			done = done && have[p] >= o
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s committed %v within %s, want at least %v", group, have, waitFor, want)
		}
		<-tick.C
	}
}

func newAdmin(t testing.TB, brokers []string) sarama.ClusterAdmin {
	t.Helper()
	addrs, cfg, err := clientConfig(brokers, "test-admin")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdmin(addrs, cfg)
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// endOffsets returns each partition's high watermark (next offset to write).
func endOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	addrs, cfg, err := clientConfig(brokers, "test-offsets")
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if ends[p], err = client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, err)
		}
	}
	return ends
}

// committedOffsets returns group's committed offset for each partition of
// the ledger topic in partitions (-1 where it has committed nothing).
func committedOffsets(t testing.TB, brokers []string, group string, partitions map[int32]int64) map[int32]int64 {
	t.Helper()
	return committedWith(t, newAdmin(t, brokers), group, partitions)
}

func committedWith(t testing.TB, admin sarama.ClusterAdmin, group string, partitions map[int32]int64) map[int32]int64 {
	t.Helper()
	var ps []int32
	for p := range partitions {
		ps = append(ps, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{LedgerTopic: ps})
	if err != nil {
		t.Fatalf("offsets of %s: %v", group, err)
	}
	got := make(map[int32]int64, len(ps))
	for _, p := range ps {
		b := resp.GetBlock(LedgerTopic, p)
		if b == nil {
			t.Fatalf("no offset block for %s/%d", LedgerTopic, p)
		}
		got[p] = b.Offset
	}
	return got
}

func total(offsets map[int32]int64) int64 {
	var n int64
	for _, o := range offsets {
		n += o
	}
	return n
}

// timerC returns a channel that fires after waitFor; the timer is stopped
// when the test ends.
func timerC(t testing.TB) <-chan time.Time {
	tm := time.NewTimer(waitFor)
	t.Cleanup(func() { tm.Stop() })
	return tm.C
}

// newManualProducer opens a producer with the ledger's client settings that
// writes each message to the partition it names (as another release of
// the writer or an asker would); closed when the test ends.
func newManualProducer(t testing.TB, brokers []string, name string) sarama.SyncProducer {
	t.Helper()
	addrs, conf, err := clientConfig(brokers, name)
	if err != nil {
		t.Fatal(err)
	}
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(addrs, conf)
	if err != nil {
		t.Fatalf("producer %s: %v", name, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
