package web

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// routes is the whole API, traced.
func (s *server) routes() http.Handler {
	// otelhttp continues a caller's trace (traceparent) and starts the
	// request's span; instrument names it after the route pattern.
	return otelhttp.NewHandler(s.router(), "http.request")
}

// router is the whole API surface in one place. Every GET route answers
// HEAD too.
func (s *server) router() *chi.Mux {
	r := chi.NewRouter()
	r.Use(requestID, s.recoverer, s.instrument, s.cors.handler, middleware.GetHead)

	r.Get("/healthz", s.handleHealthz())
	r.Get("/readyz", s.handleReadyz())
	r.Get("/metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)

	r.Route("/api/v1", func(r chi.Router) {
		// Signing in, refreshing and out read their own credentials: a
		// stale session cookie must not lock a browser out of them.
		if s.Accounts != nil {
			r.Post("/auth/register", s.handleRegister())
			r.Post("/auth/login", s.handleLogin())
			r.Post("/auth/refresh", s.handleRefresh())
			r.Post("/auth/logout", s.handleLogout())
		}
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			s.apiRoutes(r)
		})
	})
	notFound, notAllowed := s.unrouted(r)
	// The web app answers the GET requests no route takes (web/ui.go).
	r.NotFound(newUI(builtUI(), notFound))
	r.MethodNotAllowed(notAllowed)
	return r
}

// apiRoutes are the routes that act for the request's principal.
func (s *server) apiRoutes(r chi.Router) {
	if s.Accounts != nil {
		r.Group(func(r chi.Router) {
			r.Use(s.requireUser)
			r.Get("/auth/me", s.handleMe())
			r.With(s.requireSignIn).Post("/auth/tokens", s.handleCreateToken())
			r.With(s.requireSignIn).Get("/auth/tokens", s.handleListTokens())
			r.With(s.requireSignIn).Delete("/auth/tokens/{id}", s.handleRevokeToken())
			if s.Scripts != nil {
				r.Post("/scripts", s.handleCreateScript())
				r.Get("/scripts", s.handleListScripts())
				r.Get("/scripts/{id}", s.handleGetScript())
				r.Put("/scripts/{id}", s.handlePutScript())
				r.Delete("/scripts/{id}", s.handleDeleteScript())
			}
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireAdmin)
			r.Get("/admin/users", s.handleAdminUsers())
			r.Patch("/admin/users/{id}", s.handleAdminPatchUser())
		})
	}
	{
		r.Post("/executions", s.handleSubmit())
		r.Get("/executions", s.handleList())
		r.Get("/executions/{id}", s.handleGet())
		r.Get("/executions/{id}/events", s.handleEvents())
		r.Get("/executions/{id}/stream", s.handleStream())
		r.Post("/executions/{id}/cancel", s.handleCancel())
		r.Delete("/executions/{id}/content", s.handleErase())
		r.Get("/runtimes", s.handleRuntimes())
		r.Get("/queue", s.handleQueue())
		r.Get("/stats", s.handleStats())
		r.Get("/ledger/keys", s.handleLedgerKeys())
		r.Get("/events/schemas", s.handleSchemaIndex())
		r.Get("/events/schemas/{type}/{version}", s.handleSchema())
		r.Get("/openapi.yaml", s.handleOpenAPI())

		// The original product's API, kept for its clients.
		r.Post("/execute", s.handleCompatExecute())
		r.Get("/executions/{id}/result", s.handleCompatResult())
	}
}
