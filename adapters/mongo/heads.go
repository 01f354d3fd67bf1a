package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// Heads implements eventstore.Heads so that it is correct with any number of
// processes writing, on MongoDB and on FerretDB alike, with one code path.
//
// The only atomic step FerretDB 1.x offers across processes is an insert
// that fails on a duplicate _id (a unique SQLite index): its updates are
// "query, then write the whole document by _id", so a conditional update is
// not atomic and even a plain $set may undo a concurrent write. So a head is
// never updated in place. Every change of a head is a new, immutable
// document, and the unique _id decides which writer wins:
//
//   - head_versions: version r of execution x has _id "x/<r, 12 digits>"
//     and holds the whole head (state, hash, pending envelopes, lease as
//     written). Insert writes version 1; Replace writes version r+1 after
//     seeing version r as the newest. The newest version is the head.
//   - unsettled: a small document per version that may be unsettled (not
//     terminal, or with pending envelopes), same _id as the version, with
//     the version's updated_at for the order of Unsettled.
//   - heads: per execution, a hint which version is the newest.
//   - leases: lease renewals, _id = the version they renew.
//
// Invariants (each relied on below; none needs a lock or a conditional
// update):
//
//  1. Chain. Version r+1 is inserted only by a writer that read version r
//     and found no r+1; of all writers trying r+1 the unique _id lets one
//     win. Versions are never deleted. So an execution's versions are 1…n
//     without gaps, and the head is version n: the first r with no r+1.
//  2. Immutable. A version's content never changes. The one later write to
//     it is published=true (by ClearPending), which only goes from false
//     to true; two such writes racing write the same thing.
//  3. One winner per sequence. State sequences never decrease along the
//     chain (Replace refuses h below expectedSeq). A Replace(expectedSeq)
//     inserts r+1 only if version r has sequence expectedSeq. Suppose two
//     appends (sequence > expectedSeq) moving off expectedSeq both won, at
//     revs a < b: the second saw version b-1 at expectedSeq, but b-1 ≥ a,
//     so its sequence is at least version a's, above expectedSeq. So one
//     wins, whatever the number of events each carries. A Replace that
//     only changes the lease (same sequence) is a version too; an append
//     racing it retries on top of it, as the conditional replace allowed.
//  4. Hints are safe at any value. The pointer in heads is copied from a
//     version after that version was inserted, so its (rev, seq) pair is
//     true of an existing version; Get and Replace start there and probe
//     r+1, r+2, … until one is missing. A pointer that lags or regressed
//     (two writers' pointer writes landing in the wrong order, a writer
//     dying before writing it) costs a longer probe, never a stale head.
//  5. Unsettled misses nothing. A version that is unsettled when written
//     gets its unsettled document before the version is inserted. That
//     document is deleted only once its version exists and is superseded
//     (r+1 exists) or settled (terminal and published) — both permanent.
//     So the head, if unsettled, has its document whatever crashed or
//     raced: no write of anyone can mark it settled by mistake, since
//     nothing in unsettled is a mutable flag. Racing writers of one
//     version share its document (same _id). A document whose version
//     never came (its writer died or failed between the two inserts) is
//     skipped and kept: a writer may be about to insert that version.
//  6. Leases never clobber heads. A renewal writes only leases/<version>,
//     after checking that the version is the head, at the renewed
//     sequence, owned by the renewer. A renewal that lands after the head
//     moved is attached to a superseded version and never read again.
//
// The price is storage: one head per version instead of one per execution
// (three or four per execution: queued, started, finished), and a lease
// document per running attempt.
type Heads struct {
	db        *DB
	pointers  *mongo.Collection
	versions  *mongo.Collection
	unsettled *mongo.Collection
	leases    *mongo.Collection
}

var _ eventstore.Heads = (*Heads)(nil)

// NewHeads returns the head store of db.
func NewHeads(db *DB) *Heads {
	return &Heads{
		db:        db,
		pointers:  db.db.Collection(CollHeads),
		versions:  db.db.Collection(CollHeadVersions),
		unsettled: db.db.Collection(CollUnsettled),
		leases:    db.db.Collection(CollLeases),
	}
}

