package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"crypto/ed25519"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/web"
)

// snapshot is everything a client can read of some executions: each one,
// its events, and the list, as the exact bytes the API answered.
type snapshot struct {
	get, events map[string][]byte
	list        []byte
}

func takeSnapshot(t *testing.T, base string, ids []string, admin []string) snapshot {
	t.Helper()
	s := snapshot{get: map[string][]byte{}, events: map[string][]byte{}}
	for _, id := range ids {
		s.get[id] = do(t, http.MethodGet, base+"/api/v1/executions/"+id, nil).Body
		s.events[id] = do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/events", nil).Body
	}
	// The lists of ended executions: the one left running across the stop
	// moves on meanwhile (its runner releases it, another takes it over).
	s.list = append(do(t, http.MethodGet, base+"/api/v1/executions?limit=100&status=completed", nil, admin...).Body,
		do(t, http.MethodGet, base+"/api/v1/executions?limit=100&status=failed", nil, admin...).Body...)
	return s
}

func (s snapshot) diff(o snapshot) string {
	var out []string
	for id, b := range s.get {
		if !bytes.Equal(b, o.get[id]) {
			out = append(out, fmt.Sprintf("GET %s:\n  before %s\n  after  %s", id, b, o.get[id]))
		}
		if !bytes.Equal(s.events[id], o.events[id]) {
			out = append(out, fmt.Sprintf("events of %s differ", id))
		}
	}
	if !bytes.Equal(s.list, o.list) {
		out = append(out, fmt.Sprintf("list:\n  before %s\n  after  %s", s.list, o.list))
	}
	return strings.Join(out, "\n")
}

// runTool runs a command of the binary in this process and returns its
// exit code and output.
func runTool(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut strings.Builder
	code, err := run(t.Context(), append([]string{"integr8scode"}, args...), func(string) string { return "" },
		strings.NewReader(""), &out, &errOut)
	if err != nil {
		t.Logf("%v: %v\n%s", args, err, errOut.String())
	}
	return code, out.String()
}

