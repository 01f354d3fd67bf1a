package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// A password that passes the policy.
const goodPassword = "correct horse battery staple"

// signedIn is a user of a test server and how it proves itself.
type signedIn struct {
	ID       string
	Username string
	Access   string         // the access token from the login answer
	Cookies  []*http.Cookie // the session cookies from the login answer
}

func (u signedIn) bearer() []string { return []string{"Authorization", "Bearer " + u.Access} }

func cookiesOf(a answer) []*http.Cookie { return (&http.Response{Header: a.Header}).Cookies() }

func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// withCookies sends a request carrying cookies, as a browser on the API's
// own origin would.
func withCookies(t testing.TB, method, url, body string, cookies []*http.Cookie, header ...string) answer {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return send(t, req)
}

func credentialsBody(user, password string) string {
	b, _ := json.Marshal(map[string]string{"username": user, "password": password})
	return string(b)
}

// register signs a new user up and in.
func register(t testing.TB, a *api, name string) signedIn {
	t.Helper()
	r := call(t, "POST", a.URL+"/api/v1/auth/register", credentialsBody(name, goodPassword))
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
	}
	var created struct {
		User struct{ ID, Username, Role string }
	}
	_ = json.Unmarshal(r.Body, &created)
	if created.User.Role != "user" {
		t.Fatalf("registered with role %q", created.User.Role)
	}
	u := login(t, a, name, goodPassword)
	u.ID = created.User.ID
	return u
}

func login(t testing.TB, a *api, name, password string) signedIn {
	t.Helper()
	r := call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody(name, password))
	if r.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_ = json.Unmarshal(r.Body, &tok)
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.ExpiresIn < 500 || tok.ExpiresIn > 600 {
		t.Fatalf("login answer %s", r.Body)
	}
	me := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+tok.AccessToken)
	var who struct{ ID string }
	_ = json.Unmarshal(me.Body, &who)
	return signedIn{ID: who.ID, Username: name, Access: tok.AccessToken, Cookies: cookiesOf(r)}
}

// makeAdmin creates an admin as the command line does, and signs it in.
func makeAdmin(t testing.TB, a *api, name string) signedIn {
	t.Helper()
	if _, err := a.accounts.CreateUser(context.Background(), name, goodPassword, accounts.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return login(t, a, name, goodPassword)
}

func TestRegistrationRefusesWeakPasswordsRolesAndTakenNames(t *testing.T) {
	a := startAPI(t, nil)
	for _, c := range []struct{ name, body string }{
		{"short", credentialsBody("ada", "short")},
		{"common, repeated", credentialsBody("ada", "passwordpassword")},
		{"sequential", credentialsBody("ada", "123456789012345")},
		{"one character", credentialsBody("ada", strings.Repeat("a", 20))},
		{"contains the username", credentialsBody("lovelace", "my name is lovelace indeed")},
		{"bad username", credentialsBody("a b", goodPassword)},
	} {
		r := call(t, "POST", a.URL+"/api/v1/auth/register", c.body)
		if r.Status != http.StatusUnprocessableEntity || r.message(t) == "" {
			t.Fatalf("%s: %d %s", c.name, r.Status, r.Body)
		}
	}
	r := call(t, "POST", a.URL+"/api/v1/auth/register", `{"username":"ada","password":"`+goodPassword+`","role":"admin"}`)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("registering with a role: %d %s", r.Status, r.Body)
	}
	register(t, a, "Ada")
	if r := call(t, "POST", a.URL+"/api/v1/auth/register", credentialsBody("aDA", goodPassword)); r.Status != http.StatusConflict {
		t.Fatalf("a taken name in other case: %d %s", r.Status, r.Body)
	}
}

