package web

import "net/http"

// handleLedgerKeys serves the public keys that verify the ledger's
// signatures: the current one and every one used before.
func (s *server) handleLedgerKeys() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Keys.Document())
	}
}
