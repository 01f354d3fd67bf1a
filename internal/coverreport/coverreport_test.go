package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two processes' data of the same package can reach the profile as two
// copies of a block: reached by either counts as reached, once.
func TestProfileCountsABlockOnceReachedByAnyCopy(t *testing.T) {
	p, err := readProfile(write(t, "c.out", `mode: set
example.com/m/a/x.go:1.1,3.2 2 0
example.com/m/a/x.go:4.1,6.2 3 1
example.com/m/a/x.go:1.1,3.2 2 1
example.com/m/b/y.go:1.1,2.2 5 0
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := p.byPackage()
	want := []stats{{"example.com/m/a", 5, 5}, {"example.com/m/b", 5, 0}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("byPackage %+v, want %+v", got, want)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := writeProfile(out, p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if want := "mode: set\nexample.com/m/a/x.go:1.1,3.2 2 1\nexample.com/m/a/x.go:4.1,6.2 3 1\nexample.com/m/b/y.go:1.1,2.2 5 0\n"; string(b) != want {
		t.Fatalf("written profile:\n%s\nwant:\n%s", b, want)
	}
}

func TestProfileCountingModesAddUp(t *testing.T) {
	p, err := readProfile(write(t, "c.out", "mode: atomic\nexample.com/m/a/x.go:1.1,3.2 2 4\nexample.com/m/a/x.go:1.1,3.2 2 3\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := p.blocks["example.com/m/a/x.go:1.1,3.2"]; b.count != 7 || b.statements != 2 {
		t.Fatalf("block %+v, want count 7 of 2 statements", b)
	}
}

// Profiles of several suites merge into one.
func TestProfilesMerge(t *testing.T) {
	p, err := readProfile(write(t, "a.out", "mode: set\nexample.com/m/a/x.go:1.1,3.2 2 0\nexample.com/m/a/x.go:4.1,6.2 3 1\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = readProfile(write(t, "b.out", "mode: set\nexample.com/m/a/x.go:1.1,3.2 2 1\n"), p); err != nil {
		t.Fatal(err)
	}
	if got := p.byPackage(); len(got) != 1 || got[0] != (stats{"example.com/m/a", 5, 5}) {
		t.Fatalf("byPackage %+v, want all 5 statements reached", got)
	}
	if _, err := readProfile(write(t, "c.out", "mode: atomic\nexample.com/m/a/x.go:1.1,3.2 2 1\n"), p); err == nil {
		t.Fatal("merged an atomic profile into a set one")
	}
}

func TestErrMalformedProfile(t *testing.T) {
	for name, body := range map[string]string{
		"no mode line":     "example.com/m/a/x.go:1.1,3.2 2 4\n",
		"missing count":    "mode: set\nexample.com/m/a/x.go:1.1,3.2 2\n",
		"count not number": "mode: set\nexample.com/m/a/x.go:1.1,3.2 2 x\n",
		"empty":            "",
	} {
		if _, err := readProfile(write(t, "c.out", body), nil); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
}

func TestFloors(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		f, err := readFloors(write(t, "floors", "# comment\n\ndomain 97.5\nadapters/kafka  80 # trailing comment\n"))
		if err != nil || len(f) != 2 || f["domain"] != 97.5 || f["adapters/kafka"] != 80 {
			t.Fatalf("floors %v, %v", f, err)
		}
	})
	for name, body := range map[string]string{
		"ErrNotAPercentage": "domain 101\n",
		"ErrNoFloor":        "domain\n",
		"ErrTwoFloors":      "domain 50\ndomain 60\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := readFloors(write(t, "floors", body)); err == nil {
				t.Fatalf("%q read without an error", body)
			}
		})
	}
}

// The table fails a package below its floor (as printed, to one decimal)
// and a floor whose package has no data, and passes the rest.
func TestTableFailsWhatIsBelowItsFloor(t *testing.T) {
	all := []stats{
		{"example.com/m/a", 1000, 899}, // 89.9 %
		{"example.com/m/b", 1000, 900}, // 90.0 %
		{"example.com/m/cmd/tool", 10, 0},
	}
	var out strings.Builder
	failures := printTable(&out, "example.com/m", all, map[string]float64{"a": 90, "b": 90, "gone": 50})
	if len(failures) != 2 || !strings.HasPrefix(failures[0], "a: 89.9 %") || !strings.HasPrefix(failures[1], "gone: no coverage data") {
		t.Fatalf("failures %q", failures)
	}
	table := out.String()
	for _, want := range []string{"BELOW THE FLOOR", "ok", "cmd/tool", "core packages (with a floor)", "89.9 %"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestModulePath(t *testing.T) {
	dir := filepath.Dir(write(t, "go.mod", "// c\nmodule example.com/m\n\ngo 1.26\n"))
	if m, err := modulePath(dir); err != nil || m != "example.com/m" {
		t.Fatalf("modulePath %q, %v", m, err)
	}
}
