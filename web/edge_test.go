package web

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/domain"
)

func TestRequestIDIsOursUnlessShortAndPlain(t *testing.T) {
	a := startAPI(t, nil)
	for _, c := range []struct {
		name, sent string
		kept       bool
	}{
		{"OK plain id kept", "client-42.retry_1", true},
		{"ErrTooLong", strings.Repeat("a", maxRequestIDLen+1), false},
		{"ErrSpaces", "a b", false},
		{"ErrOtherCharacters", "a/b:é", false},
		{"OK none sent", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, a.URL+"/healthz", nil)
			if c.sent != "" {
				req.Header["X-Request-Id"] = []string{c.sent}
			}
			got := send(t, req).Header.Get("X-Request-Id")
			if c.kept && got != c.sent {
				t.Fatalf("client id %q answered as %q", c.sent, got)
			}
			if u, err := uuid.Parse(got); !c.kept && (err != nil || u.Version() != 4) {
				t.Fatalf("want a random id, got %q", got)
			}
		})
	}
}

func TestMetricLabelsComeFromClosedSets(t *testing.T) {
	a := startAPI(t, nil)
	for i := 0; i < 20; i++ {
		call(t, fmt.Sprintf("METHOD%dX%s", i, strings.Repeat("Y", 500)), a.URL+"/api/v1/executions/"+uuid.NewString(), "")
		call(t, http.MethodGet, a.URL+"/nowhere/"+uuid.NewString(), "")
		call(t, http.MethodGet, a.URL+"/api/v1/executions/"+uuid.NewString(), "")
	}
	m := call(t, http.MethodGet, a.URL+"/metrics", "")
	body := string(m.Body)
	if strings.Contains(body, "METHOD") || strings.Contains(body, "nowhere") {
		t.Fatal("a client's method or path became a label")
	}
	for _, want := range []string{`method="other"`, `route="unmatched"`, `route="/api/v1/executions/{id}"`} {
		if !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if len(body) > 64<<10 {
		t.Fatalf("/metrics grew to %d bytes", len(body))
	}
}

func TestIdempotencyKeyWithOtherLimitsConflicts(t *testing.T) {
	a := startAPI(t, nil)
	post := func(body string) answer {
		return call(t, http.MethodPost, a.URL+"/api/v1/executions", body, "Idempotency-Key", "k-limits")
	}
	if r := post(`{"script":"print(1)"}`); r.Status != http.StatusAccepted {
		t.Fatalf("first: %d %s", r.Status, r.Body)
	}
	if r := post(`{"script":"print(1)","limits":{"timeout_ms":5000}}`); r.Status != http.StatusOK {
		t.Fatalf("the default spelled out is the same request: %d %s", r.Status, r.Body)
	}
	for _, body := range []string{
		`{"script":"print(1)","limits":{"timeout_ms":1000}}`,
		`{"script":"print(1)","limits":{"memory_bytes":33554432}}`,
		`{"script":"print(1)","limits":{"cpu_millicores":200}}`,
		`{"script":"print(1)","stdin":"x"}`,
	} {
		if r := post(body); r.Status != http.StatusConflict || r.errorCode(t) != domain.ECONFLICT {
			t.Fatalf("%s: got %d %s", body, r.Status, r.Body)
		}
	}
}

// rawRequest writes bytes on a fresh connection, half-closes it, and
// returns the status line of the answer ("" if the server closed first).
func rawRequest(t *testing.T, base, request string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, request)
	conn.(*net.TCPConn).CloseWrite()
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestTruncatedBodyIsABadRequest(t *testing.T) {
	a := startAPI(t, nil)
	got := rawRequest(t, a.URL, "POST /api/v1/executions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"script\":\"pri")
	if got != "HTTP/1.1 400 Bad Request" {
		t.Fatalf("got %q", got)
	}
}

func TestCancelTakesNoBodyOrJSON(t *testing.T) {
	a := startAPI(t, nil)
	id := func() string {
		return decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	}
	cancel := func(id string, body io.Reader, contentType string) answer {
		req, _ := http.NewRequest(http.MethodPost, a.URL+"/api/v1/executions/"+id+"/cancel", body)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return send(t, req)
	}
	if r := cancel(id(), nil, ""); r.Status != http.StatusAccepted {
		t.Fatalf("no body: %d %s", r.Status, r.Body)
	}
	if r := cancel(id(), strings.NewReader("{}"), "application/json"); r.Status != http.StatusAccepted {
		t.Fatalf("empty object: %d %s", r.Status, r.Body)
	}
	if r := cancel(id(), strings.NewReader("please"), "text/plain"); r.Status != http.StatusUnsupportedMediaType {
		t.Fatalf("text body: %d %s", r.Status, r.Body)
	}
	if r := cancel(id(), strings.NewReader(`{"force":true}`), "application/json"); r.Status != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s", r.Status, r.Body)
	}
}

func TestStreamsPerClientAreCapped(t *testing.T) {
	a := startAPI(t, func(d *Deps, _ *http.Server) { d.StreamsPerClient = 2 })
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	url := a.URL + "/api/v1/executions/" + id + "/stream"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i, err, resp)
		}
		defer resp.Body.Close()
	}
	r := call(t, http.MethodGet, url, "")
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.errorCode(t) != domain.ETOOMANY {
		t.Fatalf("third stream: %d %v %s", r.Status, r.Header, r.Body)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for call(t, http.MethodHead, url, "").Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("closed streams did not free their slots")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStreamRefusesALastEventIDItCannotHaveSeen(t *testing.T) {
	a := startAPI(t, nil)
	id := decodeExecution(t, call(t, http.MethodPost, a.URL+"/api/v1/executions", `{"script":"print(1)"}`)).ID
	for _, h := range []string{"2", "+1", "-1", "1 2", "1e3", "0x1", strings.Repeat("9", 19)} {
		r := call(t, http.MethodGet, a.URL+"/api/v1/executions/"+id+"/stream", "", "Last-Event-ID", h)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("Last-Event-ID %q: %d %s", h, r.Status, r.Body)
		}
	}
}
