package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
)

// Follow reads every partition of topic from its end as of now (committed
// records only) and calls handle for each new record, per partition in
// order, until ctx ends. It joins no consumer group: every follower sees
// every record. The runners follow the ledger this way, so that an idle
// runner hears of queued work on any partition. A handler error is
// logged; following goes on.
func Follow(ctx context.Context, brokers []string, topic string, log *slog.Logger, handle func(context.Context, Record) error) error {
	return FollowFrom(ctx, brokers, topic, nil, log, handle)
}

// FollowFrom is Follow starting at the given offset of each partition
// (from the end for a partition it does not name).
func FollowFrom(ctx context.Context, brokers []string, topic string, from map[int32]int64, log *slog.Logger, handle func(context.Context, Record) error) error {
	addrs, conf, err := clientConfig(brokers, "integr8scode-follower")
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	conf.Consumer.Offsets.Initial = sarama.OffsetNewest
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	defer consumer.Close()
	ps, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	var pcs []sarama.PartitionConsumer
	for _, p := range ps {
		start := sarama.OffsetNewest
		if off, ok := from[p]; ok {
			start = off
		}
		pc, err := consumer.ConsumePartition(topic, p, start)
		if err != nil {
			for _, c := range pcs {
				c.Close()
			}
			return fmt.Errorf("follow %s/%d: %w", topic, p, err)
		}
		pcs = append(pcs, pc)
	}
	var wg sync.WaitGroup
	for _, pc := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case err, ok := <-pc.Errors():
					if !ok {
						return
					}
					log.Warn("following the ledger", "topic", topic, "err", err)
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					rec := Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers}
					if err := handle(traceFrom(ctx, m), rec); err != nil && ctx.Err() == nil {
						log.Warn("handling a followed record failed", "topic", topic, "partition", m.Partition,
							"offset", m.Offset, "err", err)
					}
				}
			}
		}()
	}
	<-ctx.Done()
	var errs []error
	for _, pc := range pcs {
		errs = append(errs, pc.Close())
	}
	wg.Wait()
	_ = errors.Join(errs...)
	return nil
}
