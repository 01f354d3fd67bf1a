package main

import (
	"net/http"
	"strings"
	"testing"
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
