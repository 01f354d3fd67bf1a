package kafka

import (
	"fmt"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// BenchmarkPublish measures one synchronous, acknowledged append to the
// embedded broker (SyncWrites: one fsync per batch, and a sync producer
// sends one message per batch), through raw sarama and through the
// Watermill publisher, with the same sarama configuration. The difference
// is Watermill's marshaling: the key function and one header per metadata
// entry plus the message UUID.
func BenchmarkPublish(b *testing.B) {
	e := startBroker(b, b.TempDir())
	brokers := e.Brokers()
	payload := []byte(`{"event_id":"` + watermill.NewUUID() + `","type":"ExecutionQueued","data":"` +
		strings.Repeat("x", 200) + `"}`)
	keys := executionIDs("bench", 10)

	b.Run("sarama", func(b *testing.B) {
		addrs, cfg, err := clientConfig(brokers, "bench-sarama")
		if err != nil {
			b.Fatal(err)
		}
		producer, err := sarama.NewSyncProducer(addrs, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer producer.Close()
		i := 0
		for b.Loop() {
			if _, _, err := producer.SendMessage(&sarama.ProducerMessage{
				Topic: LedgerTopic,
				Key:   sarama.StringEncoder(keys[i%len(keys)]),
				Value: sarama.ByteEncoder(payload),
			}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("watermill", func(b *testing.B) {
		pub := newPublisher(b, brokers)
		i := 0
		for b.Loop() {
			m := message.NewMessage(watermill.NewUUID(), payload)
			m.Metadata.Set(KeyMetadata, keys[i%len(keys)])
			m.Metadata.Set("type", "ExecutionQueued")
			if err := pub.Publish(LedgerTopic, m); err != nil {
				b.Fatal(fmt.Errorf("publish: %w", err))
			}
			i++
		}
	})
}
