package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

// The account resources, as JSON. They are apart from the account types so
// that nothing stored (a password hash, a token's hash) can slip into an
// answer by a new field.

type userResource struct {
	ID        string          `json:"id"`
	Username  string          `json:"username"`
	Role      accounts.Role   `json:"role"`
	CreatedAt time.Time       `json:"created_at"`
	Disabled  *bool           `json:"disabled,omitempty"` // admin views only
	Limits    *limitsResource `json:"limits,omitempty"`   // the limits in force, for the user and admins
}

// limitsResource is a quota as the API shows and takes it.
type limitsResource struct {
	SubmissionsPerMinute int `json:"submissions_per_minute"`
	Burst                int `json:"burst"`
	Concurrent           int `json:"concurrent"`
}

func newLimitsResource(q accounts.Quota) *limitsResource {
	return &limitsResource{SubmissionsPerMinute: q.PerMinute, Burst: q.Burst, Concurrent: q.Concurrent}
}

func (l limitsResource) quota() accounts.Quota {
	return accounts.Quota{PerMinute: l.SubmissionsPerMinute, Burst: l.Burst, Concurrent: l.Concurrent}
}

func (s *server) userResource(u accounts.User, admin bool) userResource {
	q := s.Quotas.For(accounts.Principal{User: &u})
	res := userResource{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, Limits: newLimitsResource(q)}
	if admin {
		res.Disabled = &u.Disabled
	}
	return res
}

type credentialsRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

// registrationsPerHour bounds new accounts per client address: each costs
// an argon2 hash and a row that nobody rebuilds.
const registrationsPerHour = 10

func (s *server) handleRegister() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		if d := s.registrations.Take(s.proxies.client(r), registrationsPerHour, registrationsPerHour); d > 0 {
			s.metrics.rejections.WithLabelValues("registration").Inc()
			writeError(w, r, s.Logger, domain.RetryLater(d, domain.ETOOMANY, "too many accounts registered from this address; retry later"))
			return
		}
		u, err := s.Accounts.Register(r.Context(), req.Username, req.Password)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.Header().Set("Location", "/api/v1/auth/me")
		writeJSON(w, http.StatusCreated, map[string]any{"user": s.userResource(u, false)})
	}
}

func (s *server) handleLogin() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		sess, err := s.Accounts.Login(r.Context(), req.Username, req.Password, s.proxies.client(r))
		if err != nil {
			switch domain.ErrorCode(err) {
			case domain.EUNAUTHORIZED:
				s.metrics.authFailures.WithLabelValues("password").Inc()
			case domain.ETOOMANY:
				s.metrics.rejections.WithLabelValues("sign_in").Inc()
			}
			writeError(w, r, s.Logger, err)
			return
		}
		s.answerSession(w, r, sess)
	}
}

func (s *server) answerSession(w http.ResponseWriter, r *http.Request, sess accounts.Session) {
	s.setSessionCookies(w, r, sess)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: sess.Access, TokenType: "Bearer",
		ExpiresIn: int(time.Until(sess.AccessExpires).Round(time.Second).Seconds())})
}

func (s *server) handleRefresh() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, refresh := s.cookieNames(r)
		c, err := r.Cookie(refresh)
		if err != nil || c.Value == "" {
			s.unauthorized(w, r, domain.Errorf(domain.EUNAUTHORIZED, "no sign-in to refresh; sign in again"))
			return
		}
		sess, err := s.Accounts.Refresh(r.Context(), c.Value)
		if err != nil {
			if domain.ErrorCode(err) == domain.EUNAUTHORIZED {
				s.metrics.authFailures.WithLabelValues("refresh").Inc()
				s.clearSessionCookies(w, r)
				s.unauthorized(w, r, err)
				return
			}
			writeError(w, r, s.Logger, err)
			return
		}
		s.answerSession(w, r, sess)
	}
}

