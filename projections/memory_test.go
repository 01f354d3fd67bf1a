package projections_test

import (
	"testing"

	"github.com/integr8scode/integr8scode/projections"
	"github.com/integr8scode/integr8scode/projections/storetest"
)

// The store that `projections compare` folds the log into keeps the same
// contract as the MongoDB views it is compared with.
func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) projections.Store { return projections.NewMemoryStore() })
}
