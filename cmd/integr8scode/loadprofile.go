package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/web"
)

// Load profiles: simulated people, as the original product's Locust
// profiles had them (smoke, light, medium, heavy, stress: 1/10/50/100/200
// users for 1/5/10/15/30 minutes). Each user opens the runtimes, then
// loops: thinks, submits a script from a mix (quick, failing, timing out,
// output-heavy), follows it over SSE or waits with ?wait=true, reads the
// result; signed-in users also page through their history and save and
// reopen a script. Every request is timed per operation; the report is
// JSON and a self-contained HTML page with charts over time.

type loadProfile struct {
	Users    int
	Duration time.Duration
}

var loadProfiles = map[string]loadProfile{
	"smoke":  {1, time.Minute},
	"light":  {10, 5 * time.Minute},
	"medium": {50, 10 * time.Minute},
	"heavy":  {100, 15 * time.Minute},
	"stress": {200, 30 * time.Minute},
}

// A script of the mix, with how often a user picks it.
type mixScript struct {
	name   string
	weight int
	body   map[string]any
	// want is the ending the script must reach; anything else is an error.
	want domain.Status
}

var scriptMix = []mixScript{
	{"quick", 70, map[string]any{"script": `print("hi")`}, domain.StatusCompleted},
	{"failing", 10, map[string]any{"script": "raise ValueError('on purpose')"}, domain.StatusFailed},
	{"timeout", 10, map[string]any{"script": "while True: pass", "limits": map[string]any{"timeout_ms": 1000}}, domain.StatusFailed},
	{"output", 10, map[string]any{"script": "for i in range(2000): print('x' * 100)"}, domain.StatusCompleted},
}

func pickScript(r *rand.Rand) mixScript {
	total := 0
	for _, s := range scriptMix {
		total += s.weight
	}
	n := r.IntN(total)
	for _, s := range scriptMix {
		if n -= s.weight; n < 0 {
			return s
		}
	}
	return scriptMix[0]
}

// sample is one timed request.
type sample struct {
	Op     string
	At     time.Duration // since the start
	Took   time.Duration
	Failed bool
}

// probe is one reading of the platform: its queue and its process.
type probe struct {
	At         time.Duration
	Queued     int
	Running    int
	CPUSeconds float64 // process_cpu_seconds_total
	RSSBytes   float64 // process_resident_memory_bytes
}

type recorder struct {
	start   time.Time
	mu      sync.Mutex
	samples []sample
	probes  []probe
	errors  map[string]int // first words of what went wrong, by kind
}

func (r *recorder) add(op string, began time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, sample{Op: op, At: began.Sub(r.start), Took: time.Since(began), Failed: err != nil})
	if err != nil {
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		r.errors[op+": "+msg]++
	}
}

// simulated is one person using the platform.
type simulated struct {
	// req is the context of requests: the end of the run stops users from
	// starting anything, but what is in flight finishes and counts (an
	// interrupt still cancels it).
	req    context.Context
	c      apiClient
	signed bool
	rng    *rand.Rand
	rec    *recorder
	think  time.Duration
}

// timed runs one operation and records it.
func (u *simulated) timed(op string, f func() error) error {
	began := time.Now()
	err := f()
	u.rec.add(op, began, err)
	return err
}

func (u *simulated) live(run context.Context) {
	ctx := u.req
	var rt domain.Catalog
	_ = u.timed("runtimes", func() error { return u.c.call(ctx, http.MethodGet, "/api/v1/runtimes", nil, &rt) })
	for i := 0; run.Err() == nil; i++ {
		// Think between 0.5 and 1.5 times the think time.
		pause := time.Duration(float64(u.think) * (0.5 + u.rng.Float64()))
		select {
		case <-run.Done():
			return
		case <-time.After(pause):
		}
		s := pickScript(u.rng)
		if u.rng.IntN(2) == 0 {
			u.waitRun(ctx, s)
		} else {
			u.streamRun(ctx, s)
		}
		if u.signed && i%5 == 1 {
			var page struct{ Executions []web.Execution }
			_ = u.timed("history", func() error { return u.c.call(ctx, http.MethodGet, "/api/v1/executions?limit=10", nil, &page) })
		}
		if u.signed && i%10 == 2 {
			u.saveAndReopen(ctx)
		}
	}
}

