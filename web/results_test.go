package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
)

// TestWaitReturnsTheResultOnceTheRunnerReportsIt: POST ?wait=true holds the
// request until the execution ends and answers 200 with its output, not
// the 202 of a queued one.
func TestWaitReturnsTheResultOnceTheRunnerReportsIt(t *testing.T) {
	a := startAPI(t, nil)
	u := register(t, a, "waiter")
	answers := make(chan answer, 1)
	go func() {
		answers <- call(t, http.MethodPost, a.URL+"/api/v1/executions?wait=true", `{"script":"print('waited')"}`, u.bearer()...)
	}()
	// The id is the writer's to choose: find it in the user's list.
	var id string
	waitFor(t, func() bool {
		var page listResponse
		_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/executions", "", u.bearer()...).Body, &page)
		if len(page.Executions) == 1 {
			id = page.Executions[0].ID
		}
		return id != ""
	})
	a.finish(t, id, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Stdout: "waited\n"})
	r := <-answers
	if r.Status != http.StatusOK || r.Header.Get("Location") != "/api/v1/executions/"+id {
		t.Fatalf("wait: %d %v %s", r.Status, r.Header, r.Body)
	}
	if e := decodeExecution(t, r); e.Status != domain.StatusCompleted || e.Output != "waited\n" || e.ExitCode == nil || *e.ExitCode != 0 {
		t.Fatalf("wait answered %+v", e)
	}
}

// TestStreamEndsWithTheTerminalEvent: a stream opened while the execution
// waits carries every event in order, ends after the terminal one, and a
// reconnect that already has it gets 204 (EventSource then stops).
func TestStreamEndsWithTheTerminalEvent(t *testing.T) {
	a := startAPI(t, nil)
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	url := a.URL + "/api/v1/executions/" + id + "/stream"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	rd := bufio.NewReader(resp.Body)
	next := func() (id, event string) {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended before an event: %v", err)
			}
			switch line = strings.TrimSuffix(line, "\n"); {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case line == "" && event != "":
				return id, event
			}
		}
	}
	if seq, ev := next(); seq != "1" || ev != domain.TypeExecutionQueued {
		t.Fatalf("first event %s %s", seq, ev)
	}
	a.finish(t, id, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Stdout: "1\n"})
	if seq, ev := next(); seq != "2" || ev != domain.TypeExecutionStarted {
		t.Fatalf("second event %s %s", seq, ev)
	}
	if seq, ev := next(); seq != "3" || ev != domain.TypeExecutionCompleted {
		t.Fatalf("third event %s %s", seq, ev)
	}
	if rest, err := rd.ReadString('\n'); err == nil {
		t.Fatalf("the stream went on after the terminal event: %q", rest)
	}
	// The stream waited for the view: a read right after it ends finds it ended.
	if e := decodeExecution(t, call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id, "")); e.Status != domain.StatusCompleted {
		t.Fatalf("after the stream ended the execution is %s", e.Status)
	}
	for _, last := range []string{"3", "7"} {
		if r := call(t, http.MethodGet, url, "", "Last-Event-ID", last); r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("reconnect with Last-Event-ID %s: %d %s", last, r.Status, r.Body)
		}
	}
	// A reconnect that missed the end gets it, and only it.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	req.Header.Set("Last-Event-ID", "2")
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Body.Close()
	rd = bufio.NewReader(again.Body)
	if seq, ev := next(); seq != "3" || ev != domain.TypeExecutionCompleted {
		t.Fatalf("after Last-Event-ID 2: %s %s", seq, ev)
	}
}

