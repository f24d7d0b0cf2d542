package domain

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// LogReader reads the global log in order; EventStore implements it.
type LogReader interface {
	ReadAll(ctx context.Context, after Position) iter.Seq2[Event, error]
}

// ErrNoSuchPosition: a verification was asked to stop at a position that
// holds no event.
var ErrNoSuchPosition = errors.New("no event at that position")

// Verification is what VerifyLog found.
type Verification struct {
	Events  uint64   // events whose links verified
	Streams int      // distinct streams among them
	Last    Position // the last verified event (zero: none)
	Digest  string   // the ledger digest up to Last (set only when every link verified)
}

// VerifyLog recomputes every stream's hash chain over the global log up to
// and including at (zero: the whole log) and the ledger digest (see Digest)
// of the events up to there. It stops at the first broken link and returns
// it as a *ChainError (errors.Is ErrBrokenChain) with what verified before
// it. When at is not zero and no event sits at at, it returns an error
// wrapping ErrNoSuchPosition. It is the one verification the command line and
// the API both run.
func VerifyLog(ctx context.Context, log LogReader, at Position) (Verification, error) {
	v := NewChainVerifier()
	var d Digest
	var rep Verification
	for e, err := range log.ReadAll(ctx, Position{}) {
		if err != nil {
			return rep, err
		}
		if !at.IsZero() && at.Less(e.Position) {
			break
		}
		if err := v.Check(&e); err != nil {
			rep.Streams = len(v.last)
			return rep, err
		}
		if err := d.Add(e.Hash); err != nil {
			return rep, err
		}
		rep.Events++
		rep.Last = e.Position
	}
	rep.Streams = len(v.last)
	if !at.IsZero() && rep.Last != at {
		return rep, fmt.Errorf("%w: %s (the log ends at %s)", ErrNoSuchPosition, at, rep.Last)
	}
	rep.Digest = d.Root()
	return rep, nil
}
