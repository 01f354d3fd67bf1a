package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/integr8scode/integr8scode/adapters/sandbox/oci"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/runner"
	"github.com/integr8scode/integr8scode/web"
)

// runLoadtest measures a running server: end-to-end latency of print("hi")
// through the API (one request at a time, ?wait=true), sustained executions
// per second with several clients, and — in the same run — the floor: a bare
// `runc run` of the same script with the same limits. It sends traffic only
// to --server, which must be a loopback address unless --allow-remote.
func runLoadtest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "base URL of the server under test")
	samples := fs.Int("requests", 30, "sequential requests for the latency figures")
	clients := fs.Int("concurrency", 8, "concurrent clients for the throughput figure")
	duration := fs.Duration("duration", 15*time.Second, "length of the throughput phase")
	floor := fs.Bool("floor", true, "also time a bare `runc run` of the same script (needs root and runc)")
	runcPath := fs.String("runc-path", "runc", "runc binary for the floor")
	allowRemote := fs.Bool("allow-remote", false, "allow a --server that is not on loopback")
	profile := fs.String("profile", "", "run a load profile of simulated people instead: smoke, light, medium, heavy or stress "+
		"(1/10/50/100/200 users for 1/5/10/15/30 minutes; --duration shortens it)")
	think := fs.Duration("think", 2*time.Second, "profile: a simulated user's mean pause between actions")
	signedShare := fs.Float64("signed-in", 0.5, "profile: the share of users that are signed in (as --token's user; needs --token)")
	reportDir := fs.String("report", "loadtest-report", "profile: directory for report.json, report.html and latency.svg")
	token := fs.String("token", "", "personal API token to submit as its user (whose limits must allow the load); empty: anonymous, "+
		"which the server's --quota-anonymous must allow")
	if err := parseFlags(fs, args, getenv); err != nil {
		return 2, nil
	}
	base := strings.TrimRight(*server, "/")
	if !*allowRemote && !isLoopbackURL(base) {
		return 2, fmt.Errorf("--server %s is not a loopback address; pass --allow-remote to load another host", base)
	}
	c := apiClient{base: base, token: *token}
	if *profile != "" {
		p, ok := loadProfiles[*profile]
		if !ok {
			return 2, fmt.Errorf("--profile %q: want smoke, light, medium, heavy or stress", *profile)
		}
		if durationSet(fs) {
			p.Duration = *duration
		}
		rep, err := runProfile(ctx, base, *token, *profile, p, *think, *signedShare, *reportDir, stdout)
		if err != nil {
			return 1, err
		}
		printReport(stdout, rep)
		fmt.Fprintf(stdout, "report: %s/report.html, %s/report.json\n", *reportDir, *reportDir)
		if rep.Failed > 0 {
			return 1, fmt.Errorf("%d of %d requests failed", rep.Failed, rep.Requests)
		}
		return 0, nil
	}
	body := map[string]any{"script": `print("hi")`}

	// Warm up: the first run pays for page cache and connections.
	if _, err := timedRun(ctx, c, body); err != nil {
		return 1, err
	}
	var api []time.Duration
	for i := 0; i < *samples; i++ {
		d, err := timedRun(ctx, c, body)
		if err != nil {
			return 1, err
		}
		api = append(api, d)
	}
	fmt.Fprintf(stdout, "end-to-end print(\"hi\") through the API, sequential (n=%d): %s\n", len(api), summary(api))

	if *floor {
		for _, f := range []struct {
			name    string
			minimal bool
		}{{"minimal", true}, {"hardened", false}} {
			bare, err := floorRuns(ctx, *runcPath, *samples, f.minimal)
			if err != nil {
				return 1, fmt.Errorf("%s floor: %w", f.name, err)
			}
			fmt.Fprintf(stdout, "cold runc run, %-8s same script and limits (n=%d): %s\n", f.name+",", len(bare), summary(bare))
			fmt.Fprintf(stdout, "ratio of medians (API / %s cold runc): %.2f\n", f.name, float64(pct(api, 50))/float64(pct(bare, 50)))
		}
	}

	done, failed, elapsed := throughput(ctx, c, body, *clients, *duration)
	fmt.Fprintf(stdout, "sustained: %d executions completed in %.1fs with %d clients = %.1f executions/s (%d failed requests)\n",
		done, elapsed.Seconds(), *clients, float64(done)/elapsed.Seconds(), failed)
	if failed > 0 {
		return 1, fmt.Errorf("%d requests failed", failed)
	}
	return 0, nil
}

// durationSet reports whether --duration was given.
func durationSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "duration" })
	return set
}

func isLoopbackURL(base string) bool {
	for _, p := range []string{"http://127.", "http://localhost", "http://[::1]", "https://127.", "https://localhost", "https://[::1]"} {
		if strings.HasPrefix(base, p) {
			return true
		}
	}
	return false
}

// timedRun submits with ?wait=true and returns the time until the finished
// execution came back; anything but a completed run is an error.
func timedRun(ctx context.Context, c apiClient, body map[string]any) (time.Duration, error) {
	start := time.Now()
	var e web.Execution
	if err := c.call(ctx, http.MethodPost, "/api/v1/executions?wait=true", body, &e); err != nil {
		return 0, err
	}
	if e.Status != domain.StatusCompleted || e.Output != "hi\n" {
		return 0, fmt.Errorf("execution %s ended %s (%s): %q", e.ID, e.Status, e.FailureReason, e.Errors)
	}
	return time.Since(start), nil
}

// floorRuns times n cold `runc run`s of print("hi") at the default limits:
// with minimal, as a minimal container runtime would start it (no user
// namespace, no seccomp filter); otherwise with the sandbox's own hardened
// config.json.
func floorRuns(ctx context.Context, runcPath string, n int, minimal bool) ([]time.Duration, error) {
	dir, err := os.MkdirTemp("", "integr8scode-floor-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sb, err := oci.New(oci.Config{RuncPath: runcPath, StateDir: filepath.Join(dir, "sandbox")})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	job := runner.Job{ExecutionID: "floor", Attempt: 1, Language: "python", Version: "3.11",
		Script: `print("hi")`, Limits: domain.DefaultLimits}
	if _, err := sb.Floor(ctx, job, 1, minimal); err != nil { // warm-up
		return nil, err
	}
	return sb.Floor(ctx, job, n, minimal)
}

func throughput(ctx context.Context, c apiClient, body map[string]any, clients int, d time.Duration) (int64, int64, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := timedRun(context.WithoutCancel(ctx), c, body); err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), failed.Load(), time.Since(start)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func summary(ds []time.Duration) string {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  mean %s", ms(pct(ds, 50)), ms(pct(ds, 90)), ms(pct(ds, 99)), ms(sum/time.Duration(len(ds))))
}
