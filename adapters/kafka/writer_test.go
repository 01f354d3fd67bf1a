package kafka

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

var (
	testSigner = eventstore.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	testKeys   = func() *eventstore.KeySet {
		ks, err := eventstore.NewKeySet(testSigner.Public())
		if err != nil {
			panic(err)
		}
		return ks
	}()
)

// startWriter runs a ledger writer against brokers until the test ends.
func startWriter(t testing.TB, brokers []string, lease time.Duration) *Writer {
	t.Helper()
	w, err := NewWriter(WriterConfig{Brokers: brokers, Logger: testLogger(),
		Decider: &eventstore.Decider{Signer: testSigner, DefaultLease: lease}, ExpireEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

func newAsker(t testing.TB, brokers []string, name string) *Asker {
	t.Helper()
	a, err := NewAsker(brokers, name, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func ask(t testing.TB, a *Asker, cmd eventstore.Command) eventstore.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	r, err := a.Ask(ctx, cmd)
	if err != nil {
		t.Fatalf("%s %s: %v", cmd.Kind, cmd.ExecutionID, err)
	}
	return r
}

func submitCmd(id string) eventstore.Command {
	return eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: id, Actor: "anonymous",
		Submit: &domain.ExecutionQueued{Language: "python", Version: "3.11", Input: domain.Sealed("print(1)"), Limits: domain.DefaultLimits, Owner: "anonymous"}}
}

// auditLog reads the whole ledger as a read_committed auditor does.
func auditLog(t testing.TB, brokers []string) (eventstore.AuditReport, map[string][]eventstore.Envelope) {
	t.Helper()
	r, err := NewLogReader(brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	audit := eventstore.NewAudit(testKeys)
	byID := map[string][]eventstore.Envelope{}
	err = r.ReadAll(context.Background(), eventstore.Topic, func(rec Record) error {
		audit.Add(rec.Partition, rec.Offset, rec.Value)
		env, err := eventstore.ParseRecord(rec.Value)
		if err == nil {
			byID[env.ExecutionID] = append(byID[env.ExecutionID], env)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return audit.Report(), byID
}

func TestWriterAppendsEachCommandsEventsOnce(t *testing.T) {
	e := startBroker(t, t.TempDir())
	startWriter(t, e.Brokers(), 15*time.Second)
	api := newAsker(t, e.Brokers(), "api")

	id := uuid.NewString()
	r := ask(t, api, submitCmd(id))
	if r.Err() != nil || len(r.Records) != 1 || r.Head.Sequence != 1 || r.Head.Status != domain.StatusQueued {
		t.Fatalf("submit: %+v", r)
	}
	t.Run("OK the same submit again appends nothing", func(t *testing.T) {
		r := ask(t, api, submitCmd(id))
		if r.Err() != nil || len(r.Records) != 0 || r.Head.Sequence != 1 {
			t.Fatalf("repeated submit: %+v", r)
		}
	})
	t.Run("ErrConflict a different request under the same id", func(t *testing.T) {
		cmd := submitCmd(id)
		cmd.Submit.Input = "print(2)"
		if r := ask(t, api, cmd); domain.ErrorCode(r.Err()) != domain.ECONFLICT {
			t.Fatalf("different submit: %+v", r)
		}
	})
	t.Run("ErrNotFound a command for no execution", func(t *testing.T) {
		r := ask(t, api, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: uuid.NewString(), Actor: "anonymous"})
		if domain.ErrorCode(r.Err()) != domain.ENOTFOUND {
			t.Fatalf("cancel of nothing: %+v", r)
		}
	})
	report, byID := auditLog(t, e.Brokers())
	if report.Events != 1 || len(report.Problems) != 0 || len(byID[id]) != 1 {
		t.Fatalf("log: %+v", report)
	}
}

// Runners racing for the same executions while users cancel them: each
// execution gets one gapless, signed chain, one start and one end, and no
// read_committed reader sees anything twice.
func TestWriterRacingWritersMakeOneChain(t *testing.T) {
	e := startBroker(t, t.TempDir())
	startWriter(t, e.Brokers(), 15*time.Second)
	api := newAsker(t, e.Brokers(), "api")
	runners := []*Asker{newAsker(t, e.Brokers(), "runner-a"), newAsker(t, e.Brokers(), "runner-b"), newAsker(t, e.Brokers(), "runner-c")}

	const executions = 20
	ids := make([]string, executions)
	for i := range ids {
		ids[i] = uuid.NewString()
		ask(t, api, submitCmd(ids[i]))
	}
	var started, ended atomic.Int32
	var wg sync.WaitGroup
	for _, id := range ids {
		for i, rn := range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprint("runner-", i)
				r := ask(t, rn, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: id, Actor: "runner",
					Runner: &eventstore.RunnerArgs{Runner: name, Sandbox: "runc", Mode: eventstore.ClaimStart}})
				if r.Err() != nil {
					return
				}
				started.Add(1)
				rep := ask(t, rn, eventstore.Command{Kind: eventstore.CommandReport, ExecutionID: id, Actor: "runner",
					Report: &eventstore.ReportArgs{Runner: name, Attempt: r.Head.Attempt, Genuine: true,
						Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Output: "sealed-1"}}})
				if rep.Err() == nil {
					ended.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := ask(t, api, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: id, Actor: "anonymous"}); r.Err() == nil {
				ended.Add(1)
			}
		}()
	}
	wg.Wait()
	if started.Load() > executions || ended.Load() != executions {
		t.Fatalf("%d claims won, %d ends accepted (want <= %d and %d)", started.Load(), ended.Load(), executions, executions)
	}
	report, byID := auditLog(t, e.Brokers())
	if len(report.Problems) != 0 {
		t.Fatalf("problems: %+v", report.Problems)
	}
	for _, id := range ids {
		evs := byID[id]
		if err := eventstore.VerifyChain(testKeys, evs); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		last := evs[len(evs)-1].Type
		if last != domain.TypeExecutionCompleted && last != domain.TypeExecutionFailed {
			t.Fatalf("%s does not end: %+v", id, evs)
		}
	}
}

func TestWriterAbandonsAnAttemptWhoseLeaseExpired(t *testing.T) {
	e := startBroker(t, t.TempDir())
	startWriter(t, e.Brokers(), 300*time.Millisecond)
	a := newAsker(t, e.Brokers(), "runner")
	id := uuid.NewString()
	ask(t, a, submitCmd(id))
	claim := func(runner, mode string) eventstore.Reply {
		return ask(t, a, eventstore.Command{Kind: eventstore.CommandClaim, ExecutionID: id, Actor: "runner",
			Runner: &eventstore.RunnerArgs{Runner: runner, Sandbox: "kubernetes", Mode: mode}})
	}
	if r := claim("x", eventstore.ClaimStart); r.Err() != nil {
		t.Fatal(r.Err())
	}
	deadline := time.Now().Add(waitFor)
	for {
		_, byID := auditLog(t, e.Brokers())
		if evs := byID[id]; len(evs) == 3 && evs[2].Type == domain.TypeExecutionAbandoned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ExecutionAbandoned: %+v", byID[id])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := claim("y", eventstore.ClaimResume); r.Err() != nil || r.Head.Runner != "y" || r.Head.Attempt != 1 {
		t.Fatalf("resume: %+v", r)
	}
	_, byID := auditLog(t, e.Brokers())
	var kinds []string
	for _, ev := range byID[id] {
		kinds = append(kinds, ev.Type)
	}
	if fmt.Sprint(kinds) != "[ExecutionQueued ExecutionStarted ExecutionAbandoned ExecutionResumed]" {
		t.Fatalf("history: %v", kinds)
	}
}

// Writers of the release before had a transactional id per partition
// (integr8scode.ledger.<p>). A writer now bumps every one of them before it
// writes, so an old writer still running in the middle of an upgrade can
// no longer commit: its open transaction is aborted and its next commit
// refused, and no read_committed reader sees what it produced.
func TestWriterFencesTheWritersOfTheReleaseBefore(t *testing.T) {
	e := startBroker(t, t.TempDir())
	cfg := WriterConfig{Group: "integr8scode.ledger"}
	addrs, conf, err := clientConfig(e.Brokers(), "old-writer")
	if err != nil {
		t.Fatal(err)
	}
	conf.Producer.Transaction.ID = cfg.transactionalID(3)
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	old, err := sarama.NewSyncProducer(addrs, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	// What an old writer of partition 3 would append: a record keyed by an
	// execution the new writer never heard of.
	zombie := uuid.NewString()
	if _, _, err := old.SendMessage(&sarama.ProducerMessage{Topic: eventstore.Topic, Partition: 3,
		Key: sarama.StringEncoder(zombie), Value: sarama.StringEncoder(`{"zombie":true}`)}); err != nil {
		t.Fatal(err)
	}

	startWriter(t, e.Brokers(), 15*time.Second)
	api := newAsker(t, e.Brokers(), "api")
	id := uuid.NewString()
	if r := ask(t, api, submitCmd(id)); r.Err() != nil { // the new writer is up: it has fenced
		t.Fatal(r.Err())
	}
	if err := old.CommitTxn(); err == nil {
		t.Fatal("the old writer committed after the new one started")
	}
	report, byID := auditLog(t, e.Brokers())
	if len(byID[zombie]) != 0 || report.Events != 1 || len(byID[id]) != 1 {
		t.Fatalf("a read_committed reader sees %d events (zombie's: %d, the submit's: %d); want only the submit",
			report.Events, len(byID[zombie]), len(byID[id]))
	}
}

// Every member of the writers' group runs a Writer; only the owner of
// command partition 0 writes, for every partition, and the others stand
// by. Commands come on their execution's partition (an asker's), and on
// partition 0, where a later release's askers are to send every command
// (docs/architecture.md): each is decided once, and its events go to the
// partition its execution's id picks either way.
func TestOneWriterOfManyDecidesEveryPartition(t *testing.T) {
	e := startBroker(t, t.TempDir())
	for range 3 {
		startWriter(t, e.Brokers(), 15*time.Second)
	}
	api := newAsker(t, e.Brokers(), "api")
	parts := map[int32]bool{}
	var ids []string
	for int32(len(parts)) < DefaultPartitions || len(ids) < 2*int(DefaultPartitions) {
		id := uuid.NewString()
		parts[partitionOf(id, DefaultPartitions)] = true
		ids = append(ids, id)
	}
	// Every other one as a later release's asker is to send it: to
	// partition 0, its reply to nobody.
	later := newManualProducer(t, e.Brokers(), "later-asker")
	var wg sync.WaitGroup
	sent := map[int32]int64{} // commands per partition
	for i, id := range ids {
		if i%2 == 1 {
			sent[0]++
			cmd := submitCmd(id)
			cmd.ID = uuid.NewString()
			b, err := json.Marshal(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := later.SendMessage(&sarama.ProducerMessage{Topic: eventstore.CommandTopic, Partition: 0,
				Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(b)}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		sent[partitionOf(id, DefaultPartitions)]++
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := ask(t, api, submitCmd(id)); r.Err() != nil {
				t.Error(r.Err())
			}
		}()
	}
	wg.Wait()
	var report eventstore.AuditReport
	var byID map[string][]eventstore.Envelope
	deadline := time.Now().Add(waitFor)
	for report.Events < len(ids) && time.Now().Before(deadline) { // the later release's commands have no reply to wait for
		time.Sleep(50 * time.Millisecond)
		report, byID = auditLog(t, e.Brokers())
	}
	if len(report.Problems) != 0 || report.Events != len(ids) {
		t.Fatalf("%d events for %d submits, problems %+v", report.Events, len(ids), report.Problems)
	}
	for _, id := range ids {
		if len(byID[id]) != 1 || byID[id][0].Type != domain.TypeExecutionQueued {
			t.Fatalf("%s: %+v", id, byID[id])
		}
	}
	// Where each went.
	r, err := NewLogReader(e.Brokers())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.ReadAll(context.Background(), eventstore.Topic, func(rec Record) error {
		if want := partitionOf(string(rec.Key), DefaultPartitions); rec.Partition != want {
			t.Errorf("the event of %s in partition %d, want %d", rec.Key, rec.Partition, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range endOffsets(t, e.Brokers(), eventstore.CommandTopic) {
		if end != sent[p] {
			t.Errorf("commands partition %d ends at %d, want %d: an asker's go to their execution's partition", p, end, sent[p])
		}
	}
}

// A writer whose transactional id is taken over mid-flight (fenced: its
// next commit fails) aborts, starts over from committed state — fence,
// rebuild of every head, commands from the committed offsets — and decides
// every command once: those before the fence keep their heads (a cancel
// of one still finds it queued), those after it are decided by the new
// life.
func TestAFencedWriterStartsOverFromCommittedStateAndLosesNothing(t *testing.T) {
	e := startBroker(t, t.TempDir())
	reg := prometheus.NewRegistry()
	w, err := NewWriter(WriterConfig{Brokers: e.Brokers(), Logger: testLogger(), Registerer: reg,
		Decider: &eventstore.Decider{Signer: testSigner, DefaultLease: 15 * time.Second}, ExpireEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	api := newAsker(t, e.Brokers(), "api")

	before := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for _, id := range before {
		if r := ask(t, api, submitCmd(id)); r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
	// Someone else starts a producer with the writer's transactional id:
	// Kafka bumps its epoch, and the running writer is a zombie.
	if err := (&ledgerWriter{w: w}).fenceID(w.cfg.transactionalID(writerPartition)); err != nil {
		t.Fatal(err)
	}
	after := []string{uuid.NewString(), uuid.NewString()}
	for _, id := range after {
		if r := ask(t, api, submitCmd(id)); r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
	if r := ask(t, api, eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: before[0], Actor: "anonymous"}); r.Err() != nil {
		t.Fatalf("cancel of an execution submitted before the fence: %v", r.Err())
	}
	if n := testutil.ToFloat64(w.metrics.restarts); n < 1 {
		t.Fatalf("the writer never started over (restarts %v)", n)
	}
	report, byID := auditLog(t, e.Brokers())
	if len(report.Problems) != 0 {
		t.Fatalf("problems: %+v", report.Problems)
	}
	for _, id := range append(before, after...) {
		evs := byID[id]
		if len(evs) == 0 || evs[0].Type != domain.TypeExecutionQueued || evs[0].Sequence != 1 {
			t.Fatalf("%s: %+v", id, evs)
		}
		want := 1
		if id == before[0] {
			want = 2
		}
		if len(evs) != want {
			t.Fatalf("%s has %d events, want %d: %+v", id, len(evs), want, evs)
		}
	}
	if got := byID[before[0]][1]; got.Type != domain.TypeExecutionFailed || got.Sequence != 2 {
		t.Fatalf("the cancel appended %s at %d", got.Type, got.Sequence)
	}
}

// A writer writes each head to its execution's partition, and a later
// release is to write every head to headPartition; during an upgrade
// either may take over from the other. A writer reads every partition's
// heads and keeps, of an execution's two, the one after more events: an
// execution known from one place goes on (its next event links to its
// last), and a stale head in either place never brings an ended
// execution back. (A writer that let the last partition read win, as
// those before 2026-12-03 did, fails this.)
func TestAWriterTakesTheNewestHeadFromEitherPartition(t *testing.T) {
	e := startBroker(t, t.TempDir())
	prod := newManualProducer(t, e.Brokers(), "another-release")
	send := func(topic string, p int32, key string, value []byte) {
		t.Helper()
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: p,
			Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}); err != nil {
			t.Fatal(err)
		}
	}
	head := func(h *eventstore.Head) []byte {
		b, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// An id whose partition is not headPartition, as most are.
	newID := func() string {
		for {
			if id := uuid.NewString(); partitionOf(id, DefaultPartitions) != headPartition {
				return id
			}
		}
	}
	dec := &eventstore.Decider{Signer: testSigner, DefaultLease: 15 * time.Second}
	now := time.Now()
	cancel := func(id string) eventstore.Command {
		return eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: id, Actor: "anonymous"}
	}
	// history appends an execution's submit (and a cancel) as another
	// writer did, to its partition, and returns the heads after each.
	history := func(id string, cancelled bool) []*eventstore.Head {
		outs := []eventstore.Outcome{dec.Handle(nil, submitCmd(id), now)}
		if cancelled {
			outs = append(outs, dec.Handle(outs[0].Head, cancel(id), now))
		}
		var heads []*eventstore.Head
		for _, out := range outs {
			if out.Reply.Err() != nil {
				t.Fatal(out.Reply.Err())
			}
			for _, rec := range out.Records {
				send(eventstore.Topic, partitionOf(id, DefaultPartitions), id, rec)
			}
			heads = append(heads, out.Head)
		}
		return heads
	}
	// queued: known only from its own partition.
	queued := newID()
	send(eventstore.StateTopic, partitionOf(queued, DefaultPartitions), queued, head(history(queued, false)[0]))
	// movedOn: its old head (queued) in its partition, the newer one
	// (cancelled) in headPartition.
	movedOn := newID()
	hs := history(movedOn, true)
	send(eventstore.StateTopic, partitionOf(movedOn, DefaultPartitions), movedOn, head(hs[0]))
	send(eventstore.StateTopic, headPartition, movedOn, head(hs[1]))
	// wentBack: the newer head in its partition, written by a writer that
	// took over after one had written the older one to headPartition.
	wentBack := newID()
	hs = history(wentBack, true)
	send(eventstore.StateTopic, headPartition, wentBack, head(hs[0]))
	send(eventstore.StateTopic, partitionOf(wentBack, DefaultPartitions), wentBack, head(hs[1]))

	startWriter(t, e.Brokers(), 15*time.Second)
	api := newAsker(t, e.Brokers(), "api")
	if r := ask(t, api, cancel(queued)); r.Err() != nil || len(r.Records) != 1 || r.Head.Sequence != 2 {
		t.Fatalf("cancel of an execution known from its own partition: %+v", r)
	}
	for _, id := range []string{movedOn, wentBack} {
		if r := ask(t, api, cancel(id)); r.Err() == nil || len(r.Records) != 0 || r.Head == nil ||
			r.Head.Sequence != 2 || r.Head.Status != domain.StatusFailed {
			t.Fatalf("cancel of %s, cancelled already: %+v; want refused at sequence 2", id, r)
		}
	}
	report, byID := auditLog(t, e.Brokers())
	if len(report.Problems) != 0 || len(byID[queued]) != 2 || len(byID[movedOn]) != 2 || len(byID[wentBack]) != 2 {
		t.Fatalf("log: %d, %d, %d events, problems %+v", len(byID[queued]), len(byID[movedOn]), len(byID[wentBack]), report.Problems)
	}
}

// Of an execution's heads in two partitions the one after more events
// wins; at the same sequence, headPartition's.
func TestNewestHeadsKeepsTheHeadAfterMoreEvents(t *testing.T) {
	h := func(seq, leaseMs int64) *eventstore.Head {
		return &eventstore.Head{State: domain.Execution{ID: "x", Sequence: seq}, LeaseMs: leaseMs}
	}
	newer, older := h(3, 0), h(2, 0)
	same, sameAway := h(3, 1), h(3, 2)
	for _, c := range []struct {
		name       string
		head, away *eventstore.Head // in headPartition, in the execution's own
		want       *eventstore.Head
	}{
		{"newer in headPartition", newer, older, newer},
		{"newer in its own partition", older, newer, newer},
		{"the same sequence", same, sameAway, same},
		{"in its own partition only", nil, older, older},
	} {
		t.Run(c.name, func(t *testing.T) {
			read := make([]map[string]*eventstore.Head, DefaultPartitions)
			for p := range read {
				read[p] = map[string]*eventstore.Head{}
			}
			if c.head != nil {
				read[headPartition]["x"] = c.head
			}
			read[headPartition+3]["x"] = c.away
			if got := newestHeads(read)["x"]; got != c.want {
				t.Fatalf("kept %+v, want %+v", got, c.want)
			}
		})
	}
}
