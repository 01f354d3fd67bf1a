package keyring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/integr8scode/integr8scode/eventstore"
)

// Open returns the public keys at src: a key directory, a keys document
// (a file, as GET /api/v1/ledger/keys serves it), or that endpoint's
// http(s) URL.
func Open(ctx context.Context, src string) (*eventstore.KeySet, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return fetch(ctx, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	if fi.IsDir() {
		r, err := Load(src)
		if err != nil {
			return nil, err
		}
		return r.Keys, nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	return Parse(b)
}

func fetch(ctx context.Context, url string) (*eventstore.KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ledger keys from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ledger keys from %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("ledger keys from %s: %w", url, err)
	}
	return Parse(b)
}

// Parse reads a keys document, refusing a key whose id does not match it.
func Parse(b []byte) (*eventstore.KeySet, error) {
	var doc eventstore.KeysDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("ledger keys: %w", err)
	}
	var keys []eventstore.PublicKey
	for _, k := range doc.Keys {
		if k.Alg != "Ed25519" {
			return nil, fmt.Errorf("ledger keys: key %s has algorithm %q, only Ed25519 is known", k.KeyID, k.Alg)
		}
		pub, err := eventstore.DecodePublicKey(k.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("ledger keys: key %s: %w", k.KeyID, err)
		}
		keys = append(keys, eventstore.PublicKey{KeyID: k.KeyID, Key: pub})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("ledger keys: the document holds no key")
	}
	return eventstore.NewKeySet(keys...)
}
