package web

import (
	"context"
	"net/http"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func (s *server) handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReadyz answers 200 once the process can take work, 503 with the
// reason otherwise.
func (s *server) handleReadyz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if err := s.Ready(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, errorBody(domain.EUNAVAILABLE, err.Error()))
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
