package eventstore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func TestEveryEventTypeHasItsCurrentSchemaPublished(t *testing.T) {
	refs, err := PublishedSchemas()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range refs {
		have[r.File()] = true
	}
	for typ, v := range SchemaVersions {
		if !have[SchemaRef{Type: typ, Version: v}.File()] {
			t.Fatalf("%s version %d has no schema in docs/events/schemas", typ, v)
		}
		if _, ok := decoders[typ]; !ok {
			t.Fatalf("%s has a version but no decoder", typ)
		}
	}
	for typ := range decoders {
		if _, ok := SchemaVersions[typ]; !ok {
			t.Fatalf("%s is decoded but has no schema version", typ)
		}
	}
	if _, err := SchemaFile("../secrets", 1); err == nil {
		t.Fatal("SchemaFile followed a path out of the schema directory")
	}
}

// everyShape is one event of every type with every optional field set, and
// the same types with every optional field left out.
func everyShape() []domain.Event {
	code := 3
	id := "0193a1c2-1111-7000-8000-000000000001"
	full := domain.Result{Verdict: domain.VerdictRuntimeErr, ExitCode: &code, Signal: "SIGKILL",
		Output:          mustSeal(id, PurposeOutput, domain.Output{Stdout: "out <&>", Stderr: "err"}),
		OutputTruncated: true, Usage: domain.ResourceUsage{WallTimeMs: 12, CPUTimeMs: 9, PeakMemoryBytes: 7 << 20}, Message: "exited with 3"}
	return []domain.Event{
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: mustSeal(id, PurposeInput, domain.Input{Script: "print(1)", Stdin: "in"}),
			Limits: domain.DefaultLimits, Owner: "anonymous"},
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: mustSeal(id, PurposeInput, domain.Input{Script: "x"}),
			Limits: domain.DefaultLimits, Owner: "0193a1c2-0000-7000-8000-000000000000"},
		domain.ExecutionStarted{Runner: "runner-1", Sandbox: "i8c-x", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionAbandoned{Runner: "runner-1", Attempt: 1, Reason: domain.AbandonLeaseExpired},
		domain.ExecutionResumed{Runner: "runner-2", Attempt: 1},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, Output: mustSeal(id, PurposeOutput, domain.Output{Stdout: "hi\n"})}},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted}},
		domain.ExecutionCompleted{Result: full},
		domain.ExecutionFailed{Reason: domain.VerdictCancelled, Message: "cancelled while queued"},
		domain.ExecutionFailed{Reason: domain.VerdictRuntimeErr, Result: &full},
		domain.ExecutionFailed{Reason: domain.VerdictSystemError},
		domain.ExecutionErased{Reason: domain.EraseRequested},
		domain.ExecutionErased{Reason: domain.EraseRetention},
	}
}

func sealed(t *testing.T, ev domain.Event, seq int64, prev string) ([]byte, string) {
	t.Helper()
	data, err := Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	env := Envelope{EventID: "0193a1c2-0000-7000-8000-00000000000" + string(rune('0'+seq%10)), Type: ev.EventType(),
		SchemaVersion: SchemaVersions[ev.EventType()], ExecutionID: "0193a1c2-1111-7000-8000-000000000001", Sequence: seq,
		OccurredAt: time.Date(2026, 12, 2, 1, 2, 3, 4, time.UTC), CorrelationID: "req", Actor: "anonymous", Data: data}
	rec, err := env.Seal(prev, testSigner())
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Hash string }
	_ = json.Unmarshal(rec, &out)
	return rec, out.Hash
}

// TestEveryShapeOfEveryEventMatchesItsSchema: what the code writes is what
// the schemas publish. A field added to an event struct without its schema
// (additionalProperties is false in the data schemas), or a required one
// dropped, fails here.
func TestEveryShapeOfEveryEventMatchesItsSchema(t *testing.T) {
	prev := ""
	for i, ev := range everyShape() {
		rec, hash := sealed(t, ev, int64(i+1), prev)
		if err := ValidateRecord(rec); err != nil {
			t.Fatalf("%s: %v\n%s", ev.EventType(), err, rec)
		}
		prev = hash
	}
	var vf vectorFile
	b, _ := os.ReadFile(vectorsFile)
	_ = json.Unmarshal(b, &vf)
	for _, v := range vf.Vectors {
		// Two vectors are not events (they test the canonical form on
		// made-up types); every event vector must stay inside the contract.
		if !strings.Contains(v.Record, `"type":"Execution`) {
			continue
		}
		if err := ValidateRecord([]byte(v.Record)); err != nil {
			t.Fatalf("vector %s: %v", v.Name, err)
		}
	}
}

