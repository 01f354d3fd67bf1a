package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn/frequency"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/integr8scode/integr8scode/domain"
)

// Password rules follow NIST SP 800-63B rev. 4 (§3.1.1.2): a password that
// is the only factor is at least 15 characters; at least 64 are accepted;
// any Unicode is accepted and normalised (NFKC) before hashing; there are no
// composition rules, but a blocklist of common, expected and context-
// specific values.
const (
	MinPassword = 15
	MaxPassword = 128 // characters; bounds the work of hashing one
)

// blocklist is the 30,000 most common passwords of zxcvbn's frequency
// lists (MIT; via the Go module github.com/trustelem/zxcvbn), lower-cased.
// With a 15-character minimum few of them could be chosen as they are, but
// repeated or padded forms of them are caught by weakReason below.
var blocklist = func() map[string]bool {
	m := make(map[string]bool, len(frequency.FrequencyLists["passwords"]))
	for _, p := range frequency.FrequencyLists["passwords"] {
		m[strings.ToLower(p)] = true
	}
	return m
}()

// CheckPassword returns a 422 error saying why password may not be used
// by username, or nil.
func CheckPassword(username, password string) error {
	if !utf8.ValidString(password) {
		return domain.Errorf(domain.EUNPROCESSABLE, "password must be valid UTF-8 text")
	}
	p := norm.NFKC.String(password)
	// Length as typed: normalisation may expand one character into many
	// (U+FDFA is 18 after NFKC), which must not pass for a long password.
	n := min(utf8.RuneCountInString(password), utf8.RuneCountInString(p))
	switch {
	case n < MinPassword:
		return domain.Errorf(domain.EUNPROCESSABLE,
			"password must be at least %d characters (a few unrelated words make a good one)", MinPassword)
	case n > MaxPassword:
		return domain.Errorf(domain.EUNPROCESSABLE, "password must be at most %d characters", MaxPassword)
	}
	if why := weakReason(UsernameKey(username), strings.ToLower(p)); why != "" {
		return domain.Errorf(domain.EUNPROCESSABLE, "password is too easy to guess: %s; choose another", why)
	}
	return nil
}

// weakReason says why a lower-cased password is guessable, or "".
func weakReason(user, p string) string {
	switch {
	case blocklist[p]:
		return "it is a commonly used password"
	case len(user) >= minUsername && strings.Contains(p, user):
		return "it contains the username"
	case strings.Contains(p, "integr8scode"):
		return "it contains the name of this service"
	}
	if unit := repeatedUnit(p); unit != "" && (len([]rune(unit)) <= 4 || blocklist[unit]) {
		return "it repeats a short sequence"
	}
	if sequential(p) {
		return "it is a run of consecutive characters"
	}
	// A common password padded with digits or symbols to the length.
	if core := strings.TrimRight(strings.TrimLeft(p, "0123456789!@#$%^&*.-_ "), "0123456789!@#$%^&*.-_ "); core != p && (blocklist[core] || core == user) {
		return "it is a common password with digits or symbols added"
	}
	return ""
}

// repeatedUnit returns u if p is u repeated two or more times.
func repeatedUnit(p string) string {
	r := []rune(p)
	for size := 1; size <= len(r)/2; size++ {
		if len(r)%size != 0 {
			continue
		}
		unit := string(r[:size])
		if strings.Repeat(unit, len(r)/size) == p {
			return unit
		}
	}
	return ""
}

// sequential reports whether p is one run of consecutive code points, up
// or down ("abcdefghijklmno", "987654321098765" counts too, wrapping 0-9).
func sequential(p string) bool {
	r := []rune(p)
	up, down := true, true
	for i := 1; i < len(r); i++ {
		d := r[i] - r[i-1]
		wrapUp := r[i-1] == '9' && r[i] == '0'
		wrapDown := r[i-1] == '0' && r[i] == '9'
		up = up && (d == 1 || wrapUp)
		down = down && (d == -1 || wrapDown)
	}
	return up || down
}

// Argon2id with OWASP's recommended minimum (Password Storage Cheat Sheet):
// 19 MiB of memory, 2 passes, 1 lane, a 16-byte salt, a 32-byte key.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   int
	KeyLen    uint32
}

// OWASPArgon2 is what new hashes use.
var OWASPArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes and verifies passwords with argon2id, at most a bounded
// number at once: each hash takes 19 MiB and tens of milliseconds of a
// core, so a flood of logins waits its turn instead of exhausting memory.
type Hasher struct {
	params Argon2Params
	slots  chan struct{}
}

// NewHasher returns a Hasher that computes at most concurrent hashes at once.
func NewHasher(p Argon2Params, concurrent int) *Hasher {
	if concurrent < 1 {
		concurrent = 1
	}
	return &Hasher{params: p, slots: make(chan struct{}, concurrent)}
}

// maxHashWait bounds the wait for a slot: a flood of sign-ins gets 503
// quickly rather than queueing for as long as its clients hold on.
const maxHashWait = 3 * time.Second

func (h *Hasher) acquire(ctx context.Context) error {
	t := time.NewTimer(maxHashWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	return domain.RetryLater(2*time.Second, domain.EUNAVAILABLE, "too many sign-ins at once; retry in a moment")
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the PHC string of password:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key> (base64 without padding).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // never fails (Go 1.24+: it crashes the program instead)
	p := h.params
	key := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string phc, with the
// parameters recorded in it (so older hashes keep working when the
// parameters grow). An empty phc is compared against a throw-away hash so
// that a missing user costs the same time as a wrong password.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if phc == "" {
		phc = dummyHash
	}
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(norm.NFKC.String(password)), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1 && phc != dummyHash, nil
}

// NeedsRehash reports whether phc was made with other parameters than new
// hashes use, so a successful login can upgrade it.
func (h *Hasher) NeedsRehash(phc string) bool {
	p, salt, key, err := parsePHC(phc)
	return err != nil || p.MemoryKiB != h.params.MemoryKiB || p.Time != h.params.Time ||
		p.Threads != h.params.Threads || len(salt) != h.params.SaltLen || len(key) != int(h.params.KeyLen)
}

// dummyHash is a valid PHC string of a random password nobody knows.
var dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" +
	"vU4Q0ZP1YrHtDkP1hpnAn4HR0dKgKm2bO0ZflTQmJ4Q"

func parsePHC(phc string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("password hash: not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("password hash: unsupported argon2 version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q: %w", parts[3], err)
	}
	if p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 1<<21 || p.Time < 1 || p.Time > 16 || p.Threads < 1 {
		return p, nil, nil, fmt.Errorf("password hash: parameters %q out of range", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("password hash: salt: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("password hash: key is malformed")
	}
	return p, salt, key, nil
}
