package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// submitRequest is the body of POST /executions.
type submitRequest struct {
	Script   string         `json:"script"`
	Language string         `json:"language"`
	Version  string         `json:"version"`
	Stdin    string         `json:"stdin"`
	Limits   *limitsRequest `json:"limits"`
}

// limitsRequest tells an omitted limit (the default) from one sent as 0,
// which is refused rather than silently read as "the default".
type limitsRequest struct {
	TimeoutMs     *int64 `json:"timeout_ms"`
	MemoryBytes   *int64 `json:"memory_bytes"`
	CPUMillicores *int64 `json:"cpu_millicores"`
}

// requested returns the limits a request asks for, zero where omitted.
func (l *limitsRequest) requested() (domain.Limits, error) {
	var out domain.Limits
	if l == nil {
		return out, nil
	}
	var problems []string
	take := func(name string, v *int64, into *int64) {
		switch {
		case v == nil:
		case *v <= 0:
			problems = append(problems, "limits."+name+" must be positive (omit it for the default)")
		default:
			*into = *v
		}
	}
	take("timeout_ms", l.TimeoutMs, &out.TimeoutMs)
	take("memory_bytes", l.MemoryBytes, &out.MemoryBytes)
	take("cpu_millicores", l.CPUMillicores, &out.CPUMillicores)
	if len(problems) > 0 {
		return out, domain.Errorf(domain.EUNPROCESSABLE, "%s", strings.Join(problems, "; "))
	}
	return out, nil
}

// idempotentID derives the execution id of an Idempotency-Key, so that a
// retried request names the same execution and the ledger refuses to queue
// it twice. It is keyed (HMAC-SHA256 under the platform's secret): an
// anonymous execution's id is its only protection, and a hash anyone can
// compute from a guessable key ("order-1001") would hand it out. Keys are
// scoped to the user, or for anonymous callers to the client address, so
// two clients that pick the same key never meet.
func (s *server) idempotentID(r *http.Request, key string) string {
	scope := principal(r).ID()
	if !principal(r).Signed() {
		scope += "@" + s.proxies.client(r)
	}
	mac := hmac.New(sha256.New, s.IdempotencySecret)
	mac.Write([]byte(scope + "\x00" + key))
	var id uuid.UUID
	copy(id[:], mac.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8: application-defined (RFC 9562)
	id[8] = id[8]&0x3f | 0x80 // the RFC's variant
	return id.String()
}

func (s *server) handleSubmit() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req submitRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		exec, created, err := s.submit(r, req)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.Header().Set("Location", "/api/v1/executions/"+exec.ID)
		if wait, _ := strconv.ParseBool(r.URL.Query().Get("wait")); wait {
			extendWrite(w, time.Now().Add(s.MaxWait+10*time.Second))
			if done, ok := s.waitTerminal(r.Context(), exec); ok {
				s.writeExecution(w, r, http.StatusOK, done)
				return
			}
		}
		status := http.StatusAccepted
		if !created {
			status = http.StatusOK // an idempotent replay of an earlier request
		}
		s.writeExecution(w, r, status, exec)
	}
}

// show is e as the API shows it to whoever may read it: its content
// opened with the execution's key, or none and erased: true once erased.
func (s *server) show(ctx context.Context, e domain.Execution) (Execution, error) {
	if err := s.Content.Reveal(ctx, &e); err != nil {
		return Execution{}, fmt.Errorf("open the content of %s: %w", e.ID, err)
	}
	return resource(e), nil
}

func (s *server) writeExecution(w http.ResponseWriter, r *http.Request, status int, e domain.Execution) {
	out, err := s.show(r.Context(), e)
	if err != nil {
		writeError(w, r, s.Logger, err)
		return
	}
	writeJSON(w, status, out)
}

