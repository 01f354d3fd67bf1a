package web

import (
	"context"
	"net/http"

	"github.com/google/uuid"
)

// maxRequestIDLen bounds a client's X-Request-Id: it becomes the
// correlation id of every ledger event the request causes, kept forever.
const maxRequestIDLen = 64

type requestIDKey struct{}

// requestID gives every request an id: the client's X-Request-Id when it is
// short and plain (so a caller can follow its own request through the logs
// and the ledger), a random one otherwise. Nothing else from the header is
// kept. The id is echoed in the X-Request-Id response header.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// requestIDFrom returns the id requestID gave the request ("" outside it).
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts 1 to maxRequestIDLen characters of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
