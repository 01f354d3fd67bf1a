package eventstore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// verifierScript is the stdlib-only Python verifier auditors run offline.
const verifierScript = "../docs/events/verify_ledger.py"

// runVerifier runs the Python verifier (isolated from PYTHON* variables and
// user site-packages) and returns its stdout and exit status.
func runVerifier(t *testing.T, args ...string) ([]byte, int) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not found (%v): it is a required package of the platform, installed by deploy/host/setup.sh; "+
			"the offline ledger verifier %s cannot be checked without it", err, verifierScript)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{"-I", verifierScript}, args...)...)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("python3 %s %s: %v", verifierScript, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.Bytes(), 0
	case errors.As(err, &exit):
		return stdout.Bytes(), exit.ExitCode()
	default:
		t.Fatalf("running the verifier: %v", err)
		return nil, -1
	}
}

func TestPythonVerifierAgreesOnTheVectors(t *testing.T) {
	out, code := runVerifier(t, "vectors", vectorsFile)
	t.Logf("\n%s", out)
	if code != 0 {
		t.Fatalf("the Python verifier disagrees with %s (exit %d):\n%s", vectorsFile, code, out)
	}
}

// pyLedgerLine is one exported record: where it sits in the log, and its bytes.
type pyLedgerLine struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Record    json.RawMessage `json:"record"`
}

// pyExport writes records the way an exporter does, in log order per
// partition, and remembers each record's place.
type pyExport struct {
	t     *testing.T
	lines []pyLedgerLine
	next  map[int32]int64
}

func newPyExport(t *testing.T) *pyExport {
	return &pyExport{t: t, next: map[int32]int64{}}
}

// add appends record to partition and returns its "@partition:offset"
// place, the suffix of a problem's label.
func (x *pyExport) add(partition int32, record []byte) string {
	off := x.next[partition]
	x.next[partition]++
	raw := json.RawMessage(record)
	if !json.Valid(record) { // the Kafka value is not JSON: export its text
		raw, _ = json.Marshal(string(record))
	}
	x.lines = append(x.lines, pyLedgerLine{Partition: partition, Offset: off, Record: raw})
	return fmt.Sprintf("@%d:%d", partition, off)
}

// write stores the export as JSON lines and returns its path.
func (x *pyExport) write(dir string) string {
	var buf bytes.Buffer
	for _, l := range x.lines {
		b, err := json.Marshal(l)
		if err != nil {
			x.t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	path := filepath.Join(dir, "ledger.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		x.t.Fatal(err)
	}
	return path
}

// record returns the record bytes as a Kafka consumer would read them.
func (l pyLedgerLine) record() []byte {
	var s string
	if json.Unmarshal(l.Record, &s) == nil {
		return []byte(s)
	}
	return l.Record
}

// pyGoAudit runs the Go audit over the export and returns its problems as
// sorted "kind@partition:offset" labels, and its report.
func pyGoAudit(t *testing.T, keys *KeySet, x *pyExport) ([]string, AuditReport) {
	a := NewAudit(keys)
	for _, l := range x.lines {
		a.Add(l.Partition, l.Offset, l.record())
	}
	r := a.Report()
	var got []string
	for _, p := range r.Problems {
		got = append(got, fmt.Sprintf("%s@%d:%d", p.Kind, p.Partition, p.Offset))
	}
	slices.Sort(got)
	return got, r
}

// pyReport is the verifier's --json output.
type pyReport struct {
	Events     int `json:"events"`
	Executions int `json:"executions"`
	Problems   []struct {
		Kind        string  `json:"kind"`
		Partition   *int32  `json:"partition"`
		Offset      *int64  `json:"offset"`
		ExecutionID *string `json:"execution_id"`
		Sequence    *int64  `json:"sequence"`
		Detail      string  `json:"detail"`
	} `json:"problems"`
	Counts map[string]int `json:"-"`
}

// pyAudit runs the Python verifier with --json and returns its problems as
// sorted labels, its report and its exit status.
func pyAudit(t *testing.T, ledger, keys string, extra ...string) ([]string, pyReport, int) {
	out, code := runVerifier(t, append([]string{"export", ledger, "--keys", keys, "--json"}, extra...)...)
	var r pyReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("verifier output is not its JSON report (exit %d): %v\n%s", code, err, out)
	}
	var members map[string]json.RawMessage // the counts are the report's numeric members
	if err := json.Unmarshal(out, &members); err != nil {
		t.Fatal(err)
	}
	r.Counts = map[string]int{}
	for k, v := range members {
		var n int
		if json.Unmarshal(v, &n) == nil {
			r.Counts[k] = n
		}
	}
	var got []string
	for _, p := range r.Problems {
		if p.Partition == nil || p.Offset == nil {
			t.Fatalf("problem without partition and offset in a wrapped export: %+v", p)
		}
		got = append(got, fmt.Sprintf("%s@%d:%d", p.Kind, *p.Partition, *p.Offset))
	}
	slices.Sort(got)
	return got, r, code
}

// pyCountNames maps Go's problem kinds to the verifier's JSON count members.
var pyCountNames = map[string]string{ProblemDuplicate: "duplicates", ProblemFork: "forks", ProblemGap: "gaps",
	ProblemBadHash: "bad_hashes", ProblemBadLink: "bad_links", ProblemBadSignature: "bad_signatures",
	ProblemUnknownSchema: "unknown_schemas", ProblemMalformed: "malformed"}

// pyKeysFile writes keys as GET /api/v1/ledger/keys serves them.
func pyKeysFile(t *testing.T, dir string, keys ...PublicKey) (path string, body []byte) {
	type entry struct {
		KeyID     string `json:"key_id"`
		Alg       string `json:"alg"`
		PublicKey string `json:"public_key"`
	}
	var doc struct {
		Keys []entry `json:"keys"`
	}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, entry{KeyID: k.KeyID, Alg: "Ed25519", PublicKey: EncodePublicKey(k.Key)})
	}
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "keys.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, body
}

