// Package web is the HTTP face of the platform: the REST API (chi), Server-
// Sent Events, health endpoints and metrics. It turns requests into ledger
// commands and answers reads from the projections.
package web

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

// Ledger is what the API needs of the event store: it asks the ledger
// writer to append (submit, cancel) and gets its decision.
type Ledger interface {
	Ask(ctx context.Context, cmd eventstore.Command) (eventstore.Reply, error)
}

// Deps are the server's collaborators. Ledger, Views, Keys and Catalog are required.
type Deps struct {
	Ledger  Ledger
	Views   projections.Store
	Hub     *projections.Hub // optional: in-process change notifications
	Backlog Backlog          // optional: queue positions and depth
	// Keys are the ledger writer's public keys: /ledger/keys serves them
	// and /events verifies signatures with them.
	Keys    *eventstore.KeySet
	Catalog domain.Catalog
	Logger  *slog.Logger
	// Registry serves /metrics; Registerer takes the HTTP series.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer
	// Ready reports whether the process can take work (nil: always).
	Ready func(context.Context) error
	// PollEvery is how often waiters re-read the views when no in-process
	// notification arrives (the API runs apart from the projector).
	PollEvery time.Duration
	// MaxWait bounds ?wait=true.
	MaxWait time.Duration
	// AskTimeout bounds a wait for the ledger writer's decision.
	AskTimeout time.Duration
	// StreamsPerClient caps the concurrent event streams of one client
	// (default 8); more are answered 429 with Retry-After.
	StreamsPerClient int
	// CORSOrigins are the origins ("https://app.example.com") whose pages
	// may call the API from a browser. Empty: only the API's own origin.
	CORSOrigins []string

	// Accounts and Scripts serve sign-in, tokens and saved scripts. Nil:
	// accounts are off, everyone is anonymous and the account routes
	// answer 404.
	Accounts *accounts.Service
	Scripts  *accounts.Scripts
	// Quotas bound what each caller submits (default accounts.DefaultQuotas).
	Quotas *accounts.Quotas
	// TrustedProxies may say who the client is in X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// IdempotencySecret keys the execution ids derived from Idempotency-Key
	// headers; every API replica must hold the same (the platform keeps it
	// beside the token keys). Nil: a random one for this process.
	IdempotencySecret []byte
	// MaxBacklog is how many queued executions the platform takes before
	// it answers new submissions 503 (default 500, at most 1000).
	MaxBacklog int
	// Content seals a submission's script and stdin and opens an
	// execution's content for whoever may read it; Eraser erases it
	// (package content). Nil: keys in memory for this process only.
	Content Content
	Eraser  Eraser
}

// Content is what the API needs of the content keys (content.Keys).
type Content interface {
	SealInput(ctx context.Context, executionID string, in domain.Input) (domain.Sealed, error)
	Reveal(ctx context.Context, e *domain.Execution) error
}

// Eraser erases an execution's content (content.Eraser).
type Eraser interface {
	Erase(ctx context.Context, executionID, actor, reason string) (content.Outcome, error)
}

type server struct {
	Deps
	Quotas        accounts.Quotas
	proxies       trustedProxies
	admission     *admission
	registrations *accounts.KeyedLimiter
	backlog       *queue // for the admission gate (quota.go)
	metrics       *httpMetrics
	queue         *queue
	recent        *recent
	streams       *streamCap
	cors          *crossOrigin
}

// NewServer returns the whole HTTP API as one handler.
func NewServer(d Deps) http.Handler { return newServer(d).routes() }

func newServer(d Deps) *server {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.PollEvery == 0 {
		d.PollEvery = 250 * time.Millisecond
	}
	if d.MaxWait == 0 {
		d.MaxWait = 60 * time.Second
	}
	if d.AskTimeout == 0 {
		d.AskTimeout = 10 * time.Second
	}
	if d.Gatherer == nil {
		d.Gatherer = prometheus.DefaultGatherer
	}
	if d.StreamsPerClient == 0 {
		d.StreamsPerClient = 8
	}
	if d.MaxBacklog <= 0 {
		d.MaxBacklog = defaultMaxBacklog
	}
	d.MaxBacklog = min(d.MaxBacklog, queueScan)
	if d.IdempotencySecret == nil {
		d.IdempotencySecret = make([]byte, 32)
		_, _ = rand.Read(d.IdempotencySecret)
	}
	if d.Content == nil {
		kek := make([]byte, 32)
		_, _ = rand.Read(kek)
		keys, _ := content.NewKeys(content.NewMemoryStore(), kek)
		d.Content = keys
		if d.Eraser == nil && d.Ledger != nil {
			d.Eraser = &content.Eraser{Keys: keys, Ledger: d.Ledger, Logger: d.Logger}
		}
	}
	quotas := accounts.DefaultQuotas
	if d.Quotas != nil {
		quotas = *d.Quotas
	}
	s := &server{Deps: d, Quotas: quotas, proxies: trustedProxies(d.TrustedProxies), admission: newAdmission(),
		registrations: accounts.NewKeyedLimiter(nil),
		metrics:       newHTTPMetrics(d.Registerer), recent: newRecent(time.Minute),
		streams: newStreamCap(d.StreamsPerClient)}
	cors, err := newCrossOrigin(d.CORSOrigins)
	if err != nil {
		// Configuration validates the list first; fail closed all the same.
		d.Logger.Error("CORS origins ignored", "err", err)
		cors, _ = newCrossOrigin(nil)
	}
	s.cors = cors
	if d.Backlog != nil {
		// Two caches of the same backlog: the admission gate looks at it
		// on every submission, and must not leave the positions of
		// executions queued since out of the answers to their GETs.
		s.queue = &queue{backlog: d.Backlog}
		s.backlog = &queue{backlog: d.Backlog}
		if d.Registerer != nil {
			d.Registerer.MustRegister(&queueCollector{q: s.backlog, log: d.Logger})
		}
	}
	return s
}
