package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

// Who a request comes from. A request proves it with, in this order:
//   - Authorization: Bearer <access JWT or personal API token> (scripts,
//     the command line, other services; no CSRF exposure, so no check);
//   - the HttpOnly, SameSite=Strict access cookie a browser got at sign-in
//     (its writes pass the cross-origin protection, cors.go);
//   - nothing: anonymous.
// A credential that is present but invalid is refused with 401, never
// downgraded to anonymous: a client whose token expired must learn it.
// Personal API tokens are accepted only in the Authorization header.

const (
	accessCookie  = "integr8scode_access"
	refreshCookie = "integr8scode_refresh"
	// refreshPath scopes the refresh cookie to the endpoints that use it,
	// so it travels with no other request.
	refreshPath = "/api/v1/auth"
)

// cookieNames are the session cookies' names for r. Over HTTPS they carry
// the prefixes browsers enforce (__Host-: Secure, Path=/, no Domain, so a
// sibling subdomain cannot set one; __Secure- for the refresh cookie,
// whose path is narrower), and only the prefixed names are read then.
// Plain HTTP (development on loopback) has no such protection to give.
func (s *server) cookieNames(r *http.Request) (access, refresh string) {
	if s.proxies.secure(r) {
		return "__Host-" + accessCookie, "__Secure-" + refreshCookie
	}
	return accessCookie, refreshCookie
}

type principalKey struct{}

// principal is who r acts for (anonymous when no credential was given or
// accounts are off).
func principal(r *http.Request) accounts.Principal {
	p, _ := r.Context().Value(principalKey{}).(accounts.Principal)
	return p
}

// authenticate resolves the request's credential into its principal.
func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Accounts == nil {
			next.ServeHTTP(w, r)
			return
		}
		cred, via, err := s.credential(r)
		if err != nil {
			s.unauthorized(w, r, err)
			return
		}
		if cred == "" {
			next.ServeHTTP(w, r)
			return
		}
		u, session, err := s.Accounts.Authenticate(r.Context(), cred)
		if err != nil {
			if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
				s.metrics.authFailures.WithLabelValues(via).Inc()
				s.unauthorized(w, r, err)
				return
			}
			writeError(w, r, s.Logger, err)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey{}, accounts.Principal{User: &u, Via: via, Session: session})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// credential takes the credential of r and says where it came from.
func (s *server) credential(r *http.Request) (string, string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
			return "", "", domain.Errorf(domain.EUNAUTHORIZED, "Authorization must be \"Bearer <token>\"")
		}
		cred = strings.TrimSpace(cred)
		if accounts.IsAPIToken(cred) {
			return cred, "token", nil
		}
		return cred, "bearer", nil
	}
	access, _ := s.cookieNames(r)
	if c, err := r.Cookie(access); err == nil && c.Value != "" {
		if accounts.IsAPIToken(c.Value) {
			return "", "", domain.Errorf(domain.EUNAUTHORIZED, "API tokens are accepted only in the Authorization header")
		}
		return c.Value, "cookie", nil
	}
	return "", "", nil
}

// unauthorized answers 401 with the challenge RFC 6750 asks for.
func (s *server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="integr8scode", error="invalid_token"`)
	writeError(w, r, s.Logger, err)
}

var (
	errSignIn    = domain.Errorf(domain.EUNAUTHORIZED, "sign in first (Authorization: Bearer <token>, or the session cookie)")
	errAdminOnly = domain.Errorf(domain.EFORBIDDEN, "only admins may do this")
)

// requireUser passes signed-in users only.
func (s *server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !principal(r).Signed() {
			s.unauthorized(w, r, errSignIn)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireSignIn passes users who proved themselves with a sign-in (the
// session cookie or an access token), not with a personal API token: a
// leaked API token must not be able to make, list or revoke tokens.
func (s *server) requireSignIn(next http.Handler) http.Handler {
	return s.requireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principal(r).Session == "" {
			writeError(w, r, s.Logger, domain.Errorf(domain.EFORBIDDEN,
				"API tokens are managed from a sign-in (the web app, or POST /api/v1/auth/login), not with an API token"))
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// requireAdmin passes admins only: 401 for anonymous callers, 403 for
// other users (they know the admin routes exist; nothing to hide).
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return s.requireUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !principal(r).Admin() {
			writeError(w, r, s.Logger, errAdminOnly)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// quotaKey is what the limits of r's caller are counted under.
func (s *server) quotaKey(r *http.Request) string {
	if p := principal(r); p.Signed() {
		return "user:" + p.User.ID
	}
	return "ip:" + s.proxies.client(r)
}

// setSessionCookies hands a browser its session: a short-lived access
// cookie for every API path and the refresh cookie for /api/v1/auth only.
// Secure whenever the client came over HTTPS (always in production behind
// TLS; plain http://127.0.0.1 in development would drop Secure cookies).
func (s *server) setSessionCookies(w http.ResponseWriter, r *http.Request, sess accounts.Session) {
	secure := s.proxies.secure(r)
	access, refresh := s.cookieNames(r)
	http.SetCookie(w, &http.Cookie{Name: access, Value: sess.Access, Path: "/",
		Expires: sess.AccessExpires, MaxAge: int(time.Until(sess.AccessExpires).Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: refresh, Value: sess.Refresh, Path: refreshPath,
		Expires: sess.RefreshExpires, MaxAge: int(time.Until(sess.RefreshExpires).Seconds()),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
}

func (s *server) clearSessionCookies(w http.ResponseWriter, r *http.Request) {
	secure := s.proxies.secure(r)
	access, refresh := s.cookieNames(r)
	for _, c := range []struct{ name, path string }{{access, "/"}, {refresh, refreshPath}} {
		http.SetCookie(w, &http.Cookie{Name: c.name, Value: "", Path: c.path, MaxAge: -1,
			HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	}
}
