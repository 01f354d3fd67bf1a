package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/integr8scode/integr8scode/domain"
)

// CurrentSchemaVersion is the version every event is written with. When a
// payload changes shape, raise it and add an upcaster for the old version.
const CurrentSchemaVersion = 1

// upcaster turns a payload of an old schema version into the next version.
type upcaster func(json.RawMessage) (json.RawMessage, error)

// upcasters[type][from] rewrites version from into from+1. Empty today: the
// first schema is still the only one.
var upcasters = map[string]map[int]upcaster{}

// Encode marshals a domain event's payload, without HTML escaping so that
// a script's "<" and "&" stay readable in exports.
func Encode(ev domain.Event) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.EventType(), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode turns an envelope's payload into its domain event, upcasting old
// schema versions first.
func Decode(e Envelope) (domain.Event, error) {
	data := e.Data
	if e.SchemaVersion < 1 || e.SchemaVersion > CurrentSchemaVersion {
		return nil, fmt.Errorf("decode %s %s: unknown schema version %d", e.Type, e.EventID, e.SchemaVersion)
	}
	for v := e.SchemaVersion; v < CurrentSchemaVersion; v++ {
		up, ok := upcasters[e.Type][v]
		if !ok {
			return nil, fmt.Errorf("decode %s %s: no upcaster from version %d", e.Type, e.EventID, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, fmt.Errorf("upcast %s %s from %d: %w", e.Type, e.EventID, v, err)
		}
	}
	decode, ok := decoders[e.Type]
	if !ok {
		return nil, fmt.Errorf("decode %s: unknown event type %q", e.EventID, e.Type)
	}
	ev, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", e.Type, e.EventID, err)
	}
	return ev, nil
}

// decoders reads each stable type name's payload into its domain event.
var decoders = map[string]func(json.RawMessage) (domain.Event, error){
	domain.TypeExecutionQueued:    decodeAs[domain.ExecutionQueued],
	domain.TypeExecutionStarted:   decodeAs[domain.ExecutionStarted],
	domain.TypeExecutionAbandoned: decodeAs[domain.ExecutionAbandoned],
	domain.TypeExecutionResumed:   decodeAs[domain.ExecutionResumed],
	domain.TypeExecutionCompleted: decodeAs[domain.ExecutionCompleted],
	domain.TypeExecutionFailed:    decodeAs[domain.ExecutionFailed],
}

func decodeAs[E domain.Event](data json.RawMessage) (domain.Event, error) {
	var ev E
	err := json.Unmarshal(data, &ev)
	return ev, err
}

// Decodable reports whether this code can read an envelope's payload: a
// known type at a schema version it has (or can upcast from).
func Decodable(e Envelope) error {
	_, err := Decode(e)
	return err
}
