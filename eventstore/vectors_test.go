package eventstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

var update = flag.Bool("update", false, "rewrite docs/events/vectors.json from the code")

const vectorsFile = "../docs/events/vectors.json"

// vectorFile is docs/events/vectors.json: records with their canonical
// form, hash and signature by the published test key, for implementations
// in other languages (docs/events/verify_ledger.py checks them in CI).
type vectorFile struct {
	About     string   `json:"about"`
	KeySeed   string   `json:"key_seed_hex"`
	KeyID     string   `json:"key_id"`
	PublicKey string   `json:"public_key"`
	Vectors   []vector `json:"vectors"`
}

type vector struct {
	Name      string `json:"name"`
	Record    string `json:"record"`
	Canonical string `json:"canonical"`
	Hash      string `json:"hash"`
	Signature string `json:"signature"`
}

// vectorRecords are the cases: every JSON feature the canonical form must
// get right (escapes, non-BMP characters, key order by UTF-16 code units,
// nested objects, ECMAScript numbers) and a record written by another tool.
func vectorRecords(t *testing.T) []struct{ name, record string } {
	at := time.Date(2026, 11, 25, 1, 2, 3, 123456789, time.UTC)
	signer := testSigner()
	seal := func(env *Envelope, prev string) string {
		rec, err := env.Seal(prev, signer)
		if err != nil {
			t.Fatal(err)
		}
		return string(rec)
	}
	env := func(seq int64, ev domain.Event) Envelope {
		data, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		return Envelope{EventID: "0190f0e0-0000-7000-8000-00000000000" + string(rune('0'+seq)), Type: ev.EventType(),
			SchemaVersion: 1, ExecutionID: "0190f0e0-1111-7000-8000-000000000001", Sequence: seq, OccurredAt: at,
			CorrelationID: "req-1", Actor: "anonymous", Data: data}
	}
	queued := env(1, queuedV1{Language: "python", Version: "3.11",
		Script: "print(\"<b>&amp;</b>\")\u2028# é 😀 \\ \t\x01", Stdin: "line\n", Limits: domain.DefaultLimits, Owner: "anonymous"})
	first := seal(&queued, "")
	started := env(2, domain.ExecutionStarted{Runner: "runner-1", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits})
	second := seal(&started, queued.Hash)
	failed := env(3, failedV1{Reason: domain.VerdictMemoryLimit, Message: "killed: out of memory",
		Result: &resultV1{Verdict: domain.VerdictMemoryLimit, ExitCode: domain.IntPtr(-9), Signal: "SIGKILL",
			Usage: domain.ResourceUsage{WallTimeMs: 812, CPUTimeMs: 77, PeakMemoryBytes: 1 << 40}}})
	third := seal(&failed, started.Hash)

	// Data no event type has, for what the canonical form must do with it.
	odd := func(seq int64, typ, data string) string {
		e := env(seq, domain.ExecutionStarted{})
		e.ExecutionID, e.Type, e.Data = "vector-"+typ, typ, json.RawMessage(data)
		return seal(&e, "")
	}
	keyOrder := odd(1, "KeyOrderVector", `{"\ufb01":1,"😀":2,"a":{"z":[3,{"y":4,"b":5}],"A":6},"é":7,"Z":8,"":9}`)
	numbers := odd(1, "NumberVector", `{"half":0.5,"big":1e30,"neg":-7,"zero":0,"negzero":-0,"int":123456789012,"one":1.0,"small":1e-7,"exp":12e2}`)

	// A record as another writer might store it: other key order,
	// whitespace, escapes where none are needed. Same canonical form rules.
	foreign := `{ "type": "ExecutionQueued", "sequence": 1, "event_id": "0190f0e0-0000-7000-8000-000000000009",
  "schema_version": 1, "execution_id": "0190f0e0-2222-7000-8000-000000000002",
  "occurred_at": "2026-11-25T01:02:03.1Z", "correlation_id": "", "causation_id": "", "actor": "anonymous",
  "prev_hash": "", "key_id": "` + signer.KeyID() + `",
  "data": { "script": "print(\"\u003c\/p\u003e \u00e9 \ud83d\ude00\")", "language": "python", "version": "3.11",
            "limits": {"timeout_ms": 5000, "memory_bytes": 134217728, "cpu_millicores": 100}, "owner": "anonymous" } }`
	h, err := HashRecord([]byte(foreign))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := hex.DecodeString(h)
	foreign = strings.TrimSuffix(foreign, " }") + `, "hash": "` + h + `", "signature": "` + encodeSignature(signer.Sign(digest)) + `" }`

	return []struct{ name, record string }{
		{"queued: escapes, U+2028, <, &, a non-BMP character", first},
		{"started: nested limits, linked to the queued event", second},
		{"failed: negative exit code, a 2^40 number, linked", third},
		{"key order by UTF-16 code units, nested objects and arrays", keyOrder},
		{"numbers in ECMAScript form", numbers},
		{"a record written by another tool: key order, whitespace, needless escapes", foreign},
	}
}

