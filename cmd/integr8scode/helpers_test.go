package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/integr8scode/integr8scode/internal/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/adapters/keyring"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/eventstore"
	"github.com/integr8scode/integr8scode/web"
)

// roomyQuota lets the tests that are not about quotas submit as much as
// they like from one address. Processes started as child binaries get it
// through the environment (TestMain).
const roomyQuota = "per-minute=100000,burst=10000,concurrent=10000"

func TestMain(m *testing.M) {
	os.Setenv("INTEGR8SCODE_QUOTA_ANONYMOUS", roomyQuota)
	os.Exit(m.Run())
}

// testPassword passes the password policy.
const testPassword = "correct horse battery staple"

// adminBearer creates an admin on the platform of data directory dir with
// the admin command line (as an operator on the machine would, while the
// platform runs), signs it in and returns the Authorization header pair.
func adminBearer(t testing.TB, base, dir, name string) []string {
	t.Helper()
	var out, errs bytes.Buffer
	code, err := run(t.Context(), []string{"integr8scode", "admin", "create-user", "--data-dir", dir, "--username", name, "--role", "admin"},
		func(string) string { return "" }, strings.NewReader(testPassword+"\n"), &out, &errs)
	if code != 0 || err != nil {
		t.Fatalf("admin create-user: %d %v\n%s%s", code, err, out.String(), errs.String())
	}
	return adminBearerFor(t, base, name)
}

// adminBearerFor signs an existing account in (with testPassword) and
// returns the Authorization header pair.
func adminBearerFor(t testing.TB, base, name string) []string {
	t.Helper()
	r := do(t, http.MethodPost, base+"/api/v1/auth/login", map[string]string{"username": name, "password": testPassword})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(t, &tok)
	if r.Status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("login %s: %d %s", name, r.Status, r.Body)
	}
	return []string{"Authorization", "Bearer " + tok.AccessToken}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startUp runs `integr8scode up` in this process on dir and waits for
// /readyz. The returned stop ends it and waits for it to exit.
func startUp(t testing.TB, dir string) (base string, stop func()) {
	t.Helper()
	return startUpWith(t, dir)
}

// startUpWith is startUp with more flags for up.
func startUpWith(t testing.TB, dir string, flags ...string) (base string, stop func()) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testenv.SyncBuffer{}
	done := make(chan error, 1)
	go func() {
		// The load profiles' people all come from this one address.
		_, err := run(ctx, append([]string{"integr8scode", "up", "--listen", addr, "--data-dir", dir, "--slots", "4",
			"--quota-anonymous", roomyQuota, "--max-streams-per-client", "1000"}, flags...),
			func(string) string { return "" }, strings.NewReader(""), io.Discard, logs)
		done <- err
	}()
	base = "http://" + addr
	waitReady(t, base, done, logs)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("up exited with %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("up did not stop within 60s")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 80))
		}
	})
	return base, stop
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func waitReady(t testing.TB, base string, done <-chan error, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("server exited before it was ready: %v\n%s", err, tail(logs.String(), 60))
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("server not ready within 90s\n%s", tail(logs.String(), 60))
}

type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r apiResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r apiResponse) errorCode(t testing.TB) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	r.decode(t, &e)
	if e.Error.Message == "" {
		t.Fatalf("error body without message: %s", r.Body)
	}
	return e.Error.Code
}

func do(t testing.TB, method, url string, body any, header ...string) apiResponse {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func submit(t testing.TB, base string, body map[string]any) web.Execution {
	t.Helper()
	r := do(t, http.MethodPost, base+"/api/v1/executions", body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	var e web.Execution
	r.decode(t, &e)
	return e
}

func get(t testing.TB, base, id string) web.Execution {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/v1/executions/"+id, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, r.Status, r.Body)
	}
	var e web.Execution
	r.decode(t, &e)
	return e
}

// waitDone polls an execution until its view is terminal.
func waitDone(t testing.TB, base, id string, within time.Duration) web.Execution {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		e := get(t, base, id)
		if e.Status.Terminal() {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s still %s after %s", id, e.Status, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func events(t testing.TB, base, id string) ([]eventstore.Envelope, bool) {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/v1/executions/"+id+"/events", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("events %s: %d %s", id, r.Status, r.Body)
	}
	var out struct {
		Events []struct {
			Partition int32             `json:"partition"`
			Offset    int64             `json:"offset"`
			Verified  eventstore.Checks `json:"verified"`
			Record    json.RawMessage   `json:"record"`
		} `json:"events"`
		ChainValid bool `json:"chain_valid"`
	}
	r.decode(t, &out)
	var envs []eventstore.Envelope
	for _, e := range out.Events {
		env, err := eventstore.ParseRecord(e.Record)
		if err != nil {
			t.Fatalf("events %s: %v", id, err)
		}
		if !e.Verified.OK() {
			t.Fatalf("events %s: sequence %d does not verify: %+v", id, env.Sequence, e.Verified)
		}
		envs = append(envs, env)
	}
	return envs, out.ChainValid
}

// ledgerKeys fetches the public keys the server publishes.
func ledgerKeys(t testing.TB, base string) *eventstore.KeySet {
	t.Helper()
	r := do(t, http.MethodGet, base+"/api/v1/ledger/keys", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("ledger keys: %d %s", r.Status, r.Body)
	}
	ks, err := keyring.Parse(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// waitEvents polls until an execution's archive holds a terminal event.
func waitEvents(t testing.TB, base, id string, within time.Duration) []eventstore.Envelope {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		evs, _ := events(t, base, id)
		for _, e := range evs {
			if e.Type == domain.TypeExecutionCompleted || e.Type == domain.TypeExecutionFailed {
				return evs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no terminal event for %s after %s: %+v", id, within, evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readSSE reads a whole event stream and returns its events' types and ids.
func readSSE(t testing.TB, url string, header ...string) (types []string, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("stream content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			types = append(types, strings.TrimPrefix(line, "event: "))
		case strings.HasPrefix(line, "id: "):
			ids = append(ids, strings.TrimPrefix(line, "id: "))
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("stream did not end by itself; got %v", types)
	}
	return types, ids
}
