// Package projections folds the event log into read models (tables of a SQL
// read-model database), runs them with checkpoints, rebuilds them, and holds
// the policies that react to events by issuing commands.
//
// The package imports the domain, the standard library and database/sql only:
// no driver, no message bus, no HTTP router.
package projections

import (
	"context"
	"database/sql"

	"perfledger/domain"
)

// Envelope is a stored event with its decoded payload.
type Envelope struct {
	domain.Event
	Payload domain.Payload // decoded (and upcast) with domain.DecodePayload
}

// Projector folds events into tables of the read-model database. A projector instance owns the
// tables whose names start with its Prefix (e.g. "leaderboard_g3_"); the runner may run two
// instances of one projection at once (the serving one and a rebuild), with different prefixes.
type Projector interface {
	Name() string // stable: "leaderboard", "audit", ...
	Version() int // schema/logic version; a change makes the runner rebuild it at start
	// Setup creates the instance's tables (IF NOT EXISTS) inside tx.
	Setup(ctx context.Context, tx *sql.Tx) error
	// Apply applies a batch of events, in global order, inside tx. The runner advances the
	// projector's checkpoint in the same tx and commits. Apply must be deterministic and must
	// ignore event types it does not use.
	Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error
}

// QueryIndex is a secondary index that only a read model's queries use, not
// its Apply. Name and Create ("CREATE INDEX IF NOT EXISTS …") use the "{p}"
// placeholder for the instance prefix.
type QueryIndex struct {
	Name, Create string
}

// IndexDeferrer is implemented by a projector with query-only indexes. A
// replay into an empty instance (a rebuild, or the first catch-up) drops them
// before its first batch and creates them once after its last: sorting the
// rows once costs far less than keeping the index up to date row by row.
// Setup must create them too, so that an instance whose replay was cut short
// gets them back at the next start.
type IndexDeferrer interface {
	QueryIndexes() []QueryIndex
}

// Factory makes an instance of a projection whose tables use the given prefix.
type Factory func(prefix string) Projector
