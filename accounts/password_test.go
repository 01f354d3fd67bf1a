package accounts

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integr8scode/integr8scode/domain"
)

func TestPasswordPolicyFollowsNISTWithoutCompositionRules(t *testing.T) {
	for _, c := range []struct {
		user, password string
		ok             bool
		why            string
	}{
		{"ada", "correct horse battery staple", true, ""},
		{"ada", "alllowercaseandnodigits", true, "no composition rules"},
		{"ada", "日本語のパスフレーズはとても長いです", true, "any Unicode"},
		{"ada", strings.Repeat("x", 14), false, "at least 15"},
		{"ada", "ｐａｓｓｗｏｒｄｐａｓｓｗｏｒｄ", false, "NFKC folds full-width letters into passwordpassword"},
		{"ada", "1qazXSW23edcVFR4", false, "a common password, long enough, in any case"},
		{"ada", "passwordpassword", false, "a common password repeated"},
		{"ada", "abcabcabcabcabcabc", false, "a short unit repeated"},
		{"ada", "123456789012345", false, "sequential digits"},
		{"ada", "zyxwvutsrqponmlk", false, "sequential letters downwards"},
		{"ada", "!!!password123456!!!", false, "a common password padded"},
		{"lovelace", "i am lovelace, the first", false, "contains the username"},
		{"ada", "my integr8scode password", false, "contains the service name"},
		{"ada", strings.Repeat("long enough? ", 10), false, "repeats a unit"},
		{"ada", strings.Repeat("é", MaxPassword+1), false, "over the maximum, counted in characters"},
		{"ada", strings.Repeat("é", MaxPassword-1) + "x", true, "long, in characters not bytes"},
		{"ada", "bad utf-8 \xff here and more", false, "not UTF-8"},
		{"ada", "\uFDFA", false, "one character that NFKC makes 18"},
	} {
		err := CheckPassword(c.user, c.password)
		if c.ok != (err == nil) {
			t.Fatalf("%q (%s): %v", c.password, c.why, err)
		}
		if err != nil && (domain.ErrorCode(err) != domain.EUNPROCESSABLE || domain.ErrorMessage(err) == "") {
			t.Fatalf("%q: error %v is not a 422 with a message", c.password, err)
		}
	}
}

// cheap are argon2id parameters for tests that are about the format, not
// the cost.
var cheap = Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHashesArePHCStringsThatVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(OWASPArgon2, 1)
	phc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("PHC string %q", phc)
	}
	other, _ := h.Hash(ctx, "correct horse battery staple")
	if other == phc {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapler": false, "": false} {
		if ok, err := h.Verify(ctx, phc, pw); ok != want || err != nil {
			t.Fatalf("verify %q: %v %v", pw, ok, err)
		}
	}
	// NFKC: the full-width form of a password is the same password.
	fw, _ := h.Hash(ctx, "ｃｏｒｒｅｃｔ horse battery staple")
	if ok, _ := h.Verify(ctx, fw, "correct horse battery staple"); !ok {
		t.Fatal("normalisation differs between hashing and verifying")
	}
	// A missing user: verified against a dummy hash, never a match.
	if ok, err := h.Verify(ctx, "", "anything at all, really"); ok || err != nil {
		t.Fatalf("empty hash: %v %v", ok, err)
	}
	// Old parameters keep verifying and ask to be upgraded.
	old, _ := NewHasher(cheap, 1).Hash(ctx, "correct horse battery staple")
	if ok, _ := h.Verify(ctx, old, "correct horse battery staple"); !ok || !h.NeedsRehash(old) || h.NeedsRehash(phc) {
		t.Fatalf("old parameters: verify %v, rehash %v/%v", ok, h.NeedsRehash(old), h.NeedsRehash(phc))
	}
	for _, bad := range []string{"$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=many,t=1,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$not*base64$a2V5a2V5a2V5a2V5a2V5", "plain"} {
		if _, err := h.Verify(ctx, bad, "x"); err == nil {
			t.Fatalf("accepted the hash %q", bad)
		}
	}
}

