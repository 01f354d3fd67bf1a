package web

import (
	"net/http"
	"testing"
)

// TestCrossSitePagesCannotSubmitOrCancel plays a page of another site: a
// text/plain POST needs no preflight, so only the server can stop it.
func TestCrossSitePagesCannotSubmitOrCancel(t *testing.T) {
	a := startAPI(t, nil)
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	browser := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "text/plain"}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`, browser...); r.Status != http.StatusForbidden || r.errorCode(t) != "forbidden" {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions/"+id+"/cancel", "", browser...); r.Status != http.StatusForbidden {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	// An older browser without Sec-Fetch-Site: the Origin does not match Host.
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions/"+id+"/cancel", "", "Origin", "https://evil.example"); r.Status != http.StatusForbidden {
		t.Fatalf("cancel by Origin: %d %s", r.Status, r.Body)
	}
	r := call(t, http.MethodOptions, a.URL+"/api/v1/executions", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if r.Status != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
	if r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id, "", "Origin", "https://evil.example"); r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a read must not be shared with another origin: %d %v", r.Status, r.Header)
	}
	if r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id, ""); r.Status != http.StatusOK {
		t.Fatalf("state unchanged, still readable: %d %s", r.Status, r.Body)
	}
	if e := decodeExecution(t, call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id, "")); e.Status != "queued" {
		t.Fatalf("cancelled by a cross-site page: %+v", e)
	}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions/"+id+"/cancel", "", "Sec-Fetch-Site", "same-origin"); r.Status != http.StatusAccepted {
		t.Fatalf("same-origin cancel: %d %s", r.Status, r.Body)
	}
}

func TestAllowedOriginsGetCORS(t *testing.T) {
	const app = "https://app.example.com"
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.CORSOrigins = []string{app} })
	r := call(t, http.MethodOptions, a.URL+"/api/v1/executions", "", "Origin", app, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type")
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != app ||
		r.Header.Get("Access-Control-Allow-Methods") == "" || r.Header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
	r = call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`, "Origin", app, "Sec-Fetch-Site", "cross-site")
	if r.Status != http.StatusAccepted || r.Header.Get("Access-Control-Allow-Origin") != app || r.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Fatalf("submit from the app: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"1"}`, "Origin", "https://other.example", "Sec-Fetch-Site", "cross-site"); r.Status != http.StatusForbidden {
		t.Fatalf("another origin: %d", r.Status)
	}
}
