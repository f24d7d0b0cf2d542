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
	Name() string // stable: "leaderboard", "scorecard", ...
	Version() int // schema/logic version; a change makes the runner rebuild it at start
	// Setup creates the instance's tables (IF NOT EXISTS) inside tx.
	Setup(ctx context.Context, tx *sql.Tx) error
	// Apply applies a batch of events, in global order, inside tx. The runner advances the
	// projector's checkpoint in the same tx and commits. Apply must be deterministic and must
	// ignore event types it does not use.
	Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error
}

// Factory makes an instance of a projection whose tables use the given prefix.
type Factory func(prefix string) Projector