// TestTheLedgerIsTheSystemOfRecord: stop the platform, delete every
// view (every collection the log rebuilds; the primary data of MongoDB,
// accounts and content keys, stays, as a backup keeps it), start it
// again: every execution, its events, the list and every Idempotency-Key
// come back identical, byte for byte, rebuilt from the log; new appends
// continue the same chains; and the log, audited offline, verifies.
func TestTheLedgerIsTheSystemOfRecord(t *testing.T) {
	dir := t.TempDir()
	base, stop := startUp(t, dir)
	api := base + "/api/v1"

	var ids []string
	keyed := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "print('kept')"}, "Idempotency-Key", "order-42")
	var k web.Execution
	keyed.decode(t, &k)
	ids = append(ids, k.ID)
	for _, script := range []string{"print('ok')", "import sys; sys.exit(3)", "import time; time.sleep(30)"} {
		ids = append(ids, submit(t, base, map[string]any{"script": script}).ID)
	}
	cancelled := ids[len(ids)-1]
	for _, id := range ids[1:3] {
		waitDone(t, base, id, 30*time.Second)
	}
	waitFor(t, func() bool { return get(t, base, cancelled).Status == domain.StatusRunning })
	if r := do(t, http.MethodPost, api+"/executions/"+cancelled+"/cancel", nil); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	waitDone(t, base, cancelled, 30*time.Second)
	// One more, left running across the stop: its chain goes on after it.
	unfinished := submit(t, base, map[string]any{"script": "import time; time.sleep(2); print('finished later')"}).ID
	waitFor(t, func() bool { return get(t, base, unfinished).Status == domain.StatusRunning })
	for _, id := range ids {
		waitEvents(t, base, id, 10*time.Second)
	}
	before := takeSnapshot(t, base, ids, adminBearer(t, base, dir, "auditor"))
	stop()

	// Every view goes; accounts and content keys are MongoDB's primary
	// data, not the ledger's, and stay (docs/operations.md, backups).
	dropViews(t, dir)
	base, stop = startUp(t, dir)
	// Ready means caught up: no polling needed.
	after := takeSnapshot(t, base, ids, adminBearerFor(t, base, "auditor"))
	if d := before.diff(after); d != "" {
		t.Fatalf("the views rebuilt from the log differ:\n%s", d)
	}
	again := do(t, http.MethodPost, base+"/api/v1/executions", map[string]any{"script": "print('kept')"}, "Idempotency-Key", "order-42")
	var same web.Execution
	again.decode(t, &same)
	if again.Status != http.StatusOK || same.ID != k.ID || same.Output != "kept\n" {
		t.Fatalf("the Idempotency-Key mapping did not survive: %d %s", again.Status, again.Body)
	}
	if e := waitDone(t, base, unfinished, 60*time.Second); e.Status != domain.StatusCompleted || e.Output != "finished later\n" {
		t.Fatalf("the unfinished execution: %+v", e)
	}
	evs, valid := events(t, base, unfinished)
	if !valid {
		t.Fatalf("the chain of the execution that ran across the rebuild is broken: %+v", evs)
	}
	ids = append(ids, unfinished)
	export := exportEvents(t, base, ids)
	keysDoc := do(t, http.MethodGet, base+"/api/v1/ledger/keys", nil).Body
	stop()

	t.Run("OK ledger verify and projections compare find nothing on a clean log", func(t *testing.T) {
		if code, out := runTool(t, "ledger", "verify", "--data-dir", dir); code != 0 {
			t.Fatalf("ledger verify: exit %d\n%s", code, out)
		}
		if code, out := runTool(t, "projections", "compare", "--data-dir", dir); code != 0 {
			t.Fatalf("projections compare: exit %d\n%s", code, out)
		}
	})
	t.Run("OK the offline Python verifier agrees", func(t *testing.T) {
		tmp := t.TempDir()
		keys := filepath.Join(tmp, "keys.json")
		ledger := filepath.Join(tmp, "ledger.jsonl")
		if err := os.WriteFile(keys, keysDoc, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(ledger, export, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("python3", "../../docs/events/verify_ledger.py", "export", ledger, "--keys", keys, "--json").CombinedOutput()
		if err != nil {
			t.Fatalf("verify_ledger.py: %v\n%s\n%s", err, out, export)
		}
		var r struct{ Events, Executions int }
		if err := json.Unmarshal(out, &r); err != nil || r.Executions != len(ids) || r.Events < 3*len(ids) {
			t.Fatalf("verify_ledger.py report: %s", out)
		}
	})
}

// exportEvents writes the recorded events of ids as JSON lines, each with
// its partition and offset, as an auditor would keep them.
func exportEvents(t *testing.T, base string, ids []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, id := range ids {
		var resp struct {
			Events []struct {
				Partition int32           `json:"partition"`
				Offset    int64           `json:"offset"`
				Record    json.RawMessage `json:"record"`
			} `json:"events"`
		}
		do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/events", nil).decode(t, &resp)
		for _, e := range resp.Events {
			line, _ := json.Marshal(e)
			buf.Write(line)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKillDuringAnAppendLeavesOneCopy kills the process (SIGKILL) at each
// step of the transaction that appends a submit: after deciding, after
// producing the records, after committing. The client retries with its
// Idempotency-Key, as it would after a broken connection. Whatever the
// moment, a read_committed reader of the whole log finds the execution's
// events exactly once.
func TestKillDuringAnAppendLeavesOneCopy(t *testing.T) {
	bin := buildBinary(t)
	for _, step := range []string{"decided", "produced", "committed"} {
		t.Run(step, func(t *testing.T) {
			dir, addr := t.TempDir(), freeAddr(t)
			base := "http://" + addr
			_, done := startProcessEnv(t, bin, dir, addr, "INTEGR8SCODE_TEST_KILL_AT="+step)
			body := map[string]any{"script": "print('once')"}
			// Before the commit nothing can answer the client. After it the
			// reply is on its way, and may reach the client before the kill
			// lands: either way the client retries as it would on doubt.
			if r, err := tryDo(http.MethodPost, base+"/api/v1/executions", body, "Idempotency-Key", "retry-me"); err == nil && step != "committed" {
				t.Fatalf("the request survived a kill at %q: %d %s", step, r.Status, r.Body)
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the process did not die at %q", step)
			}
			second, done := startProcessEnv(t, bin, dir, addr)
			r := do(t, http.MethodPost, base+"/api/v1/executions?wait=true", body, "Idempotency-Key", "retry-me")
			var e web.Execution
			r.decode(t, &e)
			if e.Status != domain.StatusCompleted || e.Output != "once\n" {
				t.Fatalf("retry after the kill: %d %s", r.Status, r.Body)
			}
			evs := waitEvents(t, base, e.ID, 10*time.Second)
			checkOneRun(t, step, evs)
			// The tool below needs the data directory that the process holds.
			stopProcess(t, second, done)
			code, out := runTool(t, "ledger", "verify", "--data-dir", dir, "--json")
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Events != len(evs) || rep.Executions != 1 {
				t.Fatalf("ledger verify after a kill at %q (%d events over the API): exit %d\n%s", step, len(evs), code, out)
			}
		})
	}
}

// checkOneRun proves that a history holds the submit once and one outcome:
// Queued, Started, then any number of (Abandoned, Started) pairs in which
// the runner's previous life let go of its attempt, then Completed. The
// pairs are legitimate after a kill at "committed": the dying process's
// runner may hear of the committed submit and send its claim in the
// moment before the kill lands; the next life's writer then records that
// claim, and its runner (the same identity, none of the memory) releases
// it and runs the script again.
func checkOneRun(t *testing.T, step string, evs []eventstore.Envelope) {
	t.Helper()
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	bad := len(evs) < 3 || len(evs)%2 == 0 ||
		types[0] != domain.TypeExecutionQueued || types[len(types)-1] != domain.TypeExecutionCompleted
	for i := 1; !bad && i < len(evs)-1; i += 2 {
		bad = types[i] != domain.TypeExecutionStarted
		if i+1 < len(evs)-1 && !bad {
			ev, err := eventstore.Decode(evs[i+1])
			ab, ok := ev.(domain.ExecutionAbandoned)
			bad = err != nil || !ok || ab.Reason != domain.AbandonRunnerRestart
		}
	}
	if bad {
		t.Fatalf("history after a kill at %q is not one submit and one outcome: %v", step, types)
	}
}

// startProcessEnv runs `integr8scode up` as a separate process with extra
// environment, and returns it with a channel that closes when it exits.
func startProcessEnv(t *testing.T, bin, dir, addr string, env ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	logs := &testenv.SyncBuffer{}
	cmd := exec.Command(bin, "up", "--listen", addr, "--data-dir", dir, "--slots", "2")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopProcess(t, cmd, done)
		if t.Failed() {
			t.Logf("process log:\n%s", tail(logs.String(), 60))
		}
	})
	waitReady(t, "http://"+addr, exited, logs)
	return cmd, done
}

// tryDo is do without failing the test: the request may die with the server.
func tryDo(method, url string, body any, header ...string) (apiResponse, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, url, bytes.NewReader(b))
	if err != nil {
		return apiResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: out.Bytes()}, nil
}

// TestAuditToolsAndProjectorReportPlantedProblems plants a problem of each
// kind in a real ledger (written straight to the topic, as someone with
// access to Kafka could): `ledger verify` reports each with its place and
// exits 1; the live projector parks what it cannot use and goes on;
// `projections compare` finds a view someone edited in MongoDB.
func TestAuditToolsAndProjectorReportPlantedProblems(t *testing.T) {
	dir := t.TempDir()
	base, stop := startUp(t, dir)
	a := waitDone(t, base, submit(t, base, map[string]any{"script": "print('a')"}).ID, 30*time.Second)
	b := waitDone(t, base, submit(t, base, map[string]any{"script": "print('b')"}).ID, 30*time.Second)
	waitEvents(t, base, a.ID, 10*time.Second)
	waitEvents(t, base, b.ID, 10*time.Second)
	stop()

	ring, err := keyring.Load(filepath.Join(dir, "ledger-keys"))
	if err != nil {
		t.Fatal(err)
	}
	planted := plant(t, dir, ring.Signer, a.ID, b.ID)

	code, out := runTool(t, "ledger", "verify", "--data-dir", dir, "--json")
	var rep verifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("ledger verify: exit %d\n%s", code, out)
	}
	if rep.Duplicates != 1 || rep.Forks != 1 || rep.Gaps != 1 || rep.BadHashes != 1 || rep.BadLinks != 1 ||
		rep.BadSignatures != 1 || rep.UnknownSchemas != 1 || len(rep.Problems) != 7 {
		t.Fatalf("ledger verify found %+v", rep)
	}
	for _, p := range rep.Problems {
		if p.Offset < planted[p.Partition] {
			t.Errorf("%s reported at %d:%d, before anything was planted there", p.Kind, p.Partition, p.Offset)
		}
	}

	t.Run("OK the projector parks them and later events flow", func(t *testing.T) {
		base, stop := startUp(t, dir)
		defer stop()
		c := waitDone(t, base, submit(t, base, map[string]any{"script": "print('c')"}).ID, 30*time.Second)
		if c.Output != "c\n" {
			t.Fatalf("a new execution after the planted events: %+v", c)
		}
		metrics := string(do(t, http.MethodGet, base+"/metrics", nil).Body)
		// The duplicate is ignored, and what follows a missing event waits
		// (the gap, and b's sequence 5 after the parked sequence 4).
		for _, kind := range []string{"fork", "bad_hash", "bad_signature", "unknown_schema"} {
			if !strings.Contains(metrics, `integr8scode_projector_events_parked_total{kind="`+kind+`"} 1`) {
				t.Errorf("no parked %s in the metrics", kind)
			}
		}
		if got := get(t, base, b.ID); got.VersionSeq != 3 || got.Output != "b\n" {
			t.Errorf("the view of b moved past a parked event: %+v", got)
		}
	})
	t.Run("ErrViewEdited projections compare names the execution", func(t *testing.T) {
		editView(t, dir, a.ID)
		code, out := runTool(t, "projections", "compare", "--data-dir", dir, "--json")
		if code != 1 || !strings.Contains(out, a.ID) || !strings.Contains(out, "view_differs") {
			t.Fatalf("projections compare: exit %d\n%s", code, out)
		}
	})
}

