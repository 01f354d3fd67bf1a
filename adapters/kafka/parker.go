package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// Parker writes records a consumer cannot use to the dead-letter topic
// (eventstore.ParkedTopic), unchanged, with headers saying who parked it,
// why, and where it was: an operator can inspect, fix and replay it.
type Parker struct {
	consumer string
	pub      message.Publisher
}

// NewParker returns a parker for consumer (the projection's name).
func NewParker(brokers []string, consumer string, logger watermill.LoggerAdapter) (*Parker, error) {
	pub, err := NewPublisher(brokers, logger)
	if err != nil {
		return nil, err
	}
	return &Parker{consumer: consumer, pub: pub}, nil
}

// Park writes d to the dead-letter topic with problem p.
func (k *Parker) Park(ctx context.Context, d projections.Delivery, p eventstore.Problem) error {
	msg := message.NewMessage(uuid.NewString(), d.Record)
	key := p.ExecutionID
	if key == "" {
		key = fmt.Sprintf("unreadable-%d-%d", d.Partition, d.Offset)
	}
	msg.Metadata.Set(KeyMetadata, key)
	msg.Metadata.Set("parked_by", k.consumer)
	msg.Metadata.Set("problem", p.Kind)
	msg.Metadata.Set("detail", p.Detail)
	msg.Metadata.Set("source_topic", eventstore.Topic)
	msg.Metadata.Set("source_partition", strconv.Itoa(int(d.Partition)))
	msg.Metadata.Set("source_offset", strconv.FormatInt(d.Offset, 10))
	if b, err := json.Marshal(p); err == nil {
		msg.Metadata.Set("problem_json", string(b))
	}
	if err := k.pub.Publish(eventstore.ParkedTopic, msg); err != nil {
		return fmt.Errorf("park: %w", err)
	}
	return nil
}

// Close closes the parker's producer.
func (k *Parker) Close() error { return k.pub.Close() }
