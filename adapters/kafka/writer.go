package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// WriterConfig configures the ledger writer. Brokers and Decider are required.
type WriterConfig struct {
	Brokers []string
	Decider *eventstore.Decider
	// Group is the consumer group that shares the command partitions
	// among writer processes, and the prefix of each partition's
	// transactional id. Default "integr8scode.ledger".
	Group string
	// ExpireEvery is how often each partition looks for expired leases.
	ExpireEvery time.Duration
	// MaxBatch bounds the commands decided in one transaction.
	MaxBatch int
	Logger   *slog.Logger
	// Registerer takes the writer's metrics (nil: none registered).
	Registerer prometheus.Registerer
	// Appended, if set, is called after each committed transaction with
	// the events it appended (in-process observers: the API's read cache).
	Appended func([]eventstore.Envelope)
	// Failpoint, if set, is called at each step of a transaction that
	// decides a submit ("decided", "produced", "committed"), so that a test
	// can kill the process exactly there. Never set in production.
	Failpoint func(step string)
	now       func() time.Time
}

func (c *WriterConfig) setDefaults() {
	if c.Group == "" {
		c.Group = "integr8scode.ledger"
	}
	if c.ExpireEvery == 0 {
		c.ExpireEvery = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
}

// Validate reports every missing field at once.
func (c WriterConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("ledger writer: Brokers are required"))
	}
	if c.Decider == nil || c.Decider.Signer == nil {
		errs = append(errs, errors.New("ledger writer: a Decider with a Signer is required"))
	}
	return errors.Join(errs...)
}

// Writer is the ledger's single writer. Writer processes stand by in a
// consumer group over the command topic; the one that owns command
// partition 0 writes the whole ledger:
//
//  1. it opens a transactional producer with one fixed transactional id:
//     Kafka bumps the id's epoch, which aborts whatever the previous
//     writer left open and fences it off for good (a paused zombie's next
//     write fails);
//  2. it rebuilds the heads from the changelog, each partition read up to
//     a fence record it writes itself, so it has seen every committed one;
//  3. it reads every partition's commands from the offsets committed by
//     the last transaction and, per batch, in one transaction: decides
//     each command, appends its events to the ledger, its heads to the
//     changelog and its reply to the asker, and commits the commands'
//     offsets.
//
// A read_committed reader therefore sees each event exactly once, however
// the writer dies: a transaction either committed all of that or nothing,
// and the next writer re-decides uncommitted commands against committed
// state. Watermill's publisher cannot take part in a transaction, so this
// uses sarama directly.
type Writer struct {
	cfg     WriterConfig
	metrics *writerMetrics
	id      string
}

// NewWriter builds a ledger writer.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Writer{cfg: cfg, metrics: newWriterMetrics(cfg.Registerer), id: uuid.NewString()}, nil
}

