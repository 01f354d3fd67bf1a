package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/term"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/eventstore"
)

// toolConfig is how an audit or rebuild tool reaches the ledger and the
// views: external Kafka (and MongoDB) like the roles, or, without
// --kafka-brokers, the embedded stores of a stopped platform's data
// directory, which the tool opens itself.
type toolConfig struct {
	config
	keys string
	json bool
	// attached is the embedded store of a running platform's data
	// directory, reached over the wire (runningStores).
	attached *mongo.Embedded
}

// register adds the flags that say where the ledger (and the views) are.
func (c *toolConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.DataDir, "data-dir", "./data", "data directory of a stopped `integr8scode up` (used when --kafka-brokers is not given)")
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "", "comma-separated Kafka bootstrap brokers (empty: the embedded stores of --data-dir)")
	fs.StringVar(&c.KafkaSASLUser, "kafka-sasl-user", "", "SASL/SCRAM user of the Kafka brokers (empty: no authentication)")
	fs.StringVar(&c.KafkaSASLPassFile, "kafka-sasl-password-file", "", "file holding the SASL password (required with --kafka-sasl-user)")
	fs.StringVar(&c.KafkaSASLMech, "kafka-sasl-mechanism", kafka.MechanismSCRAMSHA512, "SASL mechanism: SCRAM-SHA-512 or SCRAM-SHA-256")
	fs.StringVar(&c.MongoURI, "mongodb-uri", "", "MongoDB connection URI (with --kafka-brokers)")
	fs.StringVar(&c.MongoDatabase, "mongodb-database", "integr8scode", "MongoDB database name")
}

// registerKeys adds --keys, for the tools that verify signatures.
func (c *toolConfig) registerKeys(fs *flag.FlagSet, help string) {
	fs.StringVar(&c.keys, "keys", "", help)
}

// registerJSON adds --json, for the tools whose report a machine may read.
func (c *toolConfig) registerJSON(fs *flag.FlagSet) {
	fs.BoolVar(&c.json, "json", false, "print the report as JSON")
}

// toolEnv is what a tool connected to.
type toolEnv struct {
	brokers []string
	db      *mongo.DB
	keysSrc string
	keys    *eventstore.KeySet // opened by openWithKeys
	closers []func() error
}

// openWithKeys is connect, plus the public keys that verify the ledger.
func (c *toolConfig) openWithKeys(ctx context.Context, withViews bool) (*toolEnv, error) {
	env, err := c.connect(ctx, withViews)
	if err != nil {
		return nil, err
	}
	if env.keys, err = keyring.Open(ctx, env.keysSrc); err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func (e *toolEnv) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		_ = e.closers[i]()
	}
}

// connect opens the ledger (and the views, if withViews).
func (c *toolConfig) connect(ctx context.Context, withViews bool) (*toolEnv, error) {
	env := &toolEnv{keysSrc: c.keys}
	fail := func(err error) (*toolEnv, error) { env.close(); return nil, err }
	if c.KafkaBrokers != "" {
		if err := c.loadSecrets(); err != nil {
			return nil, err
		}
		env.brokers = c.brokers()
		if withViews {
			if c.MongoURI == "" {
				return nil, errors.New("--mongodb-uri is required with --kafka-brokers")
			}
			if err := c.openViews(ctx, env, c.MongoURI, nil); err != nil {
				return fail(err)
			}
		}
		return env, nil
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return nil, err
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (while the platform runs, point the tool at it with --kafka-brokers)", err)
	}
	env.closers = append(env.closers, func() error { unlock(); return nil })
	if env.keysSrc == "" {
		env.keysSrc = filepath.Join(dir, "ledger-keys")
	}
	// The stores say nothing unless something fails: the tool's output is
	// its report.
	storeLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: filepath.Join(dir, "kafka"), Logger: storeLog})
	if err != nil {
		return fail(err)
	}
	env.closers = append(env.closers, k.Close)
	env.brokers = k.Brokers()
	if withViews {
		m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: filepath.Join(dir, "mongo"), Logger: storeLog})
		if err != nil {
			return fail(err)
		}
		env.closers = append(env.closers, m.Close)
		if err := c.openViews(ctx, env, m.URI(), m); err != nil {
			return fail(err)
		}
	}
	return env, nil
}

func (c *toolConfig) openViews(ctx context.Context, env *toolEnv, uri string, emb *mongo.Embedded) error {
	client, err := mongo.Connect(ctx, uri)
	if err != nil {
		return err
	}
	env.closers = append(env.closers, func() error { return client.Disconnect(context.Background()) })
	if env.db, err = openDB(ctx, client, emb, c.MongoDatabase); err != nil {
		return err
	}
	env.closers = append(env.closers, env.db.Close)
	return nil
}

func openDB(ctx context.Context, client *mongodrv.Client, emb *mongo.Embedded, name string) (*mongo.DB, error) {
	if emb != nil {
		return emb.Open(ctx, client, name)
	}
	return mongo.Open(ctx, client, name)
}

// progress draws a one-line progress bar on a terminal, and nothing
// elsewhere (a pipe, a file, CI logs).
type progress struct {
	w     io.Writer
	on    bool
	total int64
	done  int64
	label string
}

func newProgress(w io.Writer, label string, total int64) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, on: ok && term.IsTerminal(int(f.Fd())), total: total, label: label}
}

func (p *progress) add(n int64) {
	p.done += n
	if !p.on || (p.done%200 != 0 && p.done != p.total) {
		return
	}
	const width = 30
	fill := 0
	if p.total > 0 {
		fill = int(min(p.done, p.total) * width / p.total)
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d", p.label, strings.Repeat("#", fill), strings.Repeat(".", width-fill), p.done, p.total)
}

func (p *progress) finish() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// readLedger hands every committed record of the ledger to fn, partition
// by partition up to the end as of the call (an execution's events all
// share one partition), with a progress bar labelled label; after each
// partition it calls done with the partition and its end.
func readLedger(ctx context.Context, brokers []string, stderr io.Writer, label string,
	fn func(kafka.Record) error, done func(p int32, end int64) error) error {
	r, err := kafka.NewLogReader(brokers)
	if err != nil {
		return err
	}
	defer r.Close()
	ends, err := r.Ends(eventstore.Topic)
	if err != nil {
		return err
	}
	ps := make([]int32, 0, len(ends))
	var total int64
	for p, end := range ends {
		ps = append(ps, p)
		total += end
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	bar := newProgress(stderr, label, total)
	for _, p := range ps {
		last := int64(0)
		err := r.Read(ctx, eventstore.Topic, p, 0, ends[p], func(rec kafka.Record) error {
			bar.add(rec.Offset + 1 - last)
			last = rec.Offset + 1
			return fn(rec)
		})
		if err != nil {
			return err
		}
		bar.add(ends[p] - last)
		if done != nil {
			if err := done(p, ends[p]); err != nil {
				return err
			}
		}
	}
	bar.finish()
	return nil
}
