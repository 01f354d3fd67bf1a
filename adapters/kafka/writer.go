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

// Writer is the ledger's single writer. Writer processes share the
// partitions of the command topic through a consumer group; for each
// partition it owns, a writer
//
//  1. opens a transactional producer whose transactional id names the
//     partition: Kafka bumps the id's epoch, which aborts whatever a
//     previous owner left open and fences it off for good (a paused
//     zombie's next write fails);
//  2. rebuilds the partition's heads from the changelog, read up to a
//     fence record it writes itself, so it has seen every committed one;
//  3. reads commands from the offset committed by the last transaction
//     and, per batch, in one transaction: decides each command, appends
//     its events to the ledger, its heads to the changelog and its reply
//     to the asker, and commits the commands' offset.
//
// A read_committed reader therefore sees each event exactly once, however
// the writer dies: a transaction either committed all of that or nothing,
// and the next owner re-decides uncommitted commands against committed
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

// ConsumeClaim runs the partition's writer for as long as this process
// owns it. The claim's own stream is paused: the writer reads commands
// itself from the position its last transaction committed, which it can
// only know after fencing the previous owner.
func (g *writerGroup) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	g.group.Pause(map[string][]int32{claim.Topic(): {claim.Partition()}})
	go func() {
		for range claim.Messages() {
		}
	}()
	meta := &sarama.ConsumerGroupMetadata{GroupID: g.w.cfg.Group, GenerationID: sess.GenerationID(), MemberID: sess.MemberID()}
	ctx := sess.Context()
	log := g.w.cfg.Logger.With("partition", claim.Partition())
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		pw := &partitionWriter{w: g.w, client: g.client, consumer: g.consumer, p: claim.Partition(), meta: meta, log: log}
		err := pw.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("ledger partition writer stopped; starting again", "err", err)
		g.w.metrics.restarts.Inc()
		sleep(ctx, backoff)
	}
	return nil
}

// partitionWriter writes one partition of the ledger.
type partitionWriter struct {
	w        *Writer
	client   sarama.Client
	consumer sarama.Consumer
	p        int32
	meta     *sarama.ConsumerGroupMetadata
	log      *slog.Logger

	producer sarama.AsyncProducer
	heads    map[string]*eventstore.Head
	running  map[string]struct{} // heads with a lease to watch
	replyN   int32
}

// rebuildTimeout bounds one attempt to rebuild a partition's heads.
const rebuildTimeout = 20 * time.Second

// fenceKey is the changelog key of fence records: not an execution id (a
// NUL is never in a UUID), so rebuilding skips it.
const fenceKey = "\x00fence"

func (pw *partitionWriter) run(ctx context.Context) error {
	addrs, conf, err := clientConfig(pw.w.cfg.Brokers, fmt.Sprintf("%s.%d", pw.w.cfg.Group, pw.p))
	if err != nil {
		return err
	}
	conf.Producer.Transaction.ID = fmt.Sprintf("%s.%d", pw.w.cfg.Group, pw.p)
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	conf.Producer.Return.Successes = false
	conf.Producer.Transaction.Retry.Max = 10
	conf.Producer.Transaction.Retry.Backoff = 100 * time.Millisecond
	// A transaction here lasts milliseconds; one left open by a writer
	// that died is aborted by the broker after this, so it never holds the
	// partition's readers (read_committed) for long.
	conf.Producer.Transaction.Timeout = 15 * time.Second
	producer, err := sarama.NewAsyncProducer(addrs, conf) // InitProducerId: fences the previous owner
	if err != nil {
		return fmt.Errorf("transactional producer: %w", err)
	}
	pw.producer = producer
	defer producer.Close()
	go func() {
		for e := range producer.Errors() {
			pw.log.Warn("ledger append failed", "topic", e.Msg.Topic, "err", e.Err)
		}
	}()
	n, err := pw.client.Partitions(eventstore.ReplyTopic)
	if err != nil {
		return err
	}
	pw.replyN = int32(len(n))

	start := time.Now()
	// Bounded: a rebuild that cannot see its own fence (a dead writer's
	// transaction still open on the changelog) starts over with a fresh
	// producer, which fences again, rather than wait for ever.
	rctx, cancel := context.WithTimeout(ctx, rebuildTimeout)
	err = pw.rebuild(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	offset, err := pw.committedOffset()
	if err != nil {
		return fmt.Errorf("committed offset: %w", err)
	}
	pc, err := pw.consumer.ConsumePartition(eventstore.CommandTopic, pw.p, offset)
	if err != nil {
		return fmt.Errorf("consume commands: %w", err)
	}
	defer pc.Close()
	pw.log.Info("ledger partition writer up", "heads", len(pw.heads), "running", len(pw.running),
		"from_offset", offset, "rebuild", time.Since(start).Round(time.Millisecond))
	return pw.loop(ctx, pc)
}

// rebuild writes a fence record to the changelog and reads the changelog
// from the start up to it: every head any previous owner committed.
func (pw *partitionWriter) rebuild(ctx context.Context) error {
	fence := uuid.NewString()
	if err := pw.producer.BeginTxn(); err != nil {
		return err
	}
	pw.producer.Input() <- &sarama.ProducerMessage{Topic: eventstore.StateTopic, Partition: pw.p,
		Key: sarama.StringEncoder(fenceKey), Value: sarama.StringEncoder(`{"writer":"` + pw.w.id + `","fence":"` + fence + `"}`)}
	if err := pw.producer.CommitTxn(); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	pc, err := pw.consumer.ConsumePartition(eventstore.StateTopic, pw.p, sarama.OffsetOldest)
	if err != nil {
		return err
	}
	defer pc.Close()
	pw.heads, pw.running = map[string]*eventstore.Head{}, map[string]struct{}{}
	now := pw.w.cfg.now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pc.Errors():
			return err
		case m := <-pc.Messages():
			key := string(m.Key)
			if key == fenceKey {
				if json.Valid(m.Value) && containsFence(m.Value, fence) {
					return nil
				}
				continue
			}
			if m.Value == nil { // a tombstone
				delete(pw.heads, key)
				delete(pw.running, key)
				continue
			}
			var h eventstore.Head
			if err := json.Unmarshal(m.Value, &h); err != nil {
				return fmt.Errorf("changelog %d:%d: %w", m.Partition, m.Offset, err)
			}
			// A new owner's clock starts the lease over: the runner gets
			// a whole lease to renew with the new writer.
			if h.LeaseMs > 0 && h.LeaseUntil.Before(now.Add(time.Duration(h.LeaseMs)*time.Millisecond)) {
				h.LeaseUntil = now.Add(time.Duration(h.LeaseMs) * time.Millisecond)
			}
			pw.remember(&h)
		}
	}
}

