package accounts

import (
	"strings"
	"time"
	"unicode"

	"github.com/integr8scode/integr8scode/domain"
)

// Role is what a user may do. Nobody chooses their own: registration makes
// a RoleUser, and only an admin (or the admin command line on the machine)
// makes another.
type Role string

const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a role a user can hold.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// User is an account. PasswordHash is an argon2id PHC string.
type User struct {
	ID           string
	Username     string
	Role         Role
	Disabled     bool
	Quota        *Quota // per-user limits set by an admin; nil: the role's
	PasswordHash string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Usernames: 3 to 32 characters of letters, digits, '.', '_' and '-',
// starting with a letter or digit. They are compared case-insensitively
// (Key), so "Ada" and "ada" are one account, and shown as registered.
const (
	minUsername = 3
	maxUsername = 32
)

// ValidateUsername checks a username's form.
func ValidateUsername(name string) error {
	n := len([]rune(name))
	if n < minUsername || n > maxUsername {
		return domain.Errorf(domain.EUNPROCESSABLE, "username must be %d to %d characters", minUsername, maxUsername)
	}
	for i, c := range name {
		ok := c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c) || (i > 0 && strings.ContainsRune("._-", c)))
		if !ok {
			return domain.Errorf(domain.EUNPROCESSABLE,
				"username may hold only ASCII letters, digits, '.', '_' and '-', and starts with a letter or digit")
		}
	}
	return nil
}

// UsernameKey is the form a username is unique and looked up in.
func UsernameKey(name string) string { return strings.ToLower(name) }

// Principal is who a request acts for: a signed-in user, or nobody
// (Anonymous) with the client's address as its quota key.
type Principal struct {
	User *User // nil: anonymous
	// Via says how the request proved it: "cookie", "bearer" (an access
	// JWT in Authorization) or "token" (a personal API token).
	Via string
	// Session is the sign-in an access token belongs to; "" for an API
	// token.
	Session string
}

// Anonymous is the owner and actor recorded for executions of callers who
// are not signed in.
const Anonymous = "anonymous"

// Signed reports whether the request comes from a signed-in user.
func (p Principal) Signed() bool { return p.User != nil }

// ID is the owner and actor the ledger records: the user's id or "anonymous".
func (p Principal) ID() string {
	if p.User == nil {
		return Anonymous
	}
	return p.User.ID
}

// Admin reports whether the principal is an admin.
func (p Principal) Admin() bool { return p.User != nil && p.User.Role == RoleAdmin }

// CanSee reports whether the principal may read or act on something owned
// by owner. Anonymous executions are capabilities: whoever holds the id
// may use it, as before accounts existed.
func (p Principal) CanSee(owner string) bool {
	return owner == Anonymous || p.Admin() || (p.User != nil && p.User.ID == owner)
}
