package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// readFloors reads the floors file: one "PACKAGE PERCENT" line per core
// package, PACKAGE relative to the module ("adapters/kafka"), # comments.
func readFloors(name string) (map[string]float64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	floors := map[string]float64{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"package percent\", got %q", name, n, sc.Text())
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(fields[1], "%"), 64)
		if err != nil || v < 0 || v > 100 {
			return nil, fmt.Errorf("%s:%d: %q is not a percentage", name, n, fields[1])
		}
		if _, dup := floors[fields[0]]; dup {
			return nil, fmt.Errorf("%s:%d: %s has two floors", name, n, fields[0])
		}
		floors[fields[0]] = v
	}
	return floors, sc.Err()
}

// printTable prints each package's coverage beside its floor, and the
// totals, and returns a line for every floor that is not met (below it, or
// no data at all for its package).
func printTable(w io.Writer, module string, all []stats, floors map[string]float64) (failures []string) {
	type row struct {
		name                string
		statements, reached int
		percent             float64
		floor, verdict      string
	}
	var rows []row
	var core, total stats
	seen := map[string]bool{}
	for _, s := range all {
		rel := strings.TrimPrefix(strings.TrimPrefix(s.pkg, module), "/")
		if rel == "" {
			rel = "."
		}
		total.statements += s.statements
		total.reached += s.reached
		r := row{name: rel, statements: s.statements, reached: s.reached, percent: s.percent(), floor: "-"}
		if floor, ok := floors[rel]; ok {
			seen[rel] = true
			core.statements += s.statements
			core.reached += s.reached
			r.floor, r.verdict = fmt.Sprintf("%.1f %%", floor), "ok"
			// Compared as printed, so that what the table shows decides.
			if got := round1(s.percent()); got < floor {
				r.verdict = "BELOW THE FLOOR"
				failures = append(failures, fmt.Sprintf("%s: %.1f %% of %d statements, floor %.1f %%", rel, got, s.statements, floor))
			}
		}
		rows = append(rows, r)
	}
	rows = append(rows,
		row{name: "core packages (with a floor)", statements: core.statements, reached: core.reached, percent: core.percent()},
		row{name: "all", statements: total.statements, reached: total.reached, percent: total.percent()})
	width := len("package")
	for _, r := range rows {
		width = max(width, len(r.name))
	}
	fmt.Fprintf(w, "%-*s  %10s  %8s  %8s  %8s\n", width, "package", "statements", "reached", "coverage", "floor")
	for i, r := range rows {
		if i == len(rows)-2 {
			fmt.Fprintln(w, strings.Repeat("-", width+44))
		}
		fmt.Fprintf(w, "%-*s  %10d  %8d  %6.1f %%  %8s  %s\n", width, r.name, r.statements, r.reached, r.percent, r.floor, r.verdict)
	}
	for rel, floor := range floors {
		if !seen[rel] {
			failures = append(failures, fmt.Sprintf("%s: no coverage data (floor %.1f %%): did every suite run, and does the package still exist?", rel, floor))
		}
	}
	sort.Strings(failures)
	return failures
}

func round1(v float64) float64 {
	r, _ := strconv.ParseFloat(fmt.Sprintf("%.1f", v), 64)
	return r
}

// modulePath is the module path that go.mod in dir declares.
func modulePath(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(m), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", filepath.Join(dir, "go.mod"))
}
