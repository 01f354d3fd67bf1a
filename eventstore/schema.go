package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	docevents "github.com/integr8scode/integr8scode/docs/events"
	"github.com/integr8scode/integr8scode/domain"
)

// SchemaVersions is the version each event type is written with now. A
// type's version changes only when its data changes incompatibly
// (docs/events.md, "Compatibility"); then an upcaster from the old version
// goes into upcasters (codec.go), and both versions' schemas stay published.
//
// Version 2 of ExecutionQueued, ExecutionCompleted and ExecutionFailed
// carries the script, stdin and output sealed under the execution's data
// key instead of in the clear (seal.go; docs/events.md, "Erasure").
var SchemaVersions = map[string]int{
	domain.TypeExecutionQueued:    2,
	domain.TypeExecutionStarted:   1,
	domain.TypeExecutionAbandoned: 1,
	domain.TypeExecutionResumed:   1,
	domain.TypeExecutionCompleted: 2,
	domain.TypeExecutionFailed:    2,
	domain.TypeExecutionErased:    1,
}

// EnvelopeVersion is the version of the record envelope's schema.
const EnvelopeVersion = 1

// SchemaRef names one published schema.
type SchemaRef struct {
	Type    string // an event type, or "envelope"
	Version int
	Current bool // the version written now
}

// File is the schema's file name under docs/events/schemas.
func (r SchemaRef) File() string { return r.Type + ".v" + strconv.Itoa(r.Version) + ".json" }

// PublishedSchemas lists every schema file, sorted by type and version.
func PublishedSchemas() ([]SchemaRef, error) {
	entries, err := fs.ReadDir(docevents.Schemas, "schemas")
	if err != nil {
		return nil, err
	}
	var out []SchemaRef
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		typ, v, ok2 := strings.Cut(name, ".v")
		n, err := strconv.Atoi(v)
		if !ok || !ok2 || err != nil || n < 1 {
			return nil, fmt.Errorf("schema file %s is not <type>.v<version>.json", e.Name())
		}
		cur := n == SchemaVersions[typ] || (typ == "envelope" && n == EnvelopeVersion)
		out = append(out, SchemaRef{Type: typ, Version: n, Current: cur})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// SchemaFile returns the bytes of a published schema, as served.
func SchemaFile(typ string, version int) ([]byte, error) {
	ref := SchemaRef{Type: typ, Version: version}
	if strings.ContainsAny(typ, "/.\\") || typ == "" {
		return nil, fs.ErrNotExist
	}
	return fs.ReadFile(docevents.Schemas, "schemas/"+ref.File())
}

// schemaSet is every published schema, compiled once.
var schemaSet = sync.OnceValues(func() (map[string]*jsonschema.Schema, error) {
	refs, err := PublishedSchemas()
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, r := range refs {
		b, err := SchemaFile(r.Type, r.Version)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", r.File(), err)
		}
		if err := c.AddResource(r.File(), doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", r.File(), err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, r := range refs {
		s, err := c.Compile(r.File())
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", r.File(), err)
		}
		out[r.File()] = s
	}
	return out, nil
})

// ValidateRecord checks a ledger record against the published contract:
// the envelope schema, then its data against the schema of its type and
// schema version. Producers run it in tests on every event they make;
// consumers may run the same files with any JSON Schema library.
func ValidateRecord(record []byte) error {
	set, err := schemaSet()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(record))
	if err != nil {
		return fmt.Errorf("record is not JSON: %w", err)
	}
	env := SchemaRef{Type: "envelope", Version: EnvelopeVersion}
	if err := set[env.File()].Validate(doc); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	var head struct {
		Type          string          `json:"type"`
		SchemaVersion int             `json:"schema_version"`
		Data          json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(record, &head); err != nil {
		return err
	}
	ref := SchemaRef{Type: head.Type, Version: head.SchemaVersion}
	s, ok := set[ref.File()]
	if !ok {
		return fmt.Errorf("no published schema for %s version %d", head.Type, head.SchemaVersion)
	}
	data, err := jsonschema.UnmarshalJSON(bytes.NewReader(head.Data))
	if err != nil {
		return err
	}
	if err := s.Validate(data); err != nil {
		return fmt.Errorf("%s v%d data: %w", head.Type, head.SchemaVersion, err)
	}
	return nil
}
