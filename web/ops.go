package web

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewOps returns the handler of a role without the API (runner, projector):
// /healthz, /readyz and /metrics only, with the API's error answers.
func NewOps(d Deps) http.Handler {
	if d.Gatherer == nil {
		d.Gatherer = prometheus.DefaultGatherer
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	s := &server{Deps: d}
	r := chi.NewRouter()
	r.Use(requestID, s.recoverer, middleware.GetHead)
	r.Get("/healthz", s.handleHealthz())
	r.Get("/readyz", s.handleReadyz())
	r.Get("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	notFound, notAllowed := s.unrouted(r)
	r.NotFound(notFound)
	r.MethodNotAllowed(notAllowed)
	return r
}