// waitRun submits with ?wait=true. An answer that comes before the end
// (the wait is bounded, and a long queue outlasts it) is followed to the
// end as a client of the API does, and counted as one operation: what
// fails is an execution that ends otherwise than its script must.
func (u *simulated) waitRun(ctx context.Context, s mixScript) {
	_ = u.timed("submit_wait_"+s.name, func() error {
		var e web.Execution
		if err := u.c.call(ctx, http.MethodPost, "/api/v1/executions?wait=true", s.body, &e); err != nil {
			return err
		}
		if !e.Status.Terminal() {
			if err := u.c.follow(ctx, e.ID); err != nil {
				return err
			}
			if err := u.c.call(ctx, http.MethodGet, "/api/v1/executions/"+e.ID, nil, &e); err != nil {
				return err
			}
		}
		return ended(e, s)
	})
}

// streamRun submits, follows the execution's events until its end, then
// reads the result, as the web app does.
func (u *simulated) streamRun(ctx context.Context, s mixScript) {
	var e web.Execution
	if err := u.timed("submit", func() error {
		return u.c.call(ctx, http.MethodPost, "/api/v1/executions", s.body, &e)
	}); err != nil {
		return
	}
	if err := u.timed("stream_"+s.name, func() error { return u.c.follow(ctx, e.ID) }); err != nil {
		return
	}
	_ = u.timed("result", func() error {
		if err := u.c.call(ctx, http.MethodGet, "/api/v1/executions/"+e.ID, nil, &e); err != nil {
			return err
		}
		return ended(e, s)
	})
}

func ended(e web.Execution, s mixScript) error {
	if e.Status != s.want {
		return fmt.Errorf("%s script ended %s (%s)", s.name, e.Status, e.FailureReason)
	}
	return nil
}

func (u *simulated) saveAndReopen(ctx context.Context) {
	var saved struct{ ID string }
	if u.timed("save_script", func() error {
		return u.c.call(ctx, http.MethodPost, "/api/v1/scripts", map[string]any{"name": "load test", "script": `print("saved")`}, &saved)
	}) != nil {
		return
	}
	_ = u.timed("open_script", func() error {
		return u.c.call(ctx, http.MethodGet, "/api/v1/scripts/"+saved.ID, nil, &saved)
	})
	// Leave nothing behind: a stress run would fill the user's scripts.
	_ = u.c.do(ctx, http.MethodDelete, "/api/v1/scripts/"+saved.ID)
}

// follow reads an execution's Server-Sent Events until the terminal one.
func (c apiClient) follow(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/executions/"+id+"/stream", nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok &&
			(ev == domain.TypeExecutionCompleted || ev == domain.TypeExecutionFailed) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("stream ended before the execution did")
}

// do sends a request without a body and expects a 2xx.
func (c apiClient) do(ctx context.Context, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

// watchPlatform reads the queue and the process's CPU and memory every
// interval until ctx ends.
func watchPlatform(ctx context.Context, c apiClient, rec *recorder, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		p := probe{At: time.Since(rec.start)}
		var q struct{ Queued, Running int }
		if c.call(ctx, http.MethodGet, "/api/v1/queue", nil, &q) == nil {
			p.Queued, p.Running = q.Queued, q.Running
		}
		p.CPUSeconds, p.RSSBytes = processMetrics(ctx, c.base)
		if ctx.Err() == nil && p.RSSBytes > 0 { // a reading cut by the end of the run is none
			rec.mu.Lock()
			rec.probes = append(rec.probes, p)
			rec.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// processMetrics reads two unlabelled series of the Prometheus text the
// platform serves; a line scan is all two plain gauges need.
func processMetrics(ctx context.Context, base string) (cpu, rss float64) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "process_cpu_seconds_total":
			cpu, _ = strconv.ParseFloat(value, 64)
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(value, 64)
		}
	}
	return cpu, rss
}

