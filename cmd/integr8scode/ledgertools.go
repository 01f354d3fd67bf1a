package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/eventstore"
)

const ledgerUsage = `usage: integr8scode ledger <command> [flags]

commands:
  verify   read the whole ledger (read_committed, offset 0 to its end) and
           check every event's hash, link and signature and every
           execution's sequence; exit 1 if anything is wrong
  keys     print the ledger's public keys (as GET /api/v1/ledger/keys
           serves them), creating the signing key if there is none, or
           rotating it with --rotate
`

func runLedger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	if len(args) < 1 {
		fmt.Fprint(stderr, ledgerUsage)
		return 2, nil
	}
	switch args[0] {
	case "verify":
		return runLedgerVerify(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return runLedgerKeys(args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, ledgerUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "unknown ledger command %q\n\n%s", args[0], ledgerUsage)
	return 2, nil
}

// verifyReport is the JSON of `ledger verify --json`: one count per kind
// of problem, then every problem.
type verifyReport struct {
	Events         int                  `json:"events"`
	Executions     int                  `json:"executions"`
	Duplicates     int                  `json:"duplicates"`
	Forks          int                  `json:"forks"`
	Gaps           int                  `json:"gaps"`
	BadHashes      int                  `json:"bad_hashes"`
	BadLinks       int                  `json:"bad_links"`
	BadSignatures  int                  `json:"bad_signatures"`
	UnknownSchemas int                  `json:"unknown_schemas"`
	Malformed      int                  `json:"malformed"`
	Problems       []eventstore.Problem `json:"problems"`
}

func newVerifyReport(r eventstore.AuditReport) verifyReport {
	c := r.Counts
	return verifyReport{Events: r.Events, Executions: r.Executions,
		Duplicates: c[eventstore.ProblemDuplicate], Forks: c[eventstore.ProblemFork], Gaps: c[eventstore.ProblemGap],
		BadHashes: c[eventstore.ProblemBadHash], BadLinks: c[eventstore.ProblemBadLink],
		BadSignatures: c[eventstore.ProblemBadSignature], UnknownSchemas: c[eventstore.ProblemUnknownSchema],
		Malformed: c[eventstore.ProblemMalformed], Problems: r.Problems}
}

func runLedgerVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	var c toolConfig
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	c.registerJSON(fs)
	c.registerKeys(fs, "the public keys to verify signatures with: a keys document (file) or the URL of "+
		"/api/v1/ledger/keys, or a key directory (default with --data-dir: its ledger-keys); keep an archived copy, "+
		"a server you audit should not hand you the keys")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if c.KafkaBrokers != "" && c.keys == "" {
		fmt.Fprintln(stderr, "ledger verify: --keys is required with --kafka-brokers")
		return 2, nil
	}
	env, err := c.openWithKeys(ctx, false)
	if err != nil {
		return 1, err
	}
	defer env.close()
	keys := env.keys
	report, err := verifyLedger(ctx, env.brokers, keys, stderr)
	if err != nil {
		return 1, err
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return 1, err
		}
	} else {
		printVerifyReport(stdout, report)
	}
	if len(report.Problems) > 0 {
		return 1, nil
	}
	return 0, nil
}

// verifyLedger audits every committed record of the ledger.
func verifyLedger(ctx context.Context, brokers []string, keys *eventstore.KeySet, stderr io.Writer) (verifyReport, error) {
	audit := eventstore.NewAudit(keys)
	err := readLedger(ctx, brokers, stderr, "verifying", func(rec kafka.Record) error {
		audit.Add(rec.Partition, rec.Offset, rec.Value)
		return nil
	}, nil)
	if err != nil {
		return verifyReport{}, err
	}
	return newVerifyReport(audit.Report()), nil
}

func printVerifyReport(w io.Writer, r verifyReport) {
	fmt.Fprintf(w, "%d events of %d executions\n", r.Events, r.Executions)
	for _, x := range []struct {
		n    int
		what string
	}{{r.Duplicates, "duplicates"}, {r.Forks, "forks"}, {r.Gaps, "gaps"}, {r.BadHashes, "bad hashes"},
		{r.BadLinks, "bad links"}, {r.BadSignatures, "bad signatures"}, {r.UnknownSchemas, "unknown schemas"},
		{r.Malformed, "malformed records"}} {
		fmt.Fprintf(w, "  %-18s %d\n", x.what, x.n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s at %d:%d  execution %s sequence %d: %s\n", p.Kind, p.Partition, p.Offset, p.ExecutionID, p.Sequence, p.Detail)
	}
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "the ledger verifies: every chain is whole, linked and signed")
	}
}

func runLedgerKeys(args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("ledger keys", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "./data/ledger-keys", "the key directory (a data directory's ledger-keys, or what becomes a Kubernetes Secret)")
	rotate := fs.Bool("rotate", false, "add a new signing key and make it the active one; old keys stay to verify old events")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if *rotate {
		id, err := keyring.Rotate(*dir)
		if err != nil {
			return 1, err
		}
		fmt.Fprintln(stderr, "signing with", id, "from now on (running api processes switch to it within 10 s)")
	}
	ring, err := keyring.LoadOrCreate(*dir)
	if err != nil {
		return 1, err
	}
	doc := ring.Keys.Document()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return 0, enc.Encode(doc)
}
