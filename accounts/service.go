package accounts

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/integr8scode/integr8scode/domain"
)

// Config sets up a Service. Store is required; Keys too for anything that
// issues or checks tokens (the admin command line manages accounts
// without them).
type Config struct {
	Store Store
	Keys  SigningKeys
	// AccessTTL is the life of an access JWT (default 10 minutes);
	// RefreshTTL of a refresh token (default 30 days). A refresh rotates
	// the token but keeps the sign-in's end: a sign-in lasts RefreshTTL.
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// Hasher hashes passwords (default: OWASP's argon2id, two at a time).
	Hasher *Hasher
	// Throttle is the failed sign-in policy (default DefaultThrottle).
	Throttle *Throttle
	Now      func() time.Time
	Logger   *slog.Logger
}

// Service is every account operation the API and the command line use.
type Service struct {
	store    Store
	tokens   *tokenIssuer
	hasher   *Hasher
	throttle *Throttle
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
}

// New returns a Service.
func New(c Config) (*Service, error) {
	if c.Store == nil {
		return nil, errors.New("accounts: a store is required")
	}
	var tokens *tokenIssuer
	if c.Keys.Active != "" || len(c.Keys.Keys) > 0 {
		if err := c.Keys.Validate(); err != nil {
			return nil, err
		}
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 10 * time.Minute
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Hasher == nil {
		c.Hasher = NewHasher(OWASPArgon2, 2)
	}
	if c.Throttle == nil {
		t := DefaultThrottle
		c.Throttle = &t
	}
	if c.Throttle.perIP == nil {
		c.Throttle.perIP = NewKeyedLimiter(c.Now)
	}
	if c.Throttle.names == nil {
		c.Throttle.names = new([64]sync.Mutex)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Keys.Active != "" {
		tokens = newTokenIssuer(c.Keys, c.AccessTTL, c.Now)
	}
	return &Service{store: c.Store, tokens: tokens, hasher: c.Hasher,
		throttle: c.Throttle, cfg: c, now: c.Now, log: c.Logger}, nil
}

// SetKeys replaces the token signing keys (a rotation, read from the key
// directory while the API runs): new tokens are signed with the new active
// key, tokens signed with any key still in the ring stay valid.
func (s *Service) SetKeys(k SigningKeys) error {
	if err := k.Validate(); err != nil {
		return err
	}
	if s.tokens == nil {
		return errNoKeys
	}
	s.tokens.keys.Store(&k)
	s.log.Info("token signing keys reloaded", "signing_key", k.Active, "keys", len(k.Keys))
	return nil
}

// AccessTTL is how long an access token lives.
func (s *Service) AccessTTL() time.Duration { return s.cfg.AccessTTL }

// Register creates an account with the role user.
func (s *Service) Register(ctx context.Context, username, password string) (User, error) {
	return s.CreateUser(ctx, username, password, RoleUser)
}

// CreateUser creates an account with any role: the admin command line on
// the machine uses it; the API only ever passes RoleUser.
func (s *Service) CreateUser(ctx context.Context, username, password string, role Role) (User, error) {
	if err := ValidateUsername(username); err != nil {
		return User{}, err
	}
	if !role.Valid() {
		return User{}, domain.Errorf(domain.EUNPROCESSABLE, "role must be user or admin")
	}
	if err := CheckPassword(username, password); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	now := s.now().UTC()
	u := User{ID: uuid.Must(uuid.NewV7()).String(), Username: username, Role: role, PasswordHash: hash,
		CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	s.log.Info("account created", "user", u.ID, "role", role)
	return u, nil
}

// SetPassword replaces a user's password (the admin command line).
func (s *Service) SetPassword(ctx context.Context, username, password string) (User, error) {
	u, err := s.store.UserByName(ctx, UsernameKey(username))
	if err != nil {
		return User{}, err
	}
	if err := CheckPassword(u.Username, password); err != nil {
		return User{}, err
	}
	if u.PasswordHash, err = s.hasher.Hash(ctx, password); err != nil {
		return User{}, err
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.store.SetPasswordHash(ctx, u.ID, u.PasswordHash, u.UpdatedAt); err != nil {
		return User{}, err
	}
	// A new password ends a lockout of the name.
	return u, s.store.SaveLoginFailures(ctx, UsernameKey(u.Username), Failures{})
}

// Unlock ends a lockout of a username after failed sign-ins (the admin
// command line), whether or not the name exists.
func (s *Service) Unlock(ctx context.Context, username string) error {
	return s.store.SaveLoginFailures(ctx, UsernameKey(username), Failures{})
}

// Session is what a sign-in or a refresh hands out.
type Session struct {
	User           User
	Access         string
	AccessExpires  time.Time
	Refresh        string
	RefreshExpires time.Time
}

// errLogin is the one answer to every failed sign-in: it never says
// whether the username exists, the password was wrong or the account is
// disabled.
var errLogin = domain.Errorf(domain.EUNAUTHORIZED, "username or password is incorrect")

// Login checks a username and password from the client address ip and
// starts a sign-in. Failures are throttled per username and per address
// (Throttle); an attempt refused by the throttle is a *Throttled error.
func (s *Service) Login(ctx context.Context, username, password, ip string) (Session, error) {
	key := UsernameKey(username)
	if len(key) > maxUsername*4 || len(password) > MaxPassword*4 {
		return Session{}, errLogin // never hash an unbounded input
	}
	unlock := s.throttle.lock(key)
	defer unlock()
	if err := s.throttle.begin(ctx, s.store, key, ip, s.now()); err != nil {
		return Session{}, err
	}
	u, err := s.store.UserByName(ctx, key)
	if err != nil && domain.ErrorCode(err) != domain.ENOTFOUND {
		return Session{}, err
	}
	// A missing user costs a hash too, so timing does not tell.
	ok, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return Session{}, err
	}
	if !ok || u.Disabled {
		s.log.Info("sign-in failed", "ip", ip) // counted by begin
		return Session{}, errLogin
	}
	s.throttle.succeeded(ctx, s.store, key, ip)
	if s.hasher.NeedsRehash(u.PasswordHash) {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			u.PasswordHash, u.UpdatedAt = h, s.now().UTC()
			_ = s.store.SetPasswordHash(ctx, u.ID, h, u.UpdatedAt)
		}
	}
	return s.startSession(ctx, u)
}

func (s *Service) startSession(ctx context.Context, u User) (Session, error) {
	now := s.now().UTC()
	family := uuid.NewString()
	sess, err := s.issue(ctx, u, family, now.Add(s.cfg.RefreshTTL))
	if err == nil {
		s.log.Info("signed in", "user", u.ID)
	}
	return sess, err
}

// issue hands out an access token and a new refresh token of family that
// expires at end.
func (s *Service) issue(ctx context.Context, u User, family string, end time.Time) (Session, error) {
	access, exp, err := s.tokens.issue(u.ID, family)
	if err != nil {
		return Session{}, err
	}
	refresh := newSecret(refreshTokenPrefix)
	t := RefreshToken{Hash: HashSecret(refresh), Family: family, UserID: u.ID, ExpiresAt: end, CreatedAt: s.now().UTC()}
	if err := s.store.CreateRefresh(ctx, t); err != nil {
		return Session{}, err
	}
	return Session{User: u, Access: access, AccessExpires: exp, Refresh: refresh, RefreshExpires: end}, nil
}

var errRefresh = domain.Errorf(domain.EUNAUTHORIZED, "the sign-in has ended; sign in again")

// Refresh rotates a refresh token: the old one is spent and a new one of
// the same sign-in is issued with a new access token. Presenting a spent
// token again means it was copied: the whole sign-in is revoked, for the
// thief and for the owner.
func (s *Service) Refresh(ctx context.Context, refresh string) (Session, error) {
	if !strings.HasPrefix(refresh, refreshTokenPrefix) {
		return Session{}, errRefresh
	}
	t, err := s.store.Refresh(ctx, HashSecret(refresh))
	if err != nil {
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return Session{}, errRefresh
		}
		return Session{}, err
	}
	now := s.now().UTC()
	if revoked, err := s.store.FamilyRevoked(ctx, t.Family); err != nil || revoked {
		if err != nil {
			return Session{}, err
		}
		return Session{}, errRefresh
	}
	fresh, err := s.store.UseRefresh(ctx, t.Hash, now)
	if err != nil {
		return Session{}, err
	}
	if !fresh {
		s.log.Warn("refresh token reused: sign-in revoked with the API tokens made in it", "user", t.UserID, "family", t.Family)
		if err := s.store.RevokeFamily(ctx, t.Family, now); err != nil {
			return Session{}, err
		}
		// A copy of the sign-in was taken: whatever it minted goes too.
		if err := s.store.DeleteAPITokensOfSession(ctx, t.UserID, t.Family); err != nil {
			return Session{}, err
		}
		return Session{}, errRefresh
	}
	if !now.Before(t.ExpiresAt) {
		return Session{}, errRefresh
	}
	u, err := s.store.User(ctx, t.UserID)
	if err != nil || u.Disabled {
		if err != nil && domain.ErrorCode(err) != domain.ENOTFOUND {
			return Session{}, err
		}
		return Session{}, errRefresh
	}
	return s.issue(ctx, u, t.Family, t.ExpiresAt)
}

// Logout ends the sign-in a refresh token belongs to (at once for its
// access tokens too). An unknown token is not an error: the sign-in is
// over either way.
func (s *Service) Logout(ctx context.Context, refresh string) error {
	if refresh == "" {
		return nil
	}
	t, err := s.store.Refresh(ctx, HashSecret(refresh))
	if err != nil {
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return nil
		}
		return err
	}
	s.log.Info("signed out", "user", t.UserID)
	return s.store.RevokeFamily(ctx, t.Family, s.now().UTC())
}

