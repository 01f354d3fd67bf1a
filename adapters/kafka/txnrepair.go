package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Why the embedded broker repairs transactions after a kill
//
// A transaction that is open when the broker process dies has its batches
// on disk and no end marker. Restarting, kfake replays the log, counts such
// a transaction as aborted (persist.go, loadPartitionFullReplay: "Implicitly
// abort in-flight transactions") and serves it as an aborted range in fetch
// responses, but it writes no ABORT control record. Clients rely on that
// record: sarama, the Java client and franz-go all drop every transactional
// batch of an aborted producer id, from the range's first offset on, until
// they read that producer's ABORT marker. kfake gives a transactional id
// the same producer id in every life (the id is a hash of the
// transactional id; a re-init only bumps the epoch), so once the ledger
// writer of that partition fences the dead life and commits again, a
// read_committed reader silently skips all of its commits: the writer never
// reads its own fence ("rebuild: context deadline exceeded" for ever), and
// projections skip ledger events. A second kill is worse: replaying again,
// kfake takes the next COMMIT marker of that producer id as the end of the
// dead transaction and shows its records as committed.
//
// The cure is the marker kfake forgot: after an unclean stop, before anyone
// else may connect, an ABORT marker for every settled transactional
// producer on every partition. A marker closes a dangling range for every
// client, and kfake's own replay pairs it with the dead batches from then
// on. Where nothing dangles it is inert: a reader drops a control record,
// an ABORT with nothing open changes no reader's state, and kfake's replay
// ignores it. Changing the ledger writer's transactional ids per life
// instead would cost the fencing of zombie writers that the stable id
// gives, and would leave the dead records to resurface after a second kill.

// cleanShutdownFile marks a data directory whose last life ended in
// Embedded.Close with nothing left to repair. It is removed at each start,
// before the broker serves anyone, so a life that is killed leaves none.
// (kfake's own session_state.json cannot tell: kfake writes it only when
// it has group or transaction state to keep.) A directory of a version
// from before this file repairs once, which costs a few markers.
const cleanShutdownFile = "integr8scode.clean-shutdown"

// kfakeMetaFile exists in every directory kfake has started on.
const kfakeMetaFile = "meta.json"

// txnRepairTimeout bounds the repair; it is a handful of requests on an
// in-process connection.
const txnRepairTimeout = 30 * time.Second

// lastLifeKilled reports whether dir holds a log whose last life did not
// end cleanly, and removes the clean-shutdown mark so that a kill of this
// life shows at the next start.
func lastLifeKilled(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, kfakeMetaFile)); errors.Is(err, os.ErrNotExist) {
		return false, nil // a new directory
	} else if err != nil {
		return false, err
	}
	err := os.Remove(filepath.Join(dir, cleanShutdownFile))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syncDir(dir)
}

