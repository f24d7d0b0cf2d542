package domain

import (
	"context"
	"iter"
	"sync"
	"time"
)

// fakeStore is a minimal in-memory EventStore for the domain's own tests (a
// domain test may not import adapters). It implements the port's contract
// closely enough for the service: expected revisions, idempotent re-append
// of the same ids, hash chain, positions. Subscribe is not needed here.
type fakeStore struct {
	mu      sync.Mutex
	all     []Event
	streams map[string][]int // indexes into all
	reads   map[string][]uint64
	// beforeAppend, if set, runs (unlocked) before each append: tests use it
	// to inject a concurrent writer.
	beforeAppend func(stream string)
}

var _ EventStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{streams: map[string][]int{}, reads: map[string][]uint64{}}
}

func (s *fakeStore) Append(ctx context.Context, stream string, expected ExpectedRevision, events []NewEvent) (AppendResult, error) {
	if err := ValidateAppend(stream, events); err != nil {
		return AppendResult{}, err
	}
	s.mu.Lock()
	hook := s.beforeAppend
	s.beforeAppend = nil
	s.mu.Unlock()
	if hook != nil {
		hook(stream)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.streams[stream]
	// Idempotent retry: same ids at the revisions this append would give them.
	if first, ok := expected.Revision(); ok || expected.IsNoStream() {
		start := uint64(0)
		if ok {
			start = first + 1
		}
		if int(start)+len(events) <= len(idx) {
			same := true
			for i, ne := range events {
				if s.all[idx[int(start)+i]].ID != ne.ID {
					same = false
					break
				}
			}
			if same {
				last := s.all[idx[int(start)+len(events)-1]]
				return AppendResult{Revision: last.Revision, Position: last.Position}, nil
			}
		}
	}
	last, has := uint64(0), len(idx) > 0
	if has {
		last = uint64(len(idx) - 1)
	}
	if !expected.Matches(last, has) {
		return AppendResult{}, &ConflictError{Stream: stream, Expected: expected, Actual: last, HasStream: has}
	}
	prev := ""
	if has {
		prev = s.all[idx[len(idx)-1]].Hash
	}
	var res AppendResult
	for _, ne := range events {
		rec := ne.RecordedAt
		if rec.IsZero() {
			rec = time.Now().UTC()
		}
		e := Event{ID: ne.ID, Type: ne.Type, Stream: stream, Revision: uint64(len(idx)),
			Position: Seq(uint64(len(s.all) + 1)), Data: append([]byte(nil), ne.Data...),
			OccurredAt: ne.OccurredAt.UTC(), RecordedAt: rec.UTC(), Actor: ne.Actor,
			CorrelationID: ne.CorrelationID, CausationID: ne.CausationID}
		Seal(prev, &e)
		prev = e.Hash
		s.all = append(s.all, e)
		idx = append(idx, len(s.all)-1)
		res = AppendResult{Revision: e.Revision, Position: e.Position}
	}
	s.streams[stream] = idx
	return res, nil
}

func (s *fakeStore) ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s.mu.Lock()
		s.reads[stream] = append(s.reads[stream], from)
		idx := s.streams[stream]
		var evs []Event
		for i := int(from); i < len(idx); i++ {
			evs = append(evs, s.all[idx[i]])
		}
		s.mu.Unlock()
		for _, e := range evs {
			if err := ctx.Err(); err != nil {
				yield(Event{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *fakeStore) ReadAll(ctx context.Context, after Position) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		s.mu.Lock()
		evs := append([]Event(nil), s.all...)
		s.mu.Unlock()
		for _, e := range evs {
			if !after.Less(e.Position) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func (s *fakeStore) Subscribe(ctx context.Context, after Position) iter.Seq2[Event, error] {
	return s.ReadAll(ctx, after)
}

// readsOf returns the from-revisions of every ReadStream of stream so far.
func (s *fakeStore) readsOf(stream string) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uint64(nil), s.reads[stream]...)
}
