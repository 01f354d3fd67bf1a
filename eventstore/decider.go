package eventstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/domain"
)

// MaxDataBytes bounds an event's payload as encoded. The broker and the
// archive each have a record size limit; an event over this one is refused
// (or, for a result, its output shrunk) before it is recorded, so the
// ledger never holds an event it cannot deliver.
const MaxDataBytes = 4 << 20

// Head is the ledger writer's state of one execution: the aggregate folded
// from its events (without script, stdin and output, which only the
// events carry), the hash of its last event, and what the writer needs to
// decide the next command. The writer keeps heads in memory and in its
// changelog (StateTopic); the log can always rebuild them.
type Head struct {
	State domain.Execution
	Hash  string
	// Fingerprint is the SHA-256 of the ExecutionQueued payload: a repeated
	// submit (an Idempotency-Key retried) matches it, a different request
	// under the same id does not. The payload holds the script and stdin
	// only sealed (under the execution's own key, deterministically: see
	// Seal), so the fingerprint is a digest of ciphertext, from which no
	// guess of a short script can be confirmed without the key.
	Fingerprint string
	// LeaseUntil is when the running attempt's runner must have renewed
	// its claim by (the writer's clock); LeaseMs how long a renewal lasts.
	LeaseUntil time.Time
	LeaseMs    int64
}

// Info is what a reply tells of the head.
func (h *Head) Info() *HeadInfo {
	return &HeadInfo{Sequence: h.State.Sequence, Status: h.State.Status, Attempt: h.State.Attempt,
		Runner: h.State.Runner, CreatedAt: h.State.CreatedAt}
}

// Decider is the ledger writer's logic, without Kafka: given the head of
// an execution and a command, it decides which events to append, seals
// and signs them, folds them into a new head, and composes the reply. The
// Kafka transaction around it (adapters/kafka) makes each outcome appear
// on the log exactly once, or not at all.
type Decider struct {
	Signer Signer
	// MaxTurns bounds how often an execution may lose its runner.
	MaxTurns int
	// DefaultLease applies to a claim that names no lease.
	DefaultLease time.Duration
}

// Outcome is what one command (or a lease expiry) produced.
type Outcome struct {
	// Head is the execution's new head, nil when nothing changed.
	Head *Head
	// Records are the appended events as they go on the log.
	Records [][]byte
	Events  []Envelope
	Reply   Reply
}

// Handle decides cmd against h (nil: no such execution yet) at now.
func (d *Decider) Handle(h *Head, cmd Command, now time.Time) Outcome {
	out, err := d.handle(h, cmd, now)
	out.Reply.CommandID, out.Reply.ExecutionID = cmd.ID, cmd.ExecutionID
	if err != nil {
		out = Outcome{Reply: Reply{CommandID: cmd.ID, ExecutionID: cmd.ExecutionID,
			Code: domain.ErrorCode(err), Message: domain.ErrorMessage(err)}}
		if h != nil {
			out.Reply.Head = h.Info()
		}
	}
	return out
}

func (d *Decider) handle(h *Head, cmd Command, now time.Time) (Outcome, error) {
	if cmd.Kind == CommandSubmit {
		return d.submit(h, cmd, now)
	}
	if h == nil {
		return Outcome{}, domain.Errorf(domain.ENOTFOUND, "execution %s not found", cmd.ExecutionID)
	}
	switch cmd.Kind {
	case CommandCancel:
		return d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
			ev, err := e.Cancel(cmd.Actor)
			return []domain.Event{ev}, err
		})
	case CommandClaim:
		return d.claim(h, cmd, now)
	case CommandRenew:
		return d.renew(h, cmd, now)
	case CommandRelease:
		a := cmd.Release
		if a == nil || a.Attempt != h.State.Attempt {
			return Outcome{}, domain.Errorf(domain.ECONFLICT, "execution %s is %s", h.State.ID, h.State.Status)
		}
		return d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
			return e.Abandon(a.Runner, a.Reason, d.maxTurns())
		})
	case CommandReport:
		a := cmd.Report
		if a == nil {
			return Outcome{}, domain.Errorf(domain.EINVALID, "report without a result")
		}
		return d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
			ev, err := e.Report(a.Runner, a.Attempt, a.Result, a.Genuine)
			return []domain.Event{ev}, err
		})
	case CommandErase:
		a := cmd.Erase
		if a == nil {
			return Outcome{}, domain.Errorf(domain.EINVALID, "erase without a reason")
		}
		return d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
			return e.Erase(a.Reason)
		})
	}
	return Outcome{}, domain.Errorf(domain.EINVALID, "unknown command %q", cmd.Kind)
}