// pyHistory is one execution's genuine events, sealed with the test key.
type pyHistory struct {
	t    *testing.T
	id   string
	envs []Envelope
	recs [][]byte
}

func newPyHistory(t *testing.T, id string, evs ...domain.Event) *pyHistory {
	h := &pyHistory{t: t, id: id}
	prev := ""
	for i, ev := range evs {
		e := h.envelope(int64(i+1), ev)
		rec, err := e.Seal(prev, testSigner())
		if err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		h.envs, h.recs = append(h.envs, e), append(h.recs, rec)
	}
	return h
}

func (h *pyHistory) envelope(seq int64, ev domain.Event) Envelope {
	data, err := Encode(ev)
	if err != nil {
		h.t.Fatal(err)
	}
	return Envelope{EventID: fmt.Sprintf("%s-e%d", h.id, seq), Type: ev.EventType(), SchemaVersion: SchemaVersions[ev.EventType()],
		ExecutionID: h.id, Sequence: seq, OccurredAt: time.Date(2026, 11, 25, 1, 2, 3, int(seq)*1000, time.UTC),
		CorrelationID: "req-" + h.id, Actor: "anonymous", Data: data}
}

// rec returns the genuine record of sequence seq.
func (h *pyHistory) rec(seq int64) []byte { return h.recs[seq-1] }

// prev returns the hash a record of sequence seq links to.
func (h *pyHistory) prev(seq int64) string {
	if seq == 1 {
		return ""
	}
	return h.envs[seq-2].Hash
}