// submit validates a request and asks the ledger writer to queue it.
// created is false when an Idempotency-Key named an execution that
// already exists for the same request.
func (s *server) submit(r *http.Request, req submitRequest) (domain.Execution, bool, error) {
	lang, version, err := s.Catalog.Resolve(req.Language, req.Version)
	if err != nil {
		return domain.Execution{}, false, err
	}
	requested, err := req.Limits.requested()
	if err != nil {
		return domain.Execution{}, false, err
	}
	limits, err := domain.ResolveLimits(requested, s.Catalog.DefaultLimits, s.Catalog.MaxLimits)
	if err != nil {
		return domain.Execution{}, false, err
	}
	who := principal(r).ID()
	id := uuid.Must(uuid.NewV7()).String()
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		if len(key) > 255 {
			return domain.Execution{}, false, domain.Errorf(domain.EINVALID, "Idempotency-Key is longer than 255 characters")
		}
		id = s.idempotentID(r, key)
	}
	// The gates first: a refused submission makes no content key.
	done, err := s.admit(r)
	if err != nil {
		return domain.Execution{}, false, err
	}
	var queued *domain.Execution
	defer func() { done(queued) }()
	// The script and stdin leave this process only sealed, under the
	// execution's own key (made here, or found for a retried key).
	ev, err := domain.Queue(domain.Spec{Language: lang, Version: version, Script: req.Script,
		Stdin: req.Stdin, Limits: limits, Owner: who}, func(in domain.Input) (domain.Sealed, error) {
		sealed, err := s.Content.SealInput(r.Context(), id, in)
		if errors.Is(err, content.ErrErased) {
			return "", domain.Errorf(domain.ECONFLICT, "execution %s exists and its content was erased", id)
		}
		return sealed, err
	})
	if err != nil {
		return domain.Execution{}, false, err
	}
	// The writer compares the whole request (script, stdin, language,
	// version, resolved limits, owner) with the one that created the id:
	// a replay of a key with anything else is refused.
	reply, err := s.ask(r.Context(), eventstore.Command{Kind: eventstore.CommandSubmit, ExecutionID: id, Actor: who,
		CorrelationID: requestIDFrom(r.Context()), Submit: &ev})
	if err != nil {
		return domain.Execution{}, false, err
	}
	if err := reply.Err(); err != nil {
		if key != "" && domain.ErrorCode(err) == domain.ECONFLICT {
			return domain.Execution{}, false, domain.Errorf(domain.ECONFLICT,
				"this Idempotency-Key was already used for a different request")
		}
		return domain.Execution{}, false, err
	}
	if len(reply.Records) == 0 {
		// The same request again: the execution exists already. Its view
		// may not be there yet (the first request's reply was lost, and
		// the writer decided it moments ago): wait for it, briefly.
		e, err := s.awaitView(r.Context(), id, reply.Head)
		return e, false, err
	}
	e, err := s.fold(domain.Execution{}, reply)
	if err != nil {
		return domain.Execution{}, false, err
	}
	queued = &e
	return e, true, nil
}

// awaitView waits (a few seconds at most) until the view of id holds the
// head a reply described, and returns it.
func (s *server) awaitView(ctx context.Context, id string, head *eventstore.HeadInfo) (domain.Execution, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w := s.watch(id)
	defer w.close()
	for {
		e, err := s.lookup(ctx, id)
		if err == nil && (head == nil || e.Sequence >= head.Sequence) {
			return e, nil
		}
		if !w.wait(ctx) {
			if err == nil {
				return e, nil // older than the head, but the execution
			}
			return domain.Execution{}, domain.Errorf(domain.EUNAVAILABLE,
				"execution %s exists but its view is not ready yet; retry in a moment", id)
		}
	}
}

// ask sends a command to the ledger writer and waits, bounded, for its decision.
func (s *server) ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.AskTimeout)
	defer cancel()
	return s.Ledger.Ask(ctx, cmd)
}

