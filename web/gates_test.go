package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

// TestAnEndedExecutionFreesItsSlotAtOnce: an anonymous caller at its
// concurrency limit gets 429 while its execution waits, and may submit
// again as soon as it ended (cancelled here): the gate looks up what it
// remembers once the limit is reached, and forgets what ended.
func TestAnEndedExecutionFreesItsSlotAtOnce(t *testing.T) {
	one := accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 1}
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.Quotas = &accounts.Quotas{Anonymous: one, User: one, Admin: one} })
	submit := func() answer { return call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`) }
	first := submit()
	if first.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	if r := submit(); r.Status != http.StatusTooManyRequests || r.errorCode(t) != domain.ETOOMANY {
		t.Fatalf("second while the first waits: %d %s", r.Status, r.Body)
	}
	id := decodeExecution(t, first).ID
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions/"+id+"/cancel", ""); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	// The cancel's answer is folded into what this process read last, so
	// the gate sees the end without waiting for the projection.
	if r := submit(); r.Status != http.StatusAccepted {
		t.Fatalf("after the first ended: %d %s", r.Status, r.Body)
	}
	if r := submit(); r.Status != http.StatusTooManyRequests {
		t.Fatalf("the freed slot was given twice: %d %s", r.Status, r.Body)
	}
}

// TestRefreshWithoutASignInIs401: a refresh with no refresh cookie is a
// 401 with the Bearer challenge, and sets no cookie.
func TestRefreshWithoutASignInIs401(t *testing.T) {
	a := startAPI(t, nil)
	r := call(t, http.MethodPost, a.URL+"/api/v1/auth/refresh", "")
	if r.Status != http.StatusUnauthorized || r.errorCode(t) != domain.EUNAUTHORIZED ||
		!strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") || len(cookiesOf(r)) != 0 {
		t.Fatalf("refresh without a cookie: %d %v %s", r.Status, r.Header, r.Body)
	}
}

// TestMisconfiguredCORSOriginsFailClosed: an allow-list the server cannot
// use is logged and ignored, so that no origin is trusted by mistake.
func TestMisconfiguredCORSOriginsFailClosed(t *testing.T) {
	log, logged := capturedLogger()
	h := NewServer(Deps{Logger: log, CORSOrigins: []string{"https://app.example.com/path"}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodOptions, "/api/v1/executions", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from the misconfigured origin: %d %v", rec.Code, rec.Header())
	}
	if !strings.Contains(logged.String(), "CORS origins ignored") {
		t.Fatalf("the bad allow-list was not logged: %s", logged)
	}
}