func TestSessionCookiesRefreshRotationReuseAndSignOut(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "grace")
	access, refresh := cookieNamed(u.Cookies, accessCookie), cookieNamed(u.Cookies, refreshCookie)
	if access == nil || refresh == nil || !access.HttpOnly || !refresh.HttpOnly ||
		access.SameSite != http.SameSiteStrictMode || refresh.SameSite != http.SameSiteStrictMode ||
		refresh.Path != "/api/v1/auth" || access.Secure {
		t.Fatalf("session cookies: %+v %+v", access, refresh)
	}
	if r := withCookies(t, "GET", a.URL+"/api/v1/auth/me", "", []*http.Cookie{access}); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `"username":"grace"`) {
		t.Fatalf("me by cookie: %d %s", r.Status, r.Body)
	}

	// Rotation: the refresh cookie is spent and replaced.
	r1 := withCookies(t, "POST", a.URL+"/api/v1/auth/refresh", "", []*http.Cookie{refresh})
	if r1.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Body)
	}
	refresh2 := cookieNamed(cookiesOf(r1), refreshCookie)
	if refresh2 == nil || refresh2.Value == refresh.Value {
		t.Fatal("the refresh token did not rotate")
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(r1.Body, &tok)
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+tok.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("the refreshed access token: %d", r.Status)
	}

	// An API token made in this sign-in, by whoever holds it now.
	minted := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":"minted"}`, "Authorization", "Bearer "+tok.AccessToken)
	var mintedTok struct{ Token string }
	_ = json.Unmarshal(minted.Body, &mintedTok)
	if minted.Status != http.StatusCreated {
		t.Fatalf("mint: %d %s", minted.Status, minted.Body)
	}

	// Reuse of the spent token: a copy was taken, the whole sign-in ends,
	// for the newest refresh token and every access token of it too, and
	// the API tokens made in it.
	if r := withCookies(t, "POST", a.URL+"/api/v1/auth/refresh", "", []*http.Cookie{refresh}); r.Status != http.StatusUnauthorized {
		t.Fatalf("reused refresh token: %d %s", r.Status, r.Body)
	}
	if r := withCookies(t, "POST", a.URL+"/api/v1/auth/refresh", "", []*http.Cookie{refresh2}); r.Status != http.StatusUnauthorized {
		t.Fatalf("the sign-in survived the reuse: %d", r.Status)
	}
	for _, tokn := range []string{u.Access, tok.AccessToken, mintedTok.Token} {
		if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+tokn); r.Status != http.StatusUnauthorized ||
			r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("an access token of the revoked sign-in: %d", r.Status)
		}
	}

	// Sign out: the sign-in ends at once and the cookies are cleared.
	v := login(t, a, "grace", goodPassword)
	out := withCookies(t, "POST", a.URL+"/api/v1/auth/logout", "", v.Cookies)
	if out.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", out.Status, out.Body)
	}
	for _, c := range cookiesOf(out) {
		if c.MaxAge >= 0 || c.Value != "" {
			t.Fatalf("cookie not cleared: %+v", c)
		}
	}
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", v.bearer()...); r.Status != http.StatusUnauthorized {
		t.Fatalf("access token after logout: %d", r.Status)
	}
	if r := withCookies(t, "POST", a.URL+"/api/v1/auth/refresh", "", v.Cookies); r.Status != http.StatusUnauthorized {
		t.Fatalf("refresh after logout: %d", r.Status)
	}
	// A stale session cookie does not lock the browser out of signing in.
	if r := withCookies(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("grace", goodPassword), v.Cookies); r.Status != http.StatusOK {
		t.Fatalf("login with stale cookies: %d %s", r.Status, r.Body)
	}
}

func TestCookieWritesFromOtherSitesAreRefused(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "mallory-target")
	r := withCookies(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, u.Cookies,
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.Status != http.StatusForbidden {
		t.Fatalf("cross-site cookie write: %d %s", r.Status, r.Body)
	}
	if r := withCookies(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, u.Cookies,
		"Sec-Fetch-Site", "same-origin"); r.Status != http.StatusAccepted {
		t.Fatalf("same-origin cookie write: %d %s", r.Status, r.Body)
	}
	// A bearer request carries no ambient credential: no CSRF token needed.
	if r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, u.bearer()...); r.Status != http.StatusAccepted {
		t.Fatalf("bearer write: %d %s", r.Status, r.Body)
	}
}