// fold applies the events of a reply to e and remembers the result, so
// that this client's next read sees its own write.
func (s *server) fold(e domain.Execution, reply eventstore.Reply) (domain.Execution, error) {
	envs, err := reply.Envelopes()
	if err != nil {
		return e, err
	}
	for _, env := range envs {
		if env.Sequence != e.Sequence+1 {
			continue // the view is ahead already, or behind: keep what we know
		}
		ev, err := eventstore.Decode(env)
		if err != nil {
			return e, err
		}
		if err := e.Apply(env.ExecutionID, env.Sequence, env.OccurredAt, ev); err != nil {
			return e, err
		}
	}
	if e.ID != "" {
		s.recent.put(e)
	}
	return e, nil
}

// lookup reads an execution for a request: the view, or what this process
// itself just wrote when the projection has not caught up yet.
func (s *server) lookup(ctx context.Context, id string) (domain.Execution, error) {
	if _, err := uuid.Parse(id); err != nil {
		return domain.Execution{}, errNotFound("execution " + bounded(id, 36) + " not found")
	}
	v, err := s.Views.View(ctx, id)
	if err != nil && domain.ErrorCode(err) != domain.ENOTFOUND {
		return domain.Execution{}, err
	}
	if mine, ok := s.recent.get(id); ok && (err != nil || mine.Sequence > v.Sequence) {
		return mine, nil
	}
	if err != nil {
		return domain.Execution{}, errNotFound("execution " + bounded(id, 36) + " not found")
	}
	return v, nil
}

// lookupFor reads an execution for the request's principal: one owned by
// another user is "not found", exactly like one that does not exist, so
// ids cannot be probed (OWASP API1:2023, broken object level
// authorization). Anonymous executions are capabilities: whoever holds
// the id may read and cancel them.
func (s *server) lookupFor(r *http.Request, id string) (domain.Execution, error) {
	e, err := s.lookup(r.Context(), id)
	if err != nil {
		return e, err
	}
	if !principal(r).CanSee(e.Owner) {
		return domain.Execution{}, errNotFound("execution " + bounded(id, 36) + " not found")
	}
	return e, nil
}

// waitTerminal waits until the execution's view is terminal, within a bound
// derived from its timeout; ok is false when the bound passed first.
func (s *server) waitTerminal(ctx context.Context, e domain.Execution) (domain.Execution, bool) {
	bound := e.Limits.Timeout() + 30*time.Second
	if bound > s.MaxWait {
		bound = s.MaxWait
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	w := s.watch(e.ID)
	defer w.close()
	for {
		v, err := s.Views.View(ctx, e.ID)
		if err == nil && v.Status.Terminal() {
			return v, true
		}
		if !w.wait(ctx) {
			return e, false
		}
	}
}

func (s *server) handleGet() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, err := s.lookupFor(r, chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		out, err := s.withPosition(r.Context(), e)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *server) handleCancel() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		// No body, or a JSON object with no fields: a cancel takes no
		// options yet, and a form or text body is what a cross-site page
		// could send without asking.
		if hasBody(r) {
			if err := decodeJSON(w, r, &struct{}{}); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		}
		e, err := s.lookupFor(r, id)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		// An admin cancelling someone's execution is recorded as the admin.
		who := principal(r).ID()
		reply, err := s.ask(r.Context(), eventstore.Command{Kind: eventstore.CommandCancel, ExecutionID: id, Actor: who,
			CorrelationID: requestIDFrom(r.Context())})
		if err == nil {
			err = reply.Err()
		}
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if e, err = s.fold(s.caughtUp(r.Context(), e, reply), reply); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.writeExecution(w, r, http.StatusAccepted, e)
	}
}

// caughtUp returns e once the view holds every event before the ones a
// reply appended (briefly waiting for the projection), so that the reply's
// events can be folded on top; e itself if that takes too long.
func (s *server) caughtUp(ctx context.Context, e domain.Execution, reply eventstore.Reply) domain.Execution {
	envs, err := reply.Envelopes()
	if err != nil || len(envs) == 0 {
		return e
	}
	want := envs[0].Sequence - 1
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for e.Sequence < want && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		if v, err := s.Views.View(ctx, e.ID); err == nil && v.Sequence > e.Sequence {
			e = v
		}
	}
	return e
}