// versionDoc is one version of a head. seq duplicates state.version_seq at
// the top level for a reader of the collection.
type versionDoc struct {
	ID           string           `bson:"_id"` // versionKey(execution, rev)
	ExecutionID  string           `bson:"execution_id"`
	Rev          int64            `bson:"rev"`
	Seq          int64            `bson:"seq"`
	State        domain.Execution `bson:"state"`
	Hash         string           `bson:"hash"`
	Pending      []string         `bson:"pending"`
	PendingCount int              `bson:"pending_count"`
	LeaseOwner   string           `bson:"lease_owner"`
	LeaseUntil   time.Time        `bson:"lease_until"`
	Resumes      int              `bson:"resumes,omitempty"`
	UpdatedAt    time.Time        `bson:"updated_at"`
	Terminal     bool             `bson:"terminal"`
	// Published says the pending envelopes were published (ClearPending);
	// the only field ever written after the insert.
	Published bool `bson:"published"`
	// Writer is random per call. If the driver sent an insert twice (a
	// retried request whose first attempt went through), the duplicate-key
	// error carries our own version, and Writer tells so.
	Writer string `bson:"writer"`
}

// unsettledDoc marks a version that may be unsettled (invariant 5).
type unsettledDoc struct {
	ID          string    `bson:"_id"` // the version's _id
	ExecutionID string    `bson:"execution_id"`
	Rev         int64     `bson:"rev"`
	UpdatedAt   time.Time `bson:"updated_at"`
}

// pointerDoc says where the newest version was when it was written (a hint).
type pointerDoc struct {
	ID  string `bson:"_id"` // execution id
	Rev int64  `bson:"rev"`
	Seq int64  `bson:"seq"`
}

// leaseDoc is the latest renewal of one version's lease.
type leaseDoc struct {
	ID    string    `bson:"_id"` // the version's _id
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

// seqKey is "<id>/<n, 12 digits>": the _id of a head version and of an
// archived event. The padding makes one execution's keys sort in order.
func seqKey(id string, n int64) string { return fmt.Sprintf("%s/%012d", id, n) }

func versionKey(id string, rev int64) string { return seqKey(id, rev) }

// parseVersionKey splits a versionKey; execution ids may contain "/", the
// fixed-width suffix may not.
func parseVersionKey(key string) (string, int64, bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return "", 0, false
	}
	rev, err := strconv.ParseInt(key[i+1:], 10, 64)
	return key[:i], rev, err == nil && rev > 0
}

func newVersion(h eventstore.Head, rev int64, writer string) (versionDoc, error) {
	if h.State.ID == "" {
		return versionDoc{}, errors.New("head without execution id")
	}
	pending := h.Pending
	if pending == nil {
		pending = []string{} // an array, never null, so the field has one type
	}
	return versionDoc{
		ID: versionKey(h.State.ID, rev), ExecutionID: h.State.ID, Rev: rev, Seq: h.State.Sequence,
		State: h.State, Hash: h.Hash, Pending: pending, PendingCount: len(pending),
		LeaseOwner: h.LeaseOwner, LeaseUntil: h.LeaseUntil, Resumes: h.Resumes, UpdatedAt: h.UpdatedAt,
		Terminal: h.State.Status.Terminal(), Writer: writer,
	}, nil
}

// settled: terminal, and nothing left to publish. Permanent once true.
func (v versionDoc) settled() bool { return v.Terminal && (v.Published || v.PendingCount == 0) }

// head is the version as the port sees it, with the latest renewal of its
// lease (if it renews this version's owner). A renewal only extends: one
// that lands late, after a later one, does not shorten the lease.
func (v versionDoc) head(l leaseDoc) eventstore.Head {
	pending := v.Pending
	if v.Published || len(pending) == 0 {
		pending = nil
	}
	until := v.LeaseUntil
	if v.LeaseOwner != "" && l.Owner == v.LeaseOwner && l.Until.After(until) {
		until = l.Until
	}
	return eventstore.Head{State: v.State, Hash: v.Hash, Pending: pending,
		LeaseOwner: v.LeaseOwner, LeaseUntil: until, Resumes: v.Resumes, UpdatedAt: v.UpdatedAt}
}