// plant writes one problem of each kind to the ledger of a stopped
// platform's data directory and returns where each partition ended before.
func plant(t *testing.T, dir string, signer eventstore.Signer, a, b string) map[int32]int64 {
	t.Helper()
	k, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Dir: filepath.Join(dir, "kafka")})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	r, err := kafka.NewLogReader(k.Brokers())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ends, err := r.Ends(eventstore.Topic)
	if err != nil {
		t.Fatal(err)
	}
	recs := map[string][][]byte{}
	if err := r.ReadAll(t.Context(), eventstore.Topic, func(rec kafka.Record) error {
		recs[string(rec.Key)] = append(recs[string(rec.Key)], rec.Value)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	env := func(rec []byte) eventstore.Envelope {
		e, err := eventstore.ParseRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	seal := func(e eventstore.Envelope, prev string, by eventstore.Signer, change func(*eventstore.Envelope)) []byte {
		change(&e)
		rec, err := e.Seal(prev, by)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	_, forger := testKeyPair()
	a2, b3 := env(recs[a][1]), env(recs[b][2])
	b4 := env(seal(b3, b3.Hash, signer, func(e *eventstore.Envelope) { e.Sequence, e.SchemaVersion, e.EventID = 4, 9, "planted-b4" }))
	c2 := a2
	c2.ExecutionID, c2.EventID = "00000000-0000-7000-8000-00000000000c", "planted-c2"
	out := []struct {
		key string
		rec []byte
	}{
		{a, recs[a][1]}, // duplicate: the same record again
		{a, seal(a2, a2.PrevHash, signer, func(e *eventstore.Envelope) { e.Actor = "someone else" })},                            // fork: validly signed
		{a, bytes.Replace(recs[a][2], []byte(`"exit_code":0`), []byte(`"exit_code":1`), 1)},                                      // bad_hash
		{b, seal(b3, b3.Hash, forger, func(e *eventstore.Envelope) { e.Sequence, e.EventID = 4, "forged-b4" })},                  // bad_signature
		{b, seal(b4, b3.Hash, signer, func(*eventstore.Envelope) {})},                                                            // unknown_schema (sequence 4)
		{b, seal(b3, strings.Repeat("0", 64), signer, func(e *eventstore.Envelope) { e.Sequence, e.EventID = 5, "planted-b5" })}, // bad_link
		{c2.ExecutionID, seal(c2, strings.Repeat("1", 64), signer, func(*eventstore.Envelope) {})},                               // gap: sequence 2 of an unknown execution
	}
	pub, err := kafka.NewPublisher(k.Brokers(), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, o := range out {
		if err := publishRaw(pub, o.key, o.rec); err != nil {
			t.Fatal(err)
		}
	}
	return ends
}

// testKeyPair is a key the ledger never published.
func testKeyPair() (ed25519.PublicKey, eventstore.Signer) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	return pub, eventstore.NewEd25519Signer(priv)
}

// publishRaw writes record to the ledger topic as is, keyed like the writer.
func publishRaw(pub message.Publisher, key string, record []byte) error {
	m := message.NewMessage(uuid.NewString(), record)
	m.Metadata.Set(kafka.KeyMetadata, key)
	return pub.Publish(eventstore.Topic, m)
}

// dropViews deletes every collection of the stopped platform in dir that
// the ledger rebuilds.
func dropViews(t *testing.T, dir string) {
	t.Helper()
	ctx := t.Context()
	m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: filepath.Join(dir, "mongo")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	client, err := mongo.Connect(ctx, m.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	for _, c := range mongo.Collections() {
		if err := client.Database("integr8scode").Collection(c).Drop(ctx); err != nil {
			t.Fatalf("drop %s: %v", c, err)
		}
	}
}

// editView changes the errors of an execution's view behind the platform's
// back, in a stopped platform's store.
func editView(t *testing.T, dir, id string) {
	t.Helper()
	ctx := t.Context()
	m, err := mongo.StartEmbedded(ctx, mongo.EmbeddedConfig{Dir: filepath.Join(dir, "mongo")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	client, err := mongo.Connect(ctx, m.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	res, err := client.Database("integr8scode").Collection(mongo.CollExecutions).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$set", Value: bson.D{{Key: "errors", Value: "edited\n"}}}})
	if err != nil || res.MatchedCount != 1 {
		t.Fatalf("edit the view: %v %+v", err, res)
	}
}

// TestARotatedKeySignsWithoutARestart: `ledger keys --rotate` on the key
// directory of a running platform; its next events are signed with the new
// key, the API serves both keys, and every event still verifies.
func TestARotatedKeySignsWithoutARestart(t *testing.T) {
	was := keysReloadEvery
	keysReloadEvery = 100 * time.Millisecond
	t.Cleanup(func() { keysReloadEvery = was })
	dir := t.TempDir()
	base, _ := startUp(t, dir)
	before := submit(t, base, map[string]any{"script": "print(1)"})
	waitDone(t, base, before.ID, 30*time.Second)

	var out, errOut strings.Builder
	if code, err := run(t.Context(), []string{"integr8scode", "ledger", "keys", "--rotate", "--dir", filepath.Join(dir, "ledger-keys")},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("rotate: %d %v %s", code, err, errOut.String())
	}
	var doc struct {
		Keys []struct {
			KeyID string `json:"key_id"`
		}
	}
	waitFor(t, func() bool {
		do(t, http.MethodGet, base+"/api/v1/ledger/keys", nil).decode(t, &doc)
		return len(doc.Keys) == 2
	})
	after := submit(t, base, map[string]any{"script": "print(2)"})
	waitDone(t, base, after.ID, 30*time.Second)
	keyOf := func(id string) map[string]bool {
		var evs struct {
			Events []struct {
				Record struct {
					KeyID string `json:"key_id"`
				}
				Verified struct{ Hash, Link, Signature bool }
			}
			ChainValid bool `json:"chain_valid"`
		}
		waitFor(t, func() bool {
			do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/events", nil).decode(t, &evs)
			return len(evs.Events) == 3
		})
		ids := map[string]bool{}
		for _, e := range evs.Events {
			if !e.Verified.Signature || !evs.ChainValid {
				t.Fatalf("execution %s: an event does not verify", id)
			}
			ids[e.Record.KeyID] = true
		}
		return ids
	}
	old, fresh := keyOf(before.ID), keyOf(after.ID)
	if len(old) != 1 || len(fresh) != 1 || fmt.Sprint(old) == fmt.Sprint(fresh) {
		t.Fatalf("keys before the rotation %v, after %v", old, fresh)
	}
}
