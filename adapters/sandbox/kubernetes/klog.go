package kubernetes

import (
	"context"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// streamContext makes client-go's attach report to the runner's own logger,
// at debug level. Its copy loops and heartbeat report every cut connection
// as an error ("Copying stdout failed", "Websocket Ping failed"), and the
// runner cuts attaches short by design (a run's end, a detached run); what
// does go wrong reaches the follower as StreamWithContext's error.
func (p *Pods) streamContext(ctx context.Context) context.Context {
	return klog.NewContext(ctx, logr.FromSlogHandler(debugHandler{p.log.Handler()}))
}

// debugHandler logs every record at debug level.
type debugHandler struct{ h slog.Handler }

func (d debugHandler) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugHandler) WithAttrs(as []slog.Attr) slog.Handler { return debugHandler{d.h.WithAttrs(as)} }
func (d debugHandler) WithGroup(name string) slog.Handler    { return debugHandler{d.h.WithGroup(name)} }
