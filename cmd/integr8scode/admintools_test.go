package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAdminCreatesTheFirstAdminBeforeThePlatformEverRan: on a fresh data
// directory, the admin command line opens the embedded store itself; the
// platform started later signs the admin in.
func TestAdminCreatesTheFirstAdminBeforeThePlatformEverRan(t *testing.T) {
	dir := t.TempDir()
	var out, errOut strings.Builder
	code, err := run(t.Context(), []string{"integr8scode", "admin", "create-user", "--data-dir", dir, "--username", "first", "--role", "admin"},
		func(string) string { return "" }, strings.NewReader(testPassword+"\n"), &out, &errOut)
	if code != 0 || err != nil || !strings.Contains(out.String(), "role admin") {
		t.Fatalf("create-user: %d %v %s %s", code, err, out.String(), errOut.String())
	}
	for _, args := range [][]string{
		{"create-user", "--data-dir", dir},                             // no username
		{"create-user", "--data-dir", dir, "--username", "x", "extra"}, // a stray argument (a password?)
		{"frobnicate"}, // no such command
	} {
		if code, _ := run(t.Context(), append([]string{"integr8scode", "admin"}, args...), func(string) string { return "" },
			strings.NewReader(testPassword+"\n"), &out, &errOut); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
	if code, err := run(t.Context(), []string{"integr8scode", "admin", "create-user", "--data-dir", dir, "--username", "nopass"},
		func(string) string { return "" }, strings.NewReader(""), &out, &errOut); code != 1 || err == nil {
		t.Fatalf("no password on stdin: %d %v", code, err)
	}
	base, _ := startUp(t, dir)
	admin := adminBearerFor(t, base, "first")
	if r := do(t, http.MethodGet, base+"/api/v1/admin/users", nil, admin...); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `"role":"admin"`) {
		t.Fatalf("admin users: %d %s", r.Status, r.Body)
	}
}

// TestATokenKeyRotationTakesEffectWithoutARestart: tokens signed before
// the rotation stay valid, new ones name the new key.
func TestATokenKeyRotationTakesEffectWithoutARestart(t *testing.T) {
	was := keysReloadEvery
	keysReloadEvery = 100 * time.Millisecond
	t.Cleanup(func() { keysReloadEvery = was })
	dir := t.TempDir()
	base, _ := startUp(t, dir)
	old := adminBearer(t, base, dir, "rotator")
	kid := func(bearer []string) string {
		tok := strings.TrimPrefix(bearer[1], "Bearer ")
		head, _, _ := strings.Cut(tok, ".")
		b, _ := base64.RawURLEncoding.DecodeString(head)
		var h struct{ Kid string }
		_ = json.Unmarshal(b, &h)
		return h.Kid
	}
	var out strings.Builder
	if code, err := run(t.Context(), []string{"integr8scode", "admin", "rotate-token-key", "--data-dir", dir},
		func(string) string { return "" }, strings.NewReader(""), &out, io.Discard); code != 0 {
		t.Fatalf("rotate: %d %v", code, err)
	}
	var fresh []string
	waitFor(t, func() bool {
		fresh = adminBearerFor(t, base, "rotator")
		return kid(fresh) != kid(old)
	})
	for _, b := range [][]string{old, fresh} {
		if r := do(t, http.MethodGet, base+"/api/v1/auth/me", nil, b...); r.Status != http.StatusOK {
			t.Fatalf("a token signed with %s: %d", kid(b), r.Status)
		}
	}
}
