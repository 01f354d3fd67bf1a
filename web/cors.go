package web

import (
	"net/http"
	"strings"

	"github.com/integr8scode/integr8scode/domain"
)

// Cross-origin policy. By default the API serves only its own origin: no
// CORS headers, preflights refused, and unsafe methods from a browser page
// of another site refused by http.CrossOriginProtection (Sec-Fetch-Site,
// else Origin against Host). Origins on the allow-list get CORS answers and
// pass the protection.

const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-Request-Id"
	corsExposeHeaders = "Location, Retry-After, X-Request-Id"
	corsMaxAge        = "600"
)

type crossOrigin struct {
	allowed map[string]bool
	protect *http.CrossOriginProtection
}

func newCrossOrigin(origins []string) (*crossOrigin, error) {
	c := &crossOrigin{allowed: map[string]bool{}, protect: http.NewCrossOriginProtection()}
	for _, o := range origins {
		if err := c.protect.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
		c.allowed[o] = true
	}
	c.protect.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusForbidden, errorBody(domain.EFORBIDDEN, "cross-origin requests from this origin are not allowed"))
	}))
	return c, nil
}

// handler answers preflights, adds CORS headers for allowed origins and
// refuses unsafe cross-origin requests from browsers.
func (c *crossOrigin) handler(next http.Handler) http.Handler {
	return c.protect.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != ""
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if !c.allowed[origin] {
			if preflight {
				writeJSON(w, http.StatusForbidden, errorBody(domain.EFORBIDDEN, "cross-origin requests from this origin are not allowed"))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	}))
}

// ParseOrigins reads a comma-separated allow-list of origins
// (scheme://host[:port] each), as --cors-origins takes it.
func ParseOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimSpace(o); o != "" {
			if err := http.NewCrossOriginProtection().AddTrustedOrigin(o); err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	return out, nil
}
