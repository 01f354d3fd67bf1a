package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/integr8scode/integr8scode/domain"
)

// maxBodyBytes bounds a request body: the largest script and stdin plus room
// for JSON escaping.
const maxBodyBytes = 4 * (domain.MaxScriptBytes + domain.MaxStdinBytes)

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
		log.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"request_id", middleware.GetReqID(r.Context()), "err", err)
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

// decodeJSON reads one JSON object into v, refusing unknown fields, trailing
// data and bodies over maxBodyBytes, with errors a user can act on.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return domain.Errorf(domain.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
		case errors.Is(err, io.EOF):
			return domain.Errorf(domain.EINVALID, "request body is empty; send a JSON object")
		case errors.As(err, &syntax):
			return domain.Errorf(domain.EINVALID, "request body is not valid JSON (at byte %d)", syntax.Offset)
		case errors.As(err, &typ):
			return domain.Errorf(domain.EINVALID, "field %q must be a %s", typ.Field, typ.Type)
		default:
			return domain.Errorf(domain.EINVALID, "request body: %s", err.Error())
		}
	}
	if dec.More() {
		return domain.Errorf(domain.EINVALID, "request body has data after the JSON object")
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return domain.Errorf(domain.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
		}
		return fmt.Errorf("drain body: %w", err)
	}
	return nil
}