// forge signs claims with key under method.
func forge(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestForgedExpiredAndDisabledTokensAreRefused(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "victim")
	admin := makeAdmin(t, a, "root")
	key := testTokenKeys.Keys["k1"]
	now := time.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": accounts.Issuer, "aud": accounts.Audience, "sub": u.ID, "typ": "access",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	// The control: a token made exactly as the server makes them passes.
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+forge(t, jwt.SigningMethodHS256, key, "k1", claims(nil))); r.Status != http.StatusOK {
		t.Fatalf("a well-made token: %d %s", r.Status, r.Body)
	}
	none := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", claims(nil))
	cases := map[string]string{
		"alg none":          none,
		"HS512, same key":   forge(t, jwt.SigningMethodHS512, key, "k1", claims(nil)),
		"another key":       forge(t, jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!"), "k1", claims(nil)),
		"unknown key id":    forge(t, jwt.SigningMethodHS256, key, "k9", claims(nil)),
		"expired":           forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })),
		"no exp":            forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"other audience":    forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })),
		"other issuer":      forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" })),
		"not an access":     forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { c["typ"] = "refresh" })),
		"unknown user":      forge(t, jwt.SigningMethodHS256, key, "k1", claims(func(c jwt.MapClaims) { c["sub"] = "0193a1c2-0000-7000-8000-000000000000" })),
		"not a JWT at all":  "hello",
		"unknown API token": accounts.APITokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	}
	for name, tok := range cases {
		for _, path := range []string{"/api/v1/auth/me", "/api/v1/runtimes"} {
			r := call(t, "GET", a.URL+path, "", "Authorization", "Bearer "+tok)
			if r.Status != http.StatusUnauthorized || r.errorCode(t) != domain.EUNAUTHORIZED {
				t.Fatalf("%s on %s: %d %s", name, path, r.Status, r.Body)
			}
		}
	}
	if r := call(t, "GET", a.URL+"/api/v1/runtimes", "", "Authorization", "Basic dTpw"); r.Status != http.StatusUnauthorized {
		t.Fatalf("a Basic credential: %d", r.Status)
	}

	// A disabled account's tokens stop working at once; enabling it again
	// brings them back.
	tok := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":"ci"}`, u.bearer()...)
	var created struct{ Token string }
	_ = json.Unmarshal(tok.Body, &created)
	patch := func(body string) {
		if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+u.ID, body, admin.bearer()...); r.Status != http.StatusOK {
			t.Fatalf("patch %s: %d %s", body, r.Status, r.Body)
		}
	}
	patch(`{"disabled":true}`)
	for _, cred := range []string{u.Access, created.Token} {
		if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+cred); r.Status != http.StatusUnauthorized {
			t.Fatalf("a disabled user's credential: %d", r.Status)
		}
	}
	if r := call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("victim", goodPassword)); r.Status != http.StatusUnauthorized ||
		r.message(t) != "username or password is incorrect" {
		t.Fatalf("a disabled user signing in: %d %s", r.Status, r.Body)
	}
	patch(`{"disabled":false}`)
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+created.Token); r.Status != http.StatusOK {
		t.Fatalf("re-enabled: %d", r.Status)
	}
}

func TestAPITokensAreShownOnceListedRevokedAndBearerOnly(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "scripter")
	other := register(t, a, "other")
	if r := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":"x","expires_in":0}`, u.bearer()...); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("expires_in 0: %d", r.Status)
	}
	if r := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":""}`, u.bearer()...); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("empty name: %d", r.Status)
	}
	r := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":"laptop"}`, u.bearer()...)
	var tok struct{ ID, Name, Token string }
	_ = json.Unmarshal(r.Body, &tok)
	if r.Status != http.StatusCreated || !strings.HasPrefix(tok.Token, accounts.APITokenPrefix) || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	short := call(t, "POST", a.URL+"/api/v1/auth/tokens", `{"name":"short","expires_in":1}`, u.bearer()...)
	var shortTok struct{ Token string }
	_ = json.Unmarshal(short.Body, &shortTok)

	list := call(t, "GET", a.URL+"/api/v1/auth/tokens", "", u.bearer()...)
	if list.Status != http.StatusOK || strings.Contains(string(list.Body), tok.Token) || !strings.Contains(string(list.Body), `"laptop"`) {
		t.Fatalf("list: %d %s", list.Status, list.Body)
	}
	if r := call(t, "GET", a.URL+"/api/v1/auth/tokens", "", other.bearer()...); strings.Contains(string(r.Body), "laptop") {
		t.Fatalf("another user sees the token: %s", r.Body)
	}
	bearer := []string{"Authorization", "Bearer " + tok.Token}
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", bearer...); r.Status != http.StatusOK {
		t.Fatalf("the token as bearer: %d", r.Status)
	}
	if r := withCookies(t, "GET", a.URL+"/api/v1/auth/me", "", []*http.Cookie{{Name: accessCookie, Value: tok.Token}}); r.Status != http.StatusUnauthorized {
		t.Fatalf("the token as a cookie: %d", r.Status)
	}
	// A leaked API token cannot mint more, list or revoke them.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/auth/tokens", `{"name":"more"}`}, {"GET", "/api/v1/auth/tokens", ""}, {"DELETE", "/api/v1/auth/tokens/" + tok.ID, ""}} {
		if r := call(t, c.method, a.URL+c.path, c.body, bearer...); r.Status != http.StatusForbidden {
			t.Fatalf("%s %s with an API token: %d", c.method, c.path, r.Status)
		}
	}
	if r := call(t, "DELETE", a.URL+"/api/v1/auth/tokens/"+tok.ID, "", other.bearer()...); r.Status != http.StatusNotFound {
		t.Fatalf("another user revoking it: %d", r.Status)
	}
	if r := call(t, "DELETE", a.URL+"/api/v1/auth/tokens/"+tok.ID, "", u.bearer()...); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", bearer...); r.Status != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d", r.Status)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", "Authorization", "Bearer "+shortTok.Token); r.Status != http.StatusUnauthorized {
		t.Fatalf("an expired token: %d", r.Status)
	}
}

