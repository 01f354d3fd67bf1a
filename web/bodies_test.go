package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

// TestEveryJSONEndpointRefusesMalformedBodiesAndChangesNothing: each route
// that takes a JSON body answers 400 with the error shape for a truncated
// body, a non-object and an unknown field, and none of them leaves a trace:
// no account, token, script, patch or execution.
func TestEveryJSONEndpointRefusesMalformedBodiesAndChangesNothing(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "careful")
	admin := makeAdmin(t, a, "root")
	script := call(t, http.MethodPost, a.URL+"/api/v1/scripts", `{"name":"kept","script":"print('kept')"}`, u.bearer()...)
	if script.Status != http.StatusCreated {
		t.Fatalf("save: %d %s", script.Status, script.Body)
	}
	var sc scriptResource
	_ = json.Unmarshal(script.Body, &sc)
	queued := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`, u.bearer()...))

	routes := []struct {
		method, path string
		header       []string
	}{
		{http.MethodPost, "/api/v1/auth/register", nil},
		{http.MethodPost, "/api/v1/auth/login", nil},
		{http.MethodPost, "/api/v1/auth/tokens", u.bearer()},
		{http.MethodPost, "/api/v1/scripts", u.bearer()},
		{http.MethodPut, "/api/v1/scripts/" + sc.ID, u.bearer()},
		{http.MethodPatch, "/api/v1/admin/users/" + u.ID, admin.bearer()},
		{http.MethodPost, "/api/v1/executions", u.bearer()},
		{http.MethodPost, "/api/v1/execute", u.bearer()},
		{http.MethodPost, "/api/v1/executions/" + queued.ID + "/cancel", u.bearer()},
		{http.MethodDelete, "/api/v1/executions/" + queued.ID + "/content", u.bearer()},
	}
	for _, rt := range routes {
		for _, body := range []string{`{"name":`, `["a"]`, `{"surely_not_a_field":1}`, `{"a":1} {"b":2}`} {
			r := call(t, rt.method, a.URL+rt.path, body, rt.header...)
			if r.Status != http.StatusBadRequest || r.errorCode(t) != domain.EINVALID {
				t.Fatalf("%s %s with %s: %d %s", rt.method, rt.path, body, r.Status, r.Body)
			}
		}
	}
	// Inside "limits" too, a field of the wrong type or an unknown one is
	// named, in JSON's words.
	for body, want := range map[string]string{
		`{"limits":{"burst":"ten"}}`: `field "burst" must be an integer in range`,
		`{"limits":{"bogus":1}}`:     `unknown field "bogus"`,
		`{"disabled":"yes"}`:         `field "disabled" must be true or false`,
		`{"role":{"name":"admin"}}`:  `field "role" must be a string`,
	} {
		r := call(t, http.MethodPatch, a.URL+"/api/v1/admin/users/"+u.ID, body, admin.bearer()...)
		if r.Status != http.StatusBadRequest || r.message(t) != want {
			t.Fatalf("%s: %d %s", body, r.Status, r.Body)
		}
	}

	// Nothing changed.
	if r := call(t, http.MethodGet, a.URL+"/api/v1/auth/tokens", "", u.bearer()...); r.Status != http.StatusOK || string(r.Body) != `{"tokens":[]}` {
		t.Fatalf("tokens: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodGet, a.URL+"/api/v1/scripts/"+sc.ID, "", u.bearer()...); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"script":"print('kept')"`) {
		t.Fatalf("the script: %d %s", r.Status, r.Body)
	}
	var scripts struct{ Scripts []scriptResource }
	_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/scripts", "", u.bearer()...).Body, &scripts)
	if len(scripts.Scripts) != 1 {
		t.Fatalf("scripts after refused saves: %+v", scripts)
	}
	var users struct{ Users []userResource }
	_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/admin/users", "", admin.bearer()...).Body, &users)
	if len(users.Users) != 2 {
		t.Fatalf("users after refused registrations: %+v", users)
	}
	if e := decodeExecution(t, call(t, http.MethodGet, a.URL+"/api/v1/executions/"+queued.ID, "", u.bearer()...)); e.Status != domain.StatusQueued || e.Script != "print(1)" {
		t.Fatalf("the execution after refused cancels and erasures: %+v", e)
	}
	var page listResponse
	waitFor(t, func() bool {
		_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/executions?owner=", "", admin.bearer()...).Body, &page)
		return len(page.Executions) >= 1
	})
	if len(page.Executions) != 1 {
		t.Fatalf("executions after refused submissions: %d", len(page.Executions))
	}
}

