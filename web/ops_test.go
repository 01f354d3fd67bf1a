package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integr8scode/integr8scode/domain"
)

// logBuffer is a logger's output, safe to read while handlers log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func capturedLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// TestOpsHandlerServesHealthReadinessAndMetricsOnly: the runner's and the
// projector's handler says whether the process can take work (503 with
// the reason until it can), serves the metrics it is given, and answers
// everything else as the API answers an unknown route.
func TestOpsHandlerServesHealthReadinessAndMetricsOnly(t *testing.T) {
	var notReady atomic.Pointer[error]
	cause := errors.New("the broker is not reachable yet")
	notReady.Store(&cause)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "ops_test_marker_total", Help: "marker"}))
	srv := httptest.NewServer(NewOps(Deps{Gatherer: reg, Ready: func(context.Context) error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}}))
	defer srv.Close()

	if r := call(t, http.MethodGet, srv.URL+"/healthz", ""); r.Status != http.StatusOK || string(r.Body) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	r := call(t, http.MethodGet, srv.URL+"/readyz", "")
	if r.Status != http.StatusServiceUnavailable || r.errorCode(t) != domain.EUNAVAILABLE || r.message(t) != cause.Error() {
		t.Fatalf("readyz while not ready: %d %s", r.Status, r.Body)
	}
	notReady.Store(nil)
	if r := call(t, http.MethodGet, srv.URL+"/readyz", ""); r.Status != http.StatusOK || string(r.Body) != `{"status":"ready"}` {
		t.Fatalf("readyz once ready: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodGet, srv.URL+"/metrics", ""); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "ops_test_marker_total 0") {
		t.Fatalf("metrics: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodHead, srv.URL+"/healthz", ""); r.Status != http.StatusOK || len(r.Body) != 0 {
		t.Fatalf("HEAD healthz: %d %q", r.Status, r.Body)
	}
	// No API here: its routes are unknown, not half-served.
	for _, path := range []string{"/api/v1/executions", "/api/v1/queue", "/"} {
		if r := call(t, http.MethodGet, srv.URL+path, ""); r.Status != http.StatusNotFound || r.errorCode(t) != domain.ENOTFOUND {
			t.Fatalf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := call(t, http.MethodPost, srv.URL+"/metrics", ""); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST metrics: %d %v %s", r.Status, r.Header, r.Body)
	}

	// Without a registry of its own it serves the process's default one.
	def := httptest.NewServer(NewOps(Deps{}))
	defer def.Close()
	if r := call(t, http.MethodGet, def.URL+"/metrics", ""); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "go_goroutines") {
		t.Fatalf("default metrics: %d", r.Status)
	}
	if r := call(t, http.MethodGet, def.URL+"/readyz", ""); r.Status != http.StatusOK {
		t.Fatalf("readyz without a check: %d %s", r.Status, r.Body)
	}
}

// TestAPIReadinessAnswers503WithTheReason: the API's /readyz asks the same
// check, bounded, and passes its reason on.
func TestAPIReadinessAnswers503WithTheReason(t *testing.T) {
	var deadline atomic.Bool
	h := NewServer(Deps{Logger: slog.New(slog.DiscardHandler), Ready: func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		deadline.Store(ok)
		return fmt.Errorf("store: %w", errors.New("no primary"))
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	r := answer{Status: rec.Code, Header: rec.Header(), Body: bytes.TrimSpace(rec.Body.Bytes())}
	if r.Status != http.StatusServiceUnavailable || r.errorCode(t) != domain.EUNAVAILABLE || r.message(t) != "store: no primary" {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	if !deadline.Load() {
		t.Fatal("the readiness check ran without a deadline: a hung store would hang the probe")
	}
}

// TestPanicsAnswer500WithoutTheirCause: a handler's panic is logged with
// its value and answered as an internal error that says nothing more; the
// panic net/http uses to abort a response is passed on, not answered.
func TestPanicsAnswer500WithoutTheirCause(t *testing.T) {
	log, logged := capturedLogger()
	s := &server{Deps: Deps{Logger: log}}
	h := s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret-7781 exploded") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	r := answer{Status: rec.Code, Header: rec.Header(), Body: bytes.TrimSpace(rec.Body.Bytes())}
	if r.Status != http.StatusInternalServerError || r.errorCode(t) != domain.EINTERNAL || strings.Contains(string(r.Body), "secret-7781") {
		t.Fatalf("panic answered %d %s", r.Status, r.Body)
	}
	if !strings.Contains(logged.String(), "secret-7781 exploded") {
		t.Fatalf("the panic was not logged: %s", logged)
	}

	abort := s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	rec = httptest.NewRecorder()
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Fatalf("recovered %v, want http.ErrAbortHandler passed on", v)
			}
		}()
		abort.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	}()
	if rec.Body.Len() != 0 {
		t.Fatalf("an aborted response was answered: %s", rec.Body)
	}
}

// TestAbandonedRequestsAreNeitherAnsweredNorLoggedAsFailures: when the
// client went away, the cancellation it caused is not the platform's
// error (no error log, no answer nobody reads); the same error while the
// client still waits is one.
func TestAbandonedRequestsAreNeitherAnsweredNorLoggedAsFailures(t *testing.T) {
	log, logged := capturedLogger()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := fmt.Errorf("read view: %w", context.Canceled)
	rec := httptest.NewRecorder()
	writeError(rec, httptest.NewRequest(http.MethodGet, "/api/v1/executions", nil).WithContext(ctx), log, err)
	if rec.Body.Len() != 0 || strings.Contains(logged.String(), "level=ERROR") || !strings.Contains(logged.String(), "abandoned") {
		t.Fatalf("an abandoned request: answered %q, logged %s", rec.Body, logged)
	}

	rec = httptest.NewRecorder()
	writeError(rec, httptest.NewRequest(http.MethodGet, "/api/v1/executions", nil), log, err)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(logged.String(), "level=ERROR") || strings.Contains(rec.Body.String(), "read view") {
		t.Fatalf("a live request: %d %q, logged %s", rec.Code, rec.Body, logged)
	}
}

// TestParseOriginsTakesOnlyBareOrigins: --cors-origins is a list of
// scheme://host[:port]; anything with a path, a wildcard or no scheme is
// refused rather than trusted loosely.
func TestParseOriginsTakesOnlyBareOrigins(t *testing.T) {
	got, err := ParseOrigins(" https://app.example.com, ,http://localhost:5173 ,")
	if err != nil || strings.Join(got, " ") != "https://app.example.com http://localhost:5173" {
		t.Fatalf("ParseOrigins: %q %v", got, err)
	}
	if got, err := ParseOrigins(""); err != nil || got != nil {
		t.Fatalf("an empty list: %q %v", got, err)
	}
	for _, bad := range []string{"https://app.example.com/path", "*", "app.example.com", "https://ok.example, https://x.example/?q=1"} {
		if got, err := ParseOrigins(bad); err == nil {
			t.Fatalf("ParseOrigins(%q) = %q, want an error", bad, got)
		}
	}
}
