package accounts_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/integr8scode/integr8scode/accounts"
	"github.com/integr8scode/integr8scode/adapters/mongo"
	"github.com/integr8scode/integr8scode/domain"
	"github.com/integr8scode/integr8scode/internal/testenv"
)

// clock is a time the test moves: token lives, lockouts and rates are
// proved without waiting for them.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)
	ring = accounts.SigningKeys{Active: "k1", Keys: map[string][]byte{"k1": key1}}
	// cheap argon2id parameters: these tests are about accounts, not the
	// cost of a hash (password_test.go is).
	cheap = accounts.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	// roomy lets a test sign in as often as it likes from one address.
	roomy = accounts.Throttle{FreeFailures: 1000, BaseDelay: time.Second, MaxDelay: time.Minute, LockAfter: 1000,
		Lockout: time.Minute, Forget: time.Hour, IPAttemptsPerMinute: 100000, IPBurst: 100000}
)

const password = "correct horse battery staple"

// service returns accounts over a fresh embedded store, on clock c;
// tune may change the configuration.
func service(t *testing.T, c *clock, tune func(*accounts.Config)) (*accounts.Service, *mongo.Accounts) {
	t.Helper()
	store := mongo.NewAccounts(testenv.Store(t, "accounts_test"))
	th := roomy
	cfg := accounts.Config{Store: store, Keys: ring, Now: c.Now, Hasher: accounts.NewHasher(cheap, 2), Throttle: &th, Logger: testenv.Quiet()}
	if tune != nil {
		tune(&cfg)
	}
	s, err := accounts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, store
}

