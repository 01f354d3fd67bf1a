package web

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.yaml
var openAPI []byte

func (s *server) handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(openAPI)
	}
}
