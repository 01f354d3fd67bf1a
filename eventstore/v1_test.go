package eventstore

import "github.com/integr8scode/integr8scode/domain"

// The version 1 payloads of the types that carried content in the clear,
// as they were recorded (before sealing): the vectors and the upcasting
// tests make recorded version 1 events with them.

type queuedV1 struct {
	Language string        `json:"language"`
	Version  string        `json:"version"`
	Script   string        `json:"script"`
	Stdin    string        `json:"stdin,omitempty"`
	Limits   domain.Limits `json:"limits"`
	Owner    string        `json:"owner"`
}

type resultV1 struct {
	Verdict         domain.Verdict       `json:"verdict"`
	ExitCode        *int                 `json:"exit_code,omitempty"`
	Signal          string               `json:"signal,omitempty"`
	Stdout          string               `json:"stdout"`
	Stderr          string               `json:"stderr"`
	OutputTruncated bool                 `json:"output_truncated"`
	Usage           domain.ResourceUsage `json:"resource_usage"`
	Message         string               `json:"message,omitempty"`
}

type completedV1 struct {
	Result resultV1 `json:"result"`
}

type failedV1 struct {
	Reason  domain.Verdict `json:"reason"`
	Message string         `json:"message,omitempty"`
	Result  *resultV1      `json:"result,omitempty"`
}

func (queuedV1) EventType() string    { return domain.TypeExecutionQueued }
func (completedV1) EventType() string { return domain.TypeExecutionCompleted }
func (failedV1) EventType() string    { return domain.TypeExecutionFailed }

// testContentKey seals the content of the tests' events.
var testContentKey = DataKey{7, 7, 7}

func mustSeal(id, purpose string, v any) domain.Sealed {
	s, err := Seal(testContentKey, id, purpose, v)
	if err != nil {
		panic(err)
	}
	return s
}