func register(t *testing.T, s *accounts.Service, name string) accounts.User {
	t.Helper()
	u, err := s.Register(context.Background(), name, password)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func login(t *testing.T, s *accounts.Service, name string) accounts.Session {
	t.Helper()
	sess, err := s.Login(context.Background(), name, password, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

// refused fails the test unless err has the domain code.
func refused(t *testing.T, what string, err error, code string) {
	t.Helper()
	if domain.ErrorCode(err) != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

func TestAServiceNeedsAStoreAndAKeyRingThatCanSign(t *testing.T) {
	store := mongo.NewAccounts(testenv.Store(t, "accounts_test"))
	for name, cfg := range map[string]accounts.Config{
		"no store":          {Keys: ring},
		"no active key":     {Store: store, Keys: accounts.SigningKeys{Active: "k9", Keys: ring.Keys}},
		"a key too short":   {Store: store, Keys: accounts.SigningKeys{Active: "k1", Keys: map[string][]byte{"k1": key1[:31]}}},
		"keys but none set": {Store: store, Keys: accounts.SigningKeys{Keys: ring.Keys}},
	} {
		if _, err := accounts.New(cfg); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	// Without keys (the admin command line) accounts are managed, and
	// nothing that needs a token works.
	ctx := context.Background()
	s, err := accounts.New(accounts.Config{Store: store, Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessTTL() != 10*time.Minute {
		t.Fatalf("default access TTL %v", s.AccessTTL())
	}
	root, err := s.CreateUser(ctx, "root", password, accounts.RoleAdmin)
	if err != nil || !strings.HasPrefix(root.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("not hashed with OWASP's parameters by default: %+v %v", root, err)
	}
	if _, err := s.Login(ctx, "root", password, "192.0.2.1"); err == nil {
		t.Fatal("signed in without signing keys")
	}
	if err := s.SetKeys(ring); err == nil {
		t.Fatal("keys set on a service made without them")
	}
	if _, _, err := s.Authenticate(ctx, "ey.not.ajwt"); domain.ErrorCode(err) != domain.EUNAUTHORIZED {
		t.Fatalf("authenticate without keys: %v", err)
	}
	if err := s.EndSession(ctx, "ey.not.ajwt"); err != nil {
		t.Fatalf("end session without keys: %v", err)
	}
}

func TestAccountsAreMadeOnlyWithValidNamesRolesAndPasswords(t *testing.T) {
	ctx := context.Background()
	s, _ := service(t, newClock(), nil)
	u := register(t, s, "Ada")
	if u.Role != accounts.RoleUser || u.Username != "Ada" || !strings.HasPrefix(u.PasswordHash, "$argon2id$") {
		t.Fatalf("registered %+v", u)
	}
	_, err := s.Register(ctx, "ada", "another long passphrase here")
	refused(t, "the same name in other case", err, domain.ECONFLICT)
	_, err = s.Register(ctx, "-ada", password)
	refused(t, "a malformed name", err, domain.EUNPROCESSABLE)
	_, err = s.Register(ctx, "grace", "short")
	refused(t, "a short password", err, domain.EUNPROCESSABLE)
	_, err = s.CreateUser(ctx, "grace", password, "root")
	refused(t, "a role that does not exist", err, domain.EUNPROCESSABLE)
	admin, err := s.CreateUser(ctx, "grace", password, accounts.RoleAdmin)
	if err != nil || admin.Role != accounts.RoleAdmin {
		t.Fatalf("%+v %v", admin, err)
	}
}

func TestASignInRotatesItsRefreshTokenAndEndsForEveryoneWhenOneIsReused(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, nil)
	ada := register(t, s, "ada")
	sess := login(t, s, "ADA") // names are case-insensitive
	if sess.User.ID != ada.ID || sess.Access == "" || !strings.HasPrefix(sess.Refresh, "i8r_") ||
		!sess.AccessExpires.Equal(c.Now().Add(10*time.Minute)) || !sess.RefreshExpires.Equal(c.Now().Add(30*24*time.Hour)) {
		t.Fatalf("session %+v", sess)
	}
	u, family, err := s.Authenticate(ctx, sess.Access)
	if err != nil || u.ID != ada.ID || family == "" {
		t.Fatalf("authenticate: %+v %q %v", u, family, err)
	}
	tok, secret, err := s.CreateAPIToken(ctx, u, family, "ci", 0)
	if err != nil || !accounts.IsAPIToken(secret) || tok.ExpiresAt != nil || tok.Session != family {
		t.Fatalf("API token %+v %v", tok, err)
	}
	if u, session, err := s.Authenticate(ctx, secret); err != nil || u.ID != ada.ID || session != "" {
		t.Fatalf("authenticate with the API token: %+v %q %v", u, session, err)
	}

	c.Add(time.Hour)
	next, err := s.Refresh(ctx, sess.Refresh)
	if err != nil || next.Refresh == sess.Refresh || !next.RefreshExpires.Equal(sess.RefreshExpires) {
		t.Fatalf("refresh: %+v %v (a refresh keeps the sign-in's end)", next, err)
	}
	if _, f, err := s.Authenticate(ctx, next.Access); err != nil || f != family {
		t.Fatalf("the refreshed access token: %q %v", f, err)
	}

	// The spent token again: someone copied it. The whole sign-in ends,
	// the thief's and the owner's, and what was minted in it.
	_, err = s.Refresh(ctx, sess.Refresh)
	refused(t, "a reused refresh token", err, domain.EUNAUTHORIZED)
	for what, cred := range map[string]string{"the owner's access token": next.Access, "the API token made in it": secret} {
		_, _, err := s.Authenticate(ctx, cred)
		refused(t, what, err, domain.EUNAUTHORIZED)
	}
	_, err = s.Refresh(ctx, next.Refresh)
	refused(t, "the owner's fresh refresh token", err, domain.EUNAUTHORIZED)
	if toks, err := s.APITokens(ctx, ada); err != nil || len(toks) != 0 {
		t.Fatalf("tokens left: %+v %v", toks, err)
	}
	// Another sign-in of the same user is not touched.
	if _, err := s.Refresh(ctx, login(t, s, "ada").Refresh); err != nil {
		t.Fatal(err)
	}
}

func TestARefreshTokenThatIsNotOfALiveSignInIsRefused(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, func(cfg *accounts.Config) { cfg.RefreshTTL = 2 * time.Hour })
	admin, err := s.CreateUser(ctx, "root", password, accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ada := register(t, s, "ada")
	for _, r := range []string{"", "not-a-token", "i8r_never-issued"} {
		_, err := s.Refresh(ctx, r)
		refused(t, fmt.Sprintf("refresh %q", r), err, domain.EUNAUTHORIZED)
	}
	old := login(t, s, "ada")
	c.Add(2 * time.Hour)
	_, err = s.Refresh(ctx, old.Refresh)
	refused(t, "a refresh token past the sign-in's end", err, domain.EUNAUTHORIZED)

	live := login(t, s, "ada")
	yes := true
	if _, err := s.UpdateUser(ctx, admin, ada.ID, accounts.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refresh(ctx, live.Refresh)
	refused(t, "a disabled user's refresh token", err, domain.EUNAUTHORIZED)
}

func TestSigningOutEndsTheSignInAndItsAccessTokensAtOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := service(t, newClock(), nil)
	register(t, s, "ada")
	for _, r := range []string{"", "i8r_never-issued"} {
		if err := s.Logout(ctx, r); err != nil {
			t.Fatalf("logout of %q: %v", r, err)
		}
	}
	a, b := login(t, s, "ada"), login(t, s, "ada")
	if err := s.Logout(ctx, a.Refresh); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Authenticate(ctx, a.Access)
	refused(t, "the access token of a signed-out session", err, domain.EUNAUTHORIZED)
	_, err = s.Refresh(ctx, a.Refresh)
	refused(t, "the refresh token of a signed-out session", err, domain.EUNAUTHORIZED)
	// The browser lost its refresh cookie: its access token ends the sign-in.
	if err := s.EndSession(ctx, b.Access); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Authenticate(ctx, b.Access)
	refused(t, "the access token of an ended session", err, domain.EUNAUTHORIZED)
	if err := s.EndSession(ctx, "garbage"); err != nil {
		t.Fatalf("ending a session of no valid token: %v", err)
	}
}

// forge signs claims with key under kid and method.
func forge(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOnlyAccessTokensOfTheRingInTheirLifetimeAreAccepted(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, nil)
	ada := register(t, s, "ada")
	now := c.Now()
	claims := func(typ string, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"iss": accounts.Issuer, "aud": accounts.Audience, "sub": ada.ID, "typ": typ,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix()}
	}
	good := forge(t, jwt.SigningMethodHS256, "k1", key1, claims("access", now.Add(time.Minute)))
	if u, family, err := s.Authenticate(ctx, good); err != nil || u.ID != ada.ID || family != "" {
		t.Fatalf("a well-formed token: %+v %q %v", u, family, err)
	}
	for what, tok := range map[string]string{
		"another algorithm":  forge(t, jwt.SigningMethodHS512, "k1", key1, claims("access", now.Add(time.Minute))),
		"alg none":           forge(t, jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType, claims("access", now.Add(time.Minute))),
		"a key not the ring": forge(t, jwt.SigningMethodHS256, "k1", key2, claims("access", now.Add(time.Minute))),
		"an unknown key id":  forge(t, jwt.SigningMethodHS256, "k9", key1, claims("access", now.Add(time.Minute))),
		"not an access type": forge(t, jwt.SigningMethodHS256, "k1", key1, claims("refresh", now.Add(time.Minute))),
		"expired":            forge(t, jwt.SigningMethodHS256, "k1", key1, claims("access", now.Add(-time.Minute))),
		"a subject with no account": forge(t, jwt.SigningMethodHS256, "k1", key1, jwt.MapClaims{"iss": accounts.Issuer,
			"aud": accounts.Audience, "sub": "nobody", "typ": "access", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}),
	} {
		_, _, err := s.Authenticate(ctx, tok)
		refused(t, what, err, domain.EUNAUTHORIZED)
	}

	// A rotation: tokens of the old key stay valid while it is in the ring.
	sess := login(t, s, "ada")
	if err := s.SetKeys(accounts.SigningKeys{Active: "k1", Keys: map[string][]byte{"k1": key1[:16]}}); err == nil {
		t.Fatal("a short key was taken")
	}
	if err := s.SetKeys(accounts.SigningKeys{Active: "k2", Keys: map[string][]byte{"k1": key1, "k2": key2}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(ctx, sess.Access); err != nil {
		t.Fatalf("a token of the previous key: %v", err)
	}
	rotated := login(t, s, "ada")
	if kid := jwtHeader(t, rotated.Access)["kid"]; kid != "k2" {
		t.Fatalf("signed with %v after the rotation", kid)
	}
	if err := s.SetKeys(accounts.SigningKeys{Active: "k2", Keys: map[string][]byte{"k2": key2}}); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Authenticate(ctx, sess.Access)
	refused(t, "a token of a key gone from the ring", err, domain.EUNAUTHORIZED)
	// Lifetime: the access TTL plus the leeway for clocks apart.
	c.Add(10*time.Minute + 20*time.Second)
	if _, _, err := s.Authenticate(ctx, rotated.Access); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	c.Add(20 * time.Second)
	_, _, err = s.Authenticate(ctx, rotated.Access)
	refused(t, "an access token past its life", err, domain.EUNAUTHORIZED)
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header
}

func TestFailedSignInsWaitLongerPerAddressAndLockTheNameEverywhere(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, func(cfg *accounts.Config) {
		cfg.Throttle = &accounts.Throttle{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: time.Minute, LockAfter: 5,
			Lockout: 15 * time.Minute, Forget: 24 * time.Hour, IPAttemptsPerMinute: 1000, IPBurst: 1000}
	})
	register(t, s, "ada")
	try := func(ip, pw string) error {
		_, err := s.Login(ctx, "ada", pw, ip)
		return err
	}
	for range 2 {
		refused(t, "a wrong password", try("198.51.100.1", "wrong password, twice over"), domain.EUNAUTHORIZED)
	}
	// Free failures spent: the next attempt from that address waits,
	// refused before the password is looked at.
	err := try("198.51.100.1", password)
	refused(t, "an attempt within the wait", err, domain.ETOOMANY)
	if d, ok := domain.RetryAfterOf(err); !ok || d != time.Second {
		t.Fatalf("retry after %v %v", d, ok)
	}
	c.Add(time.Second)
	refused(t, "a wrong password after the wait", try("198.51.100.1", "wrong password, thrice over"), domain.EUNAUTHORIZED)
	if d, _ := domain.RetryAfterOf(try("198.51.100.1", password)); d != 2*time.Second {
		t.Fatalf("the second wait is %v, want it doubled", d)
	}

	// Other addresses are not slowed, but their failures lock the name.
	refused(t, "a wrong password from another address", try("198.51.100.2", "wrong password, again"), domain.EUNAUTHORIZED)
	refused(t, "a wrong password from a third address", try("198.51.100.3", "wrong password, again"), domain.EUNAUTHORIZED)
	err = try("198.51.100.4", password)
	refused(t, "the right password on a locked name", err, domain.ETOOMANY)
	if d, _ := domain.RetryAfterOf(err); d != 15*time.Minute {
		t.Fatalf("locked for %v", d)
	}
	if err := s.Unlock(ctx, "ADA"); err != nil {
		t.Fatal(err)
	}
	if err := try("198.51.100.4", password); err != nil {
		t.Fatalf("after an unlock: %v", err)
	}
	// A day without failures forgets the address's count too.
	c.Add(25 * time.Hour)
	if err := try("198.51.100.1", password); err != nil {
		t.Fatalf("a day later: %v", err)
	}
}

func TestEverySignInFailureLooksTheSame(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, nil)
	admin, err := s.CreateUser(ctx, "root", password, accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ada := register(t, s, "ada")
	yes := true
	if _, err := s.UpdateUser(ctx, admin, ada.ID, accounts.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for what, try := range map[string][2]string{
		"a wrong password":        {"root", "not the password, but long"},
		"a name nobody has":       {"nobody", password},
		"a disabled account":      {"ada", password},
		"a name beyond any bound": {strings.Repeat("a", 200), password},
		"a password beyond bound": {"root", strings.Repeat("p", 600)},
	} {
		_, err := s.Login(ctx, try[0], try[1], "192.0.2.1")
		refused(t, what, err, domain.EUNAUTHORIZED)
		msgs = append(msgs, domain.ErrorMessage(err))
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Fatalf("failures differ: %q", msgs)
		}
	}
}

func TestAnAddressIsLimitedInItsSignInAttempts(t *testing.T) {
	ctx := context.Background()
	s, _ := service(t, newClock(), func(cfg *accounts.Config) {
		th := roomy
		th.IPAttemptsPerMinute, th.IPBurst = 1, 1
		cfg.Throttle = &th
	})
	register(t, s, "ada")
	if _, err := s.Login(ctx, "ada", password, "203.0.113.9"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Login(ctx, "ada", password, "203.0.113.9")
	refused(t, "a second attempt in the minute", err, domain.ETOOMANY)
	if _, err := s.Login(ctx, "ada", password, "203.0.113.10"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestANewPasswordReplacesTheOldAndEndsALockout(t *testing.T) {
	ctx := context.Background()
	s, _ := service(t, newClock(), func(cfg *accounts.Config) {
		th := roomy
		th.LockAfter = 1
		cfg.Throttle = &th
	})
	register(t, s, "ada")
	_, err := s.Login(ctx, "ada", "wrong password, but long", "192.0.2.1")
	refused(t, "a wrong password", err, domain.EUNAUTHORIZED)
	_, err = s.Login(ctx, "ada", password, "192.0.2.1")
	refused(t, "a locked name", err, domain.ETOOMANY)
	_, err = s.SetPassword(ctx, "nobody", "a new long passphrase")
	refused(t, "a password for nobody", err, domain.ENOTFOUND)
	_, err = s.SetPassword(ctx, "ada", "ada ada ada ada ada")
	refused(t, "a weak new password", err, domain.EUNPROCESSABLE)
	if _, err := s.SetPassword(ctx, "ADA", "a new long passphrase"); err != nil {
		t.Fatal(err)
	}
	_, err = s.Login(ctx, "ada", password, "192.0.2.2")
	refused(t, "the old password", err, domain.EUNAUTHORIZED)
	if err := s.Unlock(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Login(ctx, "ada", "a new long passphrase", "192.0.2.1"); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

func TestASignInUpgradesAHashMadeWithOlderParameters(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	old, store := service(t, c, nil)
	ada := register(t, old, "ada")
	stronger := cheap
	stronger.Time = 2
	s, err := accounts.New(accounts.Config{Store: store, Keys: ring, Now: c.Now, Hasher: accounts.NewHasher(stronger, 0), Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	login(t, s, "ada")
	u, err := store.User(ctx, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u.PasswordHash, ",t=2,") || u.PasswordHash == ada.PasswordHash {
		t.Fatalf("the hash was not upgraded: %s", u.PasswordHash)
	}
	login(t, s, "ada")
}

func TestAPITokensAreBoundedNamedAndExpire(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, nil)
	admin, err := s.CreateUser(ctx, "root", password, accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ada, grace := register(t, s, "ada"), register(t, s, "grace")
	for what, tc := range map[string]struct {
		name string
		ttl  time.Duration
	}{
		"an empty name":       {"  ", 0},
		"a name too long":     {strings.Repeat("n", 101), 0},
		"a negative life":     {"ci", -time.Second},
		"a life over a year+": {"ci", accounts.MaxTokenTTL + time.Second},
	} {
		_, _, err := s.CreateAPIToken(ctx, ada, "", tc.name, tc.ttl)
		refused(t, what, err, domain.EUNPROCESSABLE)
	}
	short, secret, err := s.CreateAPIToken(ctx, ada, "", " deploy ", time.Hour)
	if err != nil || short.Name != "deploy" || short.ExpiresAt == nil || !short.ExpiresAt.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("%+v %v", short, err)
	}
	if _, _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	_, _, err = s.Authenticate(ctx, secret)
	refused(t, "an expired API token", err, domain.EUNAUTHORIZED)
	_, _, err = s.Authenticate(ctx, accounts.APITokenPrefix+"never-issued")
	refused(t, "an API token never issued", err, domain.EUNAUTHORIZED)

	// Only its owner revokes a token; for anyone else it does not exist.
	refused(t, "revoking another's token", s.RevokeAPIToken(ctx, grace, short.ID), domain.ENOTFOUND)
	if err := s.RevokeAPIToken(ctx, ada, short.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, _, err := s.CreateAPIToken(ctx, ada, "", fmt.Sprintf("t%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err = s.CreateAPIToken(ctx, ada, "", "one more", 0)
	refused(t, "the 51st token", err, domain.ECONFLICT)
	toks, err := s.APITokens(ctx, ada)
	if err != nil || len(toks) != 50 || toks[0].Name != "t49" {
		t.Fatalf("%d tokens, newest %+v: %v", len(toks), toks[0], err)
	}

	// A disabled account's tokens stop at once.
	_, gsecret, err := s.CreateAPIToken(ctx, grace, "", "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := s.UpdateUser(ctx, admin, grace.ID, accounts.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Authenticate(ctx, gsecret)
	refused(t, "a disabled user's API token", err, domain.EUNAUTHORIZED)
}

func TestAdminsChangeOthersButCannotDemoteOrDisableThemselves(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s, _ := service(t, c, nil)
	admin, err := s.CreateUser(ctx, "root", password, accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	ada := register(t, s, "ada")
	user, adminRole, bogus := accounts.RoleUser, accounts.RoleAdmin, accounts.Role("root")
	yes, no := true, false
	for what, tc := range map[string]struct {
		id   string
		p    accounts.UserPatch
		code string
	}{
		"a role that does not exist": {ada.ID, accounts.UserPatch{Role: &bogus}, domain.EUNPROCESSABLE},
		"demoting oneself":           {admin.ID, accounts.UserPatch{Role: &user}, domain.ECONFLICT},
		"disabling oneself":          {admin.ID, accounts.UserPatch{Disabled: &yes}, domain.ECONFLICT},
		"a quota of zero":            {ada.ID, accounts.UserPatch{Quota: &accounts.Quota{PerMinute: 0, Burst: 1, Concurrent: 1}}, domain.EUNPROCESSABLE},
		"someone who does not exist": {"01234567-0000-7000-8000-000000000000", accounts.UserPatch{Disabled: &no}, domain.ENOTFOUND},
	} {
		_, err := s.UpdateUser(ctx, admin, tc.id, tc.p)
		refused(t, what, err, tc.code)
	}
	// Keeping one's own role and account is no change worth refusing.
	if _, err := s.UpdateUser(ctx, admin, admin.ID, accounts.UserPatch{Role: &adminRole, Disabled: &no}); err != nil {
		t.Fatal(err)
	}

	c.Add(time.Minute)
	q := accounts.Quota{PerMinute: 5, Burst: 2, Concurrent: 1}
	got, err := s.UpdateUser(ctx, admin, ada.ID, accounts.UserPatch{Role: &adminRole, Quota: &q})
	if err != nil || got.Role != accounts.RoleAdmin || got.Quota == nil || *got.Quota != q || !got.UpdatedAt.Equal(c.Now()) {
		t.Fatalf("%+v %v", got, err)
	}
	q.PerMinute = 99 // the patch's quota is copied, not kept
	got, err = s.UpdateUser(ctx, admin, ada.ID, accounts.UserPatch{ClearQuota: true, Quota: &q})
	if err != nil || got.Quota != nil {
		t.Fatalf("clearing the quota: %+v %v", got, err)
	}

	sess := login(t, s, "ada")
	if _, err := s.UpdateUser(ctx, admin, ada.ID, accounts.UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Authenticate(ctx, sess.Access)
	refused(t, "a disabled user's access token", err, domain.EUNAUTHORIZED)

	page, more, err := s.Users(ctx, "", 1)
	if err != nil || len(page) != 1 || !more || page[0].ID != admin.ID {
		t.Fatalf("first page %+v %v %v", page, more, err)
	}
	page, more, err = s.Users(ctx, page[0].ID, 10)
	if err != nil || len(page) != 1 || more || page[0].ID != ada.ID || !page[0].Disabled {
		t.Fatalf("second page %+v %v %v", page, more, err)
	}
}

func TestAPrincipalSeesWhatItOwnsAndAnonymousExecutions(t *testing.T) {
	ada := &accounts.User{ID: "u-ada", Role: accounts.RoleUser}
	root := &accounts.User{ID: "u-root", Role: accounts.RoleAdmin}
	anon, user, admin := accounts.Principal{}, accounts.Principal{User: ada}, accounts.Principal{User: root}
	if anon.Signed() || anon.ID() != accounts.Anonymous || anon.Admin() || !user.Signed() || user.ID() != "u-ada" || user.Admin() || !admin.Admin() {
		t.Fatal("who a principal is")
	}
	for _, c := range []struct {
		p     accounts.Principal
		owner string
		sees  bool
	}{
		{anon, accounts.Anonymous, true}, {anon, "u-ada", false},
		{user, "u-ada", true}, {user, accounts.Anonymous, true}, {user, "u-root", false},
		{admin, "u-ada", true},
	} {
		if c.p.CanSee(c.owner) != c.sees {
			t.Fatalf("%s sees %s: want %v", c.p.ID(), c.owner, c.sees)
		}
	}
}

func TestAStoreThatIsGoneIsAnOutageNeverACredentialAnswer(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	live, _ := service(t, c, nil)
	ada := register(t, live, "ada")
	sess := login(t, live, "ada")
	db := testenv.Store(t, "accounts_gone")
	if err := db.Database().Client().Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := accounts.New(accounts.Config{Store: mongo.NewAccounts(db), Keys: ring, Now: c.Now, Hasher: accounts.NewHasher(cheap, 1), Logger: testenv.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"register":          func() error { _, err := s.Register(ctx, "grace", password); return err }(),
		"set a password":    func() error { _, err := s.SetPassword(ctx, "ada", "a new long passphrase"); return err }(),
		"unlock":            s.Unlock(ctx, "ada"),
		"sign in":           func() error { _, err := s.Login(ctx, "ada", password, "192.0.2.1"); return err }(),
		"refresh":           func() error { _, err := s.Refresh(ctx, sess.Refresh); return err }(),
		"sign out":          s.Logout(ctx, sess.Refresh),
		"end a session":     s.EndSession(ctx, sess.Access),
		"an access token":   func() error { _, _, err := s.Authenticate(ctx, sess.Access); return err }(),
		"an API token":      func() error { _, _, err := s.Authenticate(ctx, accounts.APITokenPrefix+"x"); return err }(),
		"make an API token": func() error { _, _, err := s.CreateAPIToken(ctx, ada, "", "ci", 0); return err }(),
		"list API tokens":   func() error { _, err := s.APITokens(ctx, ada); return err }(),
		"list users":        func() error { _, _, err := s.Users(ctx, "", 10); return err }(),
		"change a user":     func() error { _, err := s.UpdateUser(ctx, ada, ada.ID, accounts.UserPatch{}); return err }(),
	} {
		refused(t, what, err, domain.EINTERNAL)
	}
}

func TestAStoredPasswordHashThatDoesNotParseNeverSignsIn(t *testing.T) {
	ctx := context.Background()
	s, store := service(t, newClock(), nil)
	ada := register(t, s, "ada")
	if err := store.SetPasswordHash(ctx, ada.ID, "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$dG9vc2hvcnQ", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err := s.Login(ctx, "ada", password, "192.0.2.1")
	refused(t, "a corrupt stored hash", err, domain.EINTERNAL)
}