// runProfile runs a load profile and writes its report.
func runProfile(ctx context.Context, base, token, name string, p loadProfile, think time.Duration, signedShare float64,
	reportDir string, stdout io.Writer) (loadReport, error) {
	req, cancelReq := context.WithCancel(ctx)
	defer cancelReq()
	ctx, cancel := context.WithTimeout(ctx, p.Duration)
	defer cancel()
	rec := &recorder{start: time.Now(), errors: map[string]int{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); watchPlatform(ctx, apiClient{base: base}, rec, 2*time.Second) }()
	signedUsers := 0
	for i := 0; i < p.Users; i++ {
		u := &simulated{req: req, c: apiClient{base: base}, rng: rand.New(rand.NewPCG(uint64(i), 7)), rec: rec, think: think}
		if token != "" && float64(i) < signedShare*float64(p.Users) {
			u.c.token, u.signed = token, true
			signedUsers++
		}
		wg.Add(1)
		// Users arrive over the first tenth of the run, as people do.
		delay := time.Duration(float64(p.Duration) / 10 * float64(i) / float64(max(p.Users, 1)))
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			u.live(ctx)
		}()
	}
	stopProgress := showProgress(ctx, stdout, rec, p)
	wg.Wait()
	stopProgress()
	rep := buildReport(rec, name, p, signedUsers)
	if reportDir != "" {
		if err := writeReport(rep, reportDir); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// showProgress redraws one status line a second on a terminal.
func showProgress(ctx context.Context, w io.Writer, rec *recorder, p loadProfile) func() {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(w)
				return
			case <-t.C:
			}
			rec.mu.Lock()
			n, failed := len(rec.samples), 0
			var recent []time.Duration
			for _, s := range rec.samples {
				if s.Failed {
					failed++
				}
				if time.Since(rec.start)-s.At < 10*time.Second {
					recent = append(recent, s.Took)
				}
			}
			rec.mu.Unlock()
			p95 := "-"
			if len(recent) > 0 {
				p95 = fmt.Sprintf("%.0fms", float64(pct(recent, 95).Microseconds())/1000)
			}
			fmt.Fprintf(w, "\r%s / %s  %d users  %d requests  %d failed  p95 (10 s) %s   ",
				time.Since(rec.start).Round(time.Second), p.Duration, p.Users, n, failed, p95)
		}
	}()
	return func() { close(done) }
}

// loadReport is what a profile run produced, as JSON.
type loadReport struct {
	Profile     string               `json:"profile"`
	Users       int                  `json:"users"`
	SignedUsers int                  `json:"signed_in_users"`
	Duration    float64              `json:"duration_seconds"`
	Requests    int                  `json:"requests"`
	Failed      int                  `json:"failed"`
	Operations  map[string]opSummary `json:"operations"`
	Errors      map[string]int       `json:"errors"`
	Timeline    []timeSlice          `json:"timeline"`
	PeakRSS     float64              `json:"peak_rss_bytes"`
	CPUSeconds  float64              `json:"cpu_seconds"` // the platform's, over the run
}

