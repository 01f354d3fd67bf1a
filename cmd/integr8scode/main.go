// Command integr8scode is the one binary of the platform: every role, the
// all-in-one embedded mode and the command-line client. This package is the
// only one that knows every concrete type; it wires them and owns
// configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integr8scode:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

const usage = `usage: integr8scode <command> [flags]

commands:
  up          run the whole platform on embedded Kafka and MongoDB stores
  api         run the HTTP API against external Kafka and MongoDB
  runner      run sandboxes for queued executions (external Kafka and MongoDB)
  projector   build the MongoDB views from the ledger (external Kafka and MongoDB)
  stores      run only the embedded Kafka broker and MongoDB-wire store, on
              loopback, for api/runner/projector processes on this machine
  run FILE    submit a script to a server, print its output, exit with its exit code
  loadtest    measure a running server: latency against a bare runc floor, executions/s
  ledger      audit the ledger (verify) and manage its signing keys (keys)
  projections rebuild the views from the ledger, or compare them with it
  events      export the ledger's events (JSON lines or CSV) or follow them live
  executions  erase an execution's content (erase ID)
  admin       create accounts (the first admin), set passwords, rotate token keys
  version     print the version

Run "integr8scode <command> -h" for the flags of a command. Every flag can
also be set with an INTEGR8SCODE_* environment variable (see README.md).
`

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// run is the whole program, testable without a process: it returns the exit
// code and an error to print.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2, nil
	}
	cmd, rest := args[1], args[2:]
	var err error
	switch cmd {
	case "up":
		err = runUp(ctx, rest, getenv, stderr)
	case "api", "runner", "projector", "stores":
		err = runRole(ctx, cmd, rest, getenv, stderr)
	case "run":
		return runClient(ctx, rest, getenv, stdin, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, rest, getenv, stdout, stderr)
	case "ledger":
		return runLedger(ctx, rest, getenv, stdout, stderr)
	case "projections":
		return runProjections(ctx, rest, getenv, stdout, stderr)
	case "events":
		return runEvents(ctx, rest, getenv, stdout, stderr)
	case "executions":
		return runExecutions(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "integr8scode", version)
		return 0, nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0, nil
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2, nil
	}
	if errors.Is(err, errUsage) {
		return 2, nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