func containsFence(v []byte, fence string) bool {
	var f struct {
		Fence string `json:"fence"`
	}
	return json.Unmarshal(v, &f) == nil && f.Fence == fence
}

func (pw *partitionWriter) remember(h *eventstore.Head) {
	id := h.State.ID
	pw.heads[id] = h
	if h.State.Status == domain.StatusRunning && h.State.Runner != "" {
		pw.running[id] = struct{}{}
	} else {
		delete(pw.running, id)
	}
}

// committedOffset is where the last committed transaction left the
// partition's commands (the oldest command if none ever did).
func (pw *partitionWriter) committedOffset() (int64, error) {
	om, err := sarama.NewOffsetManagerFromClient(pw.w.cfg.Group, pw.client)
	if err != nil {
		return 0, err
	}
	defer om.Close()
	pom, err := om.ManagePartition(eventstore.CommandTopic, pw.p)
	if err != nil {
		return 0, err
	}
	defer pom.AsyncClose()
	off, _ := pom.NextOffset()
	if off < 0 {
		return sarama.OffsetOldest, nil
	}
	return off, nil
}

func (pw *partitionWriter) loop(ctx context.Context, pc sarama.PartitionConsumer) error {
	tick := time.NewTicker(pw.w.cfg.ExpireEvery)
	defer tick.Stop()
	for {
		var batch []*sarama.ConsumerMessage
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pc.Errors():
			pw.log.Warn("reading commands", "err", err)
			continue
		case m := <-pc.Messages():
			batch = append(batch, m)
			batch = pw.gather(pc, batch)
		case <-tick.C:
		}
		if err := pw.transact(ctx, batch); err != nil {
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
func (pw *partitionWriter) gather(pc sarama.PartitionConsumer, batch []*sarama.ConsumerMessage) []*sarama.ConsumerMessage {
	for len(batch) < pw.w.cfg.MaxBatch {
		select {
		case m := <-pc.Messages():
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
	for len(batch) < pw.w.cfg.MaxBatch {
		select {
		case m := <-pc.Messages():
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
// returns the error: the caller starts the partition over from committed
// state, so nothing half-decided is ever kept in memory.
func (pw *partitionWriter) transact(ctx context.Context, batch []*sarama.ConsumerMessage) error {
	now := pw.w.cfg.now()
	overlay := map[string]*eventstore.Head{}
	get := func(id string) *eventstore.Head {
		if h, ok := overlay[id]; ok {
			return h
		}
		return pw.heads[id]
	}
	var msgs []*sarama.ProducerMessage
	var appended []eventstore.Envelope
	var logs []appendLog
	add := func(ctx context.Context, id string, out eventstore.Outcome, replyTo string) error {
		headers := traceHeaders(ctx)
		for _, rec := range out.Records {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.Topic, Partition: pw.p,
				Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(rec), Headers: headers})
		}
		appended = append(appended, out.Events...)
		if out.Head != nil {
			b, err := json.Marshal(out.Head)
			if err != nil {
				return err
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.StateTopic, Partition: pw.p,
				Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(b)})
			overlay[id] = out.Head
		}
		if replyTo != "" {
			b, err := json.Marshal(out.Reply)
			if err != nil {
				return err
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: eventstore.ReplyTopic, Partition: partitionOf(replyTo, pw.replyN),
				Key: sarama.StringEncoder(replyTo), Value: sarama.ByteEncoder(b), Headers: headers})
		}
		return nil
	}
	for _, m := range batch {
		var cmd eventstore.Command
		if err := json.Unmarshal(m.Value, &cmd); err != nil || cmd.ExecutionID == "" {
			pw.log.Error("skipping a command that cannot be read", "offset", m.Offset, "err", err)
			pw.w.metrics.commands.WithLabelValues("unreadable", "invalid").Inc()
			continue
		}
		cctx, span := eventstore.StartAppendSpan(traceFrom(ctx, m), cmd)
		out := pw.w.cfg.Decider.Handle(get(cmd.ExecutionID), cmd, now)
		span.End()
		result := out.Reply.Code
		if result == "" {
			result = "ok"
		}
		pw.w.metrics.commands.WithLabelValues(cmd.Kind, result).Inc()
		if err := add(cctx, cmd.ExecutionID, out, cmd.ReplyTo); err != nil {
			return err
		}
		logs = append(logs, appendLog{ctx: cctx, events: out.Events, who: commandLogAttrs(cmd)})
	}
	for id := range pw.running {
		h := get(id)
		if out, ok := pw.w.cfg.Decider.Expire(h, now); ok {
			pw.log.Info("lease expired: attempt abandoned", "execution_id", id, "runner", h.State.Runner, "attempt", h.State.Attempt)
			pw.w.metrics.expired.Inc()
			if err := add(ctx, id, out, ""); err != nil {
				return err
			}
			logs = append(logs, appendLog{ctx: ctx, events: out.Events, who: []any{"actor", "ledger"}})
		}
	}
	if len(msgs) == 0 && len(batch) == 0 {
		return nil
	}
	failpoint := func(string) {}
	if pw.w.cfg.Failpoint != nil && hasSubmit(batch) {
		failpoint = pw.w.cfg.Failpoint
	}
	failpoint("decided")
	begin := time.Now()
	if err := pw.producer.BeginTxn(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for _, msg := range msgs {
		pw.producer.Input() <- msg
	}
	failpoint("produced")
	if len(batch) > 0 {
		last := batch[len(batch)-1]
		offsets := map[string][]*sarama.PartitionOffsetMetadata{eventstore.CommandTopic: {{Partition: pw.p, Offset: last.Offset + 1}}}
		if err := pw.producer.AddOffsetsToTxnWithGroupMetadata(offsets, pw.meta); err != nil {
			return errors.Join(fmt.Errorf("add offsets: %w", err), pw.producer.AbortTxn())
		}
	}
	if err := pw.producer.CommitTxn(); err != nil {
		return errors.Join(fmt.Errorf("commit: %w", err), pw.abort())
	}
	failpoint("committed")
	pw.w.metrics.txnSeconds.Observe(time.Since(begin).Seconds())
	pw.w.metrics.events.Add(float64(len(appended)))
	pw.w.metrics.observeLatencies(appended, overlay)
	for _, l := range logs {
		for _, e := range l.events {
			pw.log.InfoContext(l.ctx, "ledger event appended", append([]any{"execution_id", e.ExecutionID, "type", e.Type,
				"sequence", e.Sequence, "event_id", e.EventID}, l.who...)...)
		}
	}
	for _, h := range overlay {
		pw.remember(h)
	}
	if pw.w.cfg.Appended != nil && len(appended) > 0 {
		pw.w.cfg.Appended(appended)
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

func (pw *partitionWriter) abort() error {
	if pw.producer.TxnStatus()&sarama.ProducerTxnFlagInTransaction == 0 {
		return nil
	}
	return pw.producer.AbortTxn()
}

type writerMetrics struct {
	commands   *prometheus.CounterVec
	events     prometheus.Counter
	expired    prometheus.Counter
	restarts   prometheus.Counter
	txnSeconds prometheus.Histogram
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
			Name: "partition_restarts_total", Help: "Times a partition writer started over after a failed transaction or a fence."}),
		txnSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "ledger",
			Name: "transaction_seconds", Help: "Time from BeginTxn to a committed transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
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
		reg.MustRegister(m.commands, m.events, m.expired, m.restarts, m.txnSeconds, m.queueWait, m.toVerdict)
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
