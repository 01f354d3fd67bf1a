// Package events carries the ledger's event contract as files: the JSON
// Schemas (draft 2020-12) of the record envelope and of each event type's
// data per schema version. They live beside docs/events.md, where people
// read them; this package embeds them so that the code serves and checks
// exactly the published files.
package events

import "embed"

// Schemas holds schemas/envelope.v<N>.json and schemas/<Type>.v<N>.json.
//
//go:embed schemas/*.json
var Schemas embed.FS
