package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

type httpMetrics struct {
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	authFailures *prometheus.CounterVec // by how the credential came: cookie, bearer, token, password, refresh
	rejections   *prometheus.CounterVec // by gate: backlog, concurrent, rate, sign_in, registration
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "http",
			Name: "requests_total", Help: "HTTP requests by route pattern, method and status."},
			[]string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "integr8scode", Subsystem: "http",
			Name: "request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}, []string{"route", "method"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "http",
			Name: "auth_failures_total", Help: "Refused credentials by kind: cookie, bearer, token, password, refresh."},
			[]string{"kind"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "integr8scode", Subsystem: "http",
			Name: "rejections_total", Help: "Requests refused by a limit: backlog, concurrent, rate, sign_in, registration."},
			[]string{"gate"}),
	}
	// Every kind and gate visible from the start, at 0: the alerts and
	// dashboards that read them then see a series before the first refusal,
	// and a renamed label shows as a missing series, not as silence.
	for _, k := range []string{"cookie", "bearer", "token", "password", "refresh"} {
		m.authFailures.WithLabelValues(k)
	}
	for _, g := range []string{"backlog", "concurrent", "rate", "sign_in", "registration"} {
		m.rejections.WithLabelValues(g)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.authFailures, m.rejections)
	}
	return m
}

// instrument records each request under labels from closed sets: the
// route pattern (never the raw path, which would make one series per
// execution id), a known method and the numeric status. A series is kept
// for the life of the process, so no label may come from the client as is.
func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		method := methodLabel(r.Method)
		trace.SpanFromContext(r.Context()).SetName(method + " " + route)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(ww.Status())).Inc()
		s.metrics.latency.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	})
}

// methodLabel is the method as a metric label: one of the standard methods,
// or "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// recoverer turns a panic into a logged internal error.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeError(w, r, s.Logger, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
