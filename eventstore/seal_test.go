package eventstore

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
)

func TestSeal(t *testing.T) {
	in := domain.Input{Script: "print('marker-4711')", Stdin: "secret stdin"}
	sealed, err := Seal(testContentKey, "exec-1", PurposeInput, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OK round trip", func(t *testing.T) {
		var back domain.Input
		k := testContentKey
		if err := Open(&k, "exec-1", PurposeInput, sealed, &back); err != nil || back != in {
			t.Fatalf("%+v %v", back, err)
		}
		if strings.Contains(string(sealed), "marker") || !NeedsKey(sealed) {
			t.Fatal("the sealed value shows its content, or says it needs no key")
		}
	})
	t.Run("OK deterministic for the same key, execution and content", func(t *testing.T) {
		again, _ := Seal(testContentKey, "exec-1", PurposeInput, in)
		if again != sealed {
			t.Fatal("sealing twice gave different bytes: a retried submit would look like another request")
		}
		other, _ := Seal(testContentKey, "exec-1", PurposeInput, domain.Input{Script: "print('marker-4712')", Stdin: "secret stdin"})
		if other == sealed || nonceOf(t, other) == nonceOf(t, sealed) {
			t.Fatal("different content, same ciphertext or nonce")
		}
		k2, _ := NewDataKey()
		underOther, _ := Seal(k2, "exec-1", PurposeInput, in)
		if underOther == sealed {
			t.Fatal("different keys, same ciphertext")
		}
	})
	t.Run("ErrWrongKey", func(t *testing.T) {
		wrong := DataKey{1}
		var back domain.Input
		if err := Open(&wrong, "exec-1", PurposeInput, sealed, &back); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened with the wrong key: %v", err)
		}
		if err := Open(nil, "exec-1", PurposeInput, sealed, &back); !errors.Is(err, ErrNoKey) {
			t.Fatalf("opened without a key: %v", err)
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		raw, _ := base64.RawURLEncoding.DecodeString(string(sealed))
		raw[len(raw)-1] ^= 1
		bad := domain.Sealed(base64.RawURLEncoding.EncodeToString(raw))
		k := testContentKey
		var back domain.Input
		if err := Open(&k, "exec-1", PurposeInput, bad, &back); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened altered bytes: %v", err)
		}
		if err := Open(&k, "exec-1", PurposeInput, sealed[:10], &back); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened a cut value: %v", err)
		}
		if err := Open(&k, "exec-1", PurposeInput, "!!", &back); err == nil {
			t.Fatal("opened a value that is not base64url")
		}
	})
	t.Run("ErrMoved to another execution or purpose", func(t *testing.T) {
		k := testContentKey
		var back domain.Input
		if err := Open(&k, "exec-2", PurposeInput, sealed, &back); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened as another execution's: %v", err)
		}
		if err := Open(&k, "exec-1", PurposeOutput, sealed, &back); !errors.Is(err, ErrSealed) {
			t.Fatalf("opened as an output: %v", err)
		}
	})
	t.Run("OK content recorded in the clear opens without a key", func(t *testing.T) {
		plain, err := plainSealed(in)
		if err != nil {
			t.Fatal(err)
		}
		var back domain.Input
		if NeedsKey(plain) || Open(nil, "exec-1", PurposeInput, plain, &back) != nil || back != in {
			t.Fatalf("%+v", back)
		}
		if NeedsKey("") || Open(nil, "x", PurposeInput, "", &back) != nil {
			t.Fatal("an empty value")
		}
	})
}

func nonceOf(t *testing.T, s domain.Sealed) string {
	raw, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw[1:13])
}

func TestSealResultFitsAndSeals(t *testing.T) {
	seal := func(o domain.Output) (domain.Sealed, error) { return Seal(testContentKey, "x", PurposeOutput, o) }
	res, err := SealResult(domain.Result{Verdict: domain.VerdictCompleted, Stdout: "hi\n", Stderr: "warn"}, seal)
	if err != nil || res.Stdout != "" || res.Stderr != "" || res.Output == "" || res.OutputTruncated {
		t.Fatalf("%+v %v", res, err)
	}
	k := testContentKey
	var out domain.Output
	if err := Open(&k, "x", PurposeOutput, res.Output, &out); err != nil || out.Stdout != "hi\n" || out.Stderr != "warn" {
		t.Fatalf("%+v %v", out, err)
	}
	empty, err := SealResult(domain.Result{Verdict: domain.VerdictSystemError, Message: "no sandbox"}, seal)
	if err != nil || empty.Output != "" {
		t.Fatalf("nothing printed, yet sealed: %+v %v", empty, err)
	}
	b, _ := json.Marshal(domain.Result{Verdict: domain.VerdictCompleted, Stdout: "in the clear"})
	if strings.Contains(string(b), "in the clear") {
		t.Fatal("a result encodes its output in the clear")
	}
	boom := errors.New("key store down")
	if _, err := SealResult(domain.Result{Stdout: "x"}, func(domain.Output) (domain.Sealed, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

// TestRecordedVersion1EventsUpcastToTheCurrentOnes: events recorded before
// sealing carry their content in the clear; upcast, it sits in the sealed
// fields in the clear form, which opens without a key.
func TestRecordedVersion1EventsUpcastToTheCurrentOnes(t *testing.T) {
	v1 := func(ev domain.Event) Envelope {
		data, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		return Envelope{EventID: "e", Type: ev.EventType(), SchemaVersion: 1, ExecutionID: "old", Data: data}
	}
	ev, err := Decode(v1(queuedV1{Language: "python", Version: "3.11", Script: "print(1)", Stdin: "in", Limits: domain.DefaultLimits, Owner: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	q := ev.(domain.ExecutionQueued)
	var in domain.Input
	if q.Language != "python" || q.Owner != "a" || NeedsKey(q.Input) || Open(nil, "old", PurposeInput, q.Input, &in) != nil ||
		in != (domain.Input{Script: "print(1)", Stdin: "in"}) {
		t.Fatalf("upcast queued: %+v %+v", q, in)
	}
	code := 3
	ev, err = Decode(v1(failedV1{Reason: domain.VerdictRuntimeErr, Message: "exited with 3",
		Result: &resultV1{Verdict: domain.VerdictRuntimeErr, ExitCode: &code, Stdout: "out", Stderr: "Traceback"}}))
	if err != nil {
		t.Fatal(err)
	}
	f := ev.(domain.ExecutionFailed)
	var out domain.Output
	if f.Result == nil || *f.Result.ExitCode != 3 || Open(nil, "old", PurposeOutput, f.Result.Output, &out) != nil ||
		out != (domain.Output{Stdout: "out", Stderr: "Traceback"}) || f.Message != "exited with 3" {
		t.Fatalf("upcast failed: %+v %+v", f, out)
	}
	ev, err = Decode(v1(completedV1{Result: resultV1{Verdict: domain.VerdictCompleted}}))
	if err != nil || ev.(domain.ExecutionCompleted).Result.Output != "" {
		t.Fatalf("upcast completed without output: %+v %v", ev, err)
	}
	ev, err = Decode(v1(failedV1{Reason: domain.VerdictCancelled, Message: "cancelled"}))
	if err != nil || ev.(domain.ExecutionFailed).Result != nil {
		t.Fatalf("upcast failed without a result: %+v %v", ev, err)
	}
	if _, err := Decode(Envelope{Type: domain.TypeExecutionQueued, SchemaVersion: 1, Data: json.RawMessage(`{"script":3}`)}); err == nil {
		t.Fatal("upcast a malformed version 1 event")
	}
}
