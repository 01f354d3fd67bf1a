package kafka

import (
	"testing"

	"github.com/IBM/sarama"
)

func TestSaramaConfig(t *testing.T) {
	c := SaramaConfig("integr8scode-test")

	t.Run("IsValid", func(t *testing.T) {
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
	})

	t.Run("IsAnEventLogProducer", func(t *testing.T) {
		if c.Producer.RequiredAcks != sarama.WaitForAll || !c.Producer.Idempotent ||
			c.Net.MaxOpenRequests != 1 || c.Producer.Retry.Max < 5 || !c.Producer.Return.Successes {
			t.Fatalf("producer settings %+v lose or reorder events", c.Producer)
		}
	})

	t.Run("NewGroupsStartAtOldest", func(t *testing.T) {
		if c.Consumer.Offsets.Initial != sarama.OffsetOldest {
			t.Fatalf("Consumer.Offsets.Initial = %d, want OffsetOldest", c.Consumer.Offsets.Initial)
		}
	})

	t.Run("BacksOffExponentiallyWithCap", func(t *testing.T) {
		f := c.Producer.Retry.BackoffFunc
		got := []int64{f(1, 10).Milliseconds(), f(2, 10).Milliseconds(), f(5, 10).Milliseconds(), f(10, 10).Milliseconds()}
		want := []int64{100, 200, 1600, 2000}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("backoffs %v ms, want %v ms", got, want)
			}
		}
	})

	t.Run("PartitionsLikeTheJavaClient", func(t *testing.T) {
		// Partitions chosen by the Java client's DefaultPartitioner for
		// 100 partitions (vectors from sarama's Java-verified tests).
		p := c.Producer.Partitioner(LedgerTopic)
		for key, want := range map[string]int32{"foo": 16, "bar": 45, "baz": 80, "sarama": 11} {
			got, err := p.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, 100)
			if err != nil || got != want {
				t.Errorf("key %q → partition %d (%v), the Java client picks %d", key, got, err, want)
			}
		}
	})
}
