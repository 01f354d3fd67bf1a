// Package testenv starts the platform's embedded infrastructure for tests:
// the Kafka-protocol broker and the MongoDB-wire store, reached over TCP
// through the same adapters the platform uses, and authenticated as the
// platform is (SASL/SCRAM for the broker, a TLS client certificate for the
// store): the addresses it hands out carry those credentials. It also runs
// the ledger over them (its writer and a projector). Everything stops when
// the test ends.
package testenv

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
	"github.com/integr8scode/integr8scode/runner"
)

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Store starts the embedded store and opens database name on it.
func Store(t testing.TB, name string) *mongo.DB {
	t.Helper()
	return StoreAt(t, t.TempDir(), name)
}

// StoreAt is Store with its files in dir.
func StoreAt(t testing.TB, dir, name string) *mongo.DB {
	t.Helper()
	ctx := context.Background()
	m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: dir, Logger: Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	client, err := mongo.Connect(ctx, m.URI())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Disconnect(context.Background()) })
	db, err := m.Open(ctx, client, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Keys makes a fresh ledger key ring in a temporary directory.
func Keys(t testing.TB) keyring.Ring {
	t.Helper()
	r, err := keyring.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Ledger is the ledger over the embedded broker and store: its writer and
// a projector run until the test ends.
type Ledger struct {
	// Brokers carry the client credentials (kafka.BrokerURL): pass them to
	// the kafka package as they are, and log kafka.Redact(Brokers).
	Brokers []string
	Views   *mongo.Projections
	Keys    *eventstore.KeySet
	// DB is the store's database (the views, and accounts when a test
	// wants them).
	DB *mongo.DB
	// Content holds the executions' data keys (the store's content_keys,
	// under a key-encryption key of this test).
	Content *content.Keys
	// StoreDir holds the embedded store's files.
	StoreDir string
	// Hub hears from the projector each time it wrote a view, as the
	// API's waiters do in process.
	Hub *projections.Hub
}

// StartLedger starts the embedded broker and store, the ledger writer
// (leases of lease when a claim names none) and a projector, as `up` does.
func StartLedger(t testing.TB, name string, lease time.Duration) Ledger {
	t.Helper()
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: t.TempDir(), Logger: Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	ring := Keys(t)
	storeDir := t.TempDir()
	db := StoreAt(t, storeDir, name)
	views := mongo.NewProjections(db)
	l := Ledger{Brokers: k.Brokers(), Views: views, Keys: ring.Keys, DB: db, Content: ContentKeys(t, db), StoreDir: storeDir,
		Hub: projections.NewHub()}

	w, err := kafka.NewWriter(kafka.WriterConfig{Brokers: l.Brokers, Logger: Quiet(), ExpireEvery: 100 * time.Millisecond,
		Decider: &eventstore.Decider{Signer: ring.Signer, DefaultLease: lease}})
	if err != nil {
		t.Fatal(err)
	}
	parker, err := kafka.NewParker(l.Brokers, "projector", watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parker.Close() })
	proj := projections.NewProjector(views, ring.Keys, parker, l.Hub, Quiet(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = w.Run(ctx); done <- struct{}{} }()
	go func() {
		_ = kafka.Project(ctx, kafka.ProjectConfig{Brokers: l.Brokers, Topic: eventstore.Topic, Group: "integr8scode.projector",
			SaveEvery: 100 * time.Millisecond, Logger: Quiet()}, kafka.LedgerProjection{Projector: proj})
		done <- struct{}{}
	}()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return l
}

// Asker returns a client of the ledger writer named name.
func (l Ledger) Asker(t testing.TB, name string) *kafka.Asker {
	t.Helper()
	a, err := kafka.NewAsker(l.Brokers, name, Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Ask sends cmd and fails the test if the writer does not answer.
func Ask(t testing.TB, a *kafka.Asker, cmd eventstore.Command) eventstore.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := a.Ask(ctx, cmd)
	if err != nil {
		t.Fatalf("%s %s: %v", cmd.Kind, cmd.ExecutionID, err)
	}
	return r
}

// ContentKeys returns the content keys of db under a fresh key-encryption key.
func ContentKeys(t testing.TB, db *mongo.DB) *content.Keys {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	k, err := content.NewKeys(mongo.NewContentKeys(db), kek)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Submit queues script as a new execution, sealed under a key of keys,
// and returns its ExecutionQueued.
func Submit(t testing.TB, a *kafka.Asker, keys *content.Keys, script string) eventstore.Envelope {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	in, err := keys.SealInput(context.Background(), id, domain.Input{Script: script})
	if err != nil {
		t.Fatal(err)
	}
	r := Ask(t, a, eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: id,
		Actor: "anonymous", Submit: &domain.ExecutionQueued{Language: "python", Version: "3.11", Input: in,
			Limits: domain.DefaultLimits, Owner: "anonymous"}})
	envs, err := r.Envelopes()
	if err != nil || r.Err() != nil || len(envs) != 1 {
		t.Fatalf("submit: %v %v %+v", err, r.Err(), r)
	}
	return envs[0]
}

// History reads an execution's events from the log, as a read_committed
// auditor does.
func (l Ledger) History(t testing.TB, id string) []eventstore.Envelope {
	t.Helper()
	r, err := kafka.NewLogReader(l.Brokers)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []eventstore.Envelope
	err = r.ReadAll(context.Background(), eventstore.Topic, func(rec kafka.Record) error {
		if string(rec.Key) != id {
			return nil
		}
		env, err := eventstore.ParseRecord(rec.Value)
		if err != nil {
			return err
		}
		out = append(out, env)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitView waits until the view of id satisfies ok.
func (l Ledger) WaitView(t testing.TB, id string, ok func(domain.Execution) bool, within time.Duration) domain.Execution {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := l.Views.View(context.Background(), id)
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("view of %s: %+v (%v) after %s", id, v, err, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RunRunner runs r as the platform does, following the ledger's events and
// sweeping the views, until the test ends. The returned function stops it
// (the runner releases what it runs) and waits.
func (l Ledger) RunRunner(t testing.TB, r *runner.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() {
		_ = kafka.FollowLedger(ctx, l.Brokers, Quiet(), r.HandleEvent)
		done <- struct{}{}
	}()
	go func() { _ = r.Run(ctx); done <- struct{}{} }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done; <-done }) }
	t.Cleanup(stop)
	return stop
}

// Reveal opens e's sealed content with the ledger's content keys, as the
// API does for whoever may read it.
func (l Ledger) Reveal(t testing.TB, e domain.Execution) domain.Execution {
	t.Helper()
	if err := l.Content.Reveal(context.Background(), &e); err != nil {
		t.Fatalf("reveal %s: %v", e.ID, err)
	}
	return e
}