// Run writes until ctx ends.
func (w *Writer) Run(ctx context.Context) error {
	addrs, conf, err := clientConfig(w.cfg.Brokers, "integr8scode-ledger")
	if err != nil {
		return fmt.Errorf("ledger writer: %w", err)
	}
	conf.Consumer.IsolationLevel = sarama.ReadCommitted
	// Positions are committed inside the writer's transactions, never by
	// the group's own offset manager.
	conf.Consumer.Offsets.AutoCommit.Enable = false
	client, err := sarama.NewClient(addrs, conf)
	if err != nil {
		return fmt.Errorf("ledger writer: %w", err)
	}
	defer client.Close()
	group, err := sarama.NewConsumerGroupFromClient(w.cfg.Group, client)
	if err != nil {
		return fmt.Errorf("ledger writer: %w", err)
	}
	defer group.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("ledger writer: %w", err)
	}
	defer consumer.Close()
	go func() {
		for err := range group.Errors() {
			w.cfg.Logger.Warn("ledger writer group", "err", err)
		}
	}()
	h := &writerGroup{w: w, client: client, consumer: consumer, group: group}
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{eventstore.CommandTopic}, h); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("ledger writer: consume", "err", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

type writerGroup struct {
	w        *Writer
	client   sarama.Client
	consumer sarama.Consumer
	group    sarama.ConsumerGroup
}

func (g *writerGroup) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (g *writerGroup) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// writerPartition is the command partition whose owner writes the whole
// ledger. The group decides who that is; the other members stand by.
const writerPartition = 0

// ConsumeClaim runs the ledger's writer for as long as this process owns
// command partition 0, and holds any other partition idle: the writer
// reads every partition's commands itself, from the positions its last
// transaction committed, which it can only know after fencing the
// previous writer. The claims' own streams are paused.
func (g *writerGroup) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	g.group.Pause(map[string][]int32{claim.Topic(): {claim.Partition()}})
	go func() {
		for range claim.Messages() {
		}
	}()
	ctx := sess.Context()
	if claim.Partition() != writerPartition {
		<-ctx.Done()
		return nil
	}
	meta := &sarama.ConsumerGroupMetadata{GroupID: g.w.cfg.Group, GenerationID: sess.GenerationID(), MemberID: sess.MemberID()}
	log := g.w.cfg.Logger
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		lw := &ledgerWriter{w: g.w, client: g.client, consumer: g.consumer, meta: meta, log: log}
		err := lw.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("ledger writer stopped; starting again", "err", err)
		g.w.metrics.restarts.Inc()
		sleep(ctx, backoff)
	}
	return nil
}

// ledgerWriter writes every partition of the ledger in one transaction
// per batch. A transaction costs the broker the same round trips and
// (where it syncs) the same fsyncs per partition it touches whatever its
// size, so one writer deciding the commands of all partitions together
// commits several times more per transaction than one writer per
// partition did (docs/performance.md, issue 8).
type ledgerWriter struct {
	w        *Writer
	client   sarama.Client
	consumer sarama.Consumer
	meta     *sarama.ConsumerGroupMetadata
	log      *slog.Logger

	parts    int32 // partitions of the commands, the ledger and the changelog (one count)
	producer sarama.AsyncProducer
	heads    map[string]*eventstore.Head
	running  map[string]struct{} // heads with a lease to watch
	replyN   int32
}

// rebuildTimeout bounds one attempt to rebuild the heads.
const rebuildTimeout = 20 * time.Second

// headPartition is the changelog partition every head is to go to, once
// no writer of a release before 2026-12-03 can run any more: only the
// writer reads heads, and it reads every partition, while each partition a
// transaction touches costs the broker a write and a marker (synced on the
// embedded broker; docs/performance.md measured ~20 % more appends). This
// release still writes each head to its execution's partition, as those
// releases read them: one of them taking over again mid-upgrade (a rolling
// update of the api) lets the last partition it reads win, and would
// rebuild a stale head and fork the chain. This release reads heads from
// both places (newestHeads), so the release that switches can run beside
// it.
const headPartition int32 = 0

// fenceKey is the changelog key of fence records: not an execution id (a
// NUL is never in a UUID), so rebuilding skips it.
const fenceKey = "\x00fence"

// transactionalID is the writer's transactional id for partition p. The
// writer uses partition 0's; the others are the ids of the writers of
// earlier releases, one per partition, which a new writer fences too.
func (c WriterConfig) transactionalID(p int32) string {
	return fmt.Sprintf("%s.%d", c.Group, p)
}