type opSummary struct {
	Count  int     `json:"count"`
	Failed int     `json:"failed"`
	P50    float64 `json:"p50_ms"`
	P95    float64 `json:"p95_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// timeSlice is one window of the run.
type timeSlice struct {
	At       float64            `json:"t_seconds"`
	Requests float64            `json:"requests_per_second"`
	Failed   float64            `json:"failed_per_second"`
	P50      map[string]float64 `json:"p50_ms"`
	P95      map[string]float64 `json:"p95_ms"`
	P99      map[string]float64 `json:"p99_ms"`
	Queued   int                `json:"queued"`
	Running  int                `json:"running"`
	CPUCores float64            `json:"platform_cpu_cores"`
	RSSBytes float64            `json:"platform_rss_bytes"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// opGroup folds the per-script variants of an operation into one line of
// the charts ("stream_quick" → "stream").
func opGroup(op string) string {
	for _, s := range scriptMix {
		if g, ok := strings.CutSuffix(op, "_"+s.name); ok {
			return g
		}
	}
	return op
}

func buildReport(rec *recorder, name string, p loadProfile, signed int) loadReport {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rep := loadReport{Profile: name, Users: p.Users, SignedUsers: signed, Duration: time.Since(rec.start).Seconds(),
		Operations: map[string]opSummary{}, Errors: rec.errors}
	byOp := map[string][]time.Duration{}
	failedOp := map[string]int{}
	for _, s := range rec.samples {
		byOp[s.Op] = append(byOp[s.Op], s.Took)
		rep.Requests++
		if s.Failed {
			rep.Failed++
			failedOp[s.Op]++
		}
	}
	for op, ds := range byOp {
		rep.Operations[op] = opSummary{Count: len(ds), Failed: failedOp[op], P50: ms(pct(ds, 50)), P95: ms(pct(ds, 95)),
			P99: ms(pct(ds, 99)), Max: ms(pct(ds, 100))}
	}
	const window = 5 * time.Second
	end := time.Since(rec.start)
	n := int((end + window - 1) / window)
	var held probe // the last reading, carried over windows without one
	for i := 0; i < n; i++ {
		lo, hi := time.Duration(i)*window, min(time.Duration(i+1)*window, end)
		sl := timeSlice{At: hi.Seconds(), P50: map[string]float64{}, P95: map[string]float64{}, P99: map[string]float64{}}
		groups := map[string][]time.Duration{}
		for _, s := range rec.samples {
			if s.At+s.Took < lo || s.At+s.Took >= hi { // counted when it ended
				continue
			}
			sl.Requests++
			if s.Failed {
				sl.Failed++
			}
			groups[opGroup(s.Op)] = append(groups[opGroup(s.Op)], s.Took)
		}
		sl.Requests /= (hi - lo).Seconds()
		sl.Failed /= (hi - lo).Seconds()
		for g, ds := range groups {
			sl.P50[g], sl.P95[g], sl.P99[g] = ms(pct(ds, 50)), ms(pct(ds, 95)), ms(pct(ds, 99))
		}
		cores := -1.0
		for j := range rec.probes {
			pr := rec.probes[j]
			if pr.At < lo || pr.At >= hi {
				continue
			}
			if j > 0 {
				if dt := (pr.At - rec.probes[j-1].At).Seconds(); dt > 0 {
					cores = (pr.CPUSeconds - rec.probes[j-1].CPUSeconds) / dt
				}
			}
			held = pr
		}
		sl.Queued, sl.Running, sl.RSSBytes = held.Queued, held.Running, held.RSSBytes
		if cores >= 0 {
			sl.CPUCores = cores
		} else if i > 0 {
			sl.CPUCores = rep.Timeline[i-1].CPUCores
		}
		rep.Timeline = append(rep.Timeline, sl)
	}
	for _, pr := range rec.probes {
		rep.PeakRSS = max(rep.PeakRSS, pr.RSSBytes)
	}
	if len(rec.probes) > 1 {
		rep.CPUSeconds = rec.probes[len(rec.probes)-1].CPUSeconds - rec.probes[0].CPUSeconds
	}
	return rep
}

// printReport writes the summary a person reads on the terminal.
func printReport(w io.Writer, rep loadReport) {
	fmt.Fprintf(w, "profile %s: %d users (%d signed in), %.0f s, %d requests, %d failed; platform peak RSS %.0f MiB, %.1f CPU-seconds\n",
		rep.Profile, rep.Users, rep.SignedUsers, rep.Duration, rep.Requests, rep.Failed, rep.PeakRSS/(1<<20), rep.CPUSeconds)
	ops := make([]string, 0, len(rep.Operations))
	for op := range rep.Operations {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprintf(w, "%-22s %7s %7s %9s %9s %9s %9s\n", "operation", "count", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms")
	for _, op := range ops {
		o := rep.Operations[op]
		fmt.Fprintf(w, "%-22s %7d %7d %9.1f %9.1f %9.1f %9.1f\n", op, o.Count, o.Failed, o.P50, o.P95, o.P99, o.Max)
	}
	for msg, n := range rep.Errors {
		fmt.Fprintf(w, "error ×%d: %s\n", n, msg)
	}
}

func writeReport(rep loadReport, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/report.json", b, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/report.html", []byte(reportHTML(rep)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(dir+"/latency.svg", []byte(latencyChart(rep, 720, 260)), 0o644)
}
