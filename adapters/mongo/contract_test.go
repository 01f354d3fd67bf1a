package mongo

import (
	"testing"

	"github.com/integr8scode/integr8scode/projections"
	"github.com/integr8scode/integr8scode/projections/storetest"
)

// The views on every code path (embedded index, FerretDB, MongoDB) keep
// the contract the in-memory store keeps too.
func TestStoreContract(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) projections.Store { return NewProjections(newTestDB(t, b)) })
		})
	}
}