// TestPagesAndTheirBadQueries: users, scripts and executions come in pages
// that a next_cursor continues to the end, each item once; a limit out of
// 1..100, an unknown status or a forged cursor is a 400.
func TestPagesAndTheirBadQueries(t *testing.T) {
	a := startAPI(t, nil)
	admin := makeAdmin(t, a, "admin")
	u := register(t, a, "pager")
	register(t, a, "other")
	for i := range 3 {
		if r := call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(`+strconv.Itoa(i)+`)"}`, u.bearer()...); r.Status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
	}
	// pages walks path one item a page and returns the ids in order.
	pages := func(path, field string, header []string) []string {
		var ids []string
		cursor := ""
		for range 10 {
			r := call(t, http.MethodGet, a.URL+path+"?limit=1&cursor="+url.QueryEscape(cursor), "", header...)
			var page map[string]json.RawMessage
			if r.Status != http.StatusOK || json.Unmarshal(r.Body, &page) != nil {
				t.Fatalf("%s: %d %s", path, r.Status, r.Body)
			}
			var items []struct {
				ID          string `json:"id"`
				ExecutionID string `json:"execution_id"`
			}
			_ = json.Unmarshal(page[field], &items)
			for _, it := range items {
				ids = append(ids, it.ID+it.ExecutionID)
			}
			cursor = ""
			_ = json.Unmarshal(page["next_cursor"], &cursor)
			if cursor == "" {
				return ids
			}
		}
		t.Fatalf("%s: more pages than items: %v", path, ids)
		return nil
	}
	if got := pages("/api/v1/admin/users", "users", admin.bearer()); len(got) != 3 || got[0] == got[1] || got[1] == got[2] {
		t.Fatalf("users page by page: %v", got)
	}
	waitFor(t, func() bool { return len(pages("/api/v1/executions", "executions", u.bearer())) == 3 })
	if got := pages("/api/v1/executions", "executions", u.bearer()); got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
		t.Fatalf("executions page by page: %v", got)
	}
	if got := pages("/api/v1/executions", "executions", admin.bearer()); len(got) != 3 {
		t.Fatalf("an admin's pages of everyone's: %v", got)
	}

	for _, q := range []string{
		"/api/v1/admin/users?limit=0", "/api/v1/admin/users?limit=101", "/api/v1/admin/users?limit=ten",
		"/api/v1/scripts?limit=-1",
		"/api/v1/executions?limit=1000", "/api/v1/executions?status=lost",
		"/api/v1/executions?cursor=nodot", "/api/v1/executions?cursor=zz!.0193a1c2-0000-7000-8000-000000000000",
		"/api/v1/executions?cursor=1.not-a-uuid",
	} {
		header := u.bearer()
		if strings.Contains(q, "/admin/") {
			header = admin.bearer()
		}
		if r := call(t, http.MethodGet, a.URL+q, "", header...); r.Status != http.StatusBadRequest || r.errorCode(t) != domain.EINVALID {
			t.Fatalf("%s: %d %s", q, r.Status, r.Body)
		}
	}
	var queued listResponse
	_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/executions?status=queued", "", u.bearer()...).Body, &queued)
	var completed listResponse
	_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/executions?status=completed", "", u.bearer()...).Body, &completed)
	if len(queued.Executions) != 3 || len(completed.Executions) != 0 {
		t.Fatalf("by status: %d queued, %d completed", len(queued.Executions), len(completed.Executions))
	}
}

// TestAdminLimitsNullReturnsAUserToTheRolesLimits: "limits": null clears a
// user's own quota (left out, it stays).
func TestAdminLimitsNullReturnsAUserToTheRolesLimits(t *testing.T) {
	a := startAPI(t, nil)
	admin := makeAdmin(t, a, "admin")
	u := register(t, a, "limited")
	own := `"limits":{"submissions_per_minute":7,"burst":7,"concurrent":7}`
	if r := call(t, http.MethodPatch, a.URL+"/api/v1/admin/users/"+u.ID, "{"+own+"}", admin.bearer()...); r.Status != http.StatusOK {
		t.Fatalf("set limits: %d %s", r.Status, r.Body)
	}
	if r := call(t, http.MethodPatch, a.URL+"/api/v1/admin/users/"+u.ID, `{"disabled":false}`, admin.bearer()...); !strings.Contains(string(r.Body), `"concurrent":7`) {
		t.Fatalf("a patch without limits dropped them: %d %s", r.Status, r.Body)
	}
	r := call(t, http.MethodPatch, a.URL+"/api/v1/admin/users/"+u.ID, `{"limits":null}`, admin.bearer()...)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), `"concurrent":7`) {
		t.Fatalf("limits null: %d %s", r.Status, r.Body)
	}
	if me := call(t, http.MethodGet, a.URL+"/api/v1/auth/me", "", u.bearer()...); strings.Contains(string(me.Body), `"concurrent":7`) {
		t.Fatalf("the user still has their own limits: %s", me.Body)
	}
}
