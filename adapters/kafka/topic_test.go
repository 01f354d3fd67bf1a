package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func TestEnsureTopic(t *testing.T) {
	e := startBroker(t, t.TempDir())
	brokers := e.Brokers()
	admin := newAdmin(t, brokers)
	ctx := t.Context()

	partitionsOf := func(t *testing.T, topic string) int {
		t.Helper()
		metas, err := admin.DescribeTopics([]string{topic})
		if err != nil || len(metas) != 1 {
			t.Fatalf("describe %s: %+v, %v", topic, metas, err)
		}
		return len(metas[0].Partitions)
	}

	t.Run("CreatesWithInfiniteRetention", func(t *testing.T) {
		if err := EnsureTopic(ctx, brokers, "audit", 3, 1); err != nil {
			t.Fatalf("EnsureTopic: %v", err)
		}
		if n := partitionsOf(t, "audit"); n != 3 {
			t.Fatalf("audit has %d partitions, want 3", n)
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: "audit"})
		if err != nil {
			t.Fatalf("DescribeConfig: %v", err)
		}
		for _, c := range entries {
			if c.Name == "retention.ms" && c.Value != "-1" {
				t.Fatalf("retention.ms = %s, want -1", c.Value)
			}
		}
	})

	t.Run("CreatesWithBrokerDefaultReplication", func(t *testing.T) {
		if err := EnsureTopic(ctx, brokers, "metrics", 2, -1); err != nil {
			t.Fatalf("EnsureTopic with replication -1: %v", err)
		}
		if n := partitionsOf(t, "metrics"); n != 2 {
			t.Fatalf("metrics has %d partitions, want 2", n)
		}
	})

	t.Run("IsIdempotent", func(t *testing.T) {
		for range 2 {
			if err := EnsureTopic(ctx, brokers, "audit", 3, 1); err != nil {
				t.Fatalf("EnsureTopic on an existing, matching topic: %v", err)
			}
		}
	})

	t.Run("AcceptsEmbeddedLedgerTopic", func(t *testing.T) {
		if err := EnsureTopic(ctx, brokers, LedgerTopic, DefaultPartitions, -1); err != nil {
			t.Fatalf("EnsureTopic(%s): %v", LedgerTopic, err)
		}
	})

	t.Run("ErrTopicMismatchOnPartitionCount", func(t *testing.T) {
		err := EnsureTopic(ctx, brokers, "audit", 4, 1)
		if !errors.Is(err, ErrTopicMismatch) {
			t.Fatalf("EnsureTopic with 4 partitions over 3: err = %v, want ErrTopicMismatch", err)
		}
		if n := partitionsOf(t, "audit"); n != 3 {
			t.Fatalf("audit now has %d partitions; EnsureTopic must never change the count", n)
		}
	})

	t.Run("ErrTopicMismatchOnFiniteRetention", func(t *testing.T) {
		week := "604800000"
		if err := admin.CreateTopic("weekly", &sarama.TopicDetail{
			NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"retention.ms": &week},
		}, false); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
		if err := EnsureTopic(ctx, brokers, "weekly", 3, 1); !errors.Is(err, ErrTopicMismatch) {
			t.Fatalf("EnsureTopic over 7-day retention: err = %v, want ErrTopicMismatch", err)
		}
	})

	t.Run("ErrTopicMismatchOnCompaction", func(t *testing.T) {
		compact := "compact"
		if err := admin.CreateTopic("compacted", &sarama.TopicDetail{
			NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"cleanup.policy": &compact},
		}, false); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
		if err := EnsureTopic(ctx, brokers, "compacted", 3, 1); !errors.Is(err, ErrTopicMismatch) {
			t.Fatalf("EnsureTopic over a compacted topic: err = %v, want ErrTopicMismatch", err)
		}
	})

	t.Run("ErrInvalidArguments", func(t *testing.T) {
		for _, c := range []struct {
			topic       string
			partitions  int32
			replication int16
		}{{"", 3, 1}, {"x", 0, 1}, {"x", 3, 0}, {"x", 3, -2}} {
			if err := EnsureTopic(ctx, brokers, c.topic, c.partitions, c.replication); err == nil {
				t.Errorf("EnsureTopic(%q, %d, %d) succeeded", c.topic, c.partitions, c.replication)
			}
		}
	})

	t.Run("StopsWaitingWhenContextEnds", func(t *testing.T) {
		// Nothing listens there: sarama would retry for seconds.
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err := EnsureTopic(ctx, []string{"127.0.0.1:1"}, "audit", 3, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("EnsureTopic against no broker: err = %v, want DeadlineExceeded", err)
		}
	})
}