func (lw *ledgerWriter) run(ctx context.Context) error {
	parts, err := lw.client.Partitions(eventstore.CommandTopic)
	if err != nil {
		return err
	}
	lw.parts = int32(len(parts))
	replies, err := lw.client.Partitions(eventstore.ReplyTopic)
	if err != nil {
		return err
	}
	lw.replyN = int32(len(replies))
	// Writers of earlier releases had one transactional id per partition.
	// Bumping their epochs aborts whatever one left open and fences any
	// still running (mid-upgrade) before this writer touches a partition.
	for p := int32(1); p < lw.parts; p++ {
		if err := lw.fenceID(lw.w.cfg.transactionalID(p)); err != nil {
			return fmt.Errorf("fence %s: %w", lw.w.cfg.transactionalID(p), err)
		}
	}
	producer, err := lw.newProducer(lw.w.cfg.transactionalID(writerPartition)) // InitProducerId: fences the previous writer
	if err != nil {
		return fmt.Errorf("transactional producer: %w", err)
	}
	lw.producer = producer
	defer producer.Close()
	go func() {
		for e := range producer.Errors() {
			lw.log.Warn("ledger append failed", "topic", e.Msg.Topic, "partition", e.Msg.Partition, "err", e.Err)
		}
	}()

	start := time.Now()
	// Bounded: a rebuild that cannot see its own fence (a dead writer's
	// transaction still open on the changelog) starts over with a fresh
	// producer, which fences again, rather than wait for ever.
	rctx, cancel := context.WithTimeout(ctx, rebuildTimeout)
	err = lw.rebuild(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	commands, stop, err := lw.follow(ctx)
	if err != nil {
		return err
	}
	defer stop()
	lw.log.Info("ledger writer up", "partitions", lw.parts, "heads", len(lw.heads), "running", len(lw.running),
		"rebuild", time.Since(start).Round(time.Millisecond))
	return lw.loop(ctx, commands)
}

func (lw *ledgerWriter) newProducer(txnID string) (sarama.AsyncProducer, error) {
	addrs, conf, err := clientConfig(lw.w.cfg.Brokers, txnID)
	if err != nil {
		return nil, err
	}
	conf.Producer.Transaction.ID = txnID
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	conf.Producer.Return.Successes = false
	conf.Producer.Transaction.Retry.Max = 10
	conf.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	// A produce that fails gives up after about a second instead of the
	// shared 13 s: the writer then starts over (fence, rebuild, re-decide),
	// which rides out a broker's hiccup as well. A writer fenced by its
	// successor (sarama does not know PRODUCER_FENCED and retries it) must
	// not hold its claim, and with it the group's rebalance, for long.
	conf.Producer.Retry.Max = 3
	conf.Producer.Retry.BackoffFunc = exponentialBackoff(100*time.Millisecond, 400*time.Millisecond)
	// A transaction here lasts milliseconds; one left open by a writer
	// that died is aborted by the broker after this, so it never holds the
	// partitions' readers (read_committed) for long.
	conf.Producer.Transaction.Timeout = 15 * time.Second
	return sarama.NewAsyncProducer(addrs, conf)
}

// fenceID bumps the epoch of a transactional id nobody should use any
// more: starting a transactional producer does exactly that.
func (lw *ledgerWriter) fenceID(txnID string) error {
	p, err := lw.newProducer(txnID)
	if err != nil {
		return err
	}
	return p.Close()
}

// rebuild writes a fence record to every partition of the changelog, in
// one transaction, and reads each partition from the start up to it: every
// head any previous writer committed.
func (lw *ledgerWriter) rebuild(ctx context.Context) error {
	fence := uuid.NewString()
	if err := lw.producer.BeginTxn(); err != nil {
		return err
	}
	for p := int32(0); p < lw.parts; p++ {
		lw.producer.Input() <- &sarama.ProducerMessage{Topic: eventstore.StateTopic, Partition: p,
			Key: sarama.StringEncoder(fenceKey), Value: sarama.StringEncoder(`{"writer":"` + lw.w.id + `","fence":"` + fence + `"}`)}
	}
	if err := lw.producer.CommitTxn(); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	// Every partition at once: each read ends with a fetch that waits for
	// more, and one after the other they added up to seconds of takeover.
	now := lw.w.cfg.now()
	read := make([]map[string]*eventstore.Head, lw.parts)
	g, gctx := errgroup.WithContext(ctx)
	for p := range lw.parts {
		g.Go(func() error {
			heads, err := lw.readChangelog(gctx, p, fence, now)
			if err != nil {
				return fmt.Errorf("changelog partition %d: %w", p, err)
			}
			read[p] = heads
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	lw.heads, lw.running = map[string]*eventstore.Head{}, map[string]struct{}{}
	for _, h := range newestHeads(read) {
		lw.remember(h)
	}
	return nil
}

// newestHeads merges the heads read from each partition of the changelog.
// An execution may have a head in two: in its own partition, where this
// release and those before write them, and in headPartition, where a
// later release will (and a writer of either may take over from the
// other during an upgrade). The one after more events is the newer; at
// the same sequence the two differ at most in the lease, which a rebuild
// starts over anyway, and headPartition's is taken.
func newestHeads(read []map[string]*eventstore.Head) map[string]*eventstore.Head {
	newest := map[string]*eventstore.Head{}
	for p, heads := range read {
		for id, h := range heads {
			if had, ok := newest[id]; ok && (had.State.Sequence > h.State.Sequence ||
				had.State.Sequence == h.State.Sequence && int32(p) != headPartition) {
				continue
			}
			newest[id] = h
		}
	}
	return newest
}

// readChangelog reads partition p of the changelog from the start up to
// the fence record: the last committed head of each execution there.
func (lw *ledgerWriter) readChangelog(ctx context.Context, p int32, fence string, now time.Time) (map[string]*eventstore.Head, error) {
	pc, err := lw.consumer.ConsumePartition(eventstore.StateTopic, p, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	heads := map[string]*eventstore.Head{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-pc.Errors():
			return nil, err
		case m := <-pc.Messages():
			key := string(m.Key)
			if key == fenceKey {
				if json.Valid(m.Value) && containsFence(m.Value, fence) {
					return heads, nil
				}
				continue
			}
			if m.Value == nil { // a tombstone
				delete(heads, key)
				continue
			}
			var h eventstore.Head
			if err := json.Unmarshal(m.Value, &h); err != nil {
				return nil, fmt.Errorf("changelog %d:%d: %w", m.Partition, m.Offset, err)
			}
			// A new writer's clock starts the lease over: the runner gets
			// a whole lease to renew with the new writer.
			if h.LeaseMs > 0 && h.LeaseUntil.Before(now.Add(time.Duration(h.LeaseMs)*time.Millisecond)) {
				h.LeaseUntil = now.Add(time.Duration(h.LeaseMs) * time.Millisecond)
			}
			heads[h.State.ID] = &h
		}
	}
}

func containsFence(v []byte, fence string) bool {
	var f struct {
		Fence string `json:"fence"`
	}
	return json.Unmarshal(v, &f) == nil && f.Fence == fence
}

func (lw *ledgerWriter) remember(h *eventstore.Head) {
	id := h.State.ID
	lw.heads[id] = h
	if h.State.Status == domain.StatusRunning && h.State.Runner != "" {
		lw.running[id] = struct{}{}
	} else {
		delete(lw.running, id)
	}
}

// commandFeed is every command partition's commands, each partition in
// its order.
type commandFeed struct {
	messages chan *sarama.ConsumerMessage
	errors   chan error
}

// follow reads every command partition from the offset the last committed
// transaction recorded for it (the oldest command if none ever did), into
// one feed.
func (lw *ledgerWriter) follow(ctx context.Context) (*commandFeed, func(), error) {
	om, err := sarama.NewOffsetManagerFromClient(lw.w.cfg.Group, lw.client)
	if err != nil {
		return nil, nil, fmt.Errorf("committed offsets: %w", err)
	}
	defer om.Close()
	feed := &commandFeed{messages: make(chan *sarama.ConsumerMessage, 256), errors: make(chan error, 16)}
	fctx, cancel := context.WithCancel(ctx)
	var pcs []sarama.PartitionConsumer
	stop := func() {
		cancel()
		for _, pc := range pcs {
			pc.AsyncClose()
		}
	}
	for p := int32(0); p < lw.parts; p++ {
		pom, err := om.ManagePartition(eventstore.CommandTopic, p)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("committed offset of partition %d: %w", p, err)
		}
		off, _ := pom.NextOffset()
		pom.AsyncClose()
		if off < 0 {
			off = sarama.OffsetOldest
		}
		pc, err := lw.consumer.ConsumePartition(eventstore.CommandTopic, p, off)
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("consume commands of partition %d from %d: %w", p, off, err)
		}
		pcs = append(pcs, pc)
		go func() {
			for {
				select {
				case <-fctx.Done():
					return
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case feed.messages <- m:
					case <-fctx.Done():
						return
					}
				case err, ok := <-pc.Errors():
					if !ok {
						return
					}
					select {
					case feed.errors <- err:
					default: // a warning nobody reads in time is not worth blocking commands for
					}
				}
			}
		}()
	}
	return feed, stop, nil
}

func (lw *ledgerWriter) loop(ctx context.Context, feed *commandFeed) error {
	tick := time.NewTicker(lw.w.cfg.ExpireEvery)
	defer tick.Stop()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-feed.errors:
			lw.log.Warn("reading commands", "err", err)
			continue
		case m := <-feed.messages:
			batch = append(batch, m)
			batch = lw.gather(feed, batch)
		case <-tick.C:
		}
		if err := lw.transact(ctx, batch); err != nil {
			return err
		}
	}
}

