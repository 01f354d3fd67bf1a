// Package domain holds the Execution aggregate, its events, its state machine,
// limits and verdicts. It is pure Go: no I/O, no frameworks.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to one HTTP status in the web package.
const (
	ECONFLICT      = "conflict"          // the state does not allow it (409)
	EINTERNAL      = "internal"          // the platform's fault (500)
	EINVALID       = "invalid"           // malformed input (400)
	EUNPROCESSABLE = "unprocessable"     // well-formed but not acceptable (422)
	ENOTFOUND      = "not_found"         // no such thing (404)
	ETOOLARGE      = "too_large"         // body or field over its size limit (413)
	EUNAUTHORIZED  = "unauthorized"      // no or bad credentials (401)
	EFORBIDDEN     = "forbidden"         // credentials do not allow it (403)
	EUNAVAILABLE   = "unavailable"       // not ready to take work (503)
	ETOOMANY       = "too_many_requests" // over a rate or a quota (429)
)

// Error is the one error type that carries a code a user can act on.
// Anything else crossing the API boundary is reported as an internal error.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// "internal error" so that internal details never reach a user.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Later is an error that says when trying again can succeed: an answer
// over a quota (429) or an overloaded platform (503) carries it as
// Retry-After.
type Later struct {
	Err   *Error
	After time.Duration
}

func (l *Later) Error() string { return l.Err.Error() }
func (l *Later) Unwrap() error { return l.Err }

// RetryLater builds a *Later of code with a formatted message.
func RetryLater(after time.Duration, code, format string, args ...any) *Later {
	return &Later{Err: Errorf(code, format, args...), After: after}
}

// RetryAfterOf returns when err says to try again, if it says.
func RetryAfterOf(err error) (time.Duration, bool) {
	var l *Later
	if errors.As(err, &l) {
		return l.After, true
	}
	return 0, false
}
