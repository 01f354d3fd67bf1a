package runner_test

import (
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/runner"
)

// A runner built without its parts is refused, and the error names every
// missing one at once, so an operator fixes the wiring in one go.
func TestErrConfigNamesEveryMissingPart(t *testing.T) {
	_, err := runner.New(runner.Config{})
	if err == nil {
		t.Fatal("a runner without ID, Ledger, Backlog and Sandbox was built")
	}
	for _, want := range []string{"ID is required", "Ledger is required", "Backlog is required", "Sandbox is required", "Content is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}
