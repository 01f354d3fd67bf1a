package mongo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

type timeHolder struct {
	T time.Time  `bson:"t"`
	P *time.Time `bson:"p"`
}

func TestTimeCodec(t *testing.T) {
	reg := newRegistry()
	roundTrip := func(in timeHolder) (timeHolder, bson.Raw) {
		t.Helper()
		raw, err := marshalWith(reg, in)
		if err != nil {
			t.Fatal(err)
		}
		var out timeHolder
		if err := unmarshalWith(reg, raw, &out); err != nil {
			t.Fatal(err)
		}
		return out, raw
	}
	berlin := time.FixedZone("CET", 3600)
	for _, in := range []timeHolder{
		{T: t0, P: ptime(t0.Add(1))},
		{T: time.Time{}},
		{T: t0.In(berlin)},
		{T: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, // no fraction: still nine digits
	} {
		out, raw := roundTrip(in)
		if !out.T.Equal(in.T) || out.T.Location() != time.UTC && !out.T.IsZero() {
			t.Errorf("%v came back as %v", in.T, out.T)
		}
		if (in.P == nil) != (out.P == nil) || in.P != nil && !in.P.Equal(*out.P) {
			t.Errorf("pointer %v came back as %v", in.P, out.P)
		}
		if s := raw.Lookup("t").StringValue(); len(s) != len(timeLayout) {
			t.Errorf("stored %q is not fixed-width", s)
		}
	}
	// Fixed width makes string order chronological.
	a, b := formatTime(t0), formatTime(t0.Add(time.Nanosecond))
	c := formatTime(t0.Truncate(time.Second).Add(time.Second))
	if !(a < b && b < c) {
		t.Errorf("order broken: %s %s %s", a, b, c)
	}
	// A BSON date written by another tool still decodes.
	raw, _ := bson.Marshal(bson.D{{Key: "t", Value: bson.NewDateTimeFromTime(t0)}})
	var out timeHolder
	if err := unmarshalWith(reg, raw, &out); err != nil || !out.T.Equal(t0.Truncate(time.Millisecond)) {
		t.Errorf("BSON date: %v %v", out.T, err)
	}
}

func marshalWith(reg *bson.Registry, v any) (bson.Raw, error) {
	var buf bytes.Buffer
	enc := bson.NewEncoder(bson.NewDocumentWriter(&buf))
	enc.SetRegistry(reg)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func unmarshalWith(reg *bson.Registry, raw bson.Raw, v any) error {
	dec := bson.NewDecoder(bson.NewDocumentReader(bytes.NewReader(raw)))
	dec.SetRegistry(reg)
	return dec.Decode(v)
}

// A time that another tool wrote as null is the zero time; one that is
// not a time at all is an error naming what was found, never a zero time
// that would read as "not set".
func TestTimeCodecRefusesWhatIsNotATime(t *testing.T) {
	reg := newRegistry()
	raw, _ := bson.Marshal(bson.D{{Key: "t", Value: nil}})
	out := timeHolder{T: t0}
	if err := unmarshalWith(reg, raw, &out); err != nil || !out.T.IsZero() {
		t.Errorf("null: %v, %v; want the zero time", out.T, err)
	}
	for _, c := range []struct {
		name  string
		value any
		want  string
	}{
		{"ErrNumber", int32(42), "cannot decode BSON 32-bit integer into time.Time"},
		{"ErrNotRFC3339", "yesterday", `decode time "yesterday"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := bson.Marshal(bson.D{{Key: "t", Value: c.value}})
			var out timeHolder
			if err := unmarshalWith(reg, raw, &out); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want an error saying %q", err, c.want)
			}
		})
	}
}
