package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestUnroutedRequestsAnswerPrecisely(t *testing.T) {
	a := startAPI(t, nil)
	t.Run("ErrLongIDIsNotEchoedWhole", func(t *testing.T) {
		long := strings.Repeat("x", 5000)
		r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+long, "")
		if r.Status != http.StatusNotFound || r.errorCode(t) != "not_found" || len(r.Body) > 300 {
			t.Fatalf("got %d, %d bytes", r.Status, len(r.Body))
		}
		// GET of a path outside the API is the web app's (index.html);
		// any other method there is still the API's bounded 404.
		r = call(t, http.MethodPost, a.URL+"/"+long, "")
		if r.Status != http.StatusNotFound || len(r.Body) > 300 {
			t.Fatalf("unknown path: %d, %d bytes", r.Status, len(r.Body))
		}
	})
	t.Run("Err405CarriesAllow", func(t *testing.T) {
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodDelete, "/api/v1/executions", "GET, HEAD, POST"},
			{http.MethodPut, "/api/v1/executions/0193a1c2-0000-7000-8000-000000000000", "GET, HEAD"},
			{http.MethodGet, "/api/v1/executions/0193a1c2-0000-7000-8000-000000000000/cancel", "POST"},
			{http.MethodPost, "/metrics", "GET, HEAD"},
			{strings.Repeat("M", 300), "/healthz", "GET, HEAD"},
		} {
			r := call(t, c.method, a.URL+c.path, "")
			if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != c.allow || r.errorCode(t) != eMethodNotAllowed || len(r.Body) > 300 {
				t.Fatalf("%.10s %s: %d Allow %q %s", c.method, c.path, r.Status, r.Header.Get("Allow"), r.Body)
			}
		}
	})
	t.Run("OK HEAD on GET routes", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/v1/queue", "/api/v1/runtimes", "/api/v1/openapi.yaml"} {
			if r := call(t, http.MethodHead, a.URL+path, ""); r.Status != http.StatusOK {
				t.Fatalf("HEAD %s: %d", path, r.Status)
			}
		}
	})
}