type listResponse struct {
	Executions []Execution `json:"executions"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

func (s *server) handleList() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseListQuery(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		// Anonymous executions are reachable by id only: a list of them
		// would hand everyone's ids (and scripts) to anyone. Users list
		// their own; admins everything, or one owner's with ?owner=.
		switch p := principal(r); {
		case !p.Signed():
			s.unauthorized(w, r, errSignIn)
			return
		case p.Admin():
			q.Owner = r.URL.Query().Get("owner")
		default:
			q.Owner = p.User.ID
		}
		items, more, err := s.Views.List(r.Context(), q)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		resp := listResponse{Executions: make([]Execution, 0, len(items))}
		for _, e := range items {
			out, err := s.show(r.Context(), e)
			if err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
			resp.Executions = append(resp.Executions, out)
		}
		if more && len(items) > 0 {
			last := items[len(items)-1]
			resp.NextCursor = encodeCursor(projections.Cursor{CreatedAt: last.CreatedAt, ID: last.ID})
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

func parseListQuery(r *http.Request) (projections.ListQuery, error) {
	v := r.URL.Query()
	q := projections.ListQuery{}
	var err error
	if q.Limit, err = pageLimit(r); err != nil {
		return q, err
	}
	if st := v.Get("status"); st != "" {
		q.Status = domain.Status(st)
		if !q.Status.Valid() {
			return q, domain.Errorf(domain.EINVALID, "status must be one of queued, running, completed, failed")
		}
	}
	if c := v.Get("cursor"); c != "" {
		cur, err := decodeCursor(c)
		if err != nil {
			return q, err
		}
		q.After = &cur
	}
	return q, nil
}

// A cursor is the position of the last item of a page: its creation time and
// id, so pages stay stable while new executions arrive.
func encodeCursor(c projections.Cursor) string {
	return strconv.FormatInt(c.CreatedAt.UnixNano(), 36) + "." + c.ID
}

func decodeCursor(s string) (projections.Cursor, error) {
	bad := domain.Errorf(domain.EINVALID, "cursor is malformed; use next_cursor from a previous page")
	ts, id, ok := strings.Cut(s, ".")
	if !ok {
		return projections.Cursor{}, bad
	}
	n, err := strconv.ParseInt(ts, 36, 64)
	if err != nil {
		return projections.Cursor{}, bad
	}
	if _, err := uuid.Parse(id); err != nil {
		return projections.Cursor{}, bad
	}
	return projections.Cursor{CreatedAt: time.Unix(0, n).UTC(), ID: id}, nil
}

func (s *server) handleRuntimes() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Catalog)
	}
}

// erasedResponse answers DELETE /executions/{id}/content.
type erasedResponse struct {
	ExecutionID string `json:"execution_id"`
	Erased      bool   `json:"erased"`
	// RecordedInTheClear is true for an execution recorded before content
	// was sealed: the views no longer show its content, but the ledger's
	// events hold it in the clear and no key can erase it from there.
	RecordedInTheClear bool `json:"recorded_in_the_clear"`
}

// handleErase erases an ended execution's content (its script, stdin and
// output) for its owner or an admin: ExecutionErased in the ledger, the
// data key destroyed. 409 while it is queued or running.
func (s *server) handleErase() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			if err := decodeJSON(w, r, &struct{}{}); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		}
		e, err := s.lookupFor(r, chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if s.Eraser == nil {
			writeError(w, r, s.Logger, domain.Errorf(domain.EUNAVAILABLE, "erasure is not available on this server"))
			return
		}
		out, err := s.Eraser.Erase(r.Context(), e.ID, principal(r).ID(), domain.EraseRequested)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		s.recent.forget(e.ID)
		writeJSON(w, http.StatusOK, erasedResponse{ExecutionID: e.ID, Erased: true, RecordedInTheClear: out.InTheClear})
	}
}