// markCleanShutdown records that this life ended cleanly.
func markCleanShutdown(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, cleanShutdownFile), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a file's creation or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// abortDanglingTxns writes an ABORT marker for every transactional producer
// that has no transaction open, on every partition, through dial (an
// in-process connection: the broker serves no one else yet). It returns
// how many producers and partitions it marked.
func abortDanglingTxns(ctx context.Context, addr string, dial func(context.Context, string, string) (net.Conn, error),
	auth SASL) (producers, partitions int, err error) {
	ctx, cancel := context.WithTimeout(ctx, txnRepairTimeout)
	defer cancel()
	scr := scram.Auth{User: auth.User, Pass: auth.Password}
	mech := scr.AsSha512Mechanism()
	if auth.mechanism() == MechanismSCRAMSHA256 {
		mech = scr.AsSha256Mechanism()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(dial), kgo.SASL(mech),
		kgo.ClientID("integr8scode-txn-repair"), kgo.RequestRetries(3))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()

	// Settled producers only: one with a transaction open (restored from a
	// clean shutdown's session state) gets its marker from the broker's
	// own timeout, and a marker now would cut its transaction short.
	lreq := kmsg.NewPtrListTransactionsRequest()
	lreq.StateFilters = []string{"Empty", "CompleteCommit", "CompleteAbort"}
	lresp, err := lreq.RequestWith(ctx, cl)
	if err != nil {
		return 0, 0, fmt.Errorf("list transactions: %w", err)
	}
	if err := kerr.ErrorForCode(lresp.ErrorCode); err != nil {
		return 0, 0, fmt.Errorf("list transactions: %w", err)
	}
	if len(lresp.TransactionStates) == 0 {
		return 0, 0, nil
	}
	dreq := kmsg.NewPtrDescribeTransactionsRequest()
	for _, s := range lresp.TransactionStates {
		dreq.TransactionalIDs = append(dreq.TransactionalIDs, s.TransactionalID)
	}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return 0, 0, fmt.Errorf("describe transactions: %w", err)
	}

	mreq := kmsg.NewPtrMetadataRequest() // no topics: all of them
	mresp, err := mreq.RequestWith(ctx, cl)
	if err != nil {
		return 0, 0, fmt.Errorf("metadata: %w", err)
	}
	var topics []kmsg.WriteTxnMarkersRequestMarkerTopic
	for _, t := range mresp.Topics {
		if t.Topic == nil || t.IsInternal || t.ErrorCode != 0 {
			continue
		}
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic = *t.Topic
		for _, p := range t.Partitions {
			mt.Partitions = append(mt.Partitions, p.Partition)
		}
		partitions += len(mt.Partitions)
		topics = append(topics, mt)
	}

	wreq := kmsg.NewPtrWriteTxnMarkersRequest()
	for _, s := range dresp.TransactionStates {
		if err := kerr.ErrorForCode(s.ErrorCode); err != nil {
			return 0, 0, fmt.Errorf("describe transaction %s: %w", s.TransactionalID, err)
		}
		if s.State == "Ongoing" || len(topics) == 0 {
			continue // it opened one since the listing: not ours to end
		}
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID = s.ProducerID
		m.ProducerEpoch = s.ProducerEpoch
		m.Committed = false
		m.Topics = topics
		wreq.Markers = append(wreq.Markers, m)
	}
	if len(wreq.Markers) == 0 {
		return 0, 0, nil
	}
	wresp, err := wreq.RequestWith(ctx, cl)
	if err != nil {
		return 0, 0, fmt.Errorf("write abort markers: %w", err)
	}
	var errs []error
	for _, m := range wresp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("abort marker for producer %d on %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err))
				}
			}
		}
	}
	return len(wreq.Markers), partitions, errors.Join(errs...)
}

// gateListener is the broker's listener. Until open, it hands the broker
// only the in-process connections made with dial, so that the transaction
// repair runs before any client can reach the log; everyone else's TCP
// connections wait in the kernel's accept queue meanwhile.
type gateListener struct {
	net.Listener
	private   chan net.Conn
	opened    chan struct{}
	closed    chan struct{}
	openOnce  sync.Once
	closeOnce sync.Once
}

func newGateListener(ln net.Listener) *gateListener {
	return &gateListener{Listener: ln, private: make(chan net.Conn),
		opened: make(chan struct{}), closed: make(chan struct{})}
}

func (g *gateListener) Accept() (net.Conn, error) {
	select {
	case c := <-g.private:
		return c, nil
	case <-g.closed:
		return nil, net.ErrClosed
	case <-g.opened:
		return g.Listener.Accept()
	}
}

func (g *gateListener) Close() error {
	g.closeOnce.Do(func() { close(g.closed) })
	return g.Listener.Close()
}

// open lets every client in.
func (g *gateListener) open() { g.openOnce.Do(func() { close(g.opened) }) }

// dial connects to the broker in-process, through the gate.
func (g *gateListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case g.private <- server:
		return client, nil
	case <-g.closed:
		err := net.ErrClosed
		return nil, errors.Join(err, client.Close(), server.Close())
	case <-ctx.Done():
		return nil, errors.Join(ctx.Err(), client.Close(), server.Close())
	}
}