// TestOwnershipHidesOtherUsersExecutions checks every execution route with
// the owner, another user, an anonymous caller and an admin.
func TestOwnershipHidesOtherUsersExecutions(t *testing.T) {
	a := startAPI(t, nil)
	alice, bob := register(t, a, "alice"), register(t, a, "bob")
	admin := makeAdmin(t, a, "admin")
	submit := func(header ...string) Execution {
		r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, header...)
		if r.Status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return decodeExecution(t, r)
	}
	mine := submit(alice.bearer()...)
	anon := submit()
	if mine.Owner != alice.ID || anon.Owner != accounts.Anonymous {
		t.Fatalf("owners %q and %q", mine.Owner, anon.Owner)
	}
	type caller struct {
		name   string
		header []string
		sees   bool
	}
	for _, c := range []caller{{"owner", alice.bearer(), true}, {"admin", admin.bearer(), true},
		{"other user", bob.bearer(), false}, {"anonymous", nil, false}} {
		for _, path := range []string{"", "/events", "/result", "/stream"} {
			if path == "/stream" && c.sees {
				continue // a stream stays open while nothing runs; its refusal is what matters here
			}
			r := call(t, "GET", a.URL+"/api/v1/executions/"+mine.ID+path, "", c.header...)
			if c.sees != (r.Status == http.StatusOK) || (!c.sees && r.Status != http.StatusNotFound) {
				t.Fatalf("%s GET %s: %d %s", c.name, path, r.Status, r.Body)
			}
		}
		if !c.sees {
			if r := call(t, "POST", a.URL+"/api/v1/executions/"+mine.ID+"/cancel", "", c.header...); r.Status != http.StatusNotFound {
				t.Fatalf("%s cancel: %d %s", c.name, r.Status, r.Body)
			}
		}
		// Anonymous executions are capabilities: anyone with the id.
		if r := call(t, "GET", a.URL+"/api/v1/executions/"+anon.ID, "", c.header...); r.Status != http.StatusOK {
			t.Fatalf("%s reading an anonymous execution: %d", c.name, r.Status)
		}
	}

	// Lists: anonymous callers get none, users their own, admins all.
	if r := call(t, "GET", a.URL+"/api/v1/executions", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous list: %d", r.Status)
	}
	ids := func(header ...string) string {
		r := call(t, "GET", a.URL+"/api/v1/executions?limit=100", "", header...)
		var page listResponse
		_ = json.Unmarshal(r.Body, &page)
		var out []string
		for _, e := range page.Executions {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	waitFor(t, func() bool {
		return ids(admin.bearer()...) == anon.ID+","+mine.ID || ids(admin.bearer()...) == mine.ID+","+anon.ID
	})
	if got := ids(alice.bearer()...); got != mine.ID {
		t.Fatalf("alice lists %q", got)
	}
	if got := ids(bob.bearer()...); got != "" {
		t.Fatalf("bob lists %q", got)
	}
	r := call(t, "GET", a.URL+"/api/v1/executions?owner=anonymous", "", admin.bearer()...)
	if !strings.Contains(string(r.Body), anon.ID) || strings.Contains(string(r.Body), mine.ID) {
		t.Fatalf("admin filtering by owner: %s", r.Body)
	}

	// An admin's cancel is recorded with the admin as actor.
	if r := call(t, "POST", a.URL+"/api/v1/executions/"+mine.ID+"/cancel", "", admin.bearer()...); r.Status != http.StatusAccepted {
		t.Fatalf("admin cancel: %d %s", r.Status, r.Body)
	}
	var evs eventsResponse
	waitFor(t, func() bool {
		_ = json.Unmarshal(call(t, "GET", a.URL+"/api/v1/executions/"+mine.ID+"/events", "", alice.bearer()...).Body, &evs)
		return len(evs.Events) == 2
	})
	var first, last struct {
		Actor string
		Data  struct{ Owner string }
	}
	_ = json.Unmarshal(evs.Events[0].Record, &first)
	_ = json.Unmarshal(evs.Events[1].Record, &last)
	if first.Actor != alice.ID || first.Data.Owner != alice.ID || last.Actor != admin.ID {
		t.Fatalf("actors %q (owner %q) and %q; want %s, %s", first.Actor, first.Data.Owner, last.Actor, alice.ID, admin.ID)
	}
}

func waitFor(t testing.TB, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFailedSignInsAreThrottledWithoutTellingWhetherTheNameExists(t *testing.T) {
	a := startAPI(t, nil)
	register(t, a, "known")
	for _, name := range []string{"known", "unknown"} {
		var last answer
		for i := 0; i < 6; i++ {
			last = call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody(name, "wrong password, wrong"))
			if last.Status != http.StatusUnauthorized {
				break
			}
			if last.message(t) != "username or password is incorrect" {
				t.Fatalf("%s: message %q", name, last.message(t))
			}
		}
		// Five failures are free; the sixth attempt comes before the wait.
		if last.Status != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
			t.Fatalf("%s after 6 failures: %d %s", name, last.Status, last.Body)
		}
	}
	// The throttle is per name: the right password for the known name
	// still has to wait, another name need not.
	time.Sleep(1100 * time.Millisecond)
	login(t, a, "known", goodPassword)
}

