package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

// Error codes of the HTTP edge itself, beside the domain's.
const (
	eMethodNotAllowed     = "method_not_allowed"     // 405
	eUnsupportedMediaType = "unsupported_media_type" // 415
)

// statusOf maps a domain error code to its HTTP status, in one table.
var statusOf = map[string]int{
	domain.EINVALID:       http.StatusBadRequest,
	domain.EUNAUTHORIZED:  http.StatusUnauthorized,
	domain.EFORBIDDEN:     http.StatusForbidden,
	domain.ENOTFOUND:      http.StatusNotFound,
	domain.ECONFLICT:      http.StatusConflict,
	domain.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	domain.EUNPROCESSABLE: http.StatusUnprocessableEntity,
	domain.EUNAVAILABLE:   http.StatusServiceUnavailable,
	domain.EINTERNAL:      http.StatusInternalServerError,
	eMethodNotAllowed:     http.StatusMethodNotAllowed,
	eUnsupportedMediaType: http.StatusUnsupportedMediaType,
	domain.ETOOMANY:       http.StatusTooManyRequests,
}

func errorBody(code, message string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": message}}
}

func errNotFound(msg string) error { return domain.Errorf(domain.ENOTFOUND, "%s", msg) }

// writeError answers with {"error":{"code","message"}}; internal errors are
// logged and shown only as "internal error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := domain.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
			// The client went away mid-request: nobody reads the answer,
			// and it is not the platform's fault.
			log.Debug("request abandoned by the client", "method", r.Method, "path", r.URL.Path,
				"request_id", requestIDFrom(r.Context()))
			return
		}
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", requestIDFrom(r.Context()), "err", err)
	}
	if after, ok := domain.RetryAfterOf(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(accounts.RetryAfter(after)))
	}
	writeJSON(w, status, errorBody(code, domain.ErrorMessage(err)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