// TestCompatAPIAnswersInTheOriginalShape: POST /execute and GET
// /executions/{id}/result as the original product's clients read them:
// no output before the end, then stdout and stderr, CPU time in jiffies
// at CLK_TCK 100, memory in KiB, and error_type telling the script's
// failures from the platform's.
func TestCompatAPIAnswersInTheOriginalShape(t *testing.T) {
	a := startAPI(t, nil)
	execute := func(body string) (answer, compatExecuteResponse) {
		r := call(t, http.MethodPost, a.URL+"/api/v1/execute", body)
		var out compatExecuteResponse
		if r.Status == http.StatusOK {
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return r, out
	}
	result := func(id string) compatResult {
		r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id+"/result", "")
		var out compatResult
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &out) != nil {
			t.Fatalf("result of %s: %d %s", id, r.Status, r.Body)
		}
		return out
	}
	ended := func(id string) compatResult {
		var out compatResult
		waitFor(t, func() bool { out = result(id); return out.Status.Terminal() })
		return out
	}

	t.Run("ErrBadRequest", func(t *testing.T) {
		for body, want := range map[string]int{
			`{"script":"print(1)","lang":"cobol"}`:              http.StatusUnprocessableEntity,
			`{"script":"print(1)","lang_version":"2.7"}`:        http.StatusUnprocessableEntity,
			`{"script":"print(1)","language":"python"}`:         http.StatusBadRequest, // the new API's field name
			`{"script":"print(1)"`:                              http.StatusBadRequest,
			`{"script":"print(1)","lang":"python","lang":"py"}`: http.StatusBadRequest,
		} {
			if r, _ := execute(body); r.Status != want || r.errorCode(t) == "" {
				t.Fatalf("%s: %d %s, want %d", body, r.Status, r.Body, want)
			}
		}
		if r := call(t, http.MethodGet, a.URL+"/api/v1/executions/not-an-id/result", ""); r.Status != http.StatusNotFound || r.errorCode(t) != domain.ENOTFOUND {
			t.Fatalf("result of a malformed id: %d %s", r.Status, r.Body)
		}
	})

	t.Run("OK completed", func(t *testing.T) {
		r, ex := execute(`{"script":"print('hi')","lang":"python","lang_version":"3.11"}`)
		if r.Status != http.StatusOK || ex.Status != domain.StatusQueued || ex.ExecutionID == "" {
			t.Fatalf("execute: %d %s", r.Status, r.Body)
		}
		raw := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+ex.ExecutionID+"/result", "")
		for _, field := range []string{`"stdout":null`, `"stderr":null`, `"resource_usage":null`, `"exit_code":null`, `"error_type":null`} {
			if !strings.Contains(string(raw.Body), field) {
				t.Fatalf("a queued result lacks %s: %s", field, raw.Body)
			}
		}
		a.finish(t, ex.ExecutionID, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0),
			Stdout: "hi\n", Stderr: "warn\n", Usage: domain.ResourceUsage{WallTimeMs: 1500, CPUTimeMs: 230, PeakMemoryBytes: 10 << 20}})
		got := ended(ex.ExecutionID)
		u := got.ResourceUsage
		if got.Status != domain.StatusCompleted || got.Stdout == nil || *got.Stdout != "hi\n" || *got.Stderr != "warn\n" ||
			got.ExitCode == nil || *got.ExitCode != 0 || got.ErrorType != nil || got.Lang != "python" || got.LangVersion != "3.11" ||
			u == nil || u.WallSeconds != 1.5 || u.CPUJiffies != 23 || u.ClkTckHertz != 100 || u.PeakMemoryKB != 10240 {
			t.Fatalf("completed result: %+v usage %+v", got, u)
		}
	})

	for _, c := range []struct {
		name       string
		verdict    domain.Verdict
		want       string
		wantStderr string
	}{
		{"OK script error", domain.VerdictRuntimeErr, "script_error", "boom\n"},
		// The platform's own failure is explained after what the script wrote.
		{"OK system error", domain.VerdictSystemError, "system_error", "boom\nit failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ex := execute(`{"script":"raise SystemExit(3)"}`)
			a.finish(t, ex.ExecutionID, domain.Result{Verdict: c.verdict, ExitCode: domain.IntPtr(3), Stderr: "boom\n", Message: "it failed"})
			got := ended(ex.ExecutionID)
			if got.Status != domain.StatusFailed || got.ErrorType == nil || *got.ErrorType != c.want || *got.Stderr != c.wantStderr {
				t.Fatalf("%s result: %+v error_type %v stderr %q", c.verdict, got, deref(got.ErrorType), deref(got.Stderr))
			}
		})
	}
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// TestPublishedKeysVerifyAnExecutionsEvents: a client that trusts nothing
// but GET /ledger/keys checks every event of an ended execution (hash,
// link, signature) with them, and the keys' ids match their bytes.
func TestPublishedKeysVerifyAnExecutionsEvents(t *testing.T) {
	a := startAPI(t, nil)
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	a.finish(t, id, domain.Result{Verdict: domain.VerdictCompleted, ExitCode: domain.IntPtr(0), Stdout: "1\n"})

	var doc eventstore.KeysDocument
	if r := call(t, http.MethodGet, a.URL+"/api/v1/ledger/keys", ""); r.Status != http.StatusOK || json.Unmarshal(r.Body, &doc) != nil || len(doc.Keys) == 0 {
		t.Fatalf("keys: %d %s", r.Status, r.Body)
	}
	var pubs []eventstore.PublicKey
	for _, k := range doc.Keys {
		b, err := eventstore.DecodePublicKey(k.PublicKey)
		if err != nil || k.Alg != "Ed25519" {
			t.Fatalf("key %+v: %v", k, err)
		}
		pubs = append(pubs, eventstore.PublicKey{KeyID: k.KeyID, Key: b})
	}
	keys, err := eventstore.NewKeySet(pubs...)
	if err != nil {
		t.Fatalf("the published key ids do not match their keys: %v", err)
	}
	var evs eventsResponse
	waitFor(t, func() bool {
		_ = json.Unmarshal(call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id+"/events", "").Body, &evs)
		return len(evs.Events) == 3
	})
	prev := ""
	for i, ev := range evs.Events {
		env, checks, problem := eventstore.CheckRecord(keys, ev.Record, prev)
		if problem != nil || !checks.OK() || env.Sequence != int64(i+1) || checks != ev.Verified {
			t.Fatalf("event %d: %+v %v (the API said %+v)", i+1, checks, problem, ev.Verified)
		}
		prev = env.Hash
	}
	if !evs.ChainValid {
		t.Fatal("the API calls a verifiable chain invalid")
	}
}