func (d *Decider) submit(h *Head, cmd Command, now time.Time) (Outcome, error) {
	if cmd.Submit == nil {
		return Outcome{}, domain.Errorf(domain.EINVALID, "submit without an execution")
	}
	fp, err := fingerprint(*cmd.Submit)
	if err != nil {
		return Outcome{}, err
	}
	if h != nil {
		if h.State.Erased {
			return Outcome{}, domain.Errorf(domain.ECONFLICT, "execution %s exists and its content was erased", cmd.ExecutionID)
		}
		if h.Fingerprint != fp {
			return Outcome{}, domain.Errorf(domain.ECONFLICT, "execution %s already exists with a different request", cmd.ExecutionID)
		}
		return Outcome{Reply: Reply{Head: h.Info()}}, nil // the same request again
	}
	fresh := &Head{State: domain.Execution{ID: cmd.ExecutionID}, Fingerprint: fp}
	return d.append(fresh, cmd, now, func(*domain.Execution) ([]domain.Event, error) {
		return []domain.Event{*cmd.Submit}, nil
	})
}

func (d *Decider) claim(h *Head, cmd Command, now time.Time) (Outcome, error) {
	a := cmd.Runner
	if a == nil || a.Runner == "" {
		return Outcome{}, domain.Errorf(domain.EINVALID, "claim without a runner")
	}
	lease := d.lease(a.LeaseMs)
	e := h.State
	if e.Status == domain.StatusRunning && e.Runner == a.Runner {
		// The same claim again (a retried command): it is already ours.
		next := *h
		next.LeaseUntil, next.LeaseMs = now.Add(lease), lease.Milliseconds()
		return Outcome{Head: &next, Reply: Reply{Head: next.Info()}}, nil
	}
	out, err := d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
		switch a.Mode {
		case ClaimResume:
			ev, err := e.Resume(a.Runner)
			return []domain.Event{ev}, err
		case ClaimRestart:
			if !e.Abandoned() {
				return nil, domain.Errorf(domain.ECONFLICT, "execution %s is %s", e.ID, e.Status)
			}
		}
		ev, err := e.Start(a.Runner, a.Sandbox)
		return []domain.Event{ev}, err
	})
	if err == nil && out.Head != nil {
		out.Head.LeaseUntil, out.Head.LeaseMs = now.Add(lease), lease.Milliseconds()
	}
	return out, err
}

func (d *Decider) renew(h *Head, cmd Command, now time.Time) (Outcome, error) {
	a := cmd.Runner
	e := h.State
	if a == nil || e.Status != domain.StatusRunning || e.Runner != a.Runner || e.Attempt != a.Attempt {
		return Outcome{}, domain.Errorf(domain.ECONFLICT, "execution %s is no longer this runner's: %s", e.ID, describe(e))
	}
	lease := d.lease(a.LeaseMs)
	next := *h
	next.LeaseUntil, next.LeaseMs = now.Add(lease), lease.Milliseconds()
	return Outcome{Head: &next, Reply: Reply{Head: next.Info()}}, nil
}

// Expire abandons the running attempt of h if its runner stopped renewing
// its lease. It reports false when there is nothing to do.
func (d *Decider) Expire(h *Head, now time.Time) (Outcome, bool) {
	e := h.State
	if e.Status != domain.StatusRunning || e.Runner == "" || h.LeaseUntil.IsZero() || !now.After(h.LeaseUntil) {
		return Outcome{}, false
	}
	cmd := Command{ID: uuid.NewString(), Kind: CommandRelease, ExecutionID: e.ID, Actor: "ledger", CorrelationID: e.ID}
	out, err := d.append(h, cmd, now, func(e *domain.Execution) ([]domain.Event, error) {
		return e.Abandon(e.Runner, domain.AbandonLeaseExpired, d.maxTurns())
	})
	return out, err == nil
}