// Insert creates the head of a new execution (its version 1);
// eventstore.ErrStale if it exists.
func (s *Heads) Insert(ctx context.Context, h eventstore.Head) error {
	v, err := newVersion(h, 1, uuid.NewString())
	if err != nil {
		return fmt.Errorf("insert head: %w", err)
	}
	_, won, err := s.add(ctx, v)
	if err != nil {
		return fmt.Errorf("insert head %s: %w", v.ExecutionID, err)
	}
	if !won {
		return eventstore.ErrStale
	}
	s.point(ctx, v, true)
	return nil
}

// Get returns the head of an execution, or a domain ENOTFOUND error.
func (s *Heads) Get(ctx context.Context, id string) (eventstore.Head, error) {
	v, l, ok, err := s.newest(ctx, id, true)
	if err != nil {
		return eventstore.Head{}, fmt.Errorf("get head %s: %w", id, err)
	}
	if !ok {
		return eventstore.Head{}, domain.Errorf(domain.ENOTFOUND, "execution %s not found", id)
	}
	return v.head(l), nil
}

// maxSameSeqRetries bounds how often Replace moves on top of versions that
// kept the sequence (lease changes) before it gives up with ErrStale.
const maxSameSeqRetries = 10

// Replace writes h as the next version if the head is still at
// expectedSeq; eventstore.ErrStale otherwise (also when there is no head).
func (s *Heads) Replace(ctx context.Context, expectedSeq int64, h eventstore.Head) error {
	id := h.State.ID
	if id == "" {
		return errors.New("replace head: head without execution id")
	}
	if h.State.Sequence < expectedSeq {
		return fmt.Errorf("replace head %s: sequence %d is below the expected %d", id, h.State.Sequence, expectedSeq)
	}
	// Where is the head? The pointer usually knows exactly: then the insert
	// of the next version is the only other round trip.
	p, ok, err := findByID[pointerDoc](ctx, s.pointers, id)
	if err != nil {
		return fmt.Errorf("replace head %s: %w", id, err)
	}
	hint := ok && p.Rev >= 1
	if hint && p.Seq > expectedSeq {
		return eventstore.ErrStale // sequences never decrease along the chain
	}
	rev, seq := p.Rev, p.Seq
	if !hint || p.Seq != expectedSeq {
		tip, _, found, err := s.newestFrom(ctx, id, p.Rev, false)
		if err != nil {
			return fmt.Errorf("replace head %s: %w", id, err)
		}
		if !found {
			return eventstore.ErrStale
		}
		rev, seq = tip.Rev, tip.Seq
	}
	writer := uuid.NewString()
	for range maxSameSeqRetries {
		if seq != expectedSeq {
			return eventstore.ErrStale
		}
		v, err := newVersion(h, rev+1, writer)
		if err != nil {
			return fmt.Errorf("replace head: %w", err)
		}
		got, won, err := s.add(ctx, v)
		if err != nil {
			return fmt.Errorf("replace head %s at seq %d: %w", id, expectedSeq, err)
		}
		if won {
			// Best effort, both: a lagging pointer costs a longer probe, a
			// stale unsettled document is removed by Unsettled. (Not at
			// once: SQLite serialises writers, and one that waits backs off.)
			s.point(ctx, v, false)
			s.unmark(ctx, versionKey(id, rev))
			return nil
		}
		// rev+1 was taken: the head moved, perhaps only its lease. Follow it.
		tip, err := s.walk(ctx, got)
		if err != nil {
			return fmt.Errorf("replace head %s at seq %d: %w", id, expectedSeq, err)
		}
		rev, seq = tip.Rev, tip.Seq
	}
	return eventstore.ErrStale
}

