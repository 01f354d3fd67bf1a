package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
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
	// SavePositions records, per partition, that everything before the
	// offset given was handled.
	SavePositions(ctx context.Context, next map[int32]int64) error
	// Handle applies records of the partitions this process reads, each
	// partition's in order: what was there to read at once, so that the
	// store can write them together. An error means the store failed: the
	// same records are offered again after a pause, never skipped (records
	// handled before the error are handled again, which a projection must
	// take as duplicates).
	Handle(ctx context.Context, recs []Record) error
}

// ProjectConfig configures Project.
type ProjectConfig struct {
	Brokers []string
	Topic   string
	// Group shares the partitions among the processes that build the
	// same projection. Its Kafka offsets are never used.
	Group string
	// SaveEvery is how often the positions are saved while records flow
	// (and always when the projection goes idle or hands partitions over).
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
	session  *projectSession // the group session's, from Setup to Cleanup
}

// Setup starts the session's one handler of records; ConsumeClaim feeds it
// the records of each partition claimed.
func (g *projectGroup) Setup(sess sarama.ConsumerGroupSession) error {
	g.session = newProjectSession(g.cfg, g.proj)
	go g.session.run(sess.Context())
	return nil
}

// Cleanup runs once every claim's ConsumeClaim has returned: the handler
// finishes and saves the positions it reached before the partitions go.
func (g *projectGroup) Cleanup(sarama.ConsumerGroupSession) error {
	g.session.wait()
	return nil
}

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
		err := g.feed(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("reading a partition for the projection stopped; starting again", "err", err)
		sleep(ctx, backoff)
	}
	return nil
}

// feed reads partition p from the projection's position and hands its
// records, in order, to the session's handler until ctx ends.
func (g *projectGroup) feed(ctx context.Context, p int32) error {
	next, err := g.proj.Position(ctx, p)
	if err != nil {
		return fmt.Errorf("position: %w", err)
	}
	pc, err := g.consumer.ConsumePartition(g.cfg.Topic, p, max(next, 0))
	if err != nil {
		return fmt.Errorf("consume from %d: %w", next, err)
	}
	defer pc.Close()
	g.session.open(p, next, pc)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-pc.Errors():
			if !ok {
				return errors.New("the partition consumer stopped")
			}
			g.cfg.Logger.Warn("reading the ledger", "topic", g.cfg.Topic, "partition", p, "err", err)
		case m, ok := <-pc.Messages():
			if !ok {
				// sarama shut it down (an offset out of range): read
				// again from the saved position. Records handled twice
				// are duplicates to the projection.
				return errors.New("the partition consumer stopped")
			}
			select {
			case g.session.in <- recordOf(m):
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// projectSession hands the records of every partition a process reads to
// the projection from one loop, as batches that span the partitions: a
// store pays per write, not per record, and a transaction of the ledger
// writer spreads its events over all of them. Each partition's records
// stay in order (one feed per partition, one channel, one loop).
type projectSession struct {
	cfg  ProjectConfig
	proj Projection
	in   chan Record
	done chan struct{}

	mu    sync.Mutex
	parts map[int32]*projectedPartition
}

// projectedPartition is where the session stands in one partition.
type projectedPartition struct {
	pc          sarama.PartitionConsumer // for the lag
	next, saved int64
}

func newProjectSession(cfg ProjectConfig, proj Projection) *projectSession {
	return &projectSession{cfg: cfg, proj: proj, in: make(chan Record, maxBatch),
		done: make(chan struct{}), parts: map[int32]*projectedPartition{}}
}

// open registers partition p, read from next on by pc.
func (s *projectSession) open(p int32, next int64, pc sarama.PartitionConsumer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parts[p] = &projectedPartition{pc: pc, next: next, saved: next}
}

func (s *projectSession) wait() { <-s.done }

func (s *projectSession) run(ctx context.Context) {
	defer close(s.done)
	defer func() {
		if err := s.save(ctx); err != nil {
			s.cfg.Logger.Warn("saving the positions on hand-over failed; records after them are read again", "err", err)
		}
		if s.cfg.Lag != nil {
			s.mu.Lock()
			for p := range s.parts {
				s.cfg.Lag.DeleteLabelValues(strconv.Itoa(int(p)))
			}
			s.mu.Unlock()
		}
	}()
	tick := time.NewTicker(s.cfg.SaveEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.lag()
			if err := s.save(ctx); err != nil {
				s.cfg.Logger.Warn("saving the projection's positions failed; trying again", "err", err)
			}
		case r := <-s.in:
			recs := batchOf(r, s.in)
			for {
				err := s.proj.Handle(ctx, recs)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				s.cfg.Logger.Warn("projecting records failed; trying again", "topic", s.cfg.Topic,
					"partition", recs[0].Partition, "from", recs[0].Offset, "records", len(recs), "err", err)
				s.lag() // the log grows on while the store fails: the lag must show it
				sleep(ctx, time.Second)
			}
			s.handled(recs)
			s.lag()
			if len(s.in) == 0 {
				// Idle: the positions are cheap to save now and tell
				// readiness that these partitions have caught up.
				if err := s.save(ctx); err != nil {
					s.cfg.Logger.Warn("saving the projection's positions failed; trying again", "err", err)
				}
			}
		}
	}
}

// handled moves each partition of recs past its last record.
func (s *projectSession) handled(recs []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		if pp := s.parts[r.Partition]; pp != nil {
			pp.next = r.Offset + 1
		}
	}
}

func (s *projectSession) lag() {
	if s.cfg.Lag == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, pp := range s.parts {
		s.cfg.Lag.WithLabelValues(strconv.Itoa(int(p))).Set(float64(max(pp.pc.HighWaterMarkOffset()-pp.next, 0)))
	}
}

// save records the positions that moved, in one write.
func (s *projectSession) save(ctx context.Context) error {
	s.mu.Lock()
	moved := map[int32]int64{}
	for p, pp := range s.parts {
		if pp.next != pp.saved {
			moved[p] = pp.next
		}
	}
	s.mu.Unlock()
	if len(moved) == 0 {
		return nil
	}
	// A context of its own: the positions are worth saving while the
	// partitions are being handed over.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.proj.SavePositions(sctx, moved); err != nil {
		return fmt.Errorf("save positions %v: %w", moved, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, next := range moved {
		s.parts[p].saved = next
	}
	return nil
}

// maxBatch bounds the records handed to a projection at once.
const maxBatch = 500

// batchOf is r and the records already read after it, of any partition,
// up to maxBatch: when the projection keeps up that is what one
// transaction of the ledger wrote, when it falls behind (or rebuilds) it
// is many, written together.
func batchOf(r Record, more <-chan Record) []Record {
	recs := []Record{r}
	for len(recs) < maxBatch {
		select {
		case r, ok := <-more:
			if !ok {
				return recs
			}
			recs = append(recs, r)
		default:
			return recs
		}
	}
	return recs
}

func recordOf(m *sarama.ConsumerMessage) Record {
	return Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Headers: m.Headers}
}