func TestHashingIsBoundedSoLoginsCannotExhaustMemory(t *testing.T) {
	h := NewHasher(Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	var now, peak atomic.Int32
	// Count inside the slot: acquire and release around a probe.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(10 * time.Millisecond)
			now.Add(-1)
			h.release()
		}()
	}
	wg.Wait()
	if peak.Load() != 2 {
		t.Fatalf("%d hashes ran at once; the bound is 2", peak.Load())
	}
	// A caller that cannot get a slot before its deadline gets 503, not a hang.
	full := NewHasher(cheap, 1)
	_ = full.acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := full.Hash(ctx, "x"); domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("waiting past the deadline: %v", err)
	}
	if _, err := full.Verify(ctx, "", "x"); domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("verifying past the deadline: %v", err)
	}
}

func TestThrottleWaitGrowsToItsCap(t *testing.T) {
	th := DefaultThrottle
	want := map[int]time.Duration{0: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 9: 16 * time.Second,
		14: 5 * time.Minute, 19: 5 * time.Minute, 200: 5 * time.Minute}
	for n, d := range want {
		if got := th.wait(Failures{Count: n}); got != d {
			t.Fatalf("after %d failures: wait %v, want %v", n, got, d)
		}
	}
}

func TestKeyedLimiterSaysWhenTheNextTokenComes(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeyedLimiter(func() time.Time { return now })
	for range 3 {
		if d := k.Take("a", 6, 3); d != 0 {
			t.Fatalf("within the burst: %v", d)
		}
	}
	// 6 a minute: one every 10 s.
	if d := k.Take("a", 6, 3); d != 10*time.Second {
		t.Fatalf("over the burst: %v", d)
	}
	if d := k.Peek("a", 6, 3); d != 10*time.Second {
		t.Fatalf("peek: %v", d)
	}
	if d := k.Take("b", 6, 3); d != 0 {
		t.Fatalf("another key: %v", d)
	}
	now = now.Add(4 * time.Second)
	if d := k.Take("a", 6, 3); (d - 6*time.Second).Abs() > time.Millisecond {
		t.Fatalf("4 s later: %v (a refused take must not have used a token)", d)
	}
	if d := k.Take("x", 0, 0); d != 0 {
		t.Fatalf("no limit: %v", d)
	}
	if RetryAfter(1500*time.Millisecond) != 2 || RetryAfter(0) != 1 {
		t.Fatal("RetryAfter rounds up to whole seconds, at least 1")
	}
}

func TestQuotaFlagsParseOverDefaults(t *testing.T) {
	q, err := ParseQuota("per-minute=5, concurrent=1", DefaultQuotas.User)
	if err != nil || q != (Quota{PerMinute: 5, Burst: DefaultQuotas.User.Burst, Concurrent: 1}) {
		t.Fatalf("%+v %v", q, err)
	}
	// A flag written with a stray comma means what it says.
	if q, err := ParseQuota("burst=3,, ", DefaultQuotas.User); err != nil || q.Burst != 3 || q.PerMinute != DefaultQuotas.User.PerMinute {
		t.Fatalf("%+v %v", q, err)
	}
	for _, bad := range []string{"per-minute=0", "speed=5", "per-minute", "concurrent=x", "burst=2000000"} {
		if _, err := ParseQuota(bad, DefaultQuotas.User); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	u, plain := User{Role: RoleAdmin}, User{Role: RoleUser}
	if DefaultQuotas.For(Principal{}) != DefaultQuotas.Anonymous || DefaultQuotas.For(Principal{User: &u}) != DefaultQuotas.Admin ||
		DefaultQuotas.For(Principal{User: &plain}) != DefaultQuotas.User {
		t.Fatal("quota by role")
	}
	own := Quota{PerMinute: 1, Burst: 1, Concurrent: 1}
	u.Quota = &own
	if DefaultQuotas.For(Principal{User: &u}) != own {
		t.Fatal("a user's own quota wins")
	}
}

func TestUsernames(t *testing.T) {
	for name, ok := range map[string]bool{"ada": true, "Ada.Lovelace-1_x": true, "ab": false, "-ada": false,
		"ada lovelace": false, "adä": false, strings.Repeat("a", 33): false, "a@b": false} {
		if (ValidateUsername(name) == nil) != ok {
			t.Fatalf("%q: valid should be %v", name, ok)
		}
	}
}
