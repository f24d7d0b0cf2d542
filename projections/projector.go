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

// Batcher is implemented by a projector that can fold the events of one
// transaction in parts. Begin starts the transaction's batch; the runner
// then calls Add with consecutive runs of events, in global order, and
// Finish once, all inside tx, before it advances the checkpoint and commits.
// A run is not used after Add returns: a replay can make its transactions
// much longer than what it holds in memory, and a projector that coalesces
// its writes (sums per key, rows recomputed once per batch) does so over the
// whole transaction. Begin, Add of all of a batch's events in any runs, and
// Finish must leave the same tables as Apply of the batch.
type Batcher interface {
	Begin(ctx context.Context, tx *sql.Tx) (Batch, error)
}

// Batch is one transaction's batch of a Batcher.
type Batch interface {
	Add(ctx context.Context, events []Envelope) error
	Finish(ctx context.Context) error
}

// applyRun is how many events the runner holds for a projector that is not
// a Batcher before it applies them (Apply) inside a longer transaction.
const applyRun = 8192

// beginBatch starts a batch of p in tx: p's own if p is a Batcher, else one
// that applies the events it is given in runs of up to applyRun.
func beginBatch(ctx context.Context, tx *sql.Tx, p Projector) (Batch, error) {
	if b, ok := p.(Batcher); ok {
		return b.Begin(ctx, tx)
	}
	return &applyRuns{p: p, tx: tx}, nil
}

// applyRuns is the Batch of a projector that is not a Batcher.
type applyRuns struct {
	p    Projector
	tx   *sql.Tx
	held []Envelope
}

func (a *applyRuns) Add(ctx context.Context, events []Envelope) error {
	a.held = append(a.held, events...)
	if len(a.held) >= applyRun {
		return a.Finish(ctx)
	}
	return nil
}

// Finish applies the events held (Add calls it too, once applyRun are held).
func (a *applyRuns) Finish(ctx context.Context) error {
	if len(a.held) == 0 {
		return nil
	}
	err := a.p.Apply(ctx, a.tx, a.held)
	clear(a.held)
	a.held = a.held[:0]
	return err
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
