package web

import (
	"net/http"

	"github.com/integr8scode/integr8scode/eventstore"
)

type keysResponse struct {
	Keys []publicKey `json:"keys"`
}

type publicKey struct {
	KeyID     string `json:"key_id"`
	Alg       string `json:"alg"`
	PublicKey string `json:"public_key"`
}

// handleLedgerKeys serves the public keys that verify the ledger's
// signatures: the current one and every one used before.
func (s *server) handleLedgerKeys() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		resp := keysResponse{Keys: []publicKey{}}
		for _, k := range s.Keys.Keys() {
			resp.Keys = append(resp.Keys, publicKey{KeyID: k.KeyID, Alg: "Ed25519", PublicKey: eventstore.EncodePublicKey(k.Key)})
		}
		writeJSON(w, http.StatusOK, resp)
	}
}