func TestLockoutAndPerAddressLimit(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) {
		th := accounts.Throttle{FreeFailures: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
			LockAfter: 4, Lockout: time.Hour, Forget: time.Hour, IPAttemptsPerMinute: 1, IPBurst: 8}
		acc, err := accounts.New(accounts.Config{Store: d.Scripts.Store.(accounts.Store), Keys: testTokenKeys,
			Throttle: &th, Logger: testenv.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		d.Accounts = acc
	})
	register(t, a, "locked") // its sign-in is one attempt of the address's 8
	for range 4 {
		time.Sleep(5 * time.Millisecond)
		call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("locked", "wrong password, wrong"))
	}
	r := call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("locked", goodPassword))
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.message(t), "locked") {
		t.Fatalf("the right password during the lockout: %d %s", r.Status, r.Body)
	}
	if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); s < 3000 || s > 3600 {
		t.Fatalf("Retry-After %q, want about an hour", r.Header.Get("Retry-After"))
	}
	// Two more attempts on other names use up the address's 8.
	for i := range 2 {
		call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("someone"+strconv.Itoa(i), "wrong password, wrong"))
	}
	r = call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("fresh-name", "wrong password, wrong"))
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.message(t), "address") {
		t.Fatalf("past the address's limit: %d %s", r.Status, r.Body)
	}
	// The operator ends the lockout (admin unlock on the machine).
	if err := a.accounts.Unlock(context.Background(), "LOCKED"); err != nil {
		t.Fatal(err)
	}
}

// TestParallelGuessesAreThrottledLikeGuessesInARow: a burst of wrong
// passwords sent at once is counted before any of them is hashed, so it
// gets no more tries than the same burst sent one after another.
func TestParallelGuessesAreThrottledLikeGuessesInARow(t *testing.T) {
	a := startAPI(t, nil)
	register(t, a, "target")
	statuses := make(chan int, 40)
	for range 40 {
		go func() {
			statuses <- call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("target", "a wrong guess, once more")).Status
		}()
	}
	tally := map[int]int{}
	for range 40 {
		tally[<-statuses]++
	}
	// Five free failures; every other attempt waits (429), none is hashed.
	if tally[http.StatusUnauthorized] != accounts.DefaultThrottle.FreeFailures || tally[http.StatusTooManyRequests] != 40-accounts.DefaultThrottle.FreeFailures {
		t.Fatalf("40 parallel guesses: %v", tally)
	}
}

