package kubernetes

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestPodName(t *testing.T) {
	long := strings.Repeat("a", 200)
	cases := []struct {
		id      string
		attempt int
		want    string // "" when only validity is checked
	}{
		{"0b9a7c1e-5f5e-4f6b-9d1a-2b7c4f8e9a10", 1, "exec-0b9a7c1e-5f5e-4f6b-9d1a-2b7c4f8e9a10-a1"},
		{"plain", 12, "exec-plain-a12"},
		{"Upper_Case.id", 1, ""},
		{"--", 1, ""},
		{"ünïcödé", 2, ""},
		{long, 999999, ""},
	}
	seen := map[string]string{}
	for _, c := range cases {
		name := podName(c.id, c.attempt)
		if c.want != "" && name != c.want {
			t.Errorf("podName(%q, %d) = %q, want %q", c.id, c.attempt, name, c.want)
		}
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("podName(%q) = %q: %v", c.id, name, errs)
		}
		key := executionKey(c.id)
		if errs := validation.IsValidLabelValue(key); len(errs) > 0 {
			t.Errorf("executionKey(%q) = %q: %v", c.id, key, errs)
		}
		if podName(c.id, c.attempt) != name {
			t.Errorf("podName(%q) is not deterministic", c.id)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share pod name %q", c.id, other, name)
		}
		seen[name] = c.id
	}
	// Ids that differ only where the name cannot show it get different names.
	if podName("a_b", 1) == podName("a.b", 1) || podName("ABC", 1) == podName("abc", 1) {
		t.Error("lossy ids collide")
	}
	if podName(long, 1) == podName(long+"b", 1) {
		t.Error("long ids collide")
	}
}
