package web

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// TestWithoutAccountsEveryoneIsAnonymous: with accounts off the account
// routes do not exist (404), a credential is not even looked at, and
// executions work as they do for anonymous callers (by id, no list).
func TestWithoutAccountsEveryoneIsAnonymous(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.Accounts, d.Scripts = nil, nil })
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/auth/register"}, {http.MethodPost, "/api/v1/auth/login"},
		{http.MethodGet, "/api/v1/auth/me"}, {http.MethodGet, "/api/v1/scripts"}, {http.MethodGet, "/api/v1/admin/users"},
	} {
		if r := call(t, c.method, a.URL+c.path, "", "Authorization", "Bearer whatever"); r.Status != http.StatusNotFound {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	bogus := []string{"Authorization", "Bearer not-a-token"}
	r := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`, bogus...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	e := decodeExecution(t, r)
	if e.Owner != "anonymous" {
		t.Fatalf("owner %q", e.Owner)
	}
	if r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+e.ID, "", bogus...); r.Status != http.StatusOK {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodGet, a.URL+"/api/v1/executions", "", bogus...); r.Status != http.StatusUnauthorized || r.errorCode(t) != domain.EUNAUTHORIZED {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
}

// TestRegistrationsPerAddressAreLimited: an address registers at most ten
// accounts an hour; the eleventh gets 429 with Retry-After and no account.
func TestRegistrationsPerAddressAreLimited(t *testing.T) {
	a := startAPI(t, nil)
	for i := range registrationsPerHour {
		if r := call(t, http.MethodPost, a.URL+"/api/v1/auth/register", credentialsBody("bulk"+strconv.Itoa(i), goodPassword)); r.Status != http.StatusCreated {
			t.Fatalf("registration %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := call(t, http.MethodPost, a.URL+"/api/v1/auth/register", credentialsBody("one-too-many", goodPassword))
	if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != http.StatusTooManyRequests || r.errorCode(t) != domain.ETOOMANY || s < 1 {
		t.Fatalf("the eleventh: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/auth/login", credentialsBody("one-too-many", goodPassword)); r.Status != http.StatusUnauthorized {
		t.Fatalf("the refused account signs in: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodPost, a.URL+"/api/v1/auth/login", credentialsBody("bulk9", goodPassword)); r.Status != http.StatusOK {
		t.Fatalf("the tenth cannot sign in: %d %s", r.Status, r.Body)
	}
}
