package eventstore

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// seedRecords are the test vectors' records: real shapes for the fuzzers
// to mutate.
func seedRecords(f *testing.F) {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		f.Fatal(err)
	}
	var file vectorFile
	if err := json.Unmarshal(b, &file); err != nil {
		f.Fatal(err)
	}
	for _, v := range file.Vectors {
		f.Add([]byte(v.Record))
	}
	f.Add([]byte(`{"a":"\ud800"}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[1,2,3]`))
}

// The canonical form never panics, and is a fixed point: canonicalizing a
// canonical form (with hash and signature put back) gives the same bytes.
func FuzzCanonical(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, record []byte) {
		c, err := Canonical(record)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not JSON: %q", c)
		}
		again, err := Canonical(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not a fixed point: %q → %q (%v)", c, again, err)
		}
		if _, err := HashRecord(record); err != nil {
			t.Fatalf("hash of a record with a canonical form: %v", err)
		}
	})
}

// Reading a record never panics; a record that reads is checked without
// panicking and survives being written again.
func FuzzParseRecord(f *testing.F) {
	seedRecords(f)
	keys, err := NewKeySet(testSigner().Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, record []byte) {
		env, err := ParseRecord(record)
		if err != nil {
			return
		}
		CheckRecord(keys, record, env.PrevHash)
		_, _ = Decode(env)
		out, err := env.Record()
		if err != nil {
			return // data that Go cannot write back as it read it (not valid JSON text)
		}
		if _, err := ParseRecord(out); err != nil {
			t.Fatalf("a record read and written again no longer reads: %v\n%s", err, out)
		}
	})
}
