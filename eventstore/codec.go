package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/integr8scode/integr8scode/domain"
)

// Upcaster turns a payload of an old schema version into the next version.
type Upcaster func(json.RawMessage) (json.RawMessage, error)

// upcasters[type][from] rewrites version from into from+1 (schema.go,
// SchemaVersions). Version 2 of the types that carry content seals it;
// version 1 events hold it in the clear, and upcasting moves it into the
// sealed fields in the clear form (scheme 0, seal.go), which opens without
// a key: such content cannot be erased from the log (docs/events.md).
var upcasters = map[string]map[int]Upcaster{
	domain.TypeExecutionQueued:    {1: upcastQueuedV1},
	domain.TypeExecutionCompleted: {1: upcastResultV1},
	domain.TypeExecutionFailed:    {1: upcastResultV1},
}

// upcastQueuedV1 moves script and stdin into input.
func upcastQueuedV1(data json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var in domain.Input
	if err := unmarshalIf(m["script"], &in.Script); err != nil {
		return nil, err
	}
	if err := unmarshalIf(m["stdin"], &in.Stdin); err != nil {
		return nil, err
	}
	delete(m, "script")
	delete(m, "stdin")
	sealed, err := plainSealed(in)
	if err != nil {
		return nil, err
	}
	if m["input"], err = json.Marshal(sealed); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// upcastResultV1 moves a result's stdout and stderr into output.
func upcastResultV1(data json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	raw, ok := m["result"]
	if !ok || string(raw) == "null" {
		return data, nil
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	var out domain.Output
	if err := unmarshalIf(r["stdout"], &out.Stdout); err != nil {
		return nil, err
	}
	if err := unmarshalIf(r["stderr"], &out.Stderr); err != nil {
		return nil, err
	}
	delete(r, "stdout")
	delete(r, "stderr")
	if out.Stdout != "" || out.Stderr != "" {
		sealed, err := plainSealed(out)
		if err != nil {
			return nil, err
		}
		if r["output"], err = json.Marshal(sealed); err != nil {
			return nil, err
		}
	}
	var err error
	if m["result"], err = json.Marshal(r); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func unmarshalIf(raw json.RawMessage, v any) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

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
	return decodeWith(e, SchemaVersions, upcasters)
}

// decodeWith is Decode over a given table of versions and upcasters (the
// tests prove the upcasting path with a version this code has not needed yet).
func decodeWith(e Envelope, versions map[string]int, ups map[string]map[int]Upcaster) (domain.Event, error) {
	data := e.Data
	current, known := versions[e.Type]
	if !known {
		return nil, fmt.Errorf("decode %s: unknown event type %q", e.EventID, e.Type)
	}
	if e.SchemaVersion < 1 || e.SchemaVersion > current {
		return nil, fmt.Errorf("decode %s %s: unknown schema version %d", e.Type, e.EventID, e.SchemaVersion)
	}
	for v := e.SchemaVersion; v < current; v++ {
		up, ok := ups[e.Type][v]
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
	domain.TypeExecutionErased:    decodeAs[domain.ExecutionErased],
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