// handleLogout ends the sign-in of the refresh cookie and of the access
// credential, whichever the client holds, and clears the cookies.
func (s *server) handleLogout() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// A client that gives up waiting must not leave its sign-in alive:
		// the revocation finishes whatever the connection does.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		_, refresh := s.cookieNames(r)
		if c, err := r.Cookie(refresh); err == nil {
			if err := s.Accounts.Logout(ctx, c.Value); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		}
		if cred, _, err := s.credential(r); err == nil && cred != "" && !accounts.IsAPIToken(cred) {
			if err := s.Accounts.EndSession(ctx, cred); err != nil {
				writeError(w, r, s.Logger, err)
				return
			}
		}
		s.clearSessionCookies(w, r)
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *server) handleMe() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		writeJSON(w, http.StatusOK, s.userResource(*p.User, false))
	}
}

type tokenRequest struct {
	Name      string `json:"name"`
	ExpiresIn *int64 `json:"expires_in"` // seconds; omitted: until revoked
}

type apiTokenResource struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Token     string     `json:"token,omitempty"` // only in the answer that created it
}

func tokenResource(t accounts.APIToken) apiTokenResource {
	return apiTokenResource{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

func (s *server) handleCreateToken() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		var ttl time.Duration
		if req.ExpiresIn != nil {
			if *req.ExpiresIn < 1 || *req.ExpiresIn > int64(accounts.MaxTokenTTL/time.Second) {
				writeError(w, r, s.Logger, domain.Errorf(domain.EUNPROCESSABLE,
					"expires_in must be from 1 to %d seconds (omit it for a token that lasts until revoked)", int64(accounts.MaxTokenTTL/time.Second)))
				return
			}
			ttl = time.Duration(*req.ExpiresIn) * time.Second
		}
		p := principal(r)
		t, secret, err := s.Accounts.CreateAPIToken(r.Context(), *p.User, p.Session, req.Name, ttl)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		res := tokenResource(t)
		res.Token = secret
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, res)
	}
}

func (s *server) handleListTokens() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Accounts.APITokens(r.Context(), *principal(r).User)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		out := make([]apiTokenResource, len(list))
		for i, t := range list {
			out[i] = tokenResource(t)
		}
		writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	}
}

func (s *server) handleRevokeToken() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Accounts.RevokeAPIToken(r.Context(), *principal(r).User, chi.URLParam(r, "id")); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// Administration.

func (s *server) handleAdminUsers() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := pageLimit(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		users, more, err := s.Accounts.Users(r.Context(), r.URL.Query().Get("cursor"), limit)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		out := struct {
			Users      []userResource `json:"users"`
			NextCursor string         `json:"next_cursor,omitempty"`
		}{Users: make([]userResource, len(users))}
		for i, u := range users {
			out.Users[i] = s.userResource(u, true)
		}
		if more && len(users) > 0 {
			out.NextCursor = users[len(users)-1].ID
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// userPatchRequest: a field left out stays; "limits": null returns the
// user to the role's limits.
type userPatchRequest struct {
	Role     *accounts.Role `json:"role"`
	Disabled *bool          `json:"disabled"`
	Limits   optionalQuota  `json:"limits"`
}

// optionalQuota tells "limits" left out from "limits": null.
type optionalQuota struct {
	Set   bool
	Quota *accounts.Quota
}

func (o *optionalQuota) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		return nil
	}
	var l limitsResource
	if err := unmarshalStrict(b, &l); err != nil {
		return err
	}
	q := l.quota()
	o.Quota = &q
	return nil
}

func (s *server) handleAdminPatchUser() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req userPatchRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		patch := accounts.UserPatch{Role: req.Role, Disabled: req.Disabled, Quota: req.Limits.Quota,
			ClearQuota: req.Limits.Set && req.Limits.Quota == nil}
		u, err := s.Accounts.UpdateUser(r.Context(), *principal(r).User, chi.URLParam(r, "id"), patch)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, s.userResource(u, true))
	}
}

// pageLimit reads ?limit= (1 to 100, default 20).
func pageLimit(r *http.Request) (int, error) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 100 {
		return 0, domain.Errorf(domain.EINVALID, "limit must be an integer from 1 to 100")
	}
	return n, nil
}