// ClearPending records that the pending envelopes of the head at seq were
// published, and does nothing if the head is not at seq: newer envelopes
// appended since must stay pending. Losing the mark would only cause a
// harmless republish (consumers de-duplicate on sequence).
func (s *Heads) ClearPending(ctx context.Context, id string, seq int64) error {
	v, _, ok, err := s.newest(ctx, id, false)
	if err != nil {
		return fmt.Errorf("clear pending of head %s at seq %d: %w", id, seq, err)
	}
	if !ok || v.Seq != seq {
		return nil
	}
	// Every version at one sequence carries the same envelopes (or none,
	// once a predecessor was published), so the caller published all of v's.
	// If v was superseded meanwhile, marking it changes nothing: its
	// successor lists the envelopes again.
	if !v.Published && v.PendingCount > 0 {
		_, err := s.versions.UpdateOne(ctx, bson.D{{Key: "_id", Value: v.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "published", Value: true}}}})
		if err != nil {
			return fmt.Errorf("clear pending of head %s at seq %d: %w", id, seq, err)
		}
		v.Published = true
	}
	if v.settled() {
		s.unmark(ctx, v.ID)
	}
	return nil
}

// Renew moves the lease's end to until if the head is still at seq and owned
// by owner; eventstore.ErrStale otherwise (an unowned head has no lease to
// renew). It writes only the lease document of that version (invariant 6),
// so it never changes anything else of the head, not even updated_at.
func (s *Heads) Renew(ctx context.Context, id string, seq int64, owner string, until time.Time) error {
	if owner == "" {
		return eventstore.ErrStale
	}
	v, _, ok, err := s.newest(ctx, id, false)
	if err != nil {
		return fmt.Errorf("renew lease of head %s at seq %d: %w", id, seq, err)
	}
	if !ok || v.Seq != seq || v.LeaseOwner != owner {
		return eventstore.ErrStale
	}
	// If the head moves between the check and this write, the renewal is
	// attached to a superseded version: it took effect just before the move
	// and is invisible after it, as if the move had overwritten it.
	if err := put(ctx, s.leases, v.ID, leaseDoc{ID: v.ID, Owner: owner, Until: until}, false); err != nil {
		return fmt.Errorf("renew lease of head %s at seq %d: %w", id, seq, err)
	}
	return nil
}

// Unsettled lists heads that are not terminal or still have pending
// envelopes, least recently appended first, at most limit (none if limit < 1).
//
// It walks the unsettled documents in (updated_at, _id) order, page by page,
// and checks each against its version: a version that was superseded or has
// settled loses its document here (the writers usually remove it
// themselves); a document without a version is skipped, not removed
// (invariant 5).
func (s *Heads) Unsettled(ctx context.Context, limit int) ([]eventstore.Head, error) {
	if limit < 1 {
		return nil, nil
	}
	var (
		out   []eventstore.Head
		seen  = map[string]bool{}
		after unsettledRef
	)
	for len(out) < limit {
		page, err := s.unsettledPage(ctx, after, limit)
		if err != nil {
			return nil, fmt.Errorf("unsettled heads: %w", err)
		}
		heads, err := s.checkAll(ctx, page)
		if err != nil {
			return nil, fmt.Errorf("unsettled heads: %w", err)
		}
		for _, h := range heads {
			if len(out) < limit && h != nil && !seen[h.State.ID] {
				seen[h.State.ID] = true
				out = append(out, *h)
			}
		}
		if len(page) < limit {
			break
		}
		after = page[len(page)-1]
	}
	return out, nil
}

// unsettledRef is a position in the order of Unsettled.
type unsettledRef struct {
	updatedAt string // formatTime of updated_at: text order is time order
	key       string
}