// EndSession ends the sign-in an access token belongs to (logout when the
// browser's refresh cookie is gone but its access cookie is not).
func (s *Service) EndSession(ctx context.Context, access string) error {
	c, err := s.tokens.verify(access)
	if err != nil || c.Family == "" {
		return nil
	}
	return s.store.RevokeFamily(ctx, c.Family, s.now().UTC())
}

var errCredential = domain.Errorf(domain.EUNAUTHORIZED, "the credentials are invalid or expired")

// Authenticate resolves a credential: an access JWT (from a cookie or
// Authorization: Bearer) or a personal API token. The user is read on every
// request, so a disabled or deleted account, a revoked token or an ended
// sign-in stops working at once.
//
// session is the sign-in an access token belongs to ("" for an API token).
func (s *Service) Authenticate(ctx context.Context, credential string) (u User, session string, err error) {
	if IsAPIToken(credential) {
		t, err := s.store.APIToken(ctx, HashSecret(credential))
		if err != nil {
			if domain.ErrorCode(err) == domain.ENOTFOUND {
				return User{}, "", errCredential
			}
			return User{}, "", err
		}
		if t.ExpiresAt != nil && !s.now().Before(*t.ExpiresAt) {
			return User{}, "", errCredential
		}
		u, err := s.activeUser(ctx, t.UserID)
		return u, "", err
	}
	c, err := s.tokens.verify(credential)
	if err != nil {
		return User{}, "", errCredential
	}
	if c.Family != "" {
		revoked, err := s.store.FamilyRevoked(ctx, c.Family)
		if err != nil {
			return User{}, "", err
		}
		if revoked {
			return User{}, "", errCredential
		}
	}
	u, err = s.activeUser(ctx, c.Subject)
	return u, c.Family, err
}

