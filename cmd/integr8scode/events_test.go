package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// An export of a stopped platform's ledger is the records as recorded, in
// partition and offset order: two exports are byte-identical, the offline
// verifier checks it, and filters and CSV select what was asked.
func TestEventsExport(t *testing.T) {
	dir := t.TempDir()
	base, stop := startUp(t, dir)
	var ids []string
	var between time.Time // after the first execution's events, before the second's
	for i, script := range []string{"print(1)", "import sys; sys.exit(2)"} {
		if i == 1 {
			// Record times have millisecond precision.
			time.Sleep(20 * time.Millisecond)
			between = time.Now()
			time.Sleep(20 * time.Millisecond)
		}
		e := waitDone(t, base, submit(t, base, map[string]any{"script": script}).ID, 30*time.Second)
		waitEvents(t, base, e.ID, 10*time.Second)
		ids = append(ids, e.ID)
	}
	keysDoc := do(t, "GET", base+"/api/v1/ledger/keys", nil).Body
	stop()

	code, first := runTool(t, "events", "export", "--data-dir", dir)
	_, second := runTool(t, "events", "export", "--data-dir", dir)
	if code != 0 || first != second || strings.Count(first, "\n") != 6 {
		t.Fatalf("exit %d, identical %v, %d lines:\n%s", code, first == second, strings.Count(first, "\n"), first)
	}
	for _, line := range strings.Split(strings.TrimSpace(first), "\n") {
		if _, err := eventstore.ParseRecord([]byte(line)); err != nil {
			t.Fatalf("not a record: %v\n%s", err, line)
		}
	}
	tmp := t.TempDir()
	keys, ledger := filepath.Join(tmp, "keys.json"), filepath.Join(tmp, "export.jsonl")
	_ = os.WriteFile(keys, keysDoc, 0o644)
	_ = os.WriteFile(ledger, []byte(first), 0o644)
	if out, err := exec.Command("python3", "../../docs/events/verify_ledger.py", "export", ledger, "--keys", keys).CombinedOutput(); err != nil {
		t.Fatalf("the offline verifier refuses the export: %v\n%s", err, out)
	}

	code, csv := runTool(t, "events", "export", "--data-dir", dir, "--type", "ExecutionFailed", "--format", "csv")
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "partition,offset,event_id,type") ||
		!strings.Contains(lines[1], ",ExecutionFailed,") || !strings.Contains(lines[1], ids[1]) {
		t.Fatalf("csv of the failed events: exit %d\n%s", code, csv)
	}
	code, one := runTool(t, "events", "export", "--data-dir", dir, "--execution", ids[0])
	if code != 0 || strings.Count(one, "\n") != 3 || strings.Contains(one, ids[1]) {
		t.Fatalf("one execution's events: exit %d\n%s", code, one)
	}

	// A time window: --from by when the records were written (the log's
	// own index), --to by when the events occurred.
	code, later := runTool(t, "events", "export", "--data-dir", dir, "--from", between.Format(time.RFC3339Nano))
	if code != 0 || strings.Count(later, "\n") != 3 || strings.Contains(later, ids[0]) || !strings.Contains(later, ids[1]) {
		t.Fatalf("events from %s: exit %d\n%s", between.Format(time.RFC3339Nano), code, later)
	}
	code, earlier := runTool(t, "events", "export", "--data-dir", dir, "--to", between.Format(time.RFC3339Nano))
	if code != 0 || strings.Count(earlier, "\n") != 3 || strings.Contains(earlier, ids[1]) || !strings.Contains(earlier, ids[0]) {
		t.Fatalf("events to %s: exit %d\n%s", between.Format(time.RFC3339Nano), code, earlier)
	}
	if code, _ := runTool(t, "events", "export", "--data-dir", dir, "--from", "yesterday"); code != 2 {
		t.Fatalf("--from yesterday: exit %d, want 2 (usage)", code)
	}
}

// events tail sees a new execution's events as they are appended (well
// within a second), joining no consumer group.
func TestEventsTail(t *testing.T) {
	l := testenv.StartLedger(t, "tail", 15*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		code, _ := run(ctx, []string{"integr8scode", "events", "tail", "--kafka-brokers", strings.Join(l.Brokers, ","),
			"--type", "ExecutionQueued"}, func(string) string { return "" }, strings.NewReader(""), out, &testenv.SyncBuffer{})
		done <- code
	}()
	defer func() { cancel(); <-done }()
	user := l.Asker(t, "user")
	time.Sleep(time.Second) // the tail starts from the end as of its start
	begin := time.Now()
	env := testenv.Submit(t, user, l.Content, "print('tailed')")
	for !strings.Contains(out.String(), env.ExecutionID) {
		if time.Since(begin) > 5*time.Second {
			t.Fatalf("tail did not show %s: %q", env.ExecutionID, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("tail showed the event %s after the submit", time.Since(begin).Round(time.Millisecond))
	if got := strings.TrimSpace(out.String()); strings.Count(got, "\n") != 0 || !strings.Contains(got, `"type":"ExecutionQueued"`) {
		t.Fatalf("tail wrote %q", got)
	}
}
