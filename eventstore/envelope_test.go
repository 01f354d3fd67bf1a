package eventstore

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

// testSigner is the published test-vector key (docs/events.md): its seed is
// the SHA-256 of a fixed phrase, so anyone can recompute it. Never a
// production key.
func testSigner() *Ed25519Signer {
	seed := sha256.Sum256([]byte("integr8scode ledger test vectors"))
	return NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
}

func testKeys(t testing.TB) *KeySet {
	ks, err := NewKeySet(testSigner().Public())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func chain(t *testing.T, evs ...domain.Event) []Envelope {
	t.Helper()
	var out []Envelope
	prev := ""
	for i, ev := range evs {
		data, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		e := Envelope{EventID: "e" + string(rune('0'+i)), Type: ev.EventType(), SchemaVersion: SchemaVersions[ev.EventType()],
			ExecutionID: "x", Sequence: int64(i + 1), OccurredAt: time.Date(2026, 11, 25, 1, 2, 3, 123456789, time.UTC),
			Actor: "anonymous", Data: data}
		if _, err := e.Seal(prev, testSigner()); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func TestHashChain(t *testing.T) {
	keys := testKeys(t)
	evs := chain(t,
		domain.ExecutionQueued{Language: "python", Version: "3.11", Input: mustSeal("x", PurposeInput, domain.Input{Script: "print('<é>')"}),
			Limits: domain.DefaultLimits, Owner: "a"},
		domain.ExecutionStarted{Runner: "r", Sandbox: "runc", Attempt: 1, Limits: domain.DefaultLimits},
		domain.ExecutionCompleted{Result: domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0)}})

	t.Run("OK", func(t *testing.T) {
		if err := VerifyChain(keys, evs); err != nil {
			t.Fatal(err)
		}
		if evs[0].PrevHash != "" || evs[1].PrevHash != evs[0].Hash || len(evs[2].Hash) != 64 {
			t.Fatal("chain is not linked")
		}
	})
	t.Run("OK survives a JSON round trip with reordered data keys", func(t *testing.T) {
		b, _ := json.Marshal(evs)
		var back []Envelope
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(back[0].Data, &m)
		back[0].Data, _ = json.MarshalIndent(m, "", "  ") // different bytes, same value
		if err := VerifyChain(keys, back); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"occurred_at":"2026-11-25T01:02:03.123456789Z"`) {
			t.Fatalf("occurred_at not RFC 3339 with nanoseconds: %s", b)
		}
	})
	t.Run("ErrTamperedData", func(t *testing.T) {
		bad := append([]Envelope(nil), evs...)
		bad[0].Data = json.RawMessage(strings.Replace(string(bad[0].Data), "python", "PYTHON", 1))
		if err := VerifyChain(keys, bad); err == nil || !strings.Contains(err.Error(), ProblemBadHash) {
			t.Fatalf("tampered data: %v", err)
		}
	})
	t.Run("ErrRehashedWithoutTheKey", func(t *testing.T) {
		// Whoever can write the log can recompute a hash, but not sign it.
		bad := append([]Envelope(nil), evs...)
		bad[0].Data = json.RawMessage(strings.Replace(string(bad[0].Data), "python", "PYTHON", 1))
		bad[0].Hash = ""
		h, _ := bad[0].ComputeHash()
		bad[0].Hash = h
		if err := VerifyChain(keys, bad[:1]); err == nil || !strings.Contains(err.Error(), ProblemBadSignature) {
			t.Fatalf("re-hashed event: %v", err)
		}
	})
	t.Run("ErrSignedByAnotherKey", func(t *testing.T) {
		_, other, _ := ed25519.GenerateKey(nil)
		bad := append([]Envelope(nil), evs...)
		if _, err := bad[0].Seal("", NewEd25519Signer(other)); err != nil {
			t.Fatal(err)
		}
		if err := VerifyChain(keys, bad[:1]); err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Fatalf("foreign key: %v", err)
		}
	})
	t.Run("ErrMissingEvent", func(t *testing.T) {
		if err := VerifyChain(keys, []Envelope{evs[0], evs[2]}); err == nil {
			t.Fatal("gap verified")
		}
	})
	t.Run("ErrRelinked", func(t *testing.T) {
		bad := append([]Envelope(nil), evs...)
		if _, err := bad[1].Seal(strings.Repeat("0", 64), testSigner()); err != nil {
			t.Fatal(err)
		}
		if err := VerifyChain(keys, bad); err == nil || !strings.Contains(err.Error(), ProblemBadLink) {
			t.Fatalf("broken link: %v", err)
		}
	})
}

func TestKeySetRefusesAKeyUnderAnotherID(t *testing.T) {
	pub := testSigner().Public()
	pub.KeyID = "ed25519:0000000000000000"
	if _, err := NewKeySet(pub); err == nil {
		t.Fatal("a key under a made-up id was accepted")
	}
}

func TestDecode(t *testing.T) {
	evs := chain(t, domain.ExecutionFailed{Reason: domain.VerdictTimeout, Message: "timed out"})
	ev, err := Decode(evs[0])
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := ev.(domain.ExecutionFailed); !ok || f.Reason != domain.VerdictTimeout {
		t.Fatalf("got %#v", ev)
	}
	evs[0].SchemaVersion = 99
	if _, err := Decode(evs[0]); err == nil {
		t.Fatal("decoded an unknown schema version")
	}
	evs[0].SchemaVersion, evs[0].Type = 1, "Bogus"
	if _, err := Decode(evs[0]); err == nil {
		t.Fatal("decoded an unknown type")
	}
}