func (s *Service) activeUser(ctx context.Context, id string) (User, error) {
	u, err := s.store.User(ctx, id)
	if err != nil {
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return User{}, errCredential
		}
		return User{}, err
	}
	if u.Disabled {
		return User{}, errCredential
	}
	return u, nil
}

// Personal API tokens.

// maxTokenName bounds a token's name; maxTokens the tokens of one user.
const (
	maxTokenName = 100
	maxTokens    = 50
	// MaxTokenTTL is the longest life a token may ask for.
	MaxTokenTTL = 366 * 24 * time.Hour
)

// CreateAPIToken makes a token for u, in sign-in session, named name that
// expires after ttl (0: never). The secret is returned once and stored only
// as its hash. The session is remembered: if its refresh token is ever
// reused (a copy was taken), the tokens made in it are revoked with it.
func (s *Service) CreateAPIToken(ctx context.Context, u User, session, name string, ttl time.Duration) (APIToken, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "" || len([]rune(name)) > maxTokenName:
		return APIToken{}, "", domain.Errorf(domain.EUNPROCESSABLE, "name must be 1 to %d characters", maxTokenName)
	case ttl < 0 || ttl > MaxTokenTTL:
		return APIToken{}, "", domain.Errorf(domain.EUNPROCESSABLE, "expires_in must be from 1 second to %d days", int(MaxTokenTTL.Hours()/24))
	}
	have, err := s.store.APITokens(ctx, u.ID)
	if err != nil {
		return APIToken{}, "", err
	}
	if len(have) >= maxTokens {
		return APIToken{}, "", domain.Errorf(domain.ECONFLICT, "you have %d tokens, the most allowed; revoke one first", maxTokens)
	}
	secret := newSecret(APITokenPrefix)
	now := s.now().UTC()
	t := APIToken{ID: uuid.Must(uuid.NewV7()).String(), Hash: HashSecret(secret), UserID: u.ID, Name: name, CreatedAt: now,
		Session: session}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	if err := s.store.CreateAPIToken(ctx, t); err != nil {
		return APIToken{}, "", err
	}
	s.log.Info("API token created", "user", u.ID, "token", t.ID)
	return t, secret, nil
}

