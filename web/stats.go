package web

import (
	"net/http"
	"time"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// handleStats summarises the executions submitted in [from, to) (RFC 3339;
// default: the last 24 hours) in buckets of an hour or a day. Admins see
// everyone's, with counts per owner, or one owner's with ?owner=; a user
// sees their own; anonymous callers nothing (401).
func (s *server) handleStats() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		if !p.Signed() {
			s.unauthorized(w, r, errSignIn)
			return
		}
		v := r.URL.Query()
		now := time.Now().UTC()
		to, err := statsTime(v.Get("to"), now)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		from, err := statsTime(v.Get("from"), to.Add(-24*time.Hour))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		bucket := v.Get("bucket")
		if bucket == "" {
			bucket = "hour"
		}
		q := projections.FactQuery{From: from, To: to, Owner: p.User.ID}
		if p.Admin() {
			q.Owner = v.Get("owner")
		}
		// Check the range before reading anything.
		if _, err := projections.Summarize(nil, from, to, bucket, false); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		facts, err := s.Views.Facts(r.Context(), q)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		stats, err := projections.Summarize(facts, from, to, bucket, p.Admin() && q.Owner == "")
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, stats)
	}
}

func statsTime(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, domain.Errorf(domain.EINVALID, "from and to are RFC 3339 times (2026-12-01T00:00:00Z)")
	}
	return t.UTC(), nil
}
