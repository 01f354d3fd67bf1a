package web

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/projections"
)

// Native fuzz targets; their seed corpora are in testdata/fuzz and run with
// every `go test`. `go tool task test` fuzzes each for a few seconds.

// FuzzSubmitDecoding: whatever the body, the decoder answers a domain error
// or a request, and what it accepts is exactly what was sent: valid UTF-8,
// one object, no field twice.
func FuzzSubmitDecoding(f *testing.F) {
	for _, s := range []string{`{"script":"print(1)"}`, `{"script":"1","limits":{"timeout_ms":1000}}`,
		`{"script":"\ud83d\ude00"}`, `{"script":"\ud800"}`, `{"a":1,"a":2}`, "{\"script\":\"\xff\"}", `[]`, `{"script":"1"} x`,
		`{"limits":{"timeout_ms":0}}`, `{"script":"\\u0000\\\"\\\\"}`, `{"stdin":"x","STDIN":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req submitRequest
		err := unmarshalStrict(raw, &req)
		if err != nil {
			if code := domain.ErrorCode(err); statusOf[code] == 0 || code == domain.EINTERNAL {
				t.Fatalf("not a user error: %v", err)
			}
			return
		}
		if !utf8.Valid(raw) || !json.Valid(raw) {
			t.Fatalf("accepted %q", raw)
		}
		if !utf8.ValidString(req.Script) || !utf8.ValidString(req.Stdin) || strings.ContainsRune(req.Script+req.Stdin, utf8.RuneError) && !bytes.Contains(raw, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`)) {
			t.Fatalf("accepted and rewrote %q into %q", raw, req.Script)
		}
	})
}

// FuzzCursor: a cursor either parses into a position that encodes back to
// an equivalent cursor, or is refused as malformed.
func FuzzCursor(f *testing.F) {
	f.Add(encodeCursor(projections.Cursor{CreatedAt: time.Unix(1700000000, 5), ID: "0193a1c2-0000-7000-8000-000000000000"}))
	for _, s := range []string{"", ".", "zzz", "-1.0193a1c2-0000-7000-8000-000000000000", "1.x", strings.Repeat("9", 40) + ".a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if domain.ErrorCode(err) != domain.EINVALID {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		again, err := decodeCursor(encodeCursor(c))
		if err != nil || !again.CreatedAt.Equal(c.CreatedAt) || again.ID != c.ID {
			t.Fatalf("%q: round trip gave %+v, %v", s, again, err)
		}
	})
}

// FuzzLastEventID: the header is a bounded decimal sequence or refused.
func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"", "0", "3", "+1", "-1", "1e3", "0x10", strings.Repeat("9", 18), strings.Repeat("9", 19), "٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n, err := parseLastEventID(h)
		if err != nil {
			return
		}
		if n < 0 || len(h) > 18 || h != "" && strings.TrimLeft(strconv.FormatInt(n, 10), "0") != strings.TrimLeft(h, "0") {
			t.Fatalf("%q read as %d", h, n)
		}
	})
}

// documented are the statuses the API documents. Anything else (a 500
// above all) is a defect.
var documented = map[int]bool{200: true, 201: true, 202: true, 204: true, 400: true, 401: true, 403: true, 404: true, 405: true,
	409: true, 413: true, 415: true, 422: true, 429: true, 503: true}

// checkAnswer sends one request straight to the router and checks the
// property: a documented status and, for every error, a JSON error body.
func checkAnswer(t *testing.T, h http.Handler, method, path, contentType, origin string, body []byte) {
	t.Helper()
	u, err := url.Parse(path)
	if err != nil || method == "" {
		return // net/http never hands such a request to a handler
	}
	req := &http.Request{Method: method, URL: u, RequestURI: path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "api.test", RemoteAddr: "192.0.2.1:1234",
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req = req.WithContext(t.Context())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !documented[rec.Code] {
		t.Fatalf("%.40q %.80q: undocumented status %d: %s", method, path, rec.Code, rec.Body)
	}
	if rec.Code < 400 || method == http.MethodHead {
		return
	}
	var e struct {
		Error *struct{ Code, Message string } `json:"error"`
	}
	if rec.Header().Get("Content-Type") != "application/json" || json.Unmarshal(rec.Body.Bytes(), &e) != nil ||
		e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("%.40q %.80q: %d without a JSON error: %q", method, path, rec.Code, rec.Body)
	}
}

