package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// profile is a Go text coverage profile ("mode: set" and one line per
// block), with each block once.
type profile struct {
	mode   string
	blocks map[string]block // by "file:start,end"
	order  []string         // first-seen order, for a stable output
}

type block struct {
	statements int
	count      int64
}

// readProfile reads a text profile into p (a new one if nil). A block
// listed more than once (go test lists every package once per test
// binary; several suites list the same packages) counts as reached if any
// copy was; in the counting modes the counts add up.
func readProfile(name string, p *profile) (*profile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if p == nil {
		p = &profile{blocks: map[string]block{}}
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			mode, ok := strings.CutPrefix(line, "mode: ")
			if !ok {
				return nil, fmt.Errorf("%s: first line %q, want \"mode: ...\"", name, line)
			}
			if p.mode != "" && p.mode != mode {
				return nil, fmt.Errorf("%s: mode %s, but the profiles before it are %s: build every suite with the same -covermode", name, mode, p.mode)
			}
			p.mode = mode
			continue
		}
		if line == "" {
			continue
		}
		// file:12.3,15.2 NUMSTMT COUNT
		i := strings.LastIndexByte(line, ':')
		fields := strings.Fields(line[i+1:])
		if i < 1 || len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: malformed block %q", name, n, line)
		}
		key := line[:i+1] + fields[0]
		stmts, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: malformed block %q", name, n, line)
		}
		b, seen := p.blocks[key]
		if !seen {
			p.order = append(p.order, key)
			b.statements = stmts
		}
		if p.mode == "set" {
			b.count = max(b.count, count)
		} else {
			b.count += count
		}
		p.blocks[key] = b
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.mode == "" {
		return nil, fmt.Errorf("%s: empty profile", name)
	}
	return p, nil
}

func writeProfile(name string, p *profile) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "mode: %s\n", p.mode)
	for _, k := range p.order {
		b := p.blocks[k]
		fmt.Fprintf(w, "%s %d %d\n", k, b.statements, b.count)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stats is how many statements a package has and how many some test reached.
type stats struct {
	pkg                 string // import path
	statements, reached int
}

func (s stats) percent() float64 {
	if s.statements == 0 {
		return 100
	}
	return 100 * float64(s.reached) / float64(s.statements)
}

// byPackage sums the blocks per package (the directory of their file),
// sorted by import path.
func (p *profile) byPackage() []stats {
	m := map[string]*stats{}
	for k, b := range p.blocks {
		file, _, _ := strings.Cut(k, ":")
		pkg := path.Dir(file)
		s := m[pkg]
		if s == nil {
			s = &stats{pkg: pkg}
			m[pkg] = s
		}
		s.statements += b.statements
		if b.count > 0 {
			s.reached += b.statements
		}
	}
	out := make([]stats, 0, len(m))
	for _, s := range m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pkg < out[j].pkg })
	return out
}