func TestCanonicalFormVectors(t *testing.T) {
	signer := testSigner()
	pub := signer.Public()
	seed := hexSeed()
	file := vectorFile{
		About: "Ledger canonical form (RFC 8785 JCS of the record without hash and signature), SHA-256 hash " +
			"and Ed25519 signature over the 32 hash bytes. The key is a test key: its seed is the SHA-256 of " +
			"\"integr8scode ledger test vectors\". See docs/events.md.",
		KeySeed: seed, KeyID: pub.KeyID, PublicKey: EncodePublicKey(pub.Key),
	}
	keys := testKeys(t)
	for _, c := range vectorRecords(t) {
		canon, err := Canonical([]byte(c.record))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var env Envelope
		if err := json.Unmarshal([]byte(c.record), &env); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if err := keys.Verify(env.KeyID, env.Hash, env.Signature); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if h, _ := HashRecord([]byte(c.record)); h != env.Hash {
			t.Fatalf("%s: hash %s, recorded %s", c.name, h, env.Hash)
		}
		file.Vectors = append(file.Vectors, vector{Name: c.name, Record: c.record, Canonical: string(canon),
			Hash: env.Hash, Signature: env.Signature})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(file); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(vectorsFile, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	recorded, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test ./eventstore -run TestCanonicalFormVectors -update)", err)
	}
	if !bytes.Equal(recorded, buf.Bytes()) {
		t.Fatalf("%s no longer matches what the code produces: the canonical form, hash or signature changed. "+
			"That breaks every verifier of recorded events; if it is intended, run with -update and say why in docs/events.md", vectorsFile)
	}
}

func TestCanonicalFormSortsKeysByUTF16CodeUnits(t *testing.T) {
	// U+FB01 sorts after U+1F600 by code point but before it by UTF-16
	// code units (0xFB01 > 0xD83D): RFC 8785 takes code units.
	c, err := Canonical([]byte(`{"data":{"\ufb01":1,"😀":2},"hash":"x","signature":"y"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"data":{"😀":2,"ﬁ":1}}`; string(c) != want {
		t.Fatalf("got %s, want %s", c, want)
	}
}

func hexSeed() string {
	return hex.EncodeToString(testSigner().key.Seed())
}

// The offline verifier reports a type it does not know as unknown_schema:
// its default list must name every type this code writes.
func TestPythonVerifierKnowsEveryEventType(t *testing.T) {
	src, err := os.ReadFile("../docs/events/verify_ledger.py")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(src), "DEFAULT_KNOWN_TYPES = (")
	if i < 0 {
		t.Fatal("DEFAULT_KNOWN_TYPES not found in verify_ledger.py")
	}
	list := string(src[i : i+strings.Index(string(src[i:]), ")")])
	for _, typ := range []string{domain.TypeExecutionQueued, domain.TypeExecutionStarted, domain.TypeExecutionAbandoned,
		domain.TypeExecutionResumed, domain.TypeExecutionCompleted, domain.TypeExecutionFailed, domain.TypeExecutionErased} {
		if !strings.Contains(list, `"`+typ+`"`) {
			t.Errorf("verify_ledger.py does not know %s", typ)
		}
	}
}
