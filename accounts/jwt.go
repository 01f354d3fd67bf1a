package accounts

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Access tokens are JWTs signed with HMAC-SHA256 under a key ring of 256-bit
// secrets. Verification pins the algorithm (a token that says HS512, RS256
// or "none" is refused before any key is used), requires exp, iss, aud and
// the token type, and allows a small leeway for clock skew between API
// replicas.
const (
	Issuer    = "integr8scode"
	Audience  = "integr8scode-api"
	accessTyp = "access"
	leeway    = 30 * time.Second
	// MinSigningKey is the smallest HMAC secret accepted (RFC 7518 §3.2:
	// at least the hash's output size).
	MinSigningKey = 32
)

// SigningKeys is the ring of JWT secrets: Active signs, every key verifies
// (tokens signed before a rotation stay valid until they expire).
type SigningKeys struct {
	Active string            // key id of the signing key
	Keys   map[string][]byte // key id → secret
}

// Validate checks that the ring can sign and that every key is long enough.
func (k SigningKeys) Validate() error {
	if _, ok := k.Keys[k.Active]; !ok {
		return fmt.Errorf("token signing keys: active key %q is missing", k.Active)
	}
	for id, s := range k.Keys {
		if len(s) < MinSigningKey {
			return fmt.Errorf("token signing key %q has %d bytes; at least %d are required", id, len(s), MinSigningKey)
		}
	}
	return nil
}

// accessClaims are the claims of an access token.
type accessClaims struct {
	jwt.RegisteredClaims
	Type   string `json:"typ"`
	Family string `json:"sid,omitempty"` // the sign-in (refresh family) it belongs to
}

// tokenIssuer signs and verifies access tokens.
type tokenIssuer struct {
	keys   atomic.Pointer[SigningKeys] // swapped whole on a rotation
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

func newTokenIssuer(keys SigningKeys, ttl time.Duration, now func() time.Time) *tokenIssuer {
	t := &tokenIssuer{ttl: ttl, now: now, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	)}
	t.keys.Store(&keys)
	return t
}

// issue returns a signed access token for userID in sign-in family.
func (t *tokenIssuer) issue(userID, family string) (string, time.Time, error) {
	if t == nil {
		return "", time.Time{}, errNoKeys
	}
	now := t.now()
	exp := now.Add(t.ttl)
	c := accessClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: userID, Audience: jwt.ClaimStrings{Audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		ID: uuid.NewString(),
	}, Type: accessTyp, Family: family}
	keys := t.keys.Load()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = keys.Active
	s, err := tok.SignedString(keys.Keys[keys.Active])
	return s, exp, err
}

var (
	errBadToken = errors.New("invalid access token")
	errNoKeys   = errors.New("accounts: no token signing keys configured")
)

// verify returns the claims of a valid access token.
func (t *tokenIssuer) verify(raw string) (accessClaims, error) {
	var c accessClaims
	if t == nil {
		return c, errNoKeys
	}
	_, err := t.parser.ParseWithClaims(raw, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		key, ok := t.keys.Load().Keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		return key, nil
	})
	if err != nil {
		return c, fmt.Errorf("%w: %v", errBadToken, err)
	}
	if c.Type != accessTyp || c.Subject == "" {
		return c, fmt.Errorf("%w: not an access token", errBadToken)
	}
	return c, nil
}
