package esdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	client "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"perfledger/domain"
)

// Append implements domain.EventStore.
//
// The chain hash of the first event needs the hash of the event before it,
// so Append reads that event and appends with its exact revision:
//   - NoStream: no read; the server checks that the stream is empty.
//   - Exact(r): reads revision r, appends expecting r.
//   - Any: reads the stream's last events, appends expecting the last
//     revision, and starts over when another writer got there first.
//
// A retry of an append already stored (same ids at the same revisions)
// returns the original result: EventStoreDB recognises it for NoStream and
// Exact; for Any the adapter recognises it when the retried events are still
// the stream's last ones.
func (s *Store) Append(ctx context.Context, stream string, expected domain.ExpectedRevision, events []domain.NewEvent) (domain.AppendResult, error) {
	if err := domain.ValidateAppend(stream, events); err != nil {
		return domain.AppendResult{}, err
	}
	ctx, cancel := s.callCtx(ctx)
	defer cancel()

	if expected.IsNoStream() {
		res, conflict, err := s.write(ctx, stream, nil, events)
		if conflict {
			return domain.AppendResult{}, s.conflict(ctx, stream, expected)
		}
		return res, err
	}
	if rev, ok := expected.Revision(); ok {
		prev, err := s.readBack(ctx, stream, client.Revision(rev), 1)
		if err != nil {
			return domain.AppendResult{}, err
		}
		if len(prev) != 1 || prev[0].Revision != rev {
			return domain.AppendResult{}, s.conflict(ctx, stream, expected)
		}
		res, conflict, err := s.write(ctx, stream, &prev[0], events)
		if conflict {
			return domain.AppendResult{}, s.conflict(ctx, stream, expected)
		}
		return res, err
	}

	// Any.
	for attempt := 0; ; attempt++ {
		last, err := s.readBack(ctx, stream, client.End{}, 1)
		if err != nil {
			return domain.AppendResult{}, err
		}
		if len(events) > 1 && len(last) == 1 && sameID(last[0].ID, events[len(events)-1].ID) {
			// Maybe a retry: compare all the last events.
			if last, err = s.readBack(ctx, stream, client.End{}, len(events)); err != nil {
				return domain.AppendResult{}, err
			}
		}
		if retried(last, events) {
			return domain.AppendResult{Revision: last[0].Revision, Position: last[0].Position}, nil
		}
		var tip *domain.Event
		if len(last) > 0 {
			tip = &last[0]
		}
		res, conflict, err := s.write(ctx, stream, tip, events)
		if !conflict {
			return res, err
		}
		if attempt >= s.cfg.AppendRetries {
			return domain.AppendResult{}, fmt.Errorf("esdb append to %q with expected revision any: lost the race %d times: %w",
				stream, attempt+1, s.conflict(ctx, stream, expected))
		}
		// Another writer appended between the read and the write: back off
		// a little, at random, so that racing writers spread out.
		//nolint:gosec // jitter, not security
		if err := sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)<<min(attempt, 5)))); err != nil {
			return domain.AppendResult{}, ctxErr(ctx, s)
		}
	}
}

// retried reports whether events are exactly the stream's last events
// (newest first in last): a retry of the append that stored them.
func retried(last []domain.Event, events []domain.NewEvent) bool {
	if len(last) != len(events) {
		return false
	}
	for i, e := range events {
		if !sameID(last[len(last)-1-i].ID, e.ID) {
			return false
		}
	}
	return true
}

