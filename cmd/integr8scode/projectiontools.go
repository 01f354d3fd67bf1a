package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/integr8scode/integr8scode/adapters/kafka"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/projections"
)

const projectionsUsage = `usage: integr8scode projections <command> [flags]

commands:
  rebuild  build the views and the event archive from the ledger, from
           offset 0: into an empty database (--mongodb-database), or in
           place (--in-place: the views are dropped first)
  compare  fold the ledger with the projector's own rules and compare the
           result with the views and the archive; exit 1 on any difference
`

func runProjections(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	if len(args) < 1 {
		fmt.Fprint(stderr, projectionsUsage)
		return 2, nil
	}
	switch args[0] {
	case "rebuild":
		return runProjectionsRebuild(ctx, args[1:], getenv, stdout, stderr)
	case "compare":
		return runProjectionsCompare(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, projectionsUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "unknown projections command %q\n\n%s", args[0], projectionsUsage)
	return 2, nil
}

const toolKeysHelp = "the public keys that verify the ledger: a key directory (default with --data-dir: its ledger-keys), " +
	"a keys document (file), or the URL of /api/v1/ledger/keys"

// problemList is a Parker that only remembers: a tool reports what the
// live projector parked already, it does not park it twice.
type problemList struct{ list []eventstore.Problem }

func (l *problemList) Park(_ context.Context, _ projections.Delivery, p eventstore.Problem) error {
	l.list = append(l.list, p)
	return nil
}

// project feeds every committed record of the ledger to a projector
// writing to store, and records each partition's end as its position.
func project(ctx context.Context, brokers []string, store projections.Store, keys *eventstore.KeySet, stderr io.Writer,
	afterPartition func(p int32) error) ([]eventstore.Problem, error) {
	parked := &problemList{}
	proj := projections.NewProjector(store, keys, parked, nil, quietLogger(), nil)
	// Records go to the projector in batches, as the live projection's
	// do: a batch costs the store a few writes, whatever it holds.
	const batchSize = 500
	var batch []projections.Delivery
	flush := func() error {
		err := proj.HandleBatch(ctx, batch)
		batch = batch[:0]
		return err
	}
	err := readLedger(ctx, brokers, stderr, "projecting", func(rec kafka.Record) error {
		batch = append(batch, projections.Delivery{Partition: rec.Partition, Offset: rec.Offset, Record: rec.Value})
		if len(batch) < batchSize {
			return nil
		}
		return flush()
	}, func(p int32, end int64) error {
		if err := flush(); err != nil {
			return err
		}
		if err := projections.SavePosition(ctx, store, p, end); err != nil {
			return err
		}
		if afterPartition != nil {
			return afterPartition(p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return parked.list, nil
}

func runProjectionsRebuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	var c toolConfig
	fs := flag.NewFlagSet("projections rebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	c.registerKeys(fs, toolKeysHelp)
	inPlace := fs.Bool("in-place", false, "drop the views, the archive and the positions of --mongodb-database first")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	env, err := c.openWithKeys(ctx, true)
	if err != nil {
		return 1, err
	}
	defer env.close()
	keys := env.keys
	db := env.db.Database()
	if *inPlace {
		for _, name := range mongo.Collections() {
			if err := db.Collection(name).Drop(ctx); err != nil {
				return 1, fmt.Errorf("drop %s: %w", name, err)
			}
		}
	} else {
		for _, name := range mongo.Collections() {
			n, err := db.Collection(name).EstimatedDocumentCount(ctx)
			if err != nil {
				return 1, err
			}
			if n > 0 {
				return 1, fmt.Errorf("database %s is not empty (%s holds %d documents): rebuild into a new "+
					"--mongodb-database, or pass --in-place", db.Name(), name, n)
			}
		}
	}
	store := mongo.NewProjections(env.db)
	problems, err := project(ctx, env.brokers, store, keys, stderr, nil)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "rebuilt the views of database %s from the ledger; %d events were not applied\n", db.Name(), len(problems))
	for _, p := range problems {
		fmt.Fprintln(stdout, " ", p.Error())
	}
	return 0, nil
}

// difference is one way a view or the archive disagrees with the ledger.
type difference struct {
	ExecutionID string `json:"execution_id"`
	What        string `json:"what"`
	Detail      string `json:"detail"`
}

func runProjectionsCompare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	var c toolConfig
	fs := flag.NewFlagSet("projections compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	c.registerJSON(fs)
	c.registerKeys(fs, toolKeysHelp)
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	env, err := c.openWithKeys(ctx, true)
	if err != nil {
		return 1, err
	}
	defer env.close()
	keys := env.keys
	live := mongo.NewProjections(env.db)
	var diffs []difference
	seen := map[string]bool{}
	// One partition at a time: an execution's events all share one, so
	// memory stays bounded by a partition's executions.
	mem := projections.NewMemoryStore()
	if _, err := project(ctx, env.brokers, mem, keys, stderr, func(int32) error {
		for _, id := range mem.IDs() {
			seen[id] = true
			d, err := compareExecution(ctx, mem, live, id)
			if err != nil {
				return err
			}
			diffs = append(diffs, d...)
		}
		*mem = *projections.NewMemoryStore()
		return nil
	}); err != nil {
		return 1, err
	}
	extra, err := storeIDs(ctx, live)
	if err != nil {
		return 1, err
	}
	for _, id := range extra {
		if !seen[id] {
			diffs = append(diffs, difference{ExecutionID: id, What: "not_in_ledger", Detail: "the views hold an execution the ledger does not"})
		}
	}
	if c.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if diffs == nil {
			diffs = []difference{}
		}
		if err := enc.Encode(map[string]any{"executions": len(seen), "differences": diffs}); err != nil {
			return 1, err
		}
	} else {
		fmt.Fprintf(stdout, "%d executions in the ledger, %d differences\n", len(seen), len(diffs))
		for _, d := range diffs {
			fmt.Fprintf(stdout, "%s  %s: %s\n", d.ExecutionID, d.What, d.Detail)
		}
	}
	if len(diffs) > 0 {
		return 1, nil
	}
	return 0, nil
}

// compareExecution compares one execution's view and archive as folded
// from the ledger (want) with the live store's.
func compareExecution(ctx context.Context, want, live projections.Store, id string) ([]difference, error) {
	var out []difference
	wv, werr := want.View(ctx, id)
	lv, lerr := live.View(ctx, id)
	switch {
	case werr == nil && domain.ErrorCode(lerr) == domain.ENOTFOUND:
		out = append(out, difference{id, "view_missing", "the ledger has this execution, the views do not"})
	case lerr != nil && domain.ErrorCode(lerr) != domain.ENOTFOUND:
		return nil, lerr
	case werr == nil:
		a, _ := json.Marshal(wv)
		b, _ := json.Marshal(lv)
		if !bytes.Equal(a, b) {
			out = append(out, difference{id, "view_differs", fmt.Sprintf("the ledger folds to %s, the view holds %s", a, b)})
		}
	}
	we, err := want.Events(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	le, err := live.Events(ctx, id, 0)
	if err != nil {
		return nil, err
	}
	if len(we) != len(le) {
		out = append(out, difference{id, "archive_differs", fmt.Sprintf("the ledger has %d events, the archive %d", len(we), len(le))})
		return out, nil
	}
	for i := range we {
		if !bytes.Equal(we[i].Record, le[i].Record) || we[i].Partition != le[i].Partition || we[i].Offset != le[i].Offset {
			out = append(out, difference{id, "archive_differs", fmt.Sprintf("sequence %d: the archive does not hold the record at %d:%d as recorded",
				we[i].Envelope.Sequence, we[i].Partition, we[i].Offset)})
		}
	}
	return out, nil
}

// storeIDs lists every execution the views hold.
func storeIDs(ctx context.Context, s projections.Store) ([]string, error) {
	q := projections.ListQuery{Limit: 100}
	var out []string
	for {
		page, more, err := s.List(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			out = append(out, e.ID)
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		last := page[len(page)-1]
		q.After = &projections.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}