// APITokens lists u's tokens (never their secrets).
func (s *Service) APITokens(ctx context.Context, u User) ([]APIToken, error) {
	return s.store.APITokens(ctx, u.ID)
}

// RevokeAPIToken deletes u's token id; ENOTFOUND if u has no such token.
func (s *Service) RevokeAPIToken(ctx context.Context, u User, id string) error {
	if err := s.store.DeleteAPIToken(ctx, u.ID, id); err != nil {
		return err
	}
	s.log.Info("API token revoked", "user", u.ID, "token", id)
	return nil
}

// Administration.

// Users lists accounts oldest first, after the id after.
func (s *Service) Users(ctx context.Context, after string, limit int) ([]User, bool, error) {
	return s.store.Users(ctx, after, limit)
}

// UserPatch is what an admin may change of an account. Nil fields stay.
type UserPatch struct {
	Role       *Role
	Disabled   *bool
	Quota      *Quota
	ClearQuota bool // back to the role's limits
}

// UpdateUser applies an admin's patch to user id. An admin cannot demote
// or disable themselves, so the platform never loses its last admin by a
// slip.
func (s *Service) UpdateUser(ctx context.Context, admin User, id string, p UserPatch) (User, error) {
	u, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, err
	}
	if p.Role != nil {
		if !p.Role.Valid() {
			return User{}, domain.Errorf(domain.EUNPROCESSABLE, "role must be user or admin")
		}
		if u.ID == admin.ID && *p.Role != RoleAdmin {
			return User{}, domain.Errorf(domain.ECONFLICT, "you cannot take away your own admin role")
		}
		u.Role = *p.Role
	}
	if p.Disabled != nil {
		if u.ID == admin.ID && *p.Disabled {
			return User{}, domain.Errorf(domain.ECONFLICT, "you cannot disable your own account")
		}
		u.Disabled = *p.Disabled
	}
	switch {
	case p.ClearQuota:
		u.Quota = nil
	case p.Quota != nil:
		if err := p.Quota.Validate(); err != nil {
			return User{}, err
		}
		q := *p.Quota
		u.Quota = &q
	}
	u.UpdatedAt = s.now().UTC()
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return User{}, err
	}
	s.log.Info("account changed by an admin", "user", u.ID, "admin", admin.ID, "role", u.Role, "disabled", u.Disabled)
	return u, nil
}
