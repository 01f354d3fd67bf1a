package content_test

import (
	"testing"

	"github.com/integr8scode/integr8scode/content"
	"github.com/integr8scode/integr8scode/content/storetest"
)

func TestMemoryStoreKeepsTheStoreContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) content.Store { return content.NewMemoryStore() })
}