func TestRecordsOutsideTheContractAreRefused(t *testing.T) {
	good, _ := sealed(t, everyShape()[0], 1, "")
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for name, rec := range map[string][]byte{
		"a field the data schema lacks": edit(func(m map[string]any) { m["data"].(map[string]any)["priority"] = 1 }),
		"no owner":                      edit(func(m map[string]any) { delete(m["data"].(map[string]any), "owner") }),
		"a limit of zero":               edit(func(m map[string]any) { m["data"].(map[string]any)["limits"].(map[string]any)["timeout_ms"] = 0 }),
		"an unknown type":               edit(func(m map[string]any) { m["type"] = "ExecutionPaused" }),
		"a version not published":       edit(func(m map[string]any) { m["schema_version"] = 9 }),
		"a local time":                  edit(func(m map[string]any) { m["occurred_at"] = "2026-12-02T01:02:03+01:00" }),
		"no signature":                  edit(func(m map[string]any) { delete(m, "signature") }),
		"a sequence of 0":               edit(func(m map[string]any) { m["sequence"] = 0 }),
		"not JSON":                      []byte("{"),
	} {
		if err := ValidateRecord(rec); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
}

// TestPublishedSchemasOnlyGrowCompatibly compares each schema with the copy
// recorded when it was published (testdata/published): within a version a
// schema may gain optional properties and enum values, never lose a
// property, change a type or require more. Anything else needs a new
// version. A new schema is recorded by copying it there.
func TestPublishedSchemasOnlyGrowCompatibly(t *testing.T) {
	recorded, err := filepath.Glob("testdata/published/*.json")
	if err != nil || len(recorded) == 0 {
		t.Fatalf("no recorded schemas: %v", err)
	}
	for _, old := range recorded {
		name := filepath.Base(old)
		typ, v, _ := strings.Cut(strings.TrimSuffix(name, ".json"), ".v")
		cur, err := SchemaFile(typ, atoi(v))
		if err != nil {
			t.Fatalf("%s was published and is gone: %v", name, err)
		}
		var was, is map[string]any
		ob, _ := os.ReadFile(old)
		if json.Unmarshal(ob, &was) != nil || json.Unmarshal(cur, &is) != nil {
			t.Fatalf("%s: not JSON", name)
		}
		if problem := incompatible("", was, is); problem != "" {
			t.Fatalf("%s changed incompatibly: %s", name, problem)
		}
	}
	refs, _ := PublishedSchemas()
	for _, r := range refs {
		if _, err := os.Stat(filepath.Join("testdata/published", r.File())); err != nil {
			t.Fatalf("%s is published but not recorded in testdata/published", r.File())
		}
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// incompatible walks two schema objects and names the first change a
// consumer of the old one could trip on.
func incompatible(at string, was, is map[string]any) string {
	if w, i := was["type"], is["type"]; w != nil && !equalJSON(w, i) {
		return at + ": type changed"
	}
	if w, ok := was["additionalProperties"]; ok && w == true && is["additionalProperties"] == false {
		return at + ": closed to additional properties"
	}
	req := func(m map[string]any) []string {
		var out []string
		for _, r := range asSlice(m["required"]) {
			out = append(out, r.(string))
		}
		return out
	}
	oldReq := req(was)
	for _, r := range req(is) {
		if !slices.Contains(oldReq, r) {
			return at + ": now requires " + r
		}
	}
	if oe, ok := was["enum"]; ok {
		for _, v := range asSlice(oe) {
			if !slices.ContainsFunc(asSlice(is["enum"]), func(x any) bool { return equalJSON(x, v) }) {
				return at + ": enum value removed"
			}
		}
	}
	for _, kw := range []string{"minimum", "maxLength", "pattern", "format"} {
		if w, ok := was[kw]; ok && !equalJSON(w, is[kw]) {
			return at + ": " + kw + " changed"
		}
	}
	if _, ok := is["minimum"]; ok && was["minimum"] == nil {
		return at + ": minimum added"
	}
	oldProps, _ := was["properties"].(map[string]any)
	newProps, _ := is["properties"].(map[string]any)
	for name, o := range oldProps {
		n, ok := newProps[name].(map[string]any)
		if !ok {
			return at + "/" + name + ": removed"
		}
		if p := incompatible(at+"/"+name, o.(map[string]any), n); p != "" {
			return p
		}
	}
	return ""
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestAnUpcasterTurnsAnOlderEventIntoTheCurrentOne proves the upcasting
// path on a recorded older event. Every type is still at version 1, so the
// test declares what a version 2 of ExecutionStarted would be (limits given
// in seconds in version 1, as a design might once have had them) and the
// upcaster between them; Decode runs the same code with the real tables.
func TestAnUpcasterTurnsAnOlderEventIntoTheCurrentOne(t *testing.T) {
	versions := map[string]int{domain.TypeExecutionStarted: 2}
	ups := map[string]map[int]Upcaster{domain.TypeExecutionStarted: {1: func(d json.RawMessage) (json.RawMessage, error) {
		var v1 struct {
			Runner, Sandbox string
			Attempt         int
			Limits          struct {
				TimeoutS      float64 `json:"timeout_s"`
				MemoryBytes   int64   `json:"memory_bytes"`
				CPUMillicores int64   `json:"cpu_millicores"`
			}
		}
		if err := json.Unmarshal(d, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(domain.ExecutionStarted{Runner: v1.Runner, Sandbox: v1.Sandbox, Attempt: v1.Attempt,
			Limits: domain.Limits{TimeoutMs: int64(v1.Limits.TimeoutS * 1000), MemoryBytes: v1.Limits.MemoryBytes, CPUMillicores: v1.Limits.CPUMillicores}})
	}}}
	recorded := Envelope{EventID: "e1", Type: domain.TypeExecutionStarted, SchemaVersion: 1,
		Data: json.RawMessage(`{"runner":"r1","sandbox":"s1","attempt":2,"limits":{"timeout_s":2.5,"memory_bytes":134217728,"cpu_millicores":100}}`)}
	ev, err := decodeWith(recorded, versions, ups)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.ExecutionStarted{Runner: "r1", Sandbox: "s1", Attempt: 2, Limits: domain.Limits{TimeoutMs: 2500, MemoryBytes: 128 << 20, CPUMillicores: 100}}
	if ev != want {
		t.Fatalf("upcast to %+v, want %+v", ev, want)
	}
	// Without the upcaster, or from a version this code does not know, the
	// event is not decoded (the projector parks it rather than guessing).
	if _, err := decodeWith(recorded, versions, nil); err == nil {
		t.Fatal("decoded an old version without its upcaster")
	}
	recorded.SchemaVersion = 3
	if _, err := decodeWith(recorded, versions, ups); err == nil {
		t.Fatal("decoded a version newer than the code")
	}
}
