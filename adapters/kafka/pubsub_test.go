package kafka

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

func TestPubSub(t *testing.T) {
	e := startBroker(t, t.TempDir())
	brokers := e.Brokers()
	pub := newPublisher(t, brokers)

	t.Run("KeepsEachExecutionInOrderOnOnePartition", func(t *testing.T) {
		executions := executionIDs("order", 10)
		const perExecution = 30 // 300 messages
		publishEvents(t, pub, executions, perExecution)

		got := consume(t, t.Context(), newSubscriber(t, brokers, "order-test"), len(executions)*perExecution)

		next := map[string]int{}
		partitionOf := map[string]int32{}
		usedPartitions := map[int32]bool{}
		for _, r := range got {
			x, n, ok := strings.Cut(r.payload, "/")
			if !ok || x != r.execution {
				t.Fatalf("payload %q arrived with execution_id %q", r.payload, r.execution)
			}
			seq, _ := strconv.Atoi(n)
			if seq != next[x] {
				t.Fatalf("%s: got event %d, want %d (out of order or duplicated)", x, seq, next[x])
			}
			next[x]++
			if p, seen := partitionOf[x]; seen && p != r.partition {
				t.Fatalf("%s: events on partitions %d and %d", x, p, r.partition)
			}
			partitionOf[x] = r.partition
			usedPartitions[r.partition] = true
		}
		for _, x := range executions {
			if next[x] != perExecution {
				t.Errorf("%s: got %d events, want %d", x, next[x], perExecution)
			}
		}
		// Ten keys on six partitions: a keyless (random) publisher would
		// also spread, but never keep one key on one partition.
		if len(usedPartitions) < 2 {
			t.Errorf("all executions landed on %d partition(s); keys are not spreading", len(usedPartitions))
		}
	})

	t.Run("RefusesMessageWithoutExecutionID", func(t *testing.T) {
		before := endOffsets(t, brokers, LedgerTopic)

		m := message.NewMessage(watermill.NewUUID(), []byte("orphan"))
		err := pub.Publish(LedgerTopic, m)
		if !errors.Is(err, ErrNoExecutionID) {
			t.Fatalf("Publish without execution_id: err = %v, want ErrNoExecutionID", err)
		}

		if after := endOffsets(t, brokers, LedgerTopic); total(after) != total(before) {
			t.Fatalf("refused message was written: %d records before, %d after", total(before), total(after))
		}
	})

	t.Run("RefusesEmptyExecutionID", func(t *testing.T) {
		m := message.NewMessage(watermill.NewUUID(), []byte("orphan"))
		m.Metadata.Set(KeyMetadata, "")
		if err := pub.Publish(LedgerTopic, m); !errors.Is(err, ErrNoExecutionID) {
			t.Fatalf("Publish with empty execution_id: err = %v, want ErrNoExecutionID", err)
		}
	})

	t.Run("CarriesMetadataAndUUID", func(t *testing.T) {
		m := event("meta-1", 0)
		m.Metadata.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if err := pub.Publish(LedgerTopic, m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		sub := newSubscriber(t, brokers, "meta-test")
		ch, err := sub.Subscribe(t.Context(), LedgerTopic)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		got := receive(t, ch, m.UUID)
		for _, k := range []string{KeyMetadata, "type", "traceparent"} {
			if got.Metadata.Get(k) != m.Metadata.Get(k) {
				t.Errorf("metadata %s = %q, want %q", k, got.Metadata.Get(k), m.Metadata.Get(k))
			}
		}
	})

	t.Run("RequiresConsumerGroup", func(t *testing.T) {
		if _, err := NewSubscriber(brokers, "", wmLogger()); err == nil {
			t.Fatal("NewSubscriber without a group succeeded")
		}
	})
}

// receive acks messages from ch until the one with uuid arrives and returns
// it. It fails the test if that does not happen within waitFor.
func receive(t *testing.T, ch <-chan *message.Message, uuid string) *message.Message {
	t.Helper()
	deadline := timerC(t)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("subscription closed before message %s", uuid)
			}
			m.Ack()
			if m.UUID == uuid {
				return m
			}
		case <-deadline:
			t.Fatalf("message %s not received within %s", uuid, waitFor)
		}
	}
}
