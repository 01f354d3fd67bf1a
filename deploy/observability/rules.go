package observability

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RuleFiles and RuleTests are the rule files in dir (*.rules.yml) and
// their promtool unit tests (*_test.yml).
func RuleFiles(dir string) (rules, tests []string, err error) {
	all, err := filepath.Glob(filepath.Join(dir, "*.yml"))
	if err != nil {
		return nil, nil, err
	}
	for _, f := range all {
		if strings.HasSuffix(f, "_test.yml") {
			tests = append(tests, f)
		} else {
			rules = append(rules, f)
		}
	}
	if len(rules) == 0 || len(tests) == 0 {
		return nil, nil, fmt.Errorf("%s: want rule files and their tests, found %d and %d", dir, len(rules), len(tests))
	}
	return rules, tests, nil
}

// CheckRules runs `promtool check rules` on the rule files in dir and
// `promtool test rules` on their tests, writing promtool's report to out.
func CheckRules(ctx context.Context, b Binaries, dir string, out io.Writer) error {
	rules, tests, err := RuleFiles(dir)
	if err != nil {
		return err
	}
	for _, args := range [][]string{append([]string{"check", "rules"}, rules...), append([]string{"test", "rules"}, tests...)} {
		cmd := exec.CommandContext(ctx, b.Promtool, args...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("promtool %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// WriteDashboards writes every dashboard as <dir>/<uid>.json.
func WriteDashboards(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range Dashboards {
		b, err := d.JSON()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.UID+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
