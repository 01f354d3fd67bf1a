package mongo

import (
	"context"
	"log/slog"
	"slices"
)

// lazyAttrs is the handler of FerretDB's logger. FerretDB's SQL layer
// calls Logger.With before every statement it runs, twice, to log the
// statement at debug level, and slog's own handlers format the
// attributes of With when it is called, whether debug records are kept
// or not: about 5 % of the embedded store's CPU under load. lazyAttrs
// keeps the With calls and applies them to the handler when a record is
// kept, which the logger asks (Enabled) before building one.
type lazyAttrs struct {
	h    slog.Handler
	with []func(slog.Handler) slog.Handler // in the order of the calls
}

func newLazyAttrs(h slog.Handler) slog.Handler { return lazyAttrs{h: h} }

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	h := l.h
	for _, w := range l.with {
		h = w(h)
	}
	return h.Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.then(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	return l.then(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

// then returns l with w after its calls; Clip makes the append copy, so
// that two loggers derived from one do not share a backing array.
func (l lazyAttrs) then(w func(slog.Handler) slog.Handler) lazyAttrs {
	return lazyAttrs{h: l.h, with: append(slices.Clip(l.with), w)}
}