// unsettledPage returns up to limit unsettled documents after the position
// after (the zero value: from the start).
func (s *Heads) unsettledPage(ctx context.Context, after unsettledRef, limit int) ([]unsettledRef, error) {
	if s.db.fast != nil {
		return s.db.fast.unsettledPage(ctx, after, limit)
	}
	filter := bson.D{}
	if after.key != "" {
		// Times are stored as fixed-width strings, so a string compares right.
		filter = bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "updated_at", Value: bson.D{{Key: "$gt", Value: after.updatedAt}}}},
			bson.D{{Key: "updated_at", Value: after.updatedAt}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after.key}}}},
		}}}
	}
	opts := options.Find().
		SetSort(bson.D{{Key: "updated_at", Value: 1}, {Key: "_id", Value: 1}}).
		SetLimit(int64(limit))
	cur, err := s.unsettled.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []unsettledDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	out := make([]unsettledRef, len(docs))
	for i, d := range docs {
		out[i] = unsettledRef{updatedAt: formatTime(d.UpdatedAt), key: d.ID}
	}
	return out, nil
}

// checkParallel bounds the concurrent checks of Unsettled.
const checkParallel = 8

// checkAll checks a page of unsettled documents, a few at a time; the
// result has the page's order, nil where a document stands for no head.
func (s *Heads) checkAll(ctx context.Context, page []unsettledRef) ([]*eventstore.Head, error) {
	out := make([]*eventstore.Head, len(page))
	errs := make([]error, len(page))
	sem := make(chan struct{}, checkParallel)
	var wg sync.WaitGroup
	for i, ref := range page {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i], errs[i] = s.check(ctx, ref.key)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// check returns the head that the unsettled document key stands for, if its
// version is the head and unsettled, and removes the document if the
// version is superseded or settled.
func (s *Heads) check(ctx context.Context, key string) (*eventstore.Head, error) {
	id, rev, ok := parseVersionKey(key)
	if !ok {
		return nil, nil // not ours
	}
	v, l, superseded, ok, err := s.read(ctx, id, rev, true)
	if err != nil || !ok {
		return nil, err
	}
	if superseded || v.settled() {
		s.unmark(ctx, key)
		return nil, nil
	}
	h := v.head(l)
	return &h, nil
}

// read reads version rev of id, whether rev+1 exists, and, if withLease,
// the lease of rev, all at once.
func (s *Heads) read(ctx context.Context, id string, rev int64, withLease bool) (v versionDoc, l leaseDoc, superseded, ok bool, err error) {
	var errNext, errLease error
	var wg sync.WaitGroup
	wg.Go(func() {
		_, superseded, errNext = findByID[bson.Raw](ctx, s.versions, versionKey(id, rev+1), idOnly)
	})
	if withLease {
		// Also read when the version turns out unowned: a miss, at once.
		wg.Go(func() { l, _, errLease = findByID[leaseDoc](ctx, s.leases, versionKey(id, rev)) })
	}
	v, ok, err = findByID[versionDoc](ctx, s.versions, versionKey(id, rev))
	wg.Wait()
	if err = errors.Join(err, errNext, errLease); err != nil {
		return versionDoc{}, leaseDoc{}, false, false, err
	}
	return v, l, superseded, ok, nil
}

// add inserts version v: its unsettled document first (invariant 5), then
// the version. won reports whether v is now stored; if not, got is the
// version that holds its _id.
func (s *Heads) add(ctx context.Context, v versionDoc) (got versionDoc, won bool, err error) {
	if !v.settled() {
		mark := unsettledDoc{ID: v.ID, ExecutionID: v.ExecutionID, Rev: v.Rev, UpdatedAt: v.UpdatedAt}
		if _, err := s.unsettled.InsertOne(ctx, mark); err != nil && !mongo.IsDuplicateKeyError(err) {
			return versionDoc{}, false, err
		}
	}
	_, err = s.versions.InsertOne(ctx, v)
	if err == nil {
		return v, true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return versionDoc{}, false, err
	}
	got, ok, err := findByID[versionDoc](ctx, s.versions, v.ID)
	if err != nil {
		return versionDoc{}, false, err
	}
	if !ok {
		return versionDoc{}, false, fmt.Errorf("version %s: duplicate key, yet not found", v.ID)
	}
	return got, got.Writer == v.Writer, nil
}

// newest returns the newest version of id, starting at the pointer's hint,
// and if withLease the latest renewal of its lease.
func (s *Heads) newest(ctx context.Context, id string, withLease bool) (versionDoc, leaseDoc, bool, error) {
	p, _, err := findByID[pointerDoc](ctx, s.pointers, id)
	if err != nil {
		return versionDoc{}, leaseDoc{}, false, err
	}
	return s.newestFrom(ctx, id, p.Rev, withLease)
}

// newestFrom returns the newest version of id, probing from version from
// (a hint; below 1 or missing: from version 1). If the hint lagged, it
// refreshes the pointer.
func (s *Heads) newestFrom(ctx context.Context, id string, from int64, withLease bool) (versionDoc, leaseDoc, bool, error) {
	start := max(from, 1)
	v, l, superseded, ok, err := s.read(ctx, id, start, withLease)
	if err == nil && !ok && start > 1 {
		// Pointers name existing versions; this one does not (written by
		// hand, or by another layout). Start over from the first.
		start = 1
		v, l, superseded, ok, err = s.read(ctx, id, start, withLease)
	}
	if err != nil || !ok {
		return versionDoc{}, leaseDoc{}, false, err
	}
	if superseded {
		if v, err = s.walk(ctx, v); err != nil {
			return versionDoc{}, leaseDoc{}, false, err
		}
		l = leaseDoc{}
		if withLease {
			if l, err = s.lease(ctx, v); err != nil {
				return versionDoc{}, leaseDoc{}, false, err
			}
		}
	}
	if v.Rev != from {
		s.point(ctx, v, false)
	}
	return v, l, true, nil
}

// walk follows the chain from v to the newest version (invariant 1).
func (s *Heads) walk(ctx context.Context, v versionDoc) (versionDoc, error) {
	for {
		next, ok, err := findByID[versionDoc](ctx, s.versions, versionKey(v.ExecutionID, v.Rev+1))
		if err != nil {
			return versionDoc{}, err
		}
		if !ok {
			return v, nil
		}
		v = next
	}
}

// lease returns the latest renewal of v's lease (zero if none or unowned).
func (s *Heads) lease(ctx context.Context, v versionDoc) (leaseDoc, error) {
	if v.LeaseOwner == "" {
		return leaseDoc{}, nil // Renew refuses unowned heads, so there is none
	}
	l, _, err := findByID[leaseDoc](ctx, s.leases, v.ID)
	return l, err
}

// point makes the pointer of v's execution name v. It is a hint (invariant
// 4): a failed or overtaken write is harmless, so errors are dropped — the
// version is written, and that is what the caller's success means. fresh
// says the pointer probably does not exist yet.
func (s *Heads) point(ctx context.Context, v versionDoc, fresh bool) {
	_ = put(ctx, s.pointers, v.ExecutionID, pointerDoc{ID: v.ExecutionID, Rev: v.Rev, Seq: v.Seq}, fresh)
}

// unmark removes an unsettled document whose version exists and is
// superseded or settled. Best effort: Unsettled removes what is left.
func (s *Heads) unmark(ctx context.Context, key string) {
	_, _ = s.unsettled.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
}

// put makes doc the document id of coll, whatever was there. Not an upsert:
// FerretDB 1.x reports an upsert that lost a race to insert the document as
// an internal error, not as a duplicate key. fresh tries the insert first.
// For documents that are never deleted, two rounds always suffice.
func put(ctx context.Context, coll *mongo.Collection, id string, doc any, fresh bool) error {
	for range 3 {
		if !fresh {
			res, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc)
			if err != nil {
				return err
			}
			if res.MatchedCount > 0 {
				return nil
			}
		}
		fresh = false
		_, err := coll.InsertOne(ctx, doc)
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return err
		}
	}
	return fmt.Errorf("write %s.%s: it keeps appearing and disappearing", coll.Name(), id)
}

// idOnly projects a document to its _id, for existence checks.
var idOnly = options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})

// findByID reads one document by _id; false if there is none.
func findByID[T any](ctx context.Context, coll *mongo.Collection, id string, opts ...options.Lister[options.FindOneOptions]) (T, bool, error) {
	var doc T
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, opts...).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, false, nil
	}
	return doc, err == nil, err
}
