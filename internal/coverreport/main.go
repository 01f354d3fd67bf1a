// Command coverreport merges the coverage that every test suite wrote
// (`go tool task test`: the package tests, the binaries they start, the
// Kubernetes suites and the platform's pods in the test cluster), writes the
// reports, prints the coverage of each package and fails when a core package
// falls below its floor. `go tool task coverage` runs it from the
// repository root; docs/testing.md says how the data is collected.
//
//	go run ./internal/coverreport [-data coverage/data] [-out coverage] [-floors .ci/coverage-floors.txt]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "coverreport:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("coverreport", flag.ContinueOnError)
	profiles := fs.String("profiles", "coverage/profiles", "directory of the text profiles that go test wrote (-coverprofile): every *.out file")
	data := fs.String("data", "coverage/data", "directory of the binary coverage data that processes wrote (GOCOVERDIR), searched recursively")
	out := fs.String("out", "coverage", "where to write coverage.out, coverage.html and cobertura.xml")
	floorsFile := fs.String("floors", ".ci/coverage-floors.txt", "the per-package floors to enforce")
	if err := fs.Parse(args); err != nil {
		return err
	}
	floors, err := readFloors(*floorsFile)
	if err != nil {
		return err
	}
	inputs, err := filepath.Glob(filepath.Join(*profiles, "*.out"))
	if err != nil {
		return err
	}
	dirs, err := coverDirs(*data)
	if err != nil {
		return err
	}
	if len(inputs) == 0 && len(dirs) == 0 {
		return fmt.Errorf("no coverage under %s or %s: run `go tool task test` first", *profiles, *data)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if len(dirs) > 0 {
		// covdata merges the counters of every process into one text
		// profile, which is what the other tools read.
		fromData := filepath.Join(*out, "data.out")
		defer os.Remove(fromData)
		if err := goTool(ctx, nil, nil, "covdata", "textfmt", "-i="+strings.Join(dirs, ","), "-o="+fromData); err != nil {
			return err
		}
		inputs = append(inputs, fromData)
	}
	var prof *profile
	for _, in := range inputs {
		if prof, err = readProfile(in, prof); err != nil {
			return err
		}
	}
	profile := filepath.Join(*out, "coverage.out")
	if err := writeProfile(profile, prof); err != nil {
		return err
	}
	if err := goTool(ctx, nil, nil, "cover", "-html="+profile, "-o="+filepath.Join(*out, "coverage.html")); err != nil {
		return err
	}
	if err := cobertura(ctx, profile, filepath.Join(*out, "cobertura.xml")); err != nil {
		return err
	}
	stats := prof.byPackage()
	module, err := modulePath(".")
	if err != nil {
		return err
	}
	failures := printTable(stdout, module, stats, floors)
	fmt.Fprintf(stdout, "\nreports: %s, %s, %s\n", filepath.Join(*out, "coverage.html"), filepath.Join(*out, "cobertura.xml"), profile)
	if len(failures) > 0 {
		return fmt.Errorf("below the floor (%s):\n  %s\nAdd tests that reach that code, or remove it if nothing needs it; never lower a floor to land a change",
			*floorsFile, strings.Join(failures, "\n  "))
	}
	return nil
}

// coverDirs lists the directories under root that hold coverage data (a
// covmeta file), root first.
func coverDirs(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if m, _ := filepath.Glob(filepath.Join(path, "covmeta.*")); len(m) > 0 {
				dirs = append(dirs, path)
			}
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return dirs, err
}

func cobertura(ctx context.Context, profile, dest string) error {
	in, err := os.Open(profile)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(dest)
	if err != nil {
		return err
	}
	if err := goTool(ctx, in, f, "gocover-cobertura"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goTool runs `go tool NAME ARGS` with the given standard input and output
// (this process's when nil).
func goTool(ctx context.Context, stdin io.Reader, stdout io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", name}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, os.Stderr
	if stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go tool %s: %w", name, err)
	}
	return nil
}
