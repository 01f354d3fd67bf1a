package mongo

import (
	"bytes"
	"log/slog"
	"testing"
)

// countingHandler counts the WithAttrs calls that reach the handler it wraps.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (c countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	*c.withAttrs++
	return countingHandler{c.Handler.WithAttrs(as), c.withAttrs}
}

func (c countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{c.Handler.WithGroup(name), c.withAttrs}
}

func TestFerretDBsPerStatementWithCostsNothingWhileDebugIsOff(t *testing.T) {
	var out bytes.Buffer
	calls := 0
	inner := countingHandler{slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}), &calls}
	log := slog.New(newLazyAttrs(inner)).With("component", "ferretdb")
	for range 100 { // as FerretDB's fsql does around each statement
		log.With("args", []any{1, "x"}, "rows", 3).Debug(">>> SELECT 1")
	}
	if calls != 0 || out.Len() != 0 {
		t.Fatalf("debug off: %d WithAttrs reached the handler, output %q", calls, out.String())
	}
}

func TestFerretDBsKeptRecordsCarryTheirAttributesAndGroups(t *testing.T) {
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	var lazy, plain bytes.Buffer
	for _, l := range []*slog.Logger{
		slog.New(newLazyAttrs(slog.NewTextHandler(&lazy, opts))),
		slog.New(slog.NewTextHandler(&plain, opts)),
	} {
		base := l.With("component", "ferretdb")
		a := base.With("conn", 1).WithGroup("req").With("op", "find")
		b := base.With("conn", 2) // a sibling of a: must not see a's attributes
		a.Info("served", "ms", 3)
		b.Warn("slow")
		base.Error("closed")
	}
	if lazy.String() != plain.String() {
		t.Fatalf("lazy handler wrote\n%s\nslog's own\n%s", lazy.String(), plain.String())
	}
	const want = "level=INFO msg=served component=ferretdb conn=1 req.op=find req.ms=3\n" +
		"level=WARN msg=slow component=ferretdb conn=2\n" +
		"level=ERROR msg=closed component=ferretdb\n"
	if lazy.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", lazy.String(), want)
	}
}
