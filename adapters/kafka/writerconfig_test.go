package kafka

import (
	"strings"
	"testing"

	"github.com/integr8scode/integr8scode/eventstore"
)

// A writer without brokers or without a key to sign with is refused, and
// the error names both at once.
func TestErrWriterConfigNamesEveryMissingPart(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  WriterConfig
		want []string
	}{
		{"nothing", WriterConfig{}, []string{"Brokers are required", "a Decider with a Signer is required"}},
		{"a Decider that cannot sign", WriterConfig{Brokers: []string{"127.0.0.1:9"}, Decider: &eventstore.Decider{}},
			[]string{"a Decider with a Signer is required"}},
	} {
		_, err := NewWriter(c.cfg)
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want it to say %q", c.name, err, want)
			}
		}
	}
}
