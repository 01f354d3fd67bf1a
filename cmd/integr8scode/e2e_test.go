package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/web"
)

// TestEndToEnd runs the real program (`integr8scode up`) on its embedded
// stores and real runc, and uses it only over HTTP, as a user would.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	base, stop := startUp(t, dir)
	api := base + "/api/v1"

	var hello web.Execution
	t.Run("OK hello world", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions", `{"script":"print(\"hi\")"}`)
		if r.Status != http.StatusAccepted {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		r.decode(t, &hello)
		if hello.Status != domain.StatusQueued || r.Header.Get("Location") != "/api/v1/executions/"+hello.ID {
			t.Fatalf("got status %s location %q", hello.Status, r.Header.Get("Location"))
		}
		e := waitDone(t, base, hello.ID, 30*time.Second)
		if e.Status != domain.StatusCompleted || e.Output != "hi\n" || e.ExitCode == nil || *e.ExitCode != 0 {
			t.Fatalf("got %+v", e)
		}
		if e.ResourceUsage == nil || e.ResourceUsage.WallTimeMs <= 0 || e.ResourceUsage.PeakMemoryBytes <= 0 {
			t.Fatalf("no resource usage: %+v", e.ResourceUsage)
		}
		if e.StartedAt == nil || e.FinishedAt == nil || e.FinishedAt.Before(*e.StartedAt) || e.Limits != domain.DefaultLimits {
			t.Fatalf("timings or limits wrong: %+v", e)
		}
	})

	t.Run("OK runtime error", func(t *testing.T) {
		e := submit(t, base, map[string]any{"script": "def f():\n    raise ValueError('boom')\nf()\n"})
		e = waitDone(t, base, e.ID, 30*time.Second)
		if e.Status != domain.StatusFailed || e.FailureReason != domain.VerdictRuntimeErr || e.ExitCode == nil || *e.ExitCode != 1 {
			t.Fatalf("got %+v", e)
		}
		if !strings.Contains(e.Errors, "Traceback") || !strings.Contains(e.Errors, "ValueError: boom") {
			t.Fatalf("no traceback in errors: %q", e.Errors)
		}
	})

	t.Run("OK wait", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "import sys\nprint(sys.stdin.read().upper())", "stdin": "abc"})
		if r.Status != http.StatusOK {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		var e web.Execution
		r.decode(t, &e)
		if e.Status != domain.StatusCompleted || e.Output != "ABC\n" {
			t.Fatalf("got %+v", e)
		}
	})

	t.Run("OK memory limit", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "x = []\nwhile True:\n    x.append(' ' * 1048576)",
			"limits": map[string]any{"memory_bytes": 64 << 20}})
		var e web.Execution
		r.decode(t, &e)
		if r.Status != http.StatusOK || e.FailureReason != domain.VerdictMemoryLimit || e.Limits.MemoryBytes != 64<<20 {
			t.Fatalf("got %d %+v", r.Status, e)
		}
		if e.ResourceUsage == nil || e.ResourceUsage.PeakMemoryBytes < 32<<20 || e.ResourceUsage.PeakMemoryBytes > 64<<20 {
			t.Fatalf("peak memory %+v", e.ResourceUsage)
		}
	})

	t.Run("OK timeout", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "while True: pass", "limits": map[string]any{"timeout_ms": 1000}})
		var e web.Execution
		r.decode(t, &e)
		if r.Status != http.StatusOK || e.FailureReason != domain.VerdictTimeout {
			t.Fatalf("got %d %+v", r.Status, e)
		}
	})

	t.Run("OK output flood stops at the cap and still reaches the views", func(t *testing.T) {
		for _, c := range []struct{ name, out, err string }{
			{"printable", "a", "b"},
			// Control characters grow sixfold in JSON: the result is cut
			// further so its event still fits in the ledger.
			{"control characters", "\\x01", "\\x02"},
		} {
			r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{
				"script": fmt.Sprintf("import sys\nwhile True:\n    sys.stdout.write('%s' * 65536)\n    sys.stderr.write('%s' * 65536)", c.out, c.err)})
			var e web.Execution
			r.decode(t, &e)
			if r.Status != http.StatusOK || e.FailureReason != domain.VerdictOutputLimit || !e.OutputTruncated {
				t.Fatalf("%s: got %d %s %v", c.name, r.Status, e.FailureReason, e.OutputTruncated)
			}
			if c.name == "printable" && (len(e.Output) != 1<<20 || len(e.Errors) < 1<<20) {
				t.Fatalf("%s: stdout %d bytes, stderr %d bytes", c.name, len(e.Output), len(e.Errors))
			}
			if len(e.Output) == 0 || len(e.Output) > 1<<20 {
				t.Fatalf("%s: stdout %d bytes", c.name, len(e.Output))
			}
			if evs := waitEvents(t, base, e.ID, 10*time.Second); len(evs) != 3 {
				t.Fatalf("%s: events: %d", c.name, len(evs))
			}
		}
	})

	t.Run("OK invalid UTF-8 output becomes replacement characters", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{
			"script": "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end')"})
		var e web.Execution
		r.decode(t, &e)
		if r.Status != http.StatusOK || e.Status != domain.StatusCompleted || e.Output != "ok \ufffd end" {
			t.Fatalf("got %d %+v", r.Status, e)
		}
	})

	t.Run("OK events and hash chain", func(t *testing.T) {
		evs, valid := events(t, base, hello.ID)
		want := []string{domain.TypeExecutionQueued, domain.TypeExecutionStarted, domain.TypeExecutionCompleted}
		if len(evs) != len(want) || !valid {
			t.Fatalf("got %d events, chain_valid %v", len(evs), valid)
		}
		for i, e := range evs {
			if e.Type != want[i] || e.Sequence != int64(i+1) || e.ExecutionID != hello.ID || e.SchemaVersion != eventstore.SchemaVersions[e.Type] || e.EventID == "" {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
		if evs[0].Actor != "anonymous" || evs[1].Actor != "runner" || evs[1].CausationID != evs[0].EventID || evs[0].CorrelationID == "" {
			t.Fatalf("actors or causation wrong: %+v", evs)
		}
		if err := eventstore.VerifyChain(ledgerKeys(t, base), evs); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OK stream of a finished execution", func(t *testing.T) {
		types, ids := readSSE(t, api+"/executions/"+hello.ID+"/stream")
		if strings.Join(types, ",") != "ExecutionQueued,ExecutionStarted,ExecutionCompleted" || strings.Join(ids, ",") != "1,2,3" {
			t.Fatalf("got %v %v", types, ids)
		}
		types, _ = readSSE(t, api+"/executions/"+hello.ID+"/stream", "Last-Event-ID", "2")
		if strings.Join(types, ",") != "ExecutionCompleted" {
			t.Fatalf("resume after 2: %v", types)
		}
	})

	t.Run("OK stream of a live execution", func(t *testing.T) {
		e := submit(t, base, map[string]any{"script": "import time\ntime.sleep(0.5)\nprint('done')"})
		types, _ := readSSE(t, api+"/executions/"+e.ID+"/stream")
		if strings.Join(types, ",") != "ExecutionQueued,ExecutionStarted,ExecutionCompleted" {
			t.Fatalf("got %v", types)
		}
	})

	t.Run("OK a full pool keeps work queued and tells its position", func(t *testing.T) {
		var ids []string
		for i := 0; i < 8; i++ { // 4 slots
			ids = append(ids, submit(t, base, map[string]any{"script": "import time\ntime.sleep(1.5)"}).ID)
		}
		var depth struct{ Queued, Running int }
		deadline := time.Now().Add(20 * time.Second)
		for {
			do(t, http.MethodGet, api+"/queue", nil).decode(t, &depth)
			if depth.Running > 0 && depth.Queued > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("never saw a backlog: %+v", depth)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if depth.Running > 4 {
			t.Fatalf("%d running with 4 slots", depth.Running)
		}
		positions := map[int]bool{}
		for _, id := range ids {
			var pos struct {
				Status        domain.Status `json:"status"`
				QueuePosition int           `json:"queue_position"`
			}
			do(t, http.MethodGet, api+"/executions/"+id, nil).decode(t, &pos)
			if pos.Status == domain.StatusQueued && pos.QueuePosition > 0 {
				if positions[pos.QueuePosition] {
					t.Fatalf("two executions at queue position %d", pos.QueuePosition)
				}
				positions[pos.QueuePosition] = true
			}
		}
		if len(positions) == 0 {
			t.Fatal("no queued execution reported a queue position")
		}
		for _, id := range ids {
			if e := waitDone(t, base, id, 60*time.Second); e.Status != domain.StatusCompleted {
				t.Fatalf("%s: %+v", id, e)
			}
		}
	})

	t.Run("OK cancel a running execution", func(t *testing.T) {
		e := submit(t, base, map[string]any{"script": "import time\nprint('started', flush=True)\ntime.sleep(20)", "limits": map[string]any{"timeout_ms": 25000}})
		deadline := time.Now().Add(20 * time.Second)
		for get(t, base, e.ID).Status != domain.StatusRunning {
			if time.Now().After(deadline) {
				t.Fatal("never running")
			}
			time.Sleep(20 * time.Millisecond)
		}
		began := time.Now()
		r := do(t, http.MethodPost, api+"/executions/"+e.ID+"/cancel", nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
		done := waitDone(t, base, e.ID, 10*time.Second)
		if done.Status != domain.StatusFailed || done.FailureReason != domain.VerdictCancelled {
			t.Fatalf("got %+v", done)
		}
		// The sandbox is gone: the runner's slot frees long before the 20 s sleep.
		if d := time.Since(began); d > 15*time.Second {
			t.Fatalf("cancel took %s", d)
		}
		if r := do(t, http.MethodPost, api+"/executions/"+e.ID+"/cancel", nil); r.Status != http.StatusConflict {
			t.Fatalf("second cancel: %d %s", r.Status, r.Body)
		}
		evs := waitEvents(t, base, e.ID, 10*time.Second)
		terminal := 0
		for _, ev := range evs {
			if ev.Type == domain.TypeExecutionFailed || ev.Type == domain.TypeExecutionCompleted {
				terminal++
			}
		}
		if terminal != 1 {
			t.Fatalf("%d terminal events: %+v", terminal, evs)
		}
	})

	t.Run("OK list newest first with cursor and status", func(t *testing.T) {
		if r := do(t, http.MethodGet, api+"/executions", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("anonymous list: %d %s", r.Status, r.Body)
		}
		admin := adminBearer(t, base, dir, "lister")
		var all []web.Execution
		cursor := ""
		for page := 0; page < 20; page++ {
			r := do(t, http.MethodGet, api+"/executions?limit=2&cursor="+cursor, nil, admin...)
			var out struct {
				Executions []web.Execution `json:"executions"`
				NextCursor string          `json:"next_cursor"`
			}
			r.decode(t, &out)
			all = append(all, out.Executions...)
			if out.NextCursor == "" {
				break
			}
			cursor = out.NextCursor
		}
		if len(all) < 6 {
			t.Fatalf("listed %d executions", len(all))
		}
		seen := map[string]bool{}
		for i, e := range all {
			if seen[e.ID] {
				t.Fatalf("%s listed twice", e.ID)
			}
			seen[e.ID] = true
			if i > 0 && e.CreatedAt.After(all[i-1].CreatedAt) {
				t.Fatalf("not newest first at %d", i)
			}
		}
		r := do(t, http.MethodGet, api+"/executions?status=failed", nil, admin...)
		var out struct{ Executions []web.Execution }
		r.decode(t, &out)
		if len(out.Executions) < 3 {
			t.Fatalf("status filter: %d", len(out.Executions))
		}
		for _, e := range out.Executions {
			if e.Status != domain.StatusFailed {
				t.Fatalf("status filter returned %s", e.Status)
			}
		}
	})

	t.Run("OK idempotency key", func(t *testing.T) {
		body := map[string]any{"script": "print(7)"}
		r1 := do(t, http.MethodPost, api+"/executions", body, "Idempotency-Key", "k-1")
		r2 := do(t, http.MethodPost, api+"/executions", body, "Idempotency-Key", "k-1")
		var e1, e2 web.Execution
		r1.decode(t, &e1)
		r2.decode(t, &e2)
		if r1.Status != http.StatusAccepted || r2.Status != http.StatusOK || e1.ID != e2.ID {
			t.Fatalf("got %d %s / %d %s", r1.Status, e1.ID, r2.Status, e2.ID)
		}
		r3 := do(t, http.MethodPost, api+"/executions", map[string]any{"script": "print(8)"}, "Idempotency-Key", "k-1")
		if r3.Status != http.StatusConflict {
			t.Fatalf("reused key with another body: %d %s", r3.Status, r3.Body)
		}
		if evs := waitEvents(t, base, e1.ID, 30*time.Second); evs[0].Type != domain.TypeExecutionQueued || len(evs) != 3 {
			t.Fatalf("events: %+v", evs)
		}
	})

	t.Run("OK runtimes", func(t *testing.T) {
		var c domain.Catalog
		do(t, http.MethodGet, api+"/runtimes", nil).decode(t, &c)
		if len(c.Runtimes) == 0 || c.Runtimes[0].Language != "python" || c.DefaultLimits != domain.DefaultLimits {
			t.Fatalf("got %+v", c)
		}
	})

	t.Run("OK original API", func(t *testing.T) {
		r := do(t, http.MethodPost, api+"/execute", map[string]any{"script": "print('compat')", "lang": "python", "lang_version": "3.11"})
		var out struct {
			ExecutionID string `json:"execution_id"`
			Status      string `json:"status"`
		}
		r.decode(t, &out)
		if r.Status != http.StatusOK || out.ExecutionID == "" || out.Status != "queued" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		waitDone(t, base, out.ExecutionID, 30*time.Second)
		var res struct {
			Status        string  `json:"status"`
			Stdout        *string `json:"stdout"`
			ExitCode      *int    `json:"exit_code"`
			ResourceUsage *struct {
				Wall float64 `json:"execution_time_wall_seconds"`
			} `json:"resource_usage"`
		}
		do(t, http.MethodGet, api+"/executions/"+out.ExecutionID+"/result", nil).decode(t, &res)
		if res.Status != "completed" || res.Stdout == nil || *res.Stdout != "compat\n" || res.ResourceUsage == nil || res.ResourceUsage.Wall <= 0 {
			t.Fatalf("got %+v", res)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		cases := []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"ErrMalformedJSON", "POST", "/executions", `{"script":`, 400, domain.EINVALID},
			{"ErrUnknownField", "POST", "/executions", `{"script":"print(1)","sript":1}`, 400, domain.EINVALID},
			{"ErrEmptyBody", "POST", "/executions", ``, 400, domain.EINVALID},
			{"ErrEmptyScript", "POST", "/executions", `{"script":""}`, 422, domain.EUNPROCESSABLE},
			{"ErrUnknownLanguage", "POST", "/executions", `{"script":"1","language":"cobol"}`, 422, domain.EUNPROCESSABLE},
			{"ErrLimitAboveMaximum", "POST", "/executions", `{"script":"1","limits":{"memory_bytes":99999999999}}`, 422, domain.EUNPROCESSABLE},
			{"ErrScriptTooLarge", "POST", "/executions", map[string]any{"script": strings.Repeat("#", domain.MaxScriptBytes+1)}, 413, domain.ETOOLARGE},
			{"ErrBodyTooLarge", "POST", "/executions", strings.Repeat(" ", maxBodyBytesForTest+10), 413, domain.ETOOLARGE},
			{"ErrNotFound", "GET", "/executions/0193a1c2-0000-7000-8000-000000000000", nil, 404, domain.ENOTFOUND},
			{"ErrNotAnID", "GET", "/executions/..%2f..%2fetc", nil, 404, domain.ENOTFOUND},
			{"ErrCancelUnknown", "POST", "/executions/0193a1c2-0000-7000-8000-000000000000/cancel", nil, 404, domain.ENOTFOUND},
			{"ErrBadStatusFilter", "GET", "/executions?status=bogus", nil, 400, domain.EINVALID},
			{"ErrBadCursor", "GET", "/executions?cursor=zzz", nil, 400, domain.EINVALID},
			{"ErrBadLimit", "GET", "/executions?limit=1000", nil, 400, domain.EINVALID},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := do(t, c.method, api+c.path, c.body)
				if r.Status != c.status || r.errorCode(t) != c.code {
					t.Fatalf("got %d %s", r.Status, r.Body)
				}
			})
		}
	})

	t.Run("OK run command mirrors the exit code", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "s.py")
		os.WriteFile(f, []byte("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)\n"), 0o644)
		var out, errOut strings.Builder
		code, err := run(t.Context(), []string{"integr8scode", "run", "--server", base, f}, func(string) string { return "" },
			strings.NewReader(""), &out, &errOut)
		if err != nil || code != 3 || out.String() != "out\n" || !strings.Contains(errOut.String(), "err\n") {
			t.Fatalf("code %d err %v out %q stderr %q", code, err, out.String(), errOut.String())
		}
	})

	t.Run("OK accounts from the admin command line, run --token as the user", func(t *testing.T) {
		admin := adminBearer(t, base, dir, "operator")
		admin2 := func(args ...string) (int, string) {
			var out, errOut strings.Builder
			code, err := run(t.Context(), append([]string{"integr8scode", "admin"}, args...), func(string) string { return "" },
				strings.NewReader(testPassword+"\n"), &out, &errOut)
			return code, fmt.Sprint(out.String(), errOut.String(), err)
		}
		if code, out := admin2("create-user", "--data-dir", dir, "--username", "ada"); code != 0 || !strings.Contains(out, "role user") {
			t.Fatalf("create-user: %d %s", code, out)
		}
		if code, out := admin2("create-user", "--data-dir", dir, "--username", "ADA"); code != 1 || !strings.Contains(out, "taken") {
			t.Fatalf("a taken name: %d %s", code, out)
		}
		var out, errOut strings.Builder
		if code, err := run(t.Context(), []string{"integr8scode", "admin", "create-user", "--data-dir", dir, "--username", "weak"},
			func(string) string { return "" }, strings.NewReader("password\n"), &out, &errOut); code != 1 || err == nil || !strings.Contains(err.Error(), "15 characters") {
			t.Fatalf("a weak password: %d %v %s", code, err, errOut.String())
		}
		r := do(t, http.MethodPost, api+"/auth/login", map[string]string{"username": "ada", "password": testPassword})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		r.decode(t, &tok)
		r = do(t, http.MethodPost, api+"/auth/tokens", map[string]string{"name": "cli"}, "Authorization", "Bearer "+tok.AccessToken)
		var created struct{ Token string }
		r.decode(t, &created)
		f := filepath.Join(t.TempDir(), "s.py")
		os.WriteFile(f, []byte("print('as ada')\n"), 0o644)
		out.Reset()
		errOut.Reset()
		code, err := run(t.Context(), []string{"integr8scode", "run", "--server", base, f},
			func(k string) string {
				if k == "INTEGR8SCODE_TOKEN" {
					return created.Token
				}
				return ""
			}, strings.NewReader(""), &out, &errOut)
		if err != nil || code != 0 || out.String() != "as ada\n" {
			t.Fatalf("run --token: %d %v %q %q", code, err, out.String(), errOut.String())
		}
		var me struct{ ID string }
		do(t, http.MethodGet, api+"/auth/me", nil, "Authorization", "Bearer "+created.Token).decode(t, &me)
		var list struct{ Executions []web.Execution }
		do(t, http.MethodGet, api+"/executions?owner="+me.ID, nil, admin...).decode(t, &list)
		if len(list.Executions) != 1 || list.Executions[0].Owner != me.ID || list.Executions[0].Output != "as ada\n" {
			t.Fatalf("ada's executions: %+v", list.Executions)
		}
		if code, out := admin2("set-password", "--data-dir", dir, "--username", "ada"); code != 0 || !strings.Contains(out, "new password") {
			t.Fatalf("set-password: %d %s", code, out)
		}
		if code, out := admin2("unlock", "--data-dir", dir, "--username", "ada"); code != 0 || !strings.Contains(out, "may sign in again") {
			t.Fatalf("unlock: %d %s", code, out)
		}
	})

	t.Run("OK load profile of simulated people, signed in and anonymous, with a report", func(t *testing.T) {
		admin := adminBearer(t, base, dir, "loadadmin")
		code, err := run(t.Context(), []string{"integr8scode", "admin", "create-user", "--data-dir", dir, "--username", "loaduser"},
			func(string) string { return "" }, strings.NewReader(testPassword+"\n"), io.Discard, io.Discard)
		if code != 0 || err != nil {
			t.Fatalf("create-user: %d %v", code, err)
		}
		user := adminBearerFor(t, base, "loaduser")
		var me struct{ ID string }
		do(t, http.MethodGet, api+"/auth/me", nil, user...).decode(t, &me)
		// Five signed-in people share this account: an admin raises its limits.
		if r := do(t, http.MethodPatch, api+"/admin/users/"+me.ID, map[string]any{"limits": map[string]int{
			"submissions_per_minute": 10000, "burst": 1000, "concurrent": 100}}, admin...); r.Status != http.StatusOK {
			t.Fatalf("raise limits: %d %s", r.Status, r.Body)
		}
		var tok struct{ Token string }
		do(t, http.MethodPost, api+"/auth/tokens", map[string]string{"name": "load"}, user...).decode(t, &tok)
		report := t.TempDir()
		var out, errOut strings.Builder
		code, err = run(t.Context(), []string{"integr8scode", "loadtest", "--server", base, "--profile", "light", "--duration", "15s",
			"--think", "500ms", "--token", tok.Token, "--report", report}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		if code != 0 || err != nil {
			t.Fatalf("loadtest: %d %v\n%s%s", code, err, out.String(), errOut.String())
		}
		var rep loadReport
		b, _ := os.ReadFile(filepath.Join(report, "report.json"))
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Users != 10 || rep.SignedUsers != 5 || rep.Failed != 0 || rep.Requests < 30 || rep.PeakRSS == 0 || len(rep.Timeline) < 3 {
			t.Fatalf("report: %+v", rep)
		}
		for _, op := range []string{"runtimes", "submit", "result", "history", "save_script", "open_script"} {
			if rep.Operations[op].Count == 0 {
				t.Fatalf("no %s in %v", op, rep.Operations)
			}
		}
		page, _ := os.ReadFile(filepath.Join(report, "report.html"))
		if strings.Count(string(page), "<svg") != 7 || strings.Contains(string(page), "<script") {
			t.Fatalf("the HTML report has %d charts", strings.Count(string(page), "<svg"))
		}
		t.Logf("\n%s", out.String())
	})

	// Every other profile, shortened to seconds (light ran above): the
	// people of each arrive, submit, follow and read, and finish what they
	// started; none of it may fail, and the report must be whole. Latency
	// is the load tool's to measure, not this test's to judge.
	for _, name := range []string{"smoke", "medium", "heavy", "stress"} {
		t.Run("OK load profile "+name+" shortened runs without errors", func(t *testing.T) {
			report := t.TempDir()
			var out, errOut strings.Builder
			code, err := run(t.Context(), []string{"integr8scode", "loadtest", "--server", base, "--profile", name, "--duration", "3s",
				"--report", report}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
			if code != 0 || err != nil {
				t.Fatalf("loadtest: %d %v\n%s%s", code, err, out.String(), errOut.String())
			}
			var rep loadReport
			b, _ := os.ReadFile(filepath.Join(report, "report.json"))
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Profile != name || rep.Users != loadProfiles[name].Users || rep.Failed != 0 || rep.Requests < rep.Users ||
				len(rep.Timeline) == 0 || rep.Users > 1 && rep.Operations["submit"].Count == 0 {
				t.Fatalf("report: %+v", rep)
			}
			if page, _ := os.ReadFile(filepath.Join(report, "report.html")); strings.Count(string(page), "<svg") != 7 {
				t.Fatalf("the HTML report has %d charts", strings.Count(string(page), "<svg"))
			}
		})
	}

	t.Run("OK loadtest reports latency, floor and throughput", func(t *testing.T) {
		var out, errOut strings.Builder
		code, err := run(t.Context(), []string{"integr8scode", "loadtest", "--server", base, "--requests", "3", "--concurrency", "2", "--duration", "2s"},
			func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		if err != nil || code != 0 {
			t.Fatalf("code %d err %v stderr %s", code, err, errOut.String())
		}
		for _, want := range []string{"through the API", "cold runc run, minimal,", "cold runc run, hardened,", "ratio of medians (API / minimal cold runc)", "executions/s (0 failed requests)"} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("report lacks %q:\n%s", want, out.String())
			}
		}
		if code, _ := run(t.Context(), []string{"integr8scode", "loadtest", "--server", "http://192.0.2.1:8080"},
			func(string) string { return "" }, strings.NewReader(""), &out, &errOut); code != 2 {
			t.Fatalf("loadtest accepted a non-loopback server: %d", code)
		}
	})

	t.Run("OK one trace from the request through Kafka to the sandbox", func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
		r := do(t, http.MethodPost, api+"/executions?wait=true", map[string]any{"script": "print('traced')"})
		var e web.Execution
		r.decode(t, &e)
		waitEvents(t, base, e.ID, 10*time.Second)
		byName := map[string][]sdktrace.ReadOnlySpan{}
		var root sdktrace.ReadOnlySpan
		deadline := time.Now().Add(10 * time.Second)
		for {
			byName = map[string][]sdktrace.ReadOnlySpan{}
			for _, s := range rec.Ended() {
				byName[s.Name()] = append(byName[s.Name()], s)
				if s.Name() == "POST /api/v1/executions" {
					root = s
				}
			}
			if root != nil && len(byName["sandbox.run"]) > 0 && len(byName["ledger.handle ExecutionCompleted"]) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("spans: %v", keys(byName))
			}
			time.Sleep(50 * time.Millisecond)
		}
		want := root.SpanContext().TraceID()
		for _, name := range []string{"ledger.append", "ledger.handle ExecutionQueued", "sandbox.run", "ledger.handle ExecutionCompleted"} {
			found := false
			for _, s := range byName[name] {
				found = found || s.SpanContext().TraceID() == want
			}
			if !found {
				t.Errorf("no %q span in the request's trace", name)
			}
		}
	})

	t.Run("OK metrics", func(t *testing.T) {
		r := do(t, http.MethodGet, base+"/metrics", nil)
		for _, series := range []string{"integr8scode_runner_runs_finished_total", "integr8scode_projector_events_applied_total", "integr8scode_http_requests_total"} {
			if !strings.Contains(string(r.Body), series) {
				t.Fatalf("metrics lack %s", series)
			}
		}
	})

	t.Run("OK survives a restart", func(t *testing.T) {
		stop()
		base2, _ := startUp(t, dir)
		e := get(t, base2, hello.ID)
		if e.Status != domain.StatusCompleted || e.Output != "hi\n" {
			t.Fatalf("after restart: %+v", e)
		}
		evs, valid := events(t, base2, hello.ID)
		if len(evs) != 3 || !valid {
			t.Fatalf("after restart: %d events valid=%v", len(evs), valid)
		}
		n := submit(t, base2, map[string]any{"script": "print('again')"})
		if e := waitDone(t, base2, n.ID, 30*time.Second); e.Output != "again\n" {
			t.Fatalf("after restart: %+v", e)
		}
		// Last, while this platform runs: every event this test made, read
		// back through the API, is inside the published contract.
		checkContract(t, base2, dir)
		checkStatsAgainstExport(t, base2, dir)
	})

}

// checkContract validates every event of every execution on the platform
// at base (data directory dir) against docs/events/schemas.
func checkContract(t *testing.T, base, dir string) {
	t.Helper()
	admin := adminBearer(t, base, dir, "contract")
	checked, cursor := 0, ""
	for {
		var page struct {
			Executions []web.Execution `json:"executions"`
			NextCursor string          `json:"next_cursor"`
		}
		do(t, http.MethodGet, base+"/api/v1/executions?limit=100&cursor="+cursor, nil, admin...).decode(t, &page)
		for _, e := range page.Executions {
			var evs struct {
				Events []struct{ Record json.RawMessage }
			}
			do(t, http.MethodGet, base+"/api/v1/executions/"+e.ID+"/events", nil, admin...).decode(t, &evs)
			for _, ev := range evs.Events {
				if err := eventstore.ValidateRecord(ev.Record); err != nil {
					t.Fatalf("execution %s: %v\n%s", e.ID, err, ev.Record)
				}
				checked++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if checked < 50 {
		t.Fatalf("only %d events checked", checked)
	}
	t.Logf("%d events match their schemas", checked)
}

// checkStatsAgainstExport compares GET /api/v1/stats with counts computed
// from `integr8scode events export` of the same ledger, read from the
// running platform's embedded broker (stores.env names it).
func checkStatsAgainstExport(t *testing.T, base, dir string) {
	t.Helper()
	env, err := os.ReadFile(filepath.Join(dir, storesFile))
	if err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		for _, line := range strings.Split(string(env), "\n") {
			if v, ok := strings.CutPrefix(line, k+"="); ok {
				return shellUnquote(v)
			}
		}
		return ""
	}
	admin := adminBearer(t, base, dir, "statistician")
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		var out, errOut strings.Builder
		if code, err := run(t.Context(), []string{"integr8scode", "events", "export"}, getenv, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("events export: %d %v %s", code, err, errOut.String())
		}
		status, reasons, first := map[string]string{}, map[string]int{}, time.Now()
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var rec struct {
				Type        string    `json:"type"`
				ExecutionID string    `json:"execution_id"`
				OccurredAt  time.Time `json:"occurred_at"`
				Data        struct {
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("export line %q: %v", line, err)
			}
			switch rec.Type {
			case domain.TypeExecutionQueued:
				status[rec.ExecutionID] = "queued"
				if rec.OccurredAt.Before(first) {
					first = rec.OccurredAt
				}
			case domain.TypeExecutionStarted:
				status[rec.ExecutionID] = "running"
			case domain.TypeExecutionCompleted:
				status[rec.ExecutionID] = "completed"
			case domain.TypeExecutionFailed:
				status[rec.ExecutionID] = "failed"
				reasons[rec.Data.Reason]++
			}
		}
		byStatus := map[string]int{}
		for _, st := range status {
			byStatus[st]++
		}
		// Submissions are stamped when queued: the range starts at the
		// first submit, to the second, and ends now.
		q := "?bucket=hour&from=" + first.UTC().Truncate(time.Second).Format(time.RFC3339) + "&to=" + time.Now().UTC().Add(time.Minute).Format(time.RFC3339)
		var stats struct {
			Executions      int            `json:"executions"`
			ByStatus        map[string]int `json:"by_status"`
			ByFailureReason map[string]int `json:"by_failure_reason"`
		}
		do(t, http.MethodGet, base+"/api/v1/stats"+q, nil, admin...).decode(t, &stats)
		want := fmt.Sprint(len(status), byStatus, reasons)
		got := fmt.Sprint(stats.Executions, stats.ByStatus, stats.ByFailureReason)
		if got == want {
			t.Logf("stats and export agree: %s", got)
			return
		}
		last = fmt.Sprintf("stats %s, export %s", got, want)
	}
	t.Fatalf("the stats never matched the export: %s", last)
}

const maxBodyBytesForTest = 4 * (domain.MaxScriptBytes + domain.MaxStdinBytes)

func keys(m map[string][]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