var routerSeeds = []struct{ method, path, contentType, origin, body string }{
	{"GET", "/api/v1/executions", "", "", ""},
	{"POST", "/api/v1/executions", "application/json", "", `{"script":"print(1)"}`},
	{"POST", "/api/v1/executions?wait=false", "text/plain", "", `{"script":"print(1)"}`},
	{"POST", "/api/v1/executions", "application/json", "https://evil.example", `{"script":"1"}`},
	{"OPTIONS", "/api/v1/executions", "", "https://evil.example", ""},
	{"BREW", "/api/v1/executions/0193a1c2-0000-7000-8000-000000000000", "", "", ""},
	{"GET", "/api/v1/executions/..%2f..%2fetc/stream", "", "", ""},
	{"GET", "/api/v1/executions?limit=-1&cursor=zz&status=x", "", "", ""},
	{"POST", "/api/v1/executions/0193a1c2-0000-7000-8000-000000000000/cancel", "", "", "{}"},
	{"DELETE", "/metrics", "", "", ""},
	{"POST", "/api/v1/auth/login", "application/json", "", `{"username":"ada","password":"x"}`},
	{"PATCH", "/api/v1/admin/users/0193a1c2-0000-7000-8000-000000000000", "application/json", "", `{"role":"admin"}`},
	{"PUT", "/api/v1/scripts/0193a1c2-0000-7000-8000-000000000000", "application/json", "", `{"name":"a","script":"1"}`},
	{"GET", "/%ff", "", "", ""},
}

// FuzzRouterAnswers is the property over the whole router: any method,
// path, content type, origin and body get a documented status, and every
// error is a JSON error.
func FuzzRouterAnswers(f *testing.F) {
	a := startAPI(f, nil)
	for _, s := range routerSeeds {
		f.Add(s.method, s.path, s.contentType, s.origin, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, contentType, origin string, body []byte) {
		checkAnswer(t, a.handler, method, path, contentType, origin, body)
	})
}

// TestEveryAnswerIsDocumented runs the router property over a few hundred
// generated requests on every `go test`, beside the fuzz target.
func TestEveryAnswerIsDocumented(t *testing.T) {
	a := startAPI(t, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	ids := []string{"0193a1c2-0000-7000-8000-000000000000", "x", strings.Repeat("y", 300), "%00", ""}
	for i := 0; i < 400; i++ {
		id := pick(ids...)
		method := pick("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "X-"+strings.Repeat("Q", rng.IntN(50)))
		path := pick("/api/v1/executions", "/api/v1/executions/"+id, "/api/v1/executions/"+id+"/events",
			"/api/v1/executions/"+id+"/cancel", "/api/v1/executions/"+id+"/result", "/api/v1/execute",
			"/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/me",
			"/api/v1/auth/tokens", "/api/v1/auth/tokens/"+id, "/api/v1/scripts", "/api/v1/scripts/"+id,
			"/api/v1/admin/users", "/api/v1/admin/users/"+id,
			"/api/v1/runtimes", "/api/v1/queue", "/healthz", "/metrics", "/nope", "/api/v1/executions?limit="+id+"&status="+id+"&cursor="+id)
		ct := pick("", "application/json", "text/plain", "application/json; charset=utf-16", "multipart/form-data; boundary=x")
		origin := pick("", "", "https://evil.example", "null")
		body := pick("", "{}", `{"script":"print(1)"}`, `{"script":"1","limits":{"timeout_ms":0}}`, "{\"script\":\"\xff\"}",
			`{"script":"1","script":"2"}`, `{`, strings.Repeat("[", 1000), `{"lang":"python","script":"1"}`)
		checkAnswer(t, a.handler, method, path, ct, origin, []byte(body))
	}
}
