// Command testcluster builds, starts and stops the project's single-node test
// Kubernetes (see deploy/testcluster/README.md).
//
//	testcluster up [-smoke=false]   build what is missing, start, wait for Ready, run a smoke pod
//	testcluster down                stop everything and remove what it left
//	testcluster status              which daemons run, is the node Ready
//	testcluster smoke [-n 5]        run n smoke pods and print their latencies
//	testcluster build               only build the binaries and images
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/integr8scode/integr8scode/deploy/testcluster/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: testcluster up|down|status|smoke|build")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", true, "up: run a smoke pod once the node is Ready")
	n := fs.Int("n", 5, "smoke: how many pods to run, one after another")
	verbose := fs.Bool("v", false, "log each step in detail")
	dir := fs.String("dir", ".", "a directory inside the repository (the cluster lives in its .cluster)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c, err := cluster.New(*dir, log, stdout)
	if err != nil {
		return err
	}
	if args[0] != "status" {
		unlock, err := c.Lock()
		if err != nil {
			return err
		}
		defer unlock()
	}
	switch args[0] {
	case "up":
		return c.Up(ctx, *smoke)
	case "down":
		// Down must finish even if the user presses ^C once more.
		if err := c.Down(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "the test cluster is down")
		return nil
	case "status":
		return c.Status(ctx)
	case "build":
		if err := c.EnsureHost(ctx); err != nil {
			return err
		}
		if err := c.Build(ctx); err != nil {
			return err
		}
		_, err := c.Images(ctx)
		return err
	case "smoke":
		lat, err := c.Smoke(ctx, *n)
		for i, d := range lat {
			fmt.Fprintf(stdout, "smoke pod %d: create to Succeeded in %s\n", i+1, d.Round(time.Millisecond))
		}
		if err != nil {
			return err
		}
		if len(lat) > 0 {
			s := slices.Clone(lat)
			slices.Sort(s)
			fmt.Fprintf(stdout, "min %s, median %s, max %s\n", s[0].Round(time.Millisecond), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q: want up, down, status, smoke or build", args[0])
	}
}