func sameID(stored, given string) bool {
	if len(stored) != len(given) {
		return false
	}
	for i := range len(stored) {
		a, b := stored[i], given[i]
		if 'A' <= b && b <= 'F' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// write seals events after prev (nil: at the start of the stream) and
// appends them expecting prev's revision. conflict reports a
// WrongExpectedVersion answer.
func (s *Store) write(ctx context.Context, stream string, prev *domain.Event, events []domain.NewEvent) (res domain.AppendResult, conflict bool, err error) {
	now := s.cfg.Clock().UTC()
	var (
		expected client.ExpectedRevision = client.NoStream{}
		rev      uint64
		prevHash string
	)
	if prev != nil {
		expected = client.Revision(prev.Revision)
		rev, prevHash = prev.Revision+1, prev.Hash
	}
	data := make([]client.EventData, len(events))
	for i, ne := range events {
		e := domain.Event{
			ID:            lower(ne.ID),
			Type:          ne.Type,
			Stream:        stream,
			Revision:      rev + uint64(i),
			Data:          ne.Data,
			OccurredAt:    ne.OccurredAt.UTC(),
			RecordedAt:    ne.RecordedAt.UTC(),
			Actor:         ne.Actor,
			CorrelationID: ne.CorrelationID,
			CausationID:   ne.CausationID,
		}
		if ne.RecordedAt.IsZero() {
			e.RecordedAt = now
		}
		domain.Seal(prevHash, &e)
		prevHash = e.Hash
		if data[i], err = encode(&e); err != nil {
			return domain.AppendResult{}, false, err
		}
	}
	if max := s.cfg.MaxAppendSize; max > 0 {
		if n := appendSize(data); n > max {
			return domain.AppendResult{}, false, fmt.Errorf("%w: stream %q: %d bytes with metadata exceeds EventStoreDB's %d-byte append limit",
				domain.ErrInvalidAppend, stream, n, max)
		}
	}
	wr, cn, err := call(ctx, s, func(ctx context.Context, c *client.Client) (*client.WriteResult, error) {
		return c.AppendToStream(ctx, stream, client.AppendToStreamOptions{ExpectedRevision: expected}, data...)
	}, nil)
	if cn != nil {
		s.release(cn)
	}
	if hasCode(err, client.ErrorCodeWrongExpectedVersion) {
		return domain.AppendResult{}, true, nil
	}
	if err != nil {
		return domain.AppendResult{}, false, translate("append", err)
	}
	res = domain.AppendResult{
		Revision: wr.NextExpectedVersion,
		Position: domain.Position{Commit: wr.CommitPosition, Prepare: wr.PreparePosition},
	}
	if res.Position.IsZero() || len(events) > 1 {
		// The position of the last event as $all reports it: EventStoreDB
		// answers an idempotent retry without a position (before 23.10) or
		// with a log position of its own, and how the position of a
		// multi-event write relates to its events' positions is the
		// server's business. A single event's answer is its position.
		evs, err := s.readBack(ctx, stream, client.Revision(res.Revision), 1)
		if err != nil {
			return domain.AppendResult{}, false, err
		}
		if len(evs) != 1 || evs[0].Revision != res.Revision {
			return domain.AppendResult{}, false, fmt.Errorf("esdb append to %q: revision %d acknowledged but not readable", stream, res.Revision)
		}
		res.Position = evs[0].Position
	}
	return res, false, nil
}

func lower(id string) string {
	for i := range len(id) {
		if c := id[i]; 'A' <= c && c <= 'Z' {
			b := []byte(id)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return id
}

// conflict builds the conflict error of an append, with the stream's
// actual last revision.
func (s *Store) conflict(ctx context.Context, stream string, expected domain.ExpectedRevision) error {
	last, err := s.readBack(ctx, stream, client.End{}, 1)
	if err != nil {
		return fmt.Errorf("%w (reading the actual revision: %w)", &domain.ConflictError{Stream: stream, Expected: expected}, err)
	}
	ce := &domain.ConflictError{Stream: stream, Expected: expected}
	if len(last) > 0 {
		ce.Actual, ce.HasStream = last[0].Revision, true
	}
	return ce
}

// readBack reads up to n events of stream backwards from from (newest
// first). An unknown stream has none.
func (s *Store) readBack(ctx context.Context, stream string, from client.StreamPosition, n int) ([]domain.Event, error) {
	out := make([]domain.Event, 0, n)
	_, err := s.page(ctx, "read stream", func(ctx context.Context, c *client.Client) (*client.ReadStream, error) {
		return c.ReadStream(ctx, stream, client.ReadStreamOptions{Direction: client.Backwards, From: from}, uint64(n))
	}, func(r *client.RecordedEvent) error {
		e, err := decode(r)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errStop ends a page early when the consumer stops iterating.
var errStop = errors.New("stop")
