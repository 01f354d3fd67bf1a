package kafka

import "errors"

var (
	// ErrNoExecutionID: a message to the ledger lacks the "execution_id"
	// metadata that chooses its partition. It is refused rather than sent to
	// a random partition, where it would fall out of its execution's order.
	ErrNoExecutionID = errors.New(`message has no "execution_id" metadata`)

	// ErrTopicMismatch: an existing topic differs from what the ledger
	// needs (partition count, retention, cleanup policy). Nothing was
	// changed; an operator has to decide.
	ErrTopicMismatch = errors.New("topic does not match the ledger's requirements")

	// ErrDirLocked: another broker holds the embedded data directory.
	ErrDirLocked = errors.New("data directory locked")
)