// append runs decide on a copy of h's state and, if it returns events,
// seals them after h and folds them into a new head.
func (d *Decider) append(h *Head, cmd Command, now time.Time, decide func(*domain.Execution) ([]domain.Event, error)) (Outcome, error) {
	state := h.State
	evs, err := decide(&state)
	if err != nil {
		return Outcome{}, err
	}
	next := *h
	out := Outcome{Head: &next}
	for _, ev := range evs {
		data, err := Encode(ev)
		if err != nil {
			return Outcome{}, err
		}
		if len(data) > MaxDataBytes {
			return Outcome{}, domain.Errorf(domain.ETOOLARGE, "%s of %s is %d bytes encoded, over the ledger's %d",
				ev.EventType(), cmd.ExecutionID, len(data), MaxDataBytes)
		}
		env := Envelope{EventID: uuid.Must(uuid.NewV7()).String(), Type: ev.EventType(), SchemaVersion: SchemaVersions[ev.EventType()],
			ExecutionID: cmd.ExecutionID, Sequence: next.State.Sequence + 1, OccurredAt: now.UTC(),
			CorrelationID: cmd.CorrelationID, CausationID: cmd.CausationID, Actor: cmd.Actor, Data: data}
		rec, err := env.Seal(next.Hash, d.Signer)
		if err != nil {
			return Outcome{}, err
		}
		if err := next.State.Apply(cmd.ExecutionID, env.Sequence, env.OccurredAt, ev); err != nil {
			return Outcome{}, err
		}
		next.Hash = env.Hash
		if domain.IsTerminal(ev) {
			next.LeaseUntil, next.LeaseMs = time.Time{}, 0
		}
		out.Records = append(out.Records, rec)
		out.Events = append(out.Events, env)
	}
	slim(&next.State)
	out.Reply.Head = next.Info()
	for _, r := range out.Records {
		out.Reply.Records = append(out.Reply.Records, json.RawMessage(r))
	}
	return out, nil
}

func (d *Decider) lease(ms int64) time.Duration {
	if ms <= 0 {
		if d.DefaultLease > 0 {
			return d.DefaultLease
		}
		return 15 * time.Second
	}
	return time.Duration(ms) * time.Millisecond
}

func (d *Decider) maxTurns() int {
	if d.MaxTurns <= 0 {
		return 3
	}
	return d.MaxTurns
}

// slim drops what only the events need to carry: the head stays small
// however large a script or its output.
func slim(e *domain.Execution) {
	e.Script, e.Stdin, e.Output, e.Errors = "", "", "", ""
	e.SealedInput, e.SealedOutput, e.ErasedAt = "", "", nil
}

func fingerprint(q domain.ExecutionQueued) (string, error) {
	b, err := Encode(q)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func describe(e domain.Execution) string {
	switch {
	case e.Abandoned():
		return fmt.Sprintf("running attempt %d without a runner", e.Attempt)
	case e.Status == domain.StatusRunning:
		return fmt.Sprintf("running attempt %d on %s", e.Attempt, e.Runner)
	}
	return string(e.Status)
}

// headRecord is a head as the writer's changelog stores it.
type headRecord struct {
	ExecutionID string        `json:"execution_id"`
	Sequence    int64         `json:"sequence"`
	Hash        string        `json:"hash"`
	Fingerprint string        `json:"fingerprint"`
	Status      domain.Status `json:"status"`
	Owner       string        `json:"owner"`
	Limits      domain.Limits `json:"limits"`
	Attempt     int           `json:"attempt"`
	Runner      string        `json:"runner,omitempty"`
	Resumes     int           `json:"resumes,omitempty"`
	Erased      bool          `json:"erased,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
	LeaseUntil  time.Time     `json:"lease_until,omitzero"`
	LeaseMs     int64         `json:"lease_ms,omitempty"`
}

// MarshalJSON writes the head's changelog form.
func (h Head) MarshalJSON() ([]byte, error) {
	e := h.State
	return json.Marshal(headRecord{ExecutionID: e.ID, Sequence: e.Sequence, Hash: h.Hash, Fingerprint: h.Fingerprint,
		Status: e.Status, Owner: e.Owner, Limits: e.Limits, Attempt: e.Attempt, Runner: e.Runner, Resumes: e.Resumes,
		Erased: e.Erased, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, LeaseUntil: h.LeaseUntil, LeaseMs: h.LeaseMs})
}

// UnmarshalJSON reads the head's changelog form.
func (h *Head) UnmarshalJSON(b []byte) error {
	var r headRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*h = Head{State: domain.Execution{ID: r.ExecutionID, Sequence: r.Sequence, Status: r.Status, Owner: r.Owner,
		Limits: r.Limits, Attempt: r.Attempt, Runner: r.Runner, Resumes: r.Resumes, Erased: r.Erased, CreatedAt: r.CreatedAt,
		UpdatedAt: r.UpdatedAt}, Hash: r.Hash, Fingerprint: r.Fingerprint, LeaseUntil: r.LeaseUntil, LeaseMs: r.LeaseMs}
	return nil
}