// gather adds the commands waiting behind the first one to the batch. A
// transaction costs the same few round trips (and, on a broker that syncs,
// fsyncs) whatever its size, so under load the batch is worth growing: when
// more than one command was waiting, it waits up to lingerUnderLoad for
// stragglers. A lone command (no load) goes at once. (5 ms measured
// +20 % throughput over 2 ms, and no gain at 10 ms: docs/performance.md.)
func (lw *ledgerWriter) gather(feed *commandFeed, batch []*sarama.ConsumerMessage) []*sarama.ConsumerMessage {
	for len(batch) < lw.w.cfg.MaxBatch {
		select {
		case m := <-feed.messages:
			batch = append(batch, m)
			continue
		default:
		}
		break
	}
	if len(batch) < 2 {
		return batch
	}
	linger := time.NewTimer(lingerUnderLoad)
	defer linger.Stop()
	for len(batch) < lw.w.cfg.MaxBatch {
		select {
		case m := <-feed.messages:
			batch = append(batch, m)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// lingerUnderLoad is how long a batch that found company waits for more.
const lingerUnderLoad = 5 * time.Millisecond

// transact decides a batch of commands (and any expired leases) and
// commits the outcome in one transaction. On any failure it aborts and
// returns the error: the caller starts the writer over from committed
// state, so nothing half-decided is ever kept in memory.
func (lw *ledgerWriter) transact(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	now := lw.w.cfg.now()
	overlay := map[string]*eventstore.Head{}
	get := func(id string) *eventstore.Head {
		if h, ok := overlay[id]; ok {
			return h
		}
		return lw.heads[id]
	}
	var msgs []*sarama.ProducerMessage
	var appended []eventstore.Envelope
	var logs []appendLog
	add := func(ctx context.Context, id string, p int32, out eventstore.Outcome, replyTo string) error {
		headers := traceHeaders(ctx)
		for _, rec := range out.Records {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.Topic, Partition: p,
				Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(rec), Headers: headers})
		}
		appended = append(appended, out.Events...)
		if out.Head != nil {
			b, err := json.Marshal(out.Head)
			if err != nil {
				return err
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.StateTopic, Partition: p, // not yet headPartition (see there)
				Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(b)})
			overlay[id] = out.Head
		}
		if replyTo != "" {
			b, err := json.Marshal(out.Reply)
			if err != nil {
				return err
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.ReplyTopic, Partition: partitionOf(replyTo, lw.replyN),
				Key: sarama.StringEncoder(replyTo), Value: sarama.ByteEncoder(b), Headers: headers})
		}
		return nil
	}
	next := map[int32]int64{} // per command partition: the offset after the batch's last command
	for _, m := range batch {
		next[m.Partition] = m.Offset + 1
		var cmd eventstore.Command
		if err := json.Unmarshal(m.Value, &cmd); err != nil || cmd.ExecutionID == "" {
			lw.log.Error("skipping a command that cannot be read", "partition", m.Partition, "offset", m.Offset, "err", err)
			lw.w.metrics.commands.WithLabelValues("unreadable", "invalid").Inc()
			continue
		}
		cctx, span := eventstore.StartAppendSpan(traceFrom(ctx, m), cmd)
		out := lw.w.cfg.Decider.Handle(get(cmd.ExecutionID), cmd, now)
		span.End()
		result := out.Reply.Code
		if result == "" {
			result = "ok"
		}
		lw.w.metrics.commands.WithLabelValues(cmd.Kind, result).Inc()
		// An execution's events (and head) go to the partition murmur2 of
		// its id picks, where its commands come too; taken from the id,
		// not the command's partition, so that askers of a later release
		// may send every command to one partition (docs/architecture.md).
		if err := add(cctx, cmd.ExecutionID, partitionOf(cmd.ExecutionID, lw.parts), out, cmd.ReplyTo); err != nil {
			return err
		}
		logs = append(logs, appendLog{ctx: cctx, events: out.Events, who: commandLogAttrs(cmd)})
	}
	for id := range lw.running {
		h := get(id)
		if out, ok := lw.w.cfg.Decider.Expire(h, now); ok {
			lw.log.Info("lease expired: attempt abandoned", "execution_id", id, "runner", h.State.Runner, "attempt", h.State.Attempt)
			lw.w.metrics.expired.Inc()
			if err := add(ctx, id, partitionOf(id, lw.parts), out, ""); err != nil {
				return err
			}
			logs = append(logs, appendLog{ctx: ctx, events: out.Events, who: []any{"actor", "ledger"}})
		}
	}
	if len(msgs) == 0 && len(batch) == 0 {
		return nil
	}
	failpoint := func(string) {}
	if lw.w.cfg.Failpoint != nil && hasSubmit(batch) {
		failpoint = lw.w.cfg.Failpoint
	}
	failpoint("decided")
	begin := time.Now()
	if err := lw.producer.BeginTxn(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for _, msg := range msgs {
		lw.producer.Input() <- msg
	}
	failpoint("produced")
	if len(next) > 0 {
		offsets := make([]*sarama.PartitionOffsetMetadata, 0, len(next))
		for p, off := range next {
			offsets = append(offsets, &sarama.PartitionOffsetMetadata{Partition: p, Offset: off})
		}
		if err := lw.producer.AddOffsetsToTxnWithGroupMetadata(map[string][]*sarama.PartitionOffsetMetadata{eventstore.CommandTopic: offsets}, lw.meta); err != nil {
			return errors.Join(fmt.Errorf("add offsets: %w", err), lw.producer.AbortTxn())
		}
	}
	if err := lw.producer.CommitTxn(); err != nil {
		return errors.Join(fmt.Errorf("commit: %w", err), lw.abort())
	}
	failpoint("committed")
	lw.w.metrics.txnSeconds.Observe(time.Since(begin).Seconds())
	lw.w.metrics.batch.Observe(float64(len(batch)))
	lw.w.metrics.events.Add(float64(len(appended)))
	lw.w.metrics.observeLatencies(appended, overlay)
	for _, l := range logs {
		for _, e := range l.events {
			lw.log.InfoContext(l.ctx, "ledger event appended", append([]any{"execution_id", e.ExecutionID, "type", e.Type,
				"sequence", e.Sequence, "event_id", e.EventID}, l.who...)...)
		}
	}
	for _, h := range overlay {
		lw.remember(h)
	}
	if lw.w.cfg.Appended != nil && len(appended) > 0 {
		lw.w.cfg.Appended(appended)
	}
	return nil
}

