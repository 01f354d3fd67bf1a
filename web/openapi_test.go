package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.yaml.in/yaml/v3"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// TestOpenAPIMatchesRoutes keeps the published contract and the router in
// step: every API route is documented with its method, and nothing else is.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" /api/v1"+path)
		}
	}
	var routed []string
	// Accounts on, as the platform runs: the zero values are enough to
	// mount their routes.
	s := newServer(Deps{Catalog: domain.Catalog{}, Accounts: &accounts.Service{}, Scripts: &accounts.Scripts{}})
	err := chi.Walk(s.router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/v1/") && route != "/api/v1/openapi.yaml" {
			routed = append(routed, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(documented)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Fatalf("openapi.yaml and routes differ:\ndocumented:\n%s\nrouted:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
}

func TestEventSchemasAreServedAsPublished(t *testing.T) {
	a := startAPI(t, nil)
	r := call(t, "GET", a.URL+"/api/v1/events/schemas", "")
	var idx struct {
		Schemas []struct {
			Type    string
			Version int
			Current bool
			URL     string
		}
	}
	refs, _ := eventstore.PublishedSchemas()
	if err := json.Unmarshal(r.Body, &idx); err != nil || r.Status != http.StatusOK || len(idx.Schemas) != len(refs) {
		t.Fatalf("index: %d %s", r.Status, r.Body)
	}
	current := 0
	for _, s := range idx.Schemas {
		if s.Current {
			current++
		}
		got := call(t, "GET", a.URL+s.URL, "")
		want, err := eventstore.SchemaFile(s.Type, s.Version)
		if err != nil || got.Status != http.StatusOK || got.Header.Get("Content-Type") != "application/schema+json" ||
			!bytes.Equal(got.Body, bytes.TrimSpace(want)) || s.Current != (s.Type == "envelope" || eventstore.SchemaVersions[s.Type] == s.Version) {
			t.Fatalf("%s: %d %s", s.URL, got.Status, got.Header.Get("Content-Type"))
		}
	}
	if current != len(eventstore.SchemaVersions)+1 {
		t.Fatalf("%d current schemas, want one per type and the envelope's", current)
	}
	for _, path := range []string{"/ExecutionQueued/9", "/ExecutionQueued/x", "/..%2fschemas.go/1", "/Nope/1"} {
		if r := call(t, "GET", a.URL+"/api/v1/events/schemas"+path, ""); r.Status != http.StatusNotFound {
			t.Fatalf("%s: %d", path, r.Status)
		}
	}
}