// variant returns sequence seq changed by change, then sealed by signer
// linked after prev.
func (h *pyHistory) variant(seq int64, signer Signer, prev string, change func(*Envelope)) []byte {
	e := h.envs[seq-1]
	change(&e)
	rec, err := e.Seal(prev, signer)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// tampered returns sequence seq with its language or runner changed; with
// rehash its hash is recomputed (but the old signature kept).
func (h *pyHistory) tampered(seq int64, rehash bool) []byte {
	e := h.envs[seq-1]
	data := string(e.Data)
	for _, field := range []string{`"language":"`, `"runner":"`, `"verdict":"`, `"reason":"`} {
		data = strings.Replace(data, field, field+"x", 1)
	}
	if data == string(e.Data) {
		h.t.Fatalf("nothing to tamper with in %s", e.Data)
	}
	e.Data = json.RawMessage(data)
	if rehash {
		e.Hash = ""
		hash, err := e.ComputeHash()
		if err != nil {
			h.t.Fatal(err)
		}
		e.Hash = hash
	}
	rec, err := e.Record()
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

// pyReplace returns rec with its first old replaced by new.
func pyReplace(t *testing.T, rec []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(rec, []byte(old)) {
		t.Fatalf("no %s in %s", old, rec)
	}
	return bytes.Replace(rec, []byte(old), []byte(new), 1)
}

// pyWithout returns rec without its top-level member name.
func pyWithout(t *testing.T, rec []byte, name string) []byte {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(rec, &obj); err != nil {
		t.Fatal(err)
	}
	if _, ok := obj[name]; !ok {
		t.Fatalf("no %q member in %s", name, rec)
	}
	delete(obj, name)
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pyHistories(t *testing.T) map[string]*pyHistory {
	queued := func(script string) domain.ExecutionQueued {
		return domain.ExecutionQueued{Language: "python", Version: "3.11", Input: mustSeal("exec", PurposeInput, domain.Input{Script: script}),
			Limits: domain.DefaultLimits, Owner: "anonymous"}
	}
	started := domain.ExecutionStarted{Runner: "runner-1", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits}
	completed := domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted,
		ExitCode: domain.IntPtr(0), Usage: domain.ResourceUsage{WallTimeMs: 12, PeakMemoryBytes: 1 << 40}}}
	failed := domain.ExecutionFailed{Reason: domain.VerdictTimeout, Message: "timed out"}
	return map[string]*pyHistory{
		"a": newPyHistory(t, "exec-a", queued("print('<a>')\u2028"), started, completed),
		"b": newPyHistory(t, "exec-b", queued("print('b 😀')"), started, failed),
		"c": newPyHistory(t, "exec-c", queued("print('c')"), started, completed),
		"d": newPyHistory(t, "exec-d", queued("import time"), failed),
		"e": newPyHistory(t, "exec-e", queued("print('é')"), started),
		"g": newPyHistory(t, "exec-g", queued("print('g')"), started, completed),
		"u": newPyHistory(t, "exec-u", queued("print('u')")),
		"f": newPyHistory(t, "exec-f", queued("print('f')")),
	}
}

func TestPythonVerifierFindsWhatTheGoAuditFinds(t *testing.T) {
	dir := t.TempDir()
	keys := testKeys(t)
	keysPath, keysBody := pyKeysFile(t, dir, testSigner().Public())
	h := pyHistories(t)
	seed := sha256.Sum256([]byte("not the ledger's key"))
	intruder := NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))

	t.Run("clean ledger", func(t *testing.T) {
		x := newPyExport(t)
		// Two partitions, executions interleaved as the log has them.
		for _, r := range []struct {
			p   int32
			h   string
			seq int64
		}{{0, "a", 1}, {0, "c", 1}, {0, "a", 2}, {0, "c", 2}, {0, "a", 3}, {0, "c", 3}, {0, "e", 1}, {0, "e", 2},
			{1, "b", 1}, {1, "d", 1}, {1, "b", 2}, {1, "b", 3}, {1, "d", 2}} {
			x.add(r.p, h[r.h].rec(r.seq))
		}
		goProblems, goReport := pyGoAudit(t, keys, x)
		if len(goProblems) != 0 {
			t.Fatalf("Go audit of a clean ledger: %v", goReport.Problems)
		}
		// Keys from a URL, as an auditor may take them from /api/v1/ledger/keys.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(keysBody)
		}))
		defer srv.Close()
		pyProblems, py, code := pyAudit(t, x.write(t.TempDir()), srv.URL+"/api/v1/ledger/keys")
		if code != 0 || len(pyProblems) != 0 {
			t.Fatalf("Python verifier on a clean ledger: exit %d, problems %+v", code, py.Problems)
		}
		if py.Events != goReport.Events || py.Executions != goReport.Executions {
			t.Fatalf("events/executions: Python %d/%d, Go %d/%d", py.Events, py.Executions,
				goReport.Events, goReport.Executions)
		}
	})

	// One ledger with a problem of every kind planted; each add says what
	// the planted record must be reported as ("" for a genuine event).
	x := newPyExport(t)
	var want []string
	plant := func(p int32, rec []byte, kinds ...string) {
		place := x.add(p, rec)
		for _, k := range kinds {
			want = append(want, k+place)
		}
	}
	a, b, c, d, e, f, g, u := h["a"], h["b"], h["c"], h["d"], h["e"], h["f"], h["g"], h["u"]
	// Partition 0.
	plant(0, a.rec(1))
	plant(0, c.rec(1))
	plant(0, a.rec(2))
	plant(0, a.rec(2), ProblemDuplicate) // the producer retried
	plant(0, a.rec(3))
	plant(0, c.rec(3), ProblemGap)                     // c's sequence 2 is missing
	plant(0, c.rec(3), ProblemDuplicate)               // the record after a gap continues the chain
	plant(0, c.rec(2))                                 // the missing event arrives late: not a fork
	plant(0, e.tampered(1, false), ProblemBadHash)     // payload changed, hash kept
	plant(0, e.rec(1))                                 // the genuine event still follows
	plant(0, e.tampered(2, true), ProblemBadSignature) // payload changed, hash recomputed without the key
	plant(0, e.rec(2))
	plant(0, []byte("not json {"), ProblemMalformed)
	plant(0, g.rec(1))
	plant(0, g.tampered(3, false), ProblemBadHash) // alone: an altered record is no evidence of a gap
	plant(0, pyReplace(t, a.rec(3), `"actor":"anonymous"`, `"actor":"anonymous","actor":"admin"`),
		ProblemMalformed) // a repeated member name
	plant(0, pyReplace(t, a.rec(1), `"language":"`, `"language":"ruby","language":"`),
		ProblemMalformed) // a repeated member name inside data
	// Partition 1.
	plant(1, b.rec(1))
	plant(1, b.variant(1, intruder, "", func(e *Envelope) { // forged by a key not published: proves nothing
		e.Data = json.RawMessage(strings.Replace(string(e.Data), `"python"`, `"exfiltrate"`, 1))
	}), ProblemBadSignature)
	plant(1, b.variant(1, testSigner(), "", func(e *Envelope) { // the ledger's key signed two events for sequence 1
		e.Data = json.RawMessage(strings.Replace(string(e.Data), `"python"`, `"exfiltrate"`, 1))
	}), ProblemFork)
	plant(1, d.rec(1))
	plant(1, b.variant(2, testSigner(), strings.Repeat("0", 64), func(*Envelope) {}), ProblemBadLink) // re-signed with a broken link
	plant(1, b.rec(2))
	plant(1, u.variant(1, testSigner(), "", func(e *Envelope) { e.Type = "ExecutionPaused" }), ProblemUnknownSchema)
	plant(1, f.variant(1, intruder, "", func(*Envelope) {}), ProblemBadSignature) // signed by a key not published
	// Authentic but unreadable here: reported, and it takes sequence 2 of d,
	// so d's genuine sequence 2 is a second signed event for it.
	plant(1, d.variant(2, testSigner(), d.prev(2), func(e *Envelope) { e.SchemaVersion = 9 }), ProblemUnknownSchema)
	plant(1, d.rec(2), ProblemFork)
	plant(1, pyWithout(t, b.rec(3), "execution_id"), ProblemMalformed)
	plant(1, pyWithout(t, b.rec(3), "signature"), ProblemMalformed) // an unsealed envelope is not a record
	plant(1, pyReplace(t, b.rec(3), `"sequence":`, `"Sequence":`), ProblemMalformed)
	plant(1, b.rec(3))
	slices.Sort(want)
	ledger := x.write(dir)

	goProblems, goReport := pyGoAudit(t, keys, x)
	pyProblems, py, code := pyAudit(t, ledger, keysPath)
	t.Logf("planted: %v", want)
	if !slices.Equal(goProblems, want) {
		t.Errorf("Go audit found %v, planted %v", goProblems, want)
	}
	if !slices.Equal(pyProblems, goProblems) {
		t.Fatalf("Python verifier found %v\nGo audit found       %v", pyProblems, goProblems)
	}
	if code != 1 {
		t.Fatalf("Python verifier exit %d with problems, want 1", code)
	}
	if py.Events != goReport.Events || py.Executions != goReport.Executions {
		t.Fatalf("events/executions: Python %d/%d, Go %d/%d", py.Events, py.Executions,
			goReport.Events, goReport.Executions)
	}
	if goReport.Executions != len(h) { // every execution with a readable record, valid or not
		t.Errorf("executions: Go %d, want %d", goReport.Executions, len(h))
	}
	for kind, n := range goReport.Counts {
		if py.Counts[pyCountNames[kind]] != n {
			t.Errorf("%s: Python counts %d, Go %d", kind, py.Counts[pyCountNames[kind]], n)
		}
	}
	forks := 0
	for _, p := range py.Problems {
		if p.Kind != ProblemFork {
			continue
		}
		forks++
		if !strings.Contains(p.Detail, "validly signed") || !strings.Contains(p.Detail, testSigner().KeyID()) {
			t.Errorf("a fork's detail does not say which key signed two events: %q", p.Detail)
		}
	}
	if forks == 0 {
		t.Error("no fork reported")
	}

	t.Run("known types and schema versions are options", func(t *testing.T) {
		// Accepting the new type and version 9 only removes the
		// unknown_schema problems: those records extend their chains either
		// way (they are signed), so d's genuine sequence 2 is still a fork.
		got, _, code := pyAudit(t, ledger, keysPath, "--known-types",
			"ExecutionQueued,ExecutionStarted,ExecutionCompleted,ExecutionFailed,ExecutionPaused",
			"--max-schema-version", "9")
		var expect []string
		for _, w := range want {
			if !strings.HasPrefix(w, ProblemUnknownSchema+"@") {
				expect = append(expect, w)
			}
		}
		slices.Sort(expect)
		if code != 1 || !slices.Equal(got, expect) {
			t.Fatalf("exit %d, found %v, want %v", code, got, expect)
		}
	})
}
