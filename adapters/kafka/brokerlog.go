package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerLog feeds kfake's printf-style log into slog.
//
// kfake reports persistence failures (a segment write, the state saved on
// Close) only through its logger, never as a returned error. brokerLog
// therefore also keeps the error-level messages, so Embedded.Close can return
// them instead of letting a failed save pass silently.
type brokerLog struct {
	log *slog.Logger

	mu     sync.Mutex
	errors []error
}

// maxKeptErrors bounds memory if the broker keeps failing; the first errors
// are the ones that explain the rest.
const maxKeptErrors = 16

func (l *brokerLog) Logf(level kfake.LogLevel, format string, args ...any) {
	lvl := slogLevel(level)
	if strings.HasPrefix(format, "txn: EndTxn slow") {
		// kfake calls a commit slow past a few milliseconds; with an fsync
		// per batch (SyncWrites) most are. It is a figure, not a fault:
		// the ledger writer's own transaction_seconds histogram shows it.
		lvl = slog.LevelDebug
	}
	if level == kfake.LogLevelError {
		l.keep(fmt.Errorf(format, args...))
	}
	// Formatting is the expensive part; skip it when nobody listens.
	if !l.log.Enabled(context.Background(), lvl) {
		return
	}
	l.log.Log(context.Background(), lvl, fmt.Sprintf(format, args...))
}

func (l *brokerLog) keep(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errors) < maxKeptErrors {
		l.errors = append(l.errors, err)
	}
}

// takeErrors returns the errors logged since the last call and forgets them.
func (l *brokerLog) takeErrors() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := errors.Join(l.errors...)
	l.errors = nil
	return err
}

func slogLevel(level kfake.LogLevel) slog.Level {
	switch level {
	case kfake.LogLevelError:
		return slog.LevelError
	case kfake.LogLevelWarn:
		return slog.LevelWarn
	case kfake.LogLevelInfo:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}
