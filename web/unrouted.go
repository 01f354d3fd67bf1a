package web

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/integr8scode/integr8scode/domain"
)

// routedMethods are the methods routes may use, in the order Allow lists them.
var routedMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost}

// unrouted answers requests no route takes: 404 for a path nothing serves,
// 405 with Allow for a method the path does not take. chi answers any
// method it does not know with 405, so the path decides which it is. Method
// and path are echoed bounded.
func (s *server) unrouted(mux *chi.Mux) (notFound, notAllowed http.HandlerFunc) {
	allowed := func(path string) []string {
		var out []string
		for _, m := range routedMethods {
			if mux.Match(chi.NewRouteContext(), m, path) || m == http.MethodHead && mux.Match(chi.NewRouteContext(), http.MethodGet, path) {
				out = append(out, m)
			}
		}
		return out
	}
	notFound = func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.Logger, errNotFound("no route for "+bounded(r.URL.Path, 80)))
	}
	notAllowed = func(w http.ResponseWriter, r *http.Request) {
		methods := allowed(r.URL.Path)
		if len(methods) == 0 {
			notFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, r, s.Logger, domain.Errorf(eMethodNotAllowed, "%s is not allowed here; use %s",
			bounded(r.Method, 16), strings.Join(methods, " or ")))
	}
	return notFound, notAllowed
}
