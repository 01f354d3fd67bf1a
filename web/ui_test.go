package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// testApp is a build as Vite lays it out: index.html naming hashed assets.
var testApp = fstest.MapFS{
	"index.html": {Data: []byte(`<!doctype html><meta name="csp-nonce" content="CSP_NONCE_PLACEHOLDER">` +
		`<script type="module" src="/assets/index-Ab12Cd34.js"></script>`)},
	"assets/index-Ab12Cd34.js":    {Data: bytes.Repeat([]byte("console.log('the app');\n"), 200)},
	"assets/index-Ef56Gh78.css":   {Data: []byte("body{margin:0}")},
	"favicon.svg":                 {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	"assets/editor-Zz99Yy88.js":   {Data: []byte("export const editor = 1;")},
	"assets/nested/font-Qq11.txt": {Data: []byte("x")},
}

func serveUI(t *testing.T, h http.Handler, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func jsonNotFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusNotFound, errorBody("not_found", "no route for "+r.URL.Path))
}

func TestUIServesTheApp(t *testing.T) {
	h := newUI(testApp, jsonNotFound)
	index := string(testApp["index.html"].Data)

	t.Run("OK page paths get index.html, revalidated, under the CSP with a fresh style nonce", func(t *testing.T) {
		nonces := map[string]bool{}
		for _, p := range []string{"/", "/executions/0193a1c2-0000-7000-8000-000000000000", "/history", "/scripts/", "/sign-in?next=/history"} {
			rec := serveUI(t, h, http.MethodGet, p)
			m := regexp.MustCompile(`content="([A-Za-z0-9+/=]{24})"`).FindStringSubmatch(rec.Body.String())
			if rec.Code != http.StatusOK || m == nil || rec.Body.String() != strings.Replace(index, "CSP_NONCE_PLACEHOLDER", m[1], 1) {
				t.Fatalf("GET %s: %d %q", p, rec.Code, rec.Body)
			}
			hd := rec.Header()
			if hd.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(hd.Get("Content-Type"), "text/html") ||
				hd.Get("Content-Security-Policy") != cspWithStyleNonce(m[1]) || hd.Get("X-Content-Type-Options") != "nosniff" ||
				!strings.Contains(hd.Get("Content-Security-Policy"), "style-src 'self' 'nonce-"+m[1]+"';") {
				t.Fatalf("GET %s headers: %v", p, hd)
			}
			// A body that changes with every answer has no ETag: a 304
			// would pair an old nonce in the page with a new one in the policy.
			if hd.Get("ETag") != "" {
				t.Fatalf("index.html has an ETag")
			}
			nonces[m[1]] = true
		}
		if len(nonces) != 5 {
			t.Fatalf("nonces repeat: %v", nonces)
		}
	})
	t.Run("OK the CSP allows no inline or foreign script", func(t *testing.T) {
		for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(uiCSP, want) {
				t.Fatalf("CSP %q lacks %q", uiCSP, want)
			}
		}
		if strings.Contains(uiCSP, "unsafe-") || strings.Contains(uiCSP, "http") {
			t.Fatalf("CSP allows too much: %q", uiCSP)
		}
	})
	t.Run("OK hashed assets are immutable for a year", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodGet, "/assets/index-Ab12Cd34.js")
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") ||
			!bytes.Equal(rec.Body.Bytes(), testApp["assets/index-Ab12Cd34.js"].Data) {
			t.Fatalf("%d %v", rec.Code, rec.Header())
		}
		if rec := serveUI(t, h, http.MethodGet, "/favicon.svg"); rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-cache" {
			t.Fatalf("favicon: %d %v", rec.Code, rec.Header())
		}
	})
	t.Run("OK gzip for clients that take it", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodGet, "/assets/index-Ab12Cd34.js", "Accept-Encoding", "br, gzip")
		if rec.Header().Get("Content-Encoding") != "gzip" || !strings.Contains(rec.Header().Get("Vary"), "Accept-Encoding") {
			t.Fatalf("not gzipped: %v", rec.Header())
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		if !bytes.Equal(got, testApp["assets/index-Ab12Cd34.js"].Data) {
			t.Fatal("gzip body differs from the file")
		}
		if rec := serveUI(t, h, http.MethodGet, "/assets/index-Ab12Cd34.js", "Accept-Encoding", "gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
			t.Fatal("gzip sent to a client that refused it")
		}
	})
	t.Run("OK a known ETag is answered 304", func(t *testing.T) {
		etag := serveUI(t, h, http.MethodGet, "/favicon.svg").Header().Get("ETag")
		rec := serveUI(t, h, http.MethodGet, "/favicon.svg", "If-None-Match", `W/"nope", `+etag)
		if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
			t.Fatalf("%d %q", rec.Code, rec.Body)
		}
	})
	t.Run("OK HEAD has the headers and no body", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodHead, "/")
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != strconv.Itoa(len(index)-len(uiNoncePlaceholder)+24) {
			t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
		}
	})
	t.Run("ErrNotFound stays the API's JSON 404", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/nope"},
			{http.MethodGet, "/api"},
			{http.MethodGet, "/api/"},
			{http.MethodGet, "/assets/index-OLD00000.js"}, // a stale page's script: never HTML
			{http.MethodGet, "/robots.txt"},
			{http.MethodGet, "/assets/"},
			{http.MethodPost, "/"},
			{http.MethodDelete, "/history"},
		} {
			rec := serveUI(t, h, c.method, c.path)
			if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s %s: %d %q", c.method, c.path, rec.Code, rec.Body)
			}
		}
	})
	t.Run("OK dot segments cannot climb out of the build", func(t *testing.T) {
		rec := serveUI(t, h, http.MethodGet, "/history/../../assets/index-Ab12Cd34.js")
		if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Fatalf("%d %v", rec.Code, rec.Header())
		}
	})
}

