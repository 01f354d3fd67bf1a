package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/integr8scode/integr8scode/eventstore"
)

// LedgerTopic is the ledger's topic.
const LedgerTopic = eventstore.Topic

// DefaultPartitions is the ledger topic's partition count when a new data
// directory is created and no count is asked for. It bounds how many members
// of one consumer group can work in parallel, and it can never change later.
const DefaultPartitions int32 = 6

// offsetsRetentionMinutes keeps committed consumer offsets for 100 years.
// Kafka's default (7 days) drops the offsets of a group that was stopped for
// a week, which then re-reads the whole ledger from the oldest offset.
// 100 years is as far as it goes: kfake turns the value into a
// time.Duration, which overflows (and expires everything at once) past ~292
// years.
const offsetsRetentionMinutes = 100 * 365 * 24 * 60

// EmbeddedUser is the one SASL user of the embedded broker. Its password
// is generated into PasswordFileName in the data directory on first start.
const EmbeddedUser = "integr8scode"

// PasswordFileName is the file in the broker's data directory that holds
// EmbeddedUser's password (0600, in a 0700 directory).
const PasswordFileName = "sasl-password"

// kfakeSASLFile is where kfake persists its SASL users. It is removed
// before each start so that the password file stays the only truth: kfake
// prefers the users it persisted over the ones it is given, and a
// directory from before authentication has an empty list there, which
// would lock every client out.
const kfakeSASLFile = "sasl.json"

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Dir holds the log, topics, committed offsets and the client password
	// (required; created if missing, made 0700). Starting again on the
	// same Dir reopens all of them.
	Dir string
	// Port to listen on, on 127.0.0.1 only. 0 picks a free port; Addrs
	// reports the one chosen.
	Port int
	// Partitions of the ledger topic. 0 means: whatever Dir already has, or
	// DefaultPartitions for a new Dir. Asking for a count that differs from
	// the one on disk is an error, never a change.
	Partitions int32
	// Logger receives the broker's log. Nil discards it.
	Logger *slog.Logger
}

func (c *EmbeddedConfig) validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("embedded kafka: Dir is required"))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("embedded kafka: Port %d out of range", c.Port))
	}
	if c.Partitions < 0 {
		errs = append(errs, fmt.Errorf("embedded kafka: Partitions %d is negative", c.Partitions))
	}
	return errors.Join(errs...)
}

// Embedded is a single-node Kafka-protocol broker (kfake) running in this
// process, holding the ledger on local disk.
//
// It listens on 127.0.0.1 and serves only clients that authenticate with
// SASL/SCRAM-SHA-512 as EmbeddedUser: any process on the host can reach
// the port, but only one that can read the password file (the data
// directory is 0700) can read or write the ledger.
//
// Every produced batch and every committed offset is written and fsynced
// before the broker answers, so whatever a client was told is stored
// survives kill -9 of the process and, nearly always, a crash of the
// machine: kfake does not fsync directories, so a segment file created
// just before a power loss can vanish with its directory entry. A
// transaction that a kill left open gets its abort marker at the next
// start, before any client is let in (kfake writes none: txnrepair.go).
type Embedded struct {
	cluster *kfake.Cluster
	addrs   []string
	auth    SASL
	pwFile  string
	log     *brokerLog
	lock    *dirLock
	dir     string
	// repaired: the transactions a killed previous life left open have
	// abort markers (or there were none), so a Close may mark the
	// directory clean.
	repaired bool

	closeOnce sync.Once
	closeErr  error
}

