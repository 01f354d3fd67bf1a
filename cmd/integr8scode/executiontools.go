package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/domain"
)

const executionsUsage = `usage: integr8scode executions <command> [flags]

commands:
  erase ID    erase an ended execution's content (script, stdin, output):
              ExecutionErased goes into the ledger and the execution's data
              key is destroyed, so the sealed content in every copy of the
              log never opens again; every chain still verifies. A queued or
              running execution is refused: cancel it first.

The ledger writer records the erasure, so the platform must be running:
point the command at its stores with --kafka-brokers and --mongodb-uri (and
the SASL flags), or at the data directory of a running integr8scode up
(--data-dir).
`

func runExecutions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	if len(args) < 1 {
		fmt.Fprint(stderr, executionsUsage)
		return 2, nil
	}
	switch args[0] {
	case "erase":
		return runErase(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, executionsUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "unknown executions command %q\n\n%s", args[0], executionsUsage)
	return 2, nil
}

func runErase(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("executions erase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c toolConfig
	c.register(fs)
	fs.Lookup("data-dir").Usage = "data directory of a running `integr8scode up` (used when --kafka-brokers is not given)"
	actor := fs.String("actor", "operator", "who asks, as the ledger records it (the event's actor)")
	reason := fs.String("reason", domain.EraseRequested, "why: request (someone asked) or retention")
	// Flags may follow the id.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		id = ""
	}
	if _, err := uuid.Parse(id); err != nil {
		fmt.Fprintln(stderr, "usage: integr8scode executions erase ID [flags]: one execution id")
		return 2, nil
	}
	if err := c.runningStores(); err != nil {
		return 1, err
	}
	client, err := mongo.Connect(ctx, c.MongoURI)
	if err != nil {
		return 1, err
	}
	defer client.Disconnect(context.Background())
	db, err := openDB(ctx, client, c.attached, c.MongoDatabase)
	if err != nil {
		return 1, err
	}
	defer db.Close()
	ask, err := kafka.NewAsker(c.brokers(), "erase", slog.New(slog.DiscardHandler))
	if err != nil {
		return 1, err
	}
	defer ask.Close()
	// Erasing needs no key-encryption key: it destroys a key, it opens none.
	keys, err := content.NewKeys(mongo.NewContentKeys(db), make([]byte, 32))
	if err != nil {
		return 1, err
	}
	er := &content.Eraser{Keys: keys, Ledger: ask, AskTimeout: 30 * time.Second}
	out, err := er.Erase(ctx, id, *actor, *reason)
	if err != nil {
		return 1, fmt.Errorf("erase %s: %s", id, domain.ErrorMessage(err)+detail(err))
	}
	switch {
	case out.Appended:
		fmt.Fprintf(stdout, "execution %s: content erased (ExecutionErased recorded, its data key destroyed)\n", id)
	default:
		fmt.Fprintf(stdout, "execution %s: its content was erased already (its data key is destroyed)\n", id)
	}
	if out.InTheClear {
		fmt.Fprintf(stdout, "note: %s was recorded before content was sealed: its script, stdin and output are in the ledger's "+
			"events in the clear, and no key can erase them from there; the views no longer show them (docs/events.md, \"Erasure\")\n", id)
	}
	return 0, nil
}

// detail is the internal error behind a message the domain would hide.
func detail(err error) string {
	if domain.ErrorCode(err) == domain.EINTERNAL {
		return ": " + err.Error()
	}
	return ""
}

// runningStores fills in how to reach a running platform's stores: the
// flags, or the stores.env a running `up` wrote into its data directory.
func (c *toolConfig) runningStores() error {
	if c.KafkaBrokers != "" {
		if c.MongoURI == "" {
			return errors.New("--mongodb-uri is required with --kafka-brokers")
		}
		return c.loadSecrets()
	}
	dir, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	if unlock, err := lockDataDir(dir); err == nil {
		unlock()
		return fmt.Errorf("the platform in %s is not running: the ledger writer records an erasure, start integr8scode up first", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, storesFile))
	if err != nil {
		return fmt.Errorf("the platform in %s is running but its %s cannot be read (%v); pass --kafka-brokers and --mongodb-uri", dir, storesFile, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = shellUnquote(v)
		switch name {
		case "INTEGR8SCODE_KAFKA_BROKERS":
			c.KafkaBrokers = v
		case "INTEGR8SCODE_KAFKA_SASL_MECHANISM":
			c.KafkaSASLMech = v
		case "INTEGR8SCODE_KAFKA_SASL_USER":
			c.KafkaSASLUser = v
		case "INTEGR8SCODE_KAFKA_SASL_PASSWORD_FILE":
			c.KafkaSASLPassFile = v
		case "INTEGR8SCODE_MONGODB_URI":
			c.MongoURI = v
		}
	}
	if c.KafkaBrokers == "" || c.MongoURI == "" {
		return fmt.Errorf("%s in %s does not say where the stores are; pass --kafka-brokers and --mongodb-uri", storesFile, dir)
	}
	// The store runs in the other process; this one works on its files
	// too (scrubbing them after the key is destroyed).
	c.attached = mongo.AttachEmbedded(filepath.Join(dir, "mongo"), c.MongoURI)
	return c.loadSecrets()
}
