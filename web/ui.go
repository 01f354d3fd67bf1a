package web

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// uiBuild is the web app as `npm run build` left it in web/ui/dist/app
// (web/ui/README.md). The folder web/ui/dist is committed with only a
// README in it, so that this pattern always matches and `go build` works on
// a clean clone; the app itself is built, never committed.
//
//go:embed ui/dist
var uiBuild embed.FS

// builtUI is the embedded app, or nil when it was not built before this
// binary was compiled.
func builtUI() fs.FS {
	app, err := fs.Sub(uiBuild, "ui/dist/app")
	if err != nil {
		return nil
	}
	if _, err := fs.Stat(app, "index.html"); err != nil {
		return nil
	}
	return app
}

// uiCSP is the Content-Security-Policy of every page of the web app. Only
// this origin's scripts run (no inline script, no eval), the app talks
// only to this API, and no other site may frame it.
//
// Styles come from this origin too, plus <style> elements that carry the
// page's nonce: CodeMirror's style-mod writes its rules into a <style>
// element of the document (it adopts constructable style sheets only
// inside shadow roots) and sets that element's nonce from
// EditorView.cspNonce, which the app reads from <meta name="csp-nonce">.
// A fresh nonce per answer (uiStyleNonce) keeps this stricter than
// 'unsafe-inline': injected markup cannot bring its own styles.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; object-src 'none'"

// uiNoncePlaceholder is what web/ui/index.html holds where each answer puts
// its style nonce.
const uiNoncePlaceholder = "CSP_NONCE_PLACEHOLDER"

// cspWithStyleNonce is uiCSP allowing <style> elements with nonce n.
func cspWithStyleNonce(n string) string {
	return strings.Replace(uiCSP, "style-src 'self';", "style-src 'self' 'nonce-"+n+"';", 1)
}

// Cache policies: Vite names every file under assets/ after a hash of its
// content, so a name never changes meaning and browsers may keep it for
// a year; everything else (index.html above all, which names the current
// assets) is revalidated on every load, cheaply, through its ETag.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheRevalidate  = "no-cache"
	uiAssetsPrefix   = "assets/"
	uiIndex          = "index.html"
	gzipWorthFromLen = 1024
)

// uiFile is one file of the app, read once at start with its ETag and,
// when it pays, a gzip copy: the files are small and fixed for the life of
// the process, so nothing is compressed per request.
type uiFile struct {
	body, gzipped []byte
	contentType   string
	etag          string
	cache         string
	// nonced: the body holds uiNoncePlaceholder; every answer gets its
	// own nonce, so it has no ETag and is never compressed ahead.
	nonced bool
}

// ui serves the web app for requests no API route takes: GET and HEAD of
// a file of the build, and index.html for any other page path (the app
// routes in the browser: /executions/{id}, /history …). Everything else
// keeps the API's JSON 404: other methods, anything under /api/, and a
// missing file (a path whose last segment has an extension, or anything
// under /assets/), so that a stale script tag gets a 404 rather than HTML
// parsed as JavaScript. app is nil when the UI was not built: pages then
// explain how to build it.
func newUI(app fs.FS, notFound http.HandlerFunc) http.HandlerFunc {
	files := map[string]*uiFile{}
	if app != nil {
		_ = fs.WalkDir(app, ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := fs.ReadFile(app, name)
			if err != nil {
				return err
			}
			files[name] = newUIFile(name, body)
			return nil
		})
	}
	index := files[uiIndex]
	if index == nil {
		index = newUIFile(uiIndex, []byte(uiNotBuiltPage))
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if r.Method != http.MethodGet && r.Method != http.MethodHead || p == "/api" || strings.HasPrefix(p, "/api/") {
			notFound(w, r)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+p), "/")
		if f := files[name]; f != nil && name != uiIndex {
			f.serve(w, r)
			return
		}
		if name != "" && (strings.HasPrefix(name+"/", uiAssetsPrefix) || strings.Contains(path.Base(name), ".")) {
			notFound(w, r)
			return
		}
		index.serve(w, r)
	}
}

func newUIFile(name string, body []byte) *uiFile {
	sum := sha256.Sum256(body)
	f := &uiFile{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, cache: cacheRevalidate,
		contentType: mime.TypeByExtension(path.Ext(name))}
	if f.contentType == "" {
		f.contentType = "application/octet-stream"
	}
	if strings.HasPrefix(name, uiAssetsPrefix) {
		f.cache = cacheImmutable
	}
	if bytes.Contains(body, []byte(uiNoncePlaceholder)) {
		f.nonced = true
		return f
	}
	if compressible(f.contentType) && len(body) >= gzipWorthFromLen {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if b.Len() < len(body) {
			f.gzipped = b.Bytes()
		}
	}
	return f
}

func compressible(contentType string) bool {
	for _, t := range []string{"text/", "application/javascript", "application/json", "image/svg+xml", "application/manifest+json"} {
		if strings.HasPrefix(contentType, t) {
			return true
		}
	}
	return false
}

func (f *uiFile) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", f.cache)
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	body := f.body
	if f.nonced {
		nonce := uiStyleNonce()
		h.Set("Content-Security-Policy", cspWithStyleNonce(nonce))
		body = bytes.ReplaceAll(body, []byte(uiNoncePlaceholder), []byte(nonce))
	} else {
		h.Set("ETag", f.etag)
		if f.gzipped != nil {
			h.Add("Vary", "Accept-Encoding")
		}
		if etagMatches(r.Header.Get("If-None-Match"), f.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if f.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = f.gzipped
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// uiStyleNonce is 128 random bits, base64: a nonce nobody can guess.
func uiStyleNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// etagMatches reads If-None-Match: "*" or a list of (possibly weak) tags.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding well enough for browsers: gzip listed
// and not refused with q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// uiNotBuiltPage answers page requests of a binary built without the web
// app (`go build` on a clean clone): the API works, and this says how to
// get the pages too.
const uiNotBuiltPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Integr8sCode: the web app is not built</title></head>
<body>
<main>
<h1>The web app is not built into this binary</h1>
<p>The API is running: <a href="/api/v1/runtimes">/api/v1/runtimes</a>,
<a href="/api/v1/openapi.yaml">/api/v1/openapi.yaml</a>.</p>
<p>This binary was compiled before the web app was built, so it has no pages to serve.
Build both with <code>go tool task build</code> (or start everything with
<code>go tool task up</code>), which runs <code>npm ci</code> and <code>npm run build</code>
in <code>web/ui</code> when its sources changed and then compiles the binary,
which embeds <code>web/ui/dist/app</code>.</p>
</main>
</body>
</html>
`