func TestQuotasAnswer429WithRetryAfterUntilASlotFrees(t *testing.T) {
	quotas := accounts.Quotas{
		Anonymous: accounts.Quota{PerMinute: 2, Burst: 2, Concurrent: 100},
		User:      accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 2},
		Admin:     accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 100},
	}
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.Quotas = &quotas })
	submit := func(header ...string) answer {
		return call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)","limits":{"timeout_ms":8000}}`, header...)
	}
	// Anonymous: a rate of 2 a minute; the third waits about 30 s for its token.
	for range 2 {
		if r := submit(); r.Status != http.StatusAccepted {
			t.Fatalf("anonymous: %d %s", r.Status, r.Body)
		}
	}
	r := submit()
	if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != http.StatusTooManyRequests || s < 25 || s > 31 || r.errorCode(t) != domain.ETOOMANY {
		t.Fatalf("over the rate: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	// A user: two at once (nothing runs here, so they stay queued); the
	// third waits for the first to time out (8 s).
	u := register(t, a, "busy")
	for range 2 {
		if r := submit(u.bearer()...); r.Status != http.StatusAccepted {
			t.Fatalf("user: %d %s", r.Status, r.Body)
		}
	}
	r = submit(u.bearer()...)
	if s, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.Status != http.StatusTooManyRequests || s < 1 || s > 8 {
		t.Fatalf("over the concurrency: %d Retry-After %q %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	// An admin raises this user's limit; the next submission passes.
	admin := makeAdmin(t, a, "boss")
	if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+u.ID, `{"limits":{"submissions_per_minute":10,"burst":10,"concurrent":3}}`, admin.bearer()...); r.Status != http.StatusOK {
		t.Fatalf("patch limits: %d %s", r.Status, r.Body)
	}
	if r := submit(u.bearer()...); r.Status != http.StatusAccepted {
		t.Fatalf("after the admin raised the limit: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", a.URL+"/api/v1/auth/me", "", u.bearer()...); !strings.Contains(string(r.Body), `"concurrent":3`) {
		t.Fatalf("me shows the limits in force: %s", r.Body)
	}
	// Parallel submissions cannot slip past the bound together.
	v := register(t, a, "racer")
	results := make(chan int, 6)
	for range 6 {
		go func() { results <- submit(v.bearer()...).Status }()
	}
	accepted := 0
	for range 6 {
		if <-results == http.StatusAccepted {
			accepted++
		}
	}
	if accepted != 2 {
		t.Fatalf("%d of 6 parallel submissions were accepted; the bound is 2", accepted)
	}
}

func TestAFullBacklogAnswers503(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.MaxBacklog = 2 })
	for range 2 {
		if r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`); r.Status != http.StatusAccepted {
			t.Fatalf("submit: %d", r.Status)
		}
	}
	waitFor(t, func() bool {
		r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`)
		if r.Status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") != "" {
			return true
		}
		if r.Status != http.StatusAccepted {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return false
	})
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	one := accounts.Quota{PerMinute: 1, Burst: 1, Concurrent: 100}
	for _, trusted := range []bool{false, true} {
		a := startAPI(t, func(d *Deps, _ *http.Server) {
			d.Quotas = &accounts.Quotas{Anonymous: one, User: one, Admin: one}
			if trusted {
				d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
		})
		from := func(xff string) int {
			return call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, "X-Forwarded-For", xff).Status
		}
		first, second, again := from("203.0.113.1"), from("198.51.100.2, 203.0.113.2"), from("203.0.113.1")
		want := []int{http.StatusAccepted, http.StatusTooManyRequests, http.StatusTooManyRequests}
		if trusted {
			want = []int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests}
		}
		if got := []int{first, second, again}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("trusted=%v: %v, want %v", trusted, got, want)
		}
	}
}

