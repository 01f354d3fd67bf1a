package web

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/accounts"
)

// Saved scripts belong to one signed-in user; anyone else, admins
// included, gets 404 for them.

type scriptRequest struct {
	Name     string `json:"name"`
	Script   string `json:"script"`
	Language string `json:"language"`
	Version  string `json:"version"`
	Stdin    string `json:"stdin"`
}

func (q scriptRequest) draft() accounts.ScriptDraft {
	return accounts.ScriptDraft{Name: q.Name, Script: q.Script, Language: q.Language, Version: q.Version, Stdin: q.Stdin}
}

type scriptResource struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Script    string    `json:"script"`
	Language  string    `json:"language"`
	Version   string    `json:"version"`
	Stdin     string    `json:"stdin"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func newScriptResource(s accounts.Script) scriptResource {
	return scriptResource{ID: s.ID, Name: s.Name, Script: s.Script, Language: s.Language, Version: s.Version,
		Stdin: s.Stdin, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

func (s *server) handleCreateScript() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req scriptRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		sc, err := s.Scripts.Create(r.Context(), *principal(r).User, req.draft())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.Header().Set("Location", "/api/v1/scripts/"+sc.ID)
		writeJSON(w, http.StatusCreated, newScriptResource(sc))
	}
}

func (s *server) handleListScripts() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		limit, err := pageLimit(r)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		list, more, err := s.Scripts.List(r.Context(), *principal(r).User, r.URL.Query().Get("cursor"), limit)
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		out := struct {
			Scripts    []scriptResource `json:"scripts"`
			NextCursor string           `json:"next_cursor,omitempty"`
		}{Scripts: make([]scriptResource, len(list))}
		for i, sc := range list {
			out.Scripts[i] = newScriptResource(sc)
		}
		if more && len(list) > 0 {
			out.NextCursor = list[len(list)-1].ID
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *server) handleGetScript() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc, err := s.Scripts.Get(r.Context(), *principal(r).User, chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, newScriptResource(sc))
	}
}

func (s *server) handlePutScript() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req scriptRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		sc, err := s.Scripts.Replace(r.Context(), *principal(r).User, chi.URLParam(r, "id"), req.draft())
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, newScriptResource(sc))
	}
}

func (s *server) handleDeleteScript() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Scripts.Delete(r.Context(), *principal(r).User, chi.URLParam(r, "id")); err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