// appendLog is what the log line of each committed event tells besides
// the event itself: its trace (through ctx) and who asked.
type appendLog struct {
	ctx    context.Context
	events []eventstore.Envelope
	who    []any
}

// commandLogAttrs names who asked for a command: a user (or "anonymous")
// for submissions and cancels, which come from the API; the asking
// component (a runner) otherwise. Never the script,
// stdin or output: the log is not a copy of the ledger's data.
func commandLogAttrs(cmd eventstore.Command) []any {
	who := "actor"
	if cmd.Kind == eventstore.CommandSubmit || cmd.Kind == eventstore.CommandCancel {
		who = "user"
	}
	// The runner's commands carry the submitting request's id on.
	return []any{who, cmd.Actor, "request_id", cmd.CorrelationID}
}

func hasSubmit(batch []*sarama.ConsumerMessage) bool {
	for _, m := range batch {
		var c struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(m.Value, &c) == nil && c.Kind == eventstore.CommandSubmit {
			return true
		}
	}
	return false
}

func (lw *ledgerWriter) abort() error {
	if lw.producer.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 {
		return nil
	}
	return lw.producer.AbortTxn()
}

type writerMetrics struct {
	commands   *prometheus.CounterVec
	events     prometheus.Counter
	expired    prometheus.Counter
	restarts   prometheus.Counter
	txnSeconds prometheus.Histogram
	batch      prometheus.Histogram
	// queueWait and toVerdict are measured here because the writer is the
	// one place that appends each event exactly once, live: a projection
	// being rebuilt would observe old events again.
	queueWait *prometheus.HistogramVec
	toVerdict prometheus.Histogram
}

