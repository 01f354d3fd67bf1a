package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
)

// Projection is a read model fed from a topic, that keeps its own position
// per partition (with the read model, so that an empty store starts over
// from offset 0 by itself).
type Projection interface {
	// Position is the next offset to read of a partition.
	Position(ctx context.Context, partition int32) (int64, error)
	// SavePosition records that everything before next was handled.
	SavePosition(ctx context.Context, partition int32, next int64) error
	// Handle applies records of one partition, in order: what was there to
	// read at once, so that the store can write them together. An error
	// means the store failed: the same records are offered again after a
	// pause, never skipped (records handled before the error are handled
	// again, which a projection must take as duplicates).
	Handle(ctx context.Context, recs []Record) error
}

// ProjectConfig configures Project.
type ProjectConfig struct {
	Brokers []string
	Topic   string
	// Group shares the partitions among the processes that build the
	// same projection. Its Kafka offsets are never used.
	Group string
	// SaveEvery is how often a partition's position is saved while
	// records flow (and always when it goes idle or is handed over).
	SaveEvery time.Duration
	Logger    *slog.Logger
	// Lag, if set, is kept at the number of records of each partition this
	// process reads that it has not handled yet (label "partition"; the
	// partition's series goes when it is handed over). It counts the
	// transaction markers too, so a caught-up partition may show 1.
	Lag *prometheus.GaugeVec
}

// Project builds a projection from cfg.Topic until ctx ends. The consumer
// group only assigns partitions; each partition is read from the position
// the projection keeps, records of committed transactions only, strictly
// in order. Watermill's subscriber starts from the group's committed
// offsets and offers no way to start elsewhere, so this uses sarama.
func Project(ctx context.Context, cfg ProjectConfig, proj Projection) error {
	if cfg.SaveEvery == 0 {
		cfg.SaveEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	addrs, conf, err := clientConfig(cfg.Brokers, "integr8scode-"+cfg.Group)
	if err != nil {
		return fmt.Errorf("project %s: %w", cfg.Topic, err)
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	conf.Consumer.Offsets.AutoCommit.Enable = false
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		return fmt.Errorf("project %s: %w", cfg.Topic, err)
	}
	defer client.Close()
	group, err := sarama.NewConsumerGroupFromClient(cfg.Group, client)
	if err != nil {
		return fmt.Errorf("project %s: %w", cfg.Topic, err)
	}
	defer group.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("project %s: %w", cfg.Topic, err)
	}
	defer consumer.Close()
	go func() {
		for err := range group.Errors() {
			cfg.Logger.Warn("projection group", "group", cfg.Group, "err", err)
		}
	}()
	h := &projectGroup{cfg: cfg, proj: proj, consumer: consumer, group: group}
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{cfg.Topic}, h); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("projection consume", "group", cfg.Group, "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

type projectGroup struct {
	cfg      ProjectConfig
	proj     Projection
	consumer sarama.Consumer
	group    sarama.ConsumerGroup
}

func (g *projectGroup) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (g *projectGroup) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (g *projectGroup) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	// The claim's own stream starts at the group's offsets; pause it and
	// read from the projection's position instead.
	g.group.Pause(map[string][]int32{claim.Topic(): {claim.Partition()}})
	go func() {
		for range claim.Messages() {
		}
	}()
	ctx, p := sess.Context(), claim.Partition()
	log := g.cfg.Logger.With("topic", g.cfg.Topic, "partition", p)
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		err := g.partition(ctx, p, log)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("projection of a partition stopped; starting again", "err", err)
		sleep(ctx, backoff)
	}
	return nil
}

func (g *projectGroup) partition(ctx context.Context, p int32, log *slog.Logger) error {
	next, err := g.proj.Position(ctx, p)
	if err != nil {
		return fmt.Errorf("position: %w", err)
	}
	pc, err := g.consumer.ConsumePartition(g.cfg.Topic, p, max(next, 0))
	if err != nil {
		return fmt.Errorf("consume from %d: %w", next, err)
	}
	defer pc.Close()
	saved := next
	lag := func() {
		if g.cfg.Lag != nil {
			g.cfg.Lag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(max(pc.HighWaterMarkOffset()-next, 0)))
		}
	}
	if g.cfg.Lag != nil {
		defer g.cfg.Lag.DeleteLabelValues(strconv.Itoa(int(p)))
	}
	save := func() error {
		if next == saved {
			return nil
		}
		// A context of its own: the position is worth saving while the
		// partition is being handed over.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := g.proj.SavePosition(sctx, p, next); err != nil {
			return fmt.Errorf("save position %d: %w", next, err)
		}
		saved = next
		return nil
	}
	defer func() {
		if err := save(); err != nil {
			log.Warn("saving the position on hand-over failed; records after it are read again", "err", err)
		}
	}()
	tick := time.NewTicker(g.cfg.SaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pc.Errors():
			log.Warn("reading the ledger", "err", err)
		case <-tick.C:
			lag()
			if err := save(); err != nil {
				return err
			}
		case m := <-pc.Messages():
			recs := batchOf(m, pc.Messages())
			for {
				err := g.proj.Handle(ctx, recs)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("projecting records failed; trying again", "from", recs[0].Offset, "records", len(recs), "err", err)
				lag() // the log grows on while the store fails: the lag must show it
				sleep(ctx, time.Second)
			}
			next = recs[len(recs)-1].Offset + 1
			lag()
			if len(pc.Messages()) == 0 {
				// Idle: the position is cheap to save now and tells
				// readiness that this partition has caught up.
				if err := save(); err != nil {
					return err
				}
			}
		}
	}
}

// maxBatch bounds the records handed to a projection at once.
const maxBatch = 500

// batchOf is m and the records of the same partition already read after
// it, up to maxBatch: when the projection keeps up that is one record,
// when it falls behind (or rebuilds) it is many, written together.
func batchOf(m *sarama.ConsumerMessage, more <-chan *sarama.ConsumerMessage) []Record {
	recs := []Record{recordOf(m)}
	for len(recs) < maxBatch {
		select {
		case m, ok := <-more:
			if !ok {
				return recs
			}
			recs = append(recs, recordOf(m))
		default:
			return recs
		}
	}
	return recs
}

func recordOf(m *sarama.ConsumerMessage) Record {
	return Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers}
}