// StartEmbedded starts the broker on cfg.Dir and makes sure the ledger topic
// exists with retention.ms=-1.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := privateDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	pwFile := filepath.Join(cfg.Dir, PasswordFileName)
	password, err := loadOrCreatePassword(pwFile)
	if err == nil {
		err = os.Remove(filepath.Join(cfg.Dir, kfakeSASLFile))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err != nil {
		lock.unlock()
		return nil, fmt.Errorf("embedded kafka credentials: %w", err)
	}
	auth := SASL{Mechanism: MechanismSCRAMSHA512, User: EmbeddedUser, Password: password}
	// Was the last life killed with a transaction open? See txnrepair.go.
	repair, err := lastLifeKilled(cfg.Dir)
	if err != nil {
		lock.unlock()
		return nil, fmt.Errorf("embedded kafka on %s: %w", cfg.Dir, err)
	}
	blog := &brokerLog{log: logger.With("component", "kafka-broker")}
	var gate *gateListener
	cluster, err := kfake.NewCluster(
		// One port means one broker (kfake's default is three). kfake
		// listens on 127.0.0.1 only; port 0 lets the kernel choose.
		kfake.Ports(cfg.Port),
		// Clients get in only once the log is repaired (gateListener).
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			gate = newGateListener(ln)
			return gate, nil
		}),
		kfake.DataDir(cfg.Dir),
		// kfake writes every batch and offset commit to its files before
		// it answers, so a killed process loses nothing either way (the
		// page cache survives it). SyncWrites adds an fsync to each, so a
		// power loss, kernel panic or VM stop does not lose what producers
		// saw acknowledged either; without it kfake fsyncs only on segment
		// roll and on Close.
		kfake.SyncWrites(),
		kfake.ClusterID("integr8scode"),
		// Every connection must authenticate before any other request.
		// The superuser is the only user; ACLs would add nothing.
		kfake.EnableSASL(),
		kfake.Superuser(auth.Mechanism, auth.User, auth.Password),
		kfake.WithLogger(blog),
		kfake.BrokerConfigs(map[string]string{
			// The topic carries retention.ms=-1 itself; this also covers
			// any topic created without it. kfake applies the 7-day
			// default to every topic once any topic sets a retention.
			"log.retention.ms":          "-1",
			"offsets.retention.minutes": strconv.Itoa(offsetsRetentionMinutes),
			"message.max.bytes":         strconv.Itoa(MaxMessageBytes),
		}),
		// Auto topic creation stays off (kfake's default): a misspelt
		// topic must fail loudly, not become a 10-partition topic that
		// silently receives events nobody reads.
	)
	if err != nil {
		if gate != nil {
			gate.Close()
		}
		lock.unlock()
		return nil, fmt.Errorf("embedded kafka on %s: %w", cfg.Dir, err)
	}
	e := &Embedded{cluster: cluster, log: blog, lock: lock, auth: auth, pwFile: pwFile, dir: cfg.Dir}
	partitions, err := e.ensureLedgerTopic(cfg.Partitions)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded kafka on %s: %w", cfg.Dir, err), e.Close())
	}
	if repair {
		producers, parts, err := abortDanglingTxns(context.Background(), gate.Addr().String(), gate.dial, auth)
		if err != nil {
			// Serving the log unrepaired would hide committed records from
			// read_committed readers. Close leaves no clean-shutdown mark,
			// so the next start tries again.
			return nil, errors.Join(fmt.Errorf("embedded kafka on %s: closing the transactions of the killed life: %w",
				cfg.Dir, err), e.Close())
		}
		logger.Info("embedded kafka: the last life was killed; wrote abort markers for the transactions it may have left open",
			"producers", producers, "partitions", parts)
	}
	e.repaired = true
	gate.open()
	// Read once: kfake answers ListenAddrs through its event loop, which
	// no longer runs after Close.
	e.addrs = cluster.ListenAddrs()
	logger.Info("embedded kafka started", "addrs", e.addrs, "sasl_user", auth.User,
		"password_file", pwFile, "dir", cfg.Dir, "topic", LedgerTopic, "partitions", partitions)
	return e, nil
}

// ensureLedgerTopic creates the ledger's topics in a new directory (and
// any that a directory of an older version lacks) and checks the partition
// count of existing ones. kfake seeds topics only into an empty directory
// and keeps the stored count on reopen, whatever is asked.
func (e *Embedded) ensureLedgerTopic(want int32) (int32, error) {
	if parts := e.cluster.PartitionInfos(LedgerTopic); parts != nil {
		have := int32(len(parts))
		if want != 0 && want != have {
			return 0, fmt.Errorf("%w: topic %s has %d partitions on disk, %d were asked for; "+
				"the count never changes because keys would move to other partitions",
				ErrTopicMismatch, LedgerTopic, have, want)
		}
		want = have
	}
	if want == 0 {
		want = DefaultPartitions
	}
	for _, spec := range TopicSpecs() {
		parts := e.cluster.PartitionInfos(spec.Name)
		if parts == nil {
			if err := e.cluster.CreateTopic(spec.Name, want, spec.Config); err != nil {
				return 0, fmt.Errorf("create topic %s: %w", spec.Name, err)
			}
			continue
		}
		if spec.SamePartitions && int32(len(parts)) != want {
			return 0, fmt.Errorf("%w: topic %s has %d partitions, the ledger %d",
				ErrTopicMismatch, spec.Name, len(parts), want)
		}
	}
	return want, nil
}

// Brokers returns the broker addresses with the client credentials
// (kafka://user:password@127.0.0.1:port, see BrokerURL), ready for
// NewPublisher, NewSubscriber and EnsureTopic. They hold the password:
// log Addrs or Redact(Brokers()) instead.
func (e *Embedded) Brokers() []string {
	out := make([]string, len(e.addrs))
	for i, a := range e.addrs {
		out[i] = BrokerURL(a, e.auth)
	}
	return out
}

// Addrs returns the plain broker addresses ("127.0.0.1:port").
func (e *Embedded) Addrs() []string { return append([]string(nil), e.addrs...) }

// SASL returns the credentials clients authenticate with.
func (e *Embedded) SASL() SASL { return e.auth }

// PasswordFile is the file holding the password of SASL().User, for
// clients in other processes.
func (e *Embedded) PasswordFile() string { return e.pwFile }

// Close stops the broker and releases the data directory. Records and
// committed offsets are already on disk; Close also saves what kfake keeps
// only in memory (idempotent producers' sequence windows, partition
// snapshots for a fast start), which a kill -9 loses. It returns the
// persistence errors the broker reported. Calling it again is a no-op.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.cluster.Close()
		var errs []error
		if err := e.log.takeErrors(); err != nil {
			errs = append(errs, fmt.Errorf("embedded kafka reported: %w", err))
		} else if e.repaired {
			// kfake has saved everything, and every transaction it still
			// had open is in its session state, which it restores.
			if err := markCleanShutdown(e.dir); err != nil {
				errs = append(errs, fmt.Errorf("embedded kafka: mark clean shutdown: %w", err))
			}
		}
		if err := e.lock.unlock(); err != nil {
			errs = append(errs, fmt.Errorf("embedded kafka unlock: %w", err))
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}