// latencyBuckets span a fast start (tens of milliseconds) to the longest
// allowed run plus a long wait in the queue.
var latencyBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// observeLatencies records, for the events just committed, how long each
// execution waited from submission to its sandbox start and to its verdict.
func (m *writerMetrics) observeLatencies(appended []eventstore.Envelope, heads map[string]*eventstore.Head) {
	for _, e := range appended {
		h := heads[e.ExecutionID]
		if h == nil || h.State.CreatedAt.IsZero() {
			continue
		}
		d := e.OccurredAt.Sub(h.State.CreatedAt).Seconds()
		switch e.Type {
		case domain.TypeExecutionStarted:
			attempt := "first"
			if h.State.Attempt > 1 {
				attempt = "retry"
			}
			m.queueWait.WithLabelValues(attempt).Observe(d)
		case domain.TypeExecutionCompleted, domain.TypeExecutionFailed:
			m.toVerdict.Observe(d)
		}
	}
}

func newWriterMetrics(reg prometheus.Registerer) *writerMetrics {
	m := &writerMetrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "commands_total", Help: "Commands decided by the ledger writer, by kind and result (ok or the refusal's code)."},
			[]string{"kind", "result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "events_appended_total", Help: "Events the ledger writer appended (committed transactions only)."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "leases_expired_total", Help: "Running attempts abandoned because their runner stopped renewing its lease."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "partition_restarts_total", Help: "Times the ledger writer started over after a failed transaction or a fence (the name is from when each partition had a writer of its own)."}),
		txnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "transaction_seconds", Help: "Time from BeginTxn to a committed transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "transaction_commands", Help: "Commands decided per committed transaction (0: a transaction of expired leases only).",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "queue_wait_seconds", Help: "Time from an execution's submission to the start of its sandbox (ExecutionStarted), by attempt: first, or retry after a runner stopped.",
			Buckets: latencyBuckets}, []string{"attempt"}),
		toVerdict: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "execution_seconds", Help: "Time from an execution's submission to its terminal event (its verdict).",
			Buckets: latencyBuckets}),
	}
	for _, a := range []string{"first", "retry"} {
		m.queueWait.WithLabelValues(a) // both visible from the start
	}
	if reg != nil {
		reg.MustRegister(m.commands, m.events, m.expired, m.restarts, m.txnSeconds, m.batch, m.queueWait, m.toVerdict)
	}
	return m
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