func TestSavedScriptsBelongToTheirOwner(t *testing.T) {
	a := startAPI(t, nil)
	u, other := register(t, a, "writer"), register(t, a, "reader")
	if r := call(t, "POST", a.URL+"/api/v1/scripts", `{"name":"a","script":"print(1)"}`); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous save: %d", r.Status)
	}
	var ids []string
	for i := range 3 {
		r := call(t, "POST", a.URL+"/api/v1/scripts", `{"name":"s`+strconv.Itoa(i)+`","script":"print(`+strconv.Itoa(i)+`)","stdin":"x"}`, u.bearer()...)
		var sc scriptResource
		_ = json.Unmarshal(r.Body, &sc)
		if r.Status != http.StatusCreated || sc.Language != "python" || sc.Version != "3.11" || sc.Stdin != "x" ||
			r.Header.Get("Location") != "/api/v1/scripts/"+sc.ID {
			t.Fatalf("save: %d %s", r.Status, r.Body)
		}
		ids = append(ids, sc.ID)
	}
	// Newest first, two a page.
	var got []string
	cursor := ""
	for {
		r := call(t, "GET", a.URL+"/api/v1/scripts?limit=2&cursor="+cursor, "", u.bearer()...)
		var page struct {
			Scripts    []scriptResource
			NextCursor string `json:"next_cursor"`
		}
		_ = json.Unmarshal(r.Body, &page)
		for _, s := range page.Scripts {
			got = append(got, s.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != ids[2]+","+ids[1]+","+ids[0] {
		t.Fatalf("pages %v", got)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if r := call(t, m, a.URL+"/api/v1/scripts/"+ids[0], `{"name":"mine now","script":"1"}`, other.bearer()...); r.Status != http.StatusNotFound {
			t.Fatalf("another user's %s: %d", m, r.Status)
		}
	}
	if r := call(t, "PUT", a.URL+"/api/v1/scripts/"+ids[0], `{"name":"renamed","script":"print(2)"}`, u.bearer()...); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `"renamed"`) {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	big := `{"name":"big","script":"` + strings.Repeat("x", domain.MaxScriptBytes+1) + `"}`
	if r := call(t, "POST", a.URL+"/api/v1/scripts", big, u.bearer()...); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a script over the size limit: %d", r.Status)
	}
	if r := call(t, "POST", a.URL+"/api/v1/scripts", `{"name":"","script":"1"}`, u.bearer()...); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("no name: %d", r.Status)
	}
	if r := call(t, "DELETE", a.URL+"/api/v1/scripts/"+ids[0], "", u.bearer()...); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.Status)
	}
	if r := call(t, "GET", a.URL+"/api/v1/scripts/"+ids[0], "", u.bearer()...); r.Status != http.StatusNotFound {
		t.Fatalf("deleted: %d", r.Status)
	}
}

func TestAdminRoutesAreForAdminsAndCannotLockThemselvesOut(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "plain")
	admin := makeAdmin(t, a, "chief")
	if r := call(t, "GET", a.URL+"/api/v1/admin/users", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", r.Status)
	}
	if r := call(t, "GET", a.URL+"/api/v1/admin/users", "", u.bearer()...); r.Status != http.StatusForbidden {
		t.Fatalf("a user: %d", r.Status)
	}
	r := call(t, "GET", a.URL+"/api/v1/admin/users", "", admin.bearer()...)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"plain"`) || !strings.Contains(string(r.Body), `"disabled":false`) ||
		strings.Contains(string(r.Body), "argon2") {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	for _, body := range []string{`{"role":"user"}`, `{"disabled":true}`} {
		if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+admin.ID, body, admin.bearer()...); r.Status != http.StatusConflict {
			t.Fatalf("admin %s on themselves: %d", body, r.Status)
		}
	}
	if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+u.ID, `{"role":"root"}`, admin.bearer()...); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown role: %d", r.Status)
	}
	if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+u.ID, `{"limits":{"submissions_per_minute":0,"burst":1,"concurrent":1}}`, admin.bearer()...); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("a zero limit: %d", r.Status)
	}
	if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/"+u.ID, `{"role":"admin"}`, admin.bearer()...); r.Status != http.StatusOK {
		t.Fatalf("promote: %d %s", r.Status, r.Body)
	}
	if r := call(t, "GET", a.URL+"/api/v1/admin/users", "", u.bearer()...); r.Status != http.StatusOK {
		t.Fatalf("the promoted user at once: %d", r.Status)
	}
	if r := call(t, "PATCH", a.URL+"/api/v1/admin/users/0193a1c2-0000-7000-8000-000000000000", `{"disabled":true}`, admin.bearer()...); r.Status != http.StatusNotFound {
		t.Fatalf("an unknown user: %d", r.Status)
	}
}

// TestIdempotencyKeysNameUnguessableIDsPerCaller: the id an
// Idempotency-Key derives is keyed with the platform's secret (nobody can
// compute an anonymous execution's id from a guessable key) and scoped to
// the caller (two clients choosing the same key never meet).
func TestIdempotencyKeysNameUnguessableIDsPerCaller(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a := startAPI(t, func(d *Deps, _ *http.Server) {
		d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		d.IdempotencySecret = secret
	})
	submit := func(from string) Execution {
		r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)"}`, "Idempotency-Key", "order-1001", "X-Forwarded-For", from)
		if r.Status != http.StatusAccepted && r.Status != http.StatusOK {
			t.Fatalf("submit from %s: %d %s", from, r.Status, r.Body)
		}
		return decodeExecution(t, r)
	}
	first, again, other := submit("203.0.113.1"), submit("203.0.113.1"), submit("198.51.100.7")
	if first.ID != again.ID || first.ID == other.ID {
		t.Fatalf("ids %s, %s (the same client again), %s (another client)", first.ID, again.ID, other.ID)
	}
	// The hash the original product's way would have given: anyone's to compute.
	public := uuid.NewSHA1(uuid.MustParse("6c0b1f3e-2f5d-4e55-9d55-8f0e7a1c2b90"), []byte("anonymous\x00order-1001")).String()
	if first.ID == public || strings.HasPrefix(first.ID, public[:8]) {
		t.Fatal("the id is computable without the secret")
	}
	if id, err := uuid.Parse(first.ID); err != nil || id.Version() != 8 {
		t.Fatalf("id %s: version %v, %v", first.ID, id.Version(), err)
	}
}

