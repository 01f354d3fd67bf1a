package accounts

import (
	"context"
	"time"
)

// Store keeps accounts, sign-ins, API tokens and login failures. Errors
// carry domain codes: ENOTFOUND for a missing record, ECONFLICT for a
// username or id already taken. adapters/mongo implements it.
type Store interface {
	// CreateUser adds u; ECONFLICT if its username (case-insensitively) is taken.
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, id string) (User, error)
	// UserByName finds a user by UsernameKey.
	UserByName(ctx context.Context, key string) (User, error)
	// UpdateUser replaces the mutable fields (role, disabled, quota,
	// password hash, updated_at) of u.ID.
	UpdateUser(ctx context.Context, u User) error
	// SetPasswordHash changes only u's password hash (and updated_at), so
	// that it never undoes a concurrent change of role or disabled.
	SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error
	// Users lists users oldest first, after the id after ("" from the start).
	Users(ctx context.Context, after string, limit int) ([]User, bool, error)

	// CreateRefresh stores a new refresh token of a sign-in family.
	CreateRefresh(ctx context.Context, t RefreshToken) error
	// Refresh finds a refresh token by the hash of its secret.
	Refresh(ctx context.Context, hash string) (RefreshToken, error)
	// UseRefresh marks a refresh token used; false if it was used before
	// (by this or any other process: the mark is atomic).
	UseRefresh(ctx context.Context, hash string, at time.Time) (bool, error)
	// RevokeFamily ends a sign-in: none of its refresh tokens works again,
	// nor any access token issued in it.
	RevokeFamily(ctx context.Context, family string, at time.Time) error
	// FamilyRevoked reports whether a sign-in was ended.
	FamilyRevoked(ctx context.Context, family string) (bool, error)

	// CreateAPIToken stores t (its secret only as Hash).
	CreateAPIToken(ctx context.Context, t APIToken) error
	// APIToken finds a token by the hash of its secret.
	APIToken(ctx context.Context, hash string) (APIToken, error)
	// APITokens lists a user's tokens, newest first.
	APITokens(ctx context.Context, userID string) ([]APIToken, error)
	// DeleteAPIToken removes a user's token by its id; ENOTFOUND if the
	// user has no such token.
	DeleteAPIToken(ctx context.Context, userID, id string) error
	// DeleteAPITokensOfSession removes the user's tokens made in a sign-in.
	DeleteAPITokensOfSession(ctx context.Context, userID, session string) error

	// LoginFailures returns the failed sign-ins recorded for a username
	// key (zero if none); SaveLoginFailures records them; a zero value
	// clears them.
	LoginFailures(ctx context.Context, key string) (Failures, error)
	SaveLoginFailures(ctx context.Context, key string, f Failures) error
}

// RefreshToken is one link of a sign-in's rotation chain. Only the hash of
// its secret is stored.
type RefreshToken struct {
	Hash      string
	Family    string // the sign-in it belongs to
	UserID    string
	ExpiresAt time.Time
	CreatedAt time.Time
}

// APIToken is a personal token for scripts and the command line. Hash is
// the SHA-256 of the secret, which only its creator ever saw.
type APIToken struct {
	ID        string
	Hash      string
	UserID    string
	Name      string
	CreatedAt time.Time
	ExpiresAt *time.Time // nil: until revoked
	Session   string     // the sign-in it was made in
}

// Failures are the recent failed sign-ins of one username.
type Failures struct {
	Count int
	Last  time.Time
}
