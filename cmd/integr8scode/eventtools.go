package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/eventstore"
)

const eventsUsage = `usage: integr8scode events <command> [flags]

commands:
  export   write the ledger's events, in partition and offset order, up to
           the end of the log as it is when the export starts: JSON lines
           (each record exactly as recorded, so docs/events/verify_ledger.py
           can check the export) or CSV; two exports of the same range are
           byte-identical
  tail     follow the ledger's new events as JSON lines, from now or from a
           time, until interrupted; it joins no consumer group
`

func runEvents(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	if len(args) < 1 {
		fmt.Fprint(stderr, eventsUsage)
		return 2, nil
	}
	switch args[0] {
	case "export":
		return runEventsExport(ctx, args[1:], getenv, stdout, stderr)
	case "tail":
		return runEventsTail(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, eventsUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "unknown events command %q\n\n%s", args[0], eventsUsage)
	return 2, nil
}

// typesFlag adds the repeatable --type flag and returns the set it fills.
func typesFlag(fs *flag.FlagSet) map[string]bool {
	types := map[string]bool{}
	fs.Func("type", "only events of this type (repeatable)", func(v string) error { types[v] = true; return nil })
	return types
}

// parseTime reads an RFC 3339 time flag ("" is the zero time).
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s: %w", name, err)
	}
	return t, nil
}

// eventFilter selects events by type, execution and time.
type eventFilter struct {
	types     map[string]bool
	execution string
	to        time.Time
}

func (f eventFilter) keep(env eventstore.Envelope) bool {
	if len(f.types) > 0 && !f.types[env.Type] {
		return false
	}
	if f.execution != "" && env.ExecutionID != f.execution {
		return false
	}
	return f.to.IsZero() || env.OccurredAt.Before(f.to)
}

func runEventsExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	var c toolConfig
	fs := flag.NewFlagSet("events export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	types := typesFlag(fs)
	execution := fs.String("execution", "", "only the events of this execution")
	from := fs.String("from", "", "start at the first record written at or after this RFC 3339 time")
	fromOffset := fs.String("from-offset", "", "start at PARTITION:OFFSET (that partition only starts there)")
	to := fs.String("to", "", "only events that occurred before this RFC 3339 time")
	format := fs.String("format", "jsonl", "jsonl (records as recorded) or csv")
	// An export always ends at the end of the log as it was when the
	// export started, so that two exports of a range are identical;
	// `events tail` is the one that follows. The flag is accepted so that
	// scripts can say so explicitly.
	fs.Bool("until-end", true, "stop at the end of the log as it is when the export starts (always; `events tail` follows instead)")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	filter := eventFilter{execution: *execution, types: types}
	fromTime, err := parseTime("from", *from)
	if err == nil {
		filter.to, err = parseTime("to", *to)
	}
	if err != nil {
		fmt.Fprintf(stderr, "events export: %v\n", err)
		return 2, nil
	}
	if *format != "jsonl" && *format != "csv" {
		fmt.Fprintln(stderr, "events export: --format must be jsonl or csv")
		return 2, nil
	}
	env, err := c.connect(ctx, false)
	if err != nil {
		return 1, err
	}
	defer env.close()
	r, err := kafka.NewLogReader(env.brokers)
	if err != nil {
		return 1, err
	}
	defer r.Close()
	ends, err := r.Ends(eventstore.Topic)
	if err != nil {
		return 1, err
	}
	starts := map[int32]int64{}
	if !fromTime.IsZero() {
		if starts, err = r.OffsetsAt(eventstore.Topic, fromTime); err != nil {
			return 1, err
		}
	}
	if *fromOffset != "" {
		p, o, ok := strings.Cut(*fromOffset, ":")
		pn, perr := strconv.ParseInt(p, 10, 32)
		on, oerr := strconv.ParseInt(o, 10, 64)
		if !ok || perr != nil || oerr != nil || on < 0 {
			fmt.Fprintln(stderr, "events export: --from-offset must be PARTITION:OFFSET")
			return 2, nil
		}
		starts[int32(pn)] = on
	}
	w := newEventWriter(stdout, *format)
	ps := make([]int32, 0, len(ends))
	for p := range ends {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	for _, p := range ps {
		err := r.Read(ctx, eventstore.Topic, p, starts[p], ends[p], func(rec kafka.Record) error {
			env, err := eventstore.ParseRecord(rec.Value)
			if err != nil {
				// Not an event: an export keeps what the log holds only in
				// JSON lines (the verifier reports it); CSV has no column for it.
				if *format == "jsonl" && len(filter.types) == 0 && filter.execution == "" {
					return w.raw(rec)
				}
				return nil
			}
			if !filter.keep(env) {
				return nil
			}
			return w.write(rec, env)
		})
		if err != nil {
			return 1, err
		}
	}
	return 0, w.flush()
}

func runEventsTail(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	var c toolConfig
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	types := typesFlag(fs)
	from := fs.String("from", "", "start at this RFC 3339 time instead of now")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if c.KafkaBrokers == "" {
		fmt.Fprintln(stderr, "events tail: --kafka-brokers is required (a running platform's broker)")
		return 2, nil
	}
	env, err := c.connect(ctx, false)
	if err != nil {
		return 1, err
	}
	defer env.close()
	fromTime, err := parseTime("from", *from)
	if err != nil {
		fmt.Fprintf(stderr, "events tail: %v\n", err)
		return 2, nil
	}
	var starts map[int32]int64
	if !fromTime.IsZero() {
		r, err := kafka.NewLogReader(env.brokers)
		if err != nil {
			return 1, err
		}
		starts, err = r.OffsetsAt(eventstore.Topic, fromTime)
		r.Close()
		if err != nil {
			return 1, err
		}
	}
	filter := eventFilter{types: types}
	w := newEventWriter(stdout, "jsonl")
	err = kafka.FollowFrom(ctx, env.brokers, eventstore.Topic, starts, quietLogger(), func(_ context.Context, rec kafka.Record) error {
		env, err := eventstore.ParseRecord(rec.Value)
		if err != nil || !filter.keep(env) {
			return nil
		}
		if err := w.write(rec, env); err != nil {
			return err
		}
		return w.flush() // a line at a time: someone is watching
	})
	if err != nil {
		return 1, err
	}
	return 0, w.flush()
}

// eventWriter writes events as JSON lines (the record as recorded) or CSV.
type eventWriter struct {
	format string
	buf    *bufio.Writer
	csv    *csv.Writer
}

var csvHeader = []string{"partition", "offset", "event_id", "type", "schema_version", "execution_id", "sequence",
	"occurred_at", "actor", "correlation_id", "causation_id", "key_id", "hash"}

func newEventWriter(w io.Writer, format string) *eventWriter {
	ew := &eventWriter{format: format, buf: bufio.NewWriter(w)}
	if format == "csv" {
		ew.csv = csv.NewWriter(ew.buf)
		_ = ew.csv.Write(csvHeader)
	}
	return ew
}

func (w *eventWriter) raw(rec kafka.Record) error {
	if bytes.IndexByte(rec.Value, '\n') >= 0 {
		// A record written by something other than the ledger writer
		// that would break the one-record-per-line form: left out.
		return nil
	}
	w.buf.Write(rec.Value)
	return w.buf.WriteByte('\n')
}

func (w *eventWriter) write(rec kafka.Record, env eventstore.Envelope) error {
	if w.csv == nil {
		return w.raw(rec)
	}
	return w.csv.Write([]string{strconv.Itoa(int(rec.Partition)), strconv.FormatInt(rec.Offset, 10), env.EventID, env.Type,
		strconv.Itoa(env.SchemaVersion), env.ExecutionID, strconv.FormatInt(env.Sequence, 10),
		env.OccurredAt.UTC().Format(time.RFC3339Nano), env.Actor, env.CorrelationID, env.CausationID, env.KeyID, env.Hash})
}

func (w *eventWriter) flush() error {
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return err
		}
	}
	return w.buf.Flush()
}