// TestSessionCookiesOverHTTPSCarryHostPrefixes: behind a trusted proxy
// that says HTTPS, the cookies are Secure and prefixed, and only prefixed
// cookies are read, so a sibling subdomain cannot plant a session.
func TestSessionCookiesOverHTTPSCarryHostPrefixes(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) {
		d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	register(t, a, "secure-one")
	https := []string{"X-Forwarded-Proto", "https"}
	r := call(t, "POST", a.URL+"/api/v1/auth/login", credentialsBody("secure-one", goodPassword), https...)
	cs := cookiesOf(r)
	access, refresh := cookieNamed(cs, "__Host-"+accessCookie), cookieNamed(cs, "__Secure-"+refreshCookie)
	if access == nil || refresh == nil || !access.Secure || !refresh.Secure || access.Path != "/" || access.Domain != "" {
		t.Fatalf("cookies over HTTPS: %+v", cs)
	}
	if r := withCookies(t, "GET", a.URL+"/api/v1/auth/me", "", []*http.Cookie{access}, https...); r.Status != http.StatusOK {
		t.Fatalf("the prefixed cookie over HTTPS: %d", r.Status)
	}
	// An unprefixed cookie (set by anyone for the parent domain) is not a session there.
	planted := &http.Cookie{Name: accessCookie, Value: access.Value}
	if r := withCookies(t, "GET", a.URL+"/api/v1/auth/me", "", []*http.Cookie{planted}, https...); r.Status != http.StatusUnauthorized {
		t.Fatalf("an unprefixed cookie over HTTPS: %d", r.Status)
	}
	if r := withCookies(t, "POST", a.URL+"/api/v1/auth/refresh", "", []*http.Cookie{refresh}, https...); r.Status != http.StatusOK {
		t.Fatalf("refresh with the prefixed cookie: %d %s", r.Status, r.Body)
	}
}

// The concurrency gate reads nothing while what it remembers of a caller
// cannot reach the limit, and looks up which ended once it can: an
// anonymous caller still gets exactly its share.
func TestAnonymousConcurrencyIsExactWithoutALookupPerExecution(t *testing.T) {
	quotas := accounts.Quotas{
		Anonymous: accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 3},
		User:      accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 3},
		Admin:     accounts.Quota{PerMinute: 1000, Burst: 1000, Concurrent: 3},
	}
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.Quotas = &quotas })
	// Eight at once (nothing runs here: the admitted stay queued). The
	// gate is not held while the ledger decides, yet exactly three pass:
	// a submission in flight holds its place.
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)","limits":{"timeout_ms":8000}}`)
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[http.StatusAccepted] != 3 || statuses[http.StatusTooManyRequests] != 5 {
		t.Fatalf("eight at once with a concurrency of 3: %v", statuses)
	}
	r := call(t, "POST", a.URL+"/api/v1/executions", `{"script":"print(1)","limits":{"timeout_ms":8000}}`)
	if r.Status != http.StatusTooManyRequests || r.errorCode(t) != domain.ETOOMANY {
		t.Fatalf("one more: %d %s", r.Status, r.Body)
	}
}
