package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewOps returns the handler of a role without the API (runner, projector):
// /healthz, /readyz and /metrics only.
func NewOps(d Deps) http.Handler {
	if d.Gatherer == nil {
		d.Gatherer = prometheus.DefaultGatherer
	}
	s := &server{Deps: d}
	r := chi.NewRouter()
	r.Use(s.recoverer)
	r.Get("/healthz", s.handleHealthz())
	r.Get("/readyz", s.handleReadyz())
	r.Handle("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	return r
}
