package mongo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/domain"
)

func newUser(name string) accounts.User {
	return accounts.User{ID: uuid.Must(uuid.NewV7()).String(), Username: name, Role: accounts.RoleUser,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$a2V5", CreatedAt: at(0), UpdatedAt: at(0)}
}

func TestUsernamesAreUniqueCaseInsensitivelyUnderConcurrentRegistration(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	var wg sync.WaitGroup
	var won, taken atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "Ada"
			if i%2 == 1 {
				name = "aDA"
			}
			switch err := a.CreateUser(ctx, newUser(name)); {
			case err == nil:
				won.Add(1)
			case domain.ErrorCode(err) == domain.ECONFLICT:
				taken.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || taken.Load() != 7 {
		t.Fatalf("%d registrations won and %d were refused; want 1 and 7", won.Load(), taken.Load())
	}
	u, err := a.UserByName(ctx, accounts.UsernameKey("ADA"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.User(ctx, u.ID)
	if err != nil || got.Username != u.Username {
		t.Fatalf("by id: %+v, %v", got, err)
	}
}

func TestUserRoundTripsEveryField(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	u := newUser("grace")
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.Role, u.Disabled, u.Quota, u.UpdatedAt = accounts.RoleAdmin, true, &accounts.Quota{PerMinute: 5, Burst: 2, Concurrent: 1}, at(time.Hour)
	if err := a.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := a.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Role != u.Role || !got.Disabled || *got.Quota != *u.Quota || !got.UpdatedAt.Equal(u.UpdatedAt) ||
		!got.CreatedAt.Equal(u.CreatedAt) || got.PasswordHash != u.PasswordHash {
		t.Fatalf("stored %+v, read back %+v", u, got)
	}
	if _, err := a.User(ctx, uuid.NewString()); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("missing user: %v", err)
	}
	if err := a.UpdateUser(ctx, newUser("nobody")); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("update of a missing user: %v", err)
	}
}

func TestRefreshTokenIsSpentOnceAcrossConcurrentUses(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	tok := accounts.RefreshToken{Hash: accounts.HashSecret("s"), Family: "f1", UserID: "u1", ExpiresAt: at(time.Hour), CreatedAt: at(0)}
	if err := a.CreateRefresh(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := a.Refresh(ctx, tok.Hash)
	if err != nil || got != tok {
		t.Fatalf("read back %+v, %v; want %+v", got, err, tok)
	}
	var wg sync.WaitGroup
	var fresh atomic.Int32
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := a.UseRefresh(ctx, tok.Hash, at(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if ok {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("the token was spent %d times", fresh.Load())
	}
	if revoked, _ := a.FamilyRevoked(ctx, "f1"); revoked {
		t.Fatal("revoked before RevokeFamily")
	}
	for range 2 { // revoking twice is fine
		if err := a.RevokeFamily(ctx, "f1", at(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if revoked, err := a.FamilyRevoked(ctx, "f1"); !revoked || err != nil {
		t.Fatalf("revoked = %v, %v", revoked, err)
	}
}

func TestAPITokensAreListedAndRevokedOnlyByTheirOwner(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	exp := at(time.Hour)
	var ids []string
	for i, owner := range []string{"alice", "alice", "bob"} {
		tok := accounts.APIToken{ID: uuid.Must(uuid.NewV7()).String(), Hash: accounts.HashSecret(fmt.Sprint(i)),
			UserID: owner, Name: fmt.Sprint("t", i), CreatedAt: at(time.Duration(i) * time.Second)}
		if i == 0 {
			tok.ExpiresAt = &exp
		}
		if err := a.CreateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	list, err := a.APITokens(ctx, "alice")
	if err != nil || len(list) != 2 || list[0].ID != ids[1] || list[1].ID != ids[0] || !list[1].ExpiresAt.Equal(exp) {
		t.Fatalf("alice's tokens: %+v, %v", list, err)
	}
	if err := a.DeleteAPIToken(ctx, "alice", ids[2]); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("alice revoked bob's token: %v", err)
	}
	if _, err := a.APIToken(ctx, accounts.HashSecret("2")); err != nil {
		t.Fatalf("bob's token is gone: %v", err)
	}
	if err := a.DeleteAPIToken(ctx, "alice", ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.APIToken(ctx, accounts.HashSecret("0")); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("revoked token still found: %v", err)
	}
}

func TestScriptsPageNewestFirstPerOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		a := NewAccounts(d)
		ctx := context.Background()
		var mine []string
		for i := range 5 {
			for _, owner := range []string{"alice", "bob"} {
				s := accounts.Script{ID: uuid.Must(uuid.NewV7()).String(), Owner: owner, Name: fmt.Sprint(owner, i),
					Script: "print(1)", Language: "python", Version: "3.11", CreatedAt: at(0), UpdatedAt: at(0)}
				if err := a.CreateScript(ctx, s); err != nil {
					t.Fatal(err)
				}
				if owner == "alice" {
					mine = append([]string{s.ID}, mine...)
				}
			}
		}
		var got []string
		before := ""
		for {
			page, more, err := a.Scripts(ctx, "alice", before, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range page {
				got = append(got, s.ID)
			}
			if !more {
				break
			}
			before = page[len(page)-1].ID
		}
		if fmt.Sprint(got) != fmt.Sprint(mine) {
			t.Fatalf("pages gave %v, want %v", got, mine)
		}
		if n, bytes, err := a.ScriptUsage(ctx, "alice"); n != 5 || bytes != 5*int64(len("print(1)")) || err != nil {
			t.Fatalf("usage = %d scripts, %d bytes, %v", n, bytes, err)
		}
	})
}

func TestLoginFailuresAreCountedAndCleared(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	if f, err := a.LoginFailures(ctx, "x"); err != nil || f.Count != 0 {
		t.Fatalf("no failures yet: %+v, %v", f, err)
	}
	for i := 1; i <= 2; i++ {
		if err := a.SaveLoginFailures(ctx, "x", accounts.Failures{Count: i, Last: at(time.Duration(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if f, _ := a.LoginFailures(ctx, "x"); f.Count != 2 || !f.Last.Equal(at(2)) {
		t.Fatalf("failures = %+v", f)
	}
	if err := a.SaveLoginFailures(ctx, "x", accounts.Failures{}); err != nil {
		t.Fatal(err)
	}
	if f, _ := a.LoginFailures(ctx, "x"); f.Count != 0 {
		t.Fatalf("not cleared: %+v", f)
	}
}

func TestSetPasswordHashLeavesTheOtherFieldsAlone(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	u := newUser("hopper")
	if err := a.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.Disabled = true // an admin's change the password change must not undo
	if err := a.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPasswordHash(ctx, u.ID, "$argon2id$new", at(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ := a.User(ctx, u.ID)
	if !got.Disabled || got.PasswordHash != "$argon2id$new" || !got.UpdatedAt.Equal(at(time.Hour)) {
		t.Fatalf("after SetPasswordHash: %+v", got)
	}
	if err := a.SetPasswordHash(ctx, "nobody", "x", at(0)); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestUsersPageOldestFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *DB) {
		a := NewAccounts(d)
		ctx := context.Background()
		var want []string
		for i := range 5 {
			u := newUser(fmt.Sprint("user", i)) // UUIDv7: ids in creation order
			if err := a.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			want = append(want, u.Username)
		}
		var got []string
		var sizes []int
		for after := ""; ; {
			page, more, err := a.Users(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(page))
			for _, u := range page {
				got = append(got, u.Username)
			}
			if !more {
				break
			}
			after = page[len(page)-1].ID
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(sizes) != "[2 2 1]" {
			t.Fatalf("pages of %v gave %v, want %v in pages of 2, 2, 1", sizes, got, want)
		}
	})
}

func TestSigningOutRevokesOnlyThatSignInsAPITokens(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	for i, tok := range []struct{ user, session string }{{"alice", "s1"}, {"alice", "s1"}, {"alice", "s2"}, {"alice", ""}, {"bob", "s1"}} {
		if err := a.CreateAPIToken(ctx, accounts.APIToken{ID: uuid.Must(uuid.NewV7()).String(), Hash: accounts.HashSecret(fmt.Sprint(i)),
			UserID: tok.user, Name: fmt.Sprint("t", i), CreatedAt: at(0), Session: tok.session}); err != nil {
			t.Fatal(err)
		}
	}
	sessions := func(user string) string {
		list, err := a.APITokens(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tok := range list {
			out = append(out, tok.Name+"@"+tok.Session)
		}
		return fmt.Sprint(out)
	}
	if err := a.DeleteAPITokensOfSession(ctx, "alice", "s1"); err != nil {
		t.Fatal(err)
	}
	// Newest first: t3 (no sign-in), t2 (s2).
	if got := sessions("alice"); got != "[t3@ t2@s2]" {
		t.Fatalf("alice keeps %s, want the tokens of other sign-ins", got)
	}
	if got := sessions("bob"); got != "[t4@s1]" {
		t.Fatalf("bob keeps %s: another user's token of a sign-in with the same id went", got)
	}
	// Tokens made outside any sign-in are not one session.
	if err := a.DeleteAPITokensOfSession(ctx, "alice", ""); err != nil {
		t.Fatal(err)
	}
	if got := sessions("alice"); got != "[t3@ t2@s2]" {
		t.Fatalf("an empty session revoked %s", got)
	}
}

func TestAScriptIsReadUpdatedAndDeleted(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	s := accounts.Script{ID: uuid.Must(uuid.NewV7()).String(), Owner: "alice", Name: "hello", Script: "print(1)",
		Language: "python", Version: "3.12", Stdin: "in", CreatedAt: at(0), UpdatedAt: at(0)}
	if err := a.CreateScript(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Name, s.Script, s.Stdin, s.UpdatedAt = "hello again", "print(22)", "", at(time.Hour)
	if err := a.UpdateScript(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := a.Script(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(s.CreatedAt) || !got.UpdatedAt.Equal(s.UpdatedAt) {
		t.Fatalf("times %s, %s; want %s, %s", got.CreatedAt, got.UpdatedAt, s.CreatedAt, s.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt = s.CreatedAt, s.UpdatedAt
	if got != s {
		t.Fatalf("read back %+v, want %+v", got, s)
	}
	if n, bytes, err := a.ScriptUsage(ctx, "alice"); n != 1 || bytes != int64(len("print(22)")) || err != nil {
		t.Fatalf("usage after the update: %d scripts, %d bytes, %v", n, bytes, err)
	}
	if err := a.DeleteScript(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Script(ctx, s.ID); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("a deleted script: %v", err)
	}
	if err := a.UpdateScript(ctx, s); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("update of a deleted script: %v, want ENOTFOUND (not recreated)", err)
	}
	if err := a.DeleteScript(ctx, s.ID); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

// A registration whose user document cannot be written gives its username
// back: the name is not lost to a half-made account.
func TestAFailedRegistrationGivesTheUsernameBack(t *testing.T) {
	a := NewAccounts(newTestDB(t, backendEmbedded))
	ctx := context.Background()
	first := newUser("ada")
	if err := a.CreateUser(ctx, first); err != nil {
		t.Fatal(err)
	}
	clash := newUser("grace")
	clash.ID = first.ID // the user document collides; the name is free
	if err := a.CreateUser(ctx, clash); err == nil || domain.ErrorCode(err) == domain.ECONFLICT {
		t.Fatalf("%v, want the failed write, not \"taken\"", err)
	}
	if _, err := a.UserByName(ctx, accounts.UsernameKey("grace")); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("grace after the failed registration: %v, want no such user", err)
	}
	if err := a.CreateUser(ctx, newUser("grace")); err != nil {
		t.Fatalf("the name was not given back: %v", err)
	}
}
