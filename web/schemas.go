package web

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// The ledger's event contract, as published files (docs/events/schemas):
// an index, and each schema as JSON Schema draft 2020-12.

type schemaEntry struct {
	Type    string `json:"type"`
	Version int    `json:"version"`
	Current bool   `json:"current"`
	URL     string `json:"url"`
}

func (s *server) handleSchemaIndex() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		refs, err := eventstore.PublishedSchemas()
		if err != nil {
			writeError(w, r, s.Logger, err)
			return
		}
		out := struct {
			Schemas []schemaEntry `json:"schemas"`
		}{Schemas: make([]schemaEntry, len(refs))}
		for i, ref := range refs {
			out.Schemas[i] = schemaEntry{Type: ref.Type, Version: ref.Version, Current: ref.Current,
				URL: "/api/v1/events/schemas/" + ref.Type + "/" + strconv.Itoa(ref.Version)}
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *server) handleSchema() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		typ := chi.URLParam(r, "type")
		v, err := strconv.Atoi(chi.URLParam(r, "version"))
		var b []byte
		if err == nil {
			b, err = eventstore.SchemaFile(typ, v)
		}
		if err != nil {
			writeError(w, r, s.Logger, domain.Errorf(domain.ENOTFOUND, "no schema %s version %s",
				bounded(typ, 40), bounded(chi.URLParam(r, "version"), 10)))
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		// A published version never changes incompatibly, but may gain
		// optional fields: cache for a while, not for ever.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	}
}