func TestUINotBuiltSaysHowToBuild(t *testing.T) {
	h := newUI(nil, jsonNotFound)
	rec := serveUI(t, h, http.MethodGet, "/executions/0193a1c2-0000-7000-8000-000000000000")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "go tool task build") ||
		rec.Header().Get("Content-Security-Policy") != uiCSP || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	if rec := serveUI(t, h, http.MethodGet, "/assets/index-Ab12Cd34.js"); rec.Code != http.StatusNotFound {
		t.Fatalf("asset of an unbuilt app: %d", rec.Code)
	}
}

// TestUIBehindTheAPI checks the real router: pages come from the embedded
// build (or the page that says how to build it, when this test binary was
// compiled before `npm run build`), and the API's own answers are as before.
func TestUIBehindTheAPI(t *testing.T) {
	a := startAPI(t, nil)
	page := call(t, http.MethodGet, a.URL+"/executions/0193a1c2-0000-7000-8000-000000000000", "")
	if page.Status != http.StatusOK || !strings.HasPrefix(page.Header.Get("Content-Security-Policy"), "default-src 'none'; script-src 'self'; style-src 'self'") ||
		!strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %v", page.Status, page.Header)
	}
	if _, err := os.Stat("ui/dist/app/index.html"); err == nil {
		// Built: every script and style sheet index.html names is served,
		// immutable.
		refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(page.Body), -1)
		if len(refs) == 0 {
			t.Fatalf("index.html names no assets: %s", page.Body)
		}
		for _, ref := range refs {
			r := call(t, http.MethodGet, a.URL+ref[1], "")
			if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != cacheImmutable {
				t.Fatalf("%s: %d %v", ref[1], r.Status, r.Header)
			}
		}
	} else if !strings.Contains(string(page.Body), "go tool task build") {
		t.Fatalf("not built, yet no page says how to build: %s", page.Body)
	}
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
	}{
		{http.MethodGet, "/api/v1/nope", http.StatusNotFound, "application/json"},
		{http.MethodGet, "/api/v1/executions/0193a1c2-0000-7000-8000-000000000000", http.StatusNotFound, "application/json"},
		{http.MethodGet, "/api/v1/runtimes", http.StatusOK, "application/json"},
		{http.MethodGet, "/healthz", http.StatusOK, ""},
		{http.MethodGet, "/metrics", http.StatusOK, "text/plain"},
		{http.MethodPut, "/history", http.StatusNotFound, "application/json"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "application/json"},
	} {
		r := call(t, c.method, a.URL+c.path, "")
		if r.Status != c.status || !strings.HasPrefix(r.Header.Get("Content-Type"), c.contentType) ||
			r.Header.Get("Content-Security-Policy") != "" {
			t.Fatalf("%s %s: %d %v %.200s", c.method, c.path, r.Status, r.Header, r.Body)
		}
	}
}
