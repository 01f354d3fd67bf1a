package mongo

import (
	"fmt"
	"reflect"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// timeLayout is how every time.Time is stored: RFC 3339 in UTC with exactly
// nine fractional digits.
//
// Why not BSON dates: they have millisecond precision, while the ledger's
// times (occurred_at, and every time of the Execution folded from events)
// have nanoseconds. A view that said created_at=…12.345Z while its first
// event says occurred_at=…12.345678901Z would be a visible lie. The fixed
// width keeps lexicographic order equal to chronological order (for years
// 0000–9999), so indexes, sorts and range filters on these strings work on
// MongoDB and FerretDB alike, and the value stays readable in a shell.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

var timeType = reflect.TypeOf(time.Time{})

// newRegistry returns the BSON registry of every collection of this package:
// the driver's defaults with time.Time stored as timeLayout strings. Because
// the collection's registry also encodes filters, a time in a filter (the
// list cursor) is compared in the same representation.
func newRegistry() *bson.Registry {
	r := bson.NewRegistry()
	r.RegisterTypeEncoder(timeType, bson.ValueEncoderFunc(encodeTime))
	r.RegisterTypeDecoder(timeType, bson.ValueDecoderFunc(decodeTime))
	return r
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func encodeTime(_ bson.EncodeContext, vw bson.ValueWriter, val reflect.Value) error {
	if !val.IsValid() || val.Type() != timeType {
		return bson.ValueEncoderError{Name: "encodeTime", Types: []reflect.Type{timeType}, Received: val}
	}
	return vw.WriteString(formatTime(val.Interface().(time.Time)))
}

// decodeTime reads the string form, and also BSON dates and null so that a
// document written by another tool still decodes (at its own precision).
func decodeTime(_ bson.DecodeContext, vr bson.ValueReader, val reflect.Value) error {
	if !val.CanSet() || val.Type() != timeType {
		return bson.ValueDecoderError{Name: "decodeTime", Types: []reflect.Type{timeType}, Received: val}
	}
	var t time.Time
	switch vr.Type() {
	case bson.TypeString:
		s, err := vr.ReadString()
		if err != nil {
			return err
		}
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("decode time %q: %w", s, err)
		}
	case bson.TypeDateTime:
		ms, err := vr.ReadDateTime()
		if err != nil {
			return err
		}
		t = time.UnixMilli(ms)
	case bson.TypeNull:
		if err := vr.ReadNull(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("decode time: cannot decode BSON %s into time.Time", vr.Type())
	}
	val.Set(reflect.ValueOf(t.UTC()))
	return nil
}
