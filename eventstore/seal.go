package eventstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/integr8scode/integr8scode/domain"
)

// DataKey is an execution's own content key (AES-256). It never enters the
// log: the key store keeps it, wrapped, beside the ledger, and destroying
// it erases the execution's content (docs/events.md, "Erasure").
type DataKey [32]byte

// NewDataKey returns a fresh random data key.
func NewDataKey() (DataKey, error) {
	var k DataKey
	_, err := rand.Read(k[:])
	return k, err
}

// What a sealed value is of: part of what the ciphertext is bound to, so
// that a sealed input cannot be passed off as an output or as another
// execution's content.
const (
	PurposeInput  = "input"  // ExecutionQueued: the script and stdin (domain.Input)
	PurposeOutput = "output" // a result: stdout and stderr (domain.Output)
)

// Schemes of a sealed value, its first byte once decoded.
const (
	// schemePlain is content in the clear: only events recorded before
	// content was sealed (schema version 1) hold it, and only upcasting
	// writes it (never a producer). Opening it needs no key.
	schemePlain byte = 0
	// schemeAESGCM is AES-256-GCM with a synthetic nonce (seal).
	schemeAESGCM byte = 1
)

// ErrSealed is returned when sealed content cannot be opened: the wrong
// key, or bytes altered since they were sealed.
var ErrSealed = errors.New("sealed content does not open with this key")

// Seal encrypts v (a domain.Input or domain.Output, as JSON) for execution
// id under key. The same key, execution, purpose and content always give
// the same bytes: a retried submit (the same Idempotency-Key, so the same
// execution and key) produces the same event, and the ledger writer
// recognises it as the same request.
//
// The nonce is synthetic, as in SIV (RFC 5297) and AES-GCM-SIV (RFC 8452):
// an HMAC-SHA-256 of the associated data and the plaintext under a key
// derived from the data key, cut to 96 bits. Distinct contents get
// distinct nonces (a collision needs ~2^48 messages under one key; a key
// seals two), and equal contents reveal only that they are equal, under a
// key that belongs to one execution. Encryption and nonce keys are derived
// apart, so the data key is never used for two things.
//
// The result is base64url (no padding) of: scheme byte 1, the 12-byte
// nonce, the GCM ciphertext and tag.
func Seal(key DataKey, id, purpose string, v any) (domain.Sealed, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal %s of %s: %w", purpose, id, err)
	}
	aead, nonceKey, err := keys(key)
	if err != nil {
		return "", err
	}
	aad := associated(id, purpose)
	mac := hmac.New(sha256.New, nonceKey)
	mac.Write(aad)
	mac.Write(plain)
	nonce := mac.Sum(nil)[:aead.NonceSize()]
	out := append([]byte{schemeAESGCM}, nonce...)
	out = aead.Seal(out, nonce, plain, aad)
	return domain.Sealed(base64.RawURLEncoding.EncodeToString(out)), nil
}

// Open decrypts a sealed value of execution id into v. key may be nil for
// content recorded before sealing (scheme 0), which opens without one.
// An empty value opens to v unchanged.
func Open(key *DataKey, id, purpose string, s domain.Sealed, v any) error {
	if s == "" {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(s))
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("open %s of %s: not a sealed value", purpose, id)
	}
	var plain []byte
	switch raw[0] {
	case schemePlain:
		plain = raw[1:]
	case schemeAESGCM:
		if key == nil {
			return fmt.Errorf("open %s of %s: %w", purpose, id, ErrNoKey)
		}
		aead, _, err := keys(*key)
		if err != nil {
			return err
		}
		n := aead.NonceSize()
		if len(raw) < 1+n+aead.Overhead() {
			return fmt.Errorf("open %s of %s: %w", purpose, id, ErrSealed)
		}
		plain, err = aead.Open(nil, raw[1:1+n], raw[1+n:], associated(id, purpose))
		if err != nil {
			return fmt.Errorf("open %s of %s: %w", purpose, id, ErrSealed)
		}
	default:
		return fmt.Errorf("open %s of %s: unknown scheme %d", purpose, id, raw[0])
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("open %s of %s: %w", purpose, id, err)
	}
	return nil
}

// ErrNoKey is returned when content is sealed and no key is given.
var ErrNoKey = errors.New("sealed content needs its data key")

// NeedsKey reports whether s is sealed under a key (false for empty and
// for content in the clear from before sealing).
func NeedsKey(s domain.Sealed) bool {
	if s == "" {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(string(s))
	return err != nil || len(raw) == 0 || raw[0] != schemePlain
}

// plainSealed is content recorded in the clear, in the sealed field's form
// (scheme 0). Only the upcasters of version 1 events write it.
func plainSealed(v any) (domain.Sealed, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return domain.Sealed(base64.RawURLEncoding.EncodeToString(append([]byte{schemePlain}, b...))), nil
}

// keys derives the encryption and the nonce keys from a data key.
func keys(key DataKey) (cipher.AEAD, []byte, error) {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("integr8scode content encryption v1"))
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, derive("integr8scode content nonce v1"), nil
}

// associated is the data a sealed value is bound to: its execution and
// purpose, each length-prefixed.
func associated(id, purpose string) []byte {
	var b []byte
	for _, s := range []string{"integr8scode content", id, purpose} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// SealResult seals res's output for execution id, shrinking the output
// first if the terminal event would not fit in the ledger (MaxDataBytes,
// less room for the rest of the payload). The returned result carries its
// output only sealed.
func SealResult(res domain.Result, seal func(domain.Output) (domain.Sealed, error)) (domain.Result, error) {
	for {
		out := res
		out.Stdout, out.Stderr, out.Output = "", "", ""
		if res.Stdout != "" || res.Stderr != "" {
			s, err := seal(domain.Output{Stdout: res.Stdout, Stderr: res.Stderr})
			if err != nil {
				return domain.Result{}, err
			}
			out.Output = s
		}
		data, err := Encode(domain.ExecutionFailed{Reason: out.Verdict, Message: out.Message, Result: &out})
		if err != nil {
			return domain.Result{}, err
		}
		if len(data)+1024 <= MaxDataBytes || res.Stdout+res.Stderr == "" {
			return out, nil
		}
		res = res.Shrunk()
	}
}
