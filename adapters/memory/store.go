// Package memory is the in-memory event store: the reference implementation
// of domain.EventStore that the contract suite is written against. It keeps
// everything in process memory and loses it on exit.
package memory

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"perfledger/domain"
)

// readBatch is how many events a reader copies per lock acquisition.
const readBatch = 512

// Store is an in-memory domain.EventStore with dense positions (1, 2, 3 …).
// It is safe for concurrent use. The zero value is not usable; call New.
type Store struct {
	clock domain.Clock

	mu      sync.RWMutex
	log     []domain.Event   // log[i] has position i+1
	streams map[string][]int // stream → indexes into log, in revision order
	notify  chan struct{}    // closed and replaced on every append
	closed  bool
}

var _ domain.EventStore = (*Store)(nil)

// New returns an empty store that stamps RecordedAt with clock (nil: the
// system clock).
func New(clock domain.Clock) *Store {
	if clock == nil {
		clock = domain.SystemClock
	}
	return &Store{clock: clock, streams: make(map[string][]int), notify: make(chan struct{})}
}

// Close makes every later call fail with domain.ErrStoreClosed and ends
// running subscriptions with it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.notify)
	}
	return nil
}

// Append implements domain.EventStore.
func (s *Store) Append(ctx context.Context, stream string, expected domain.ExpectedRevision, events []domain.NewEvent) (domain.AppendResult, error) {
	if err := domain.ValidateAppend(stream, events); err != nil {
		return domain.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return domain.AppendResult{}, err
	}
	now := s.clock().UTC()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return domain.AppendResult{}, domain.ErrStoreClosed
	}
	idx := s.streams[stream]
	if res, ok := s.retried(idx, expected, events); ok {
		return res, nil
	}
	last, has := uint64(len(idx))-1, len(idx) > 0
	if !expected.Matches(last, has) {
		return domain.AppendResult{}, fmt.Errorf("memory: append: %w", &domain.ConflictError{
			Stream: stream, Expected: expected, Actual: last, HasStream: has})
	}
	prevHash := ""
	if has {
		prevHash = s.log[idx[len(idx)-1]].Hash
	}
	for _, ne := range events {
		rec := ne.RecordedAt
		if rec.IsZero() {
			rec = now
		}
		e := domain.Event{
			ID:            ne.ID,
			Type:          ne.Type,
			Stream:        stream,
			Revision:      uint64(len(idx)),
			Position:      domain.Seq(uint64(len(s.log) + 1)),
			Data:          slices.Clone(ne.Data),
			OccurredAt:    utc(ne.OccurredAt),
			RecordedAt:    utc(rec),
			Actor:         ne.Actor,
			CorrelationID: ne.CorrelationID,
			CausationID:   ne.CausationID,
		}
		if e.Data == nil {
			e.Data = []byte{}
		}
		domain.Seal(prevHash, &e)
		prevHash = e.Hash
		idx = append(idx, len(s.log))
		s.log = append(s.log, e)
	}
	s.streams[stream] = idx
	close(s.notify)
	s.notify = make(chan struct{})
	lastEv := s.log[len(s.log)-1]
	return domain.AppendResult{Revision: lastEv.Revision, Position: lastEv.Position}, nil
}

// retried reports whether events are already stored at the revisions this
// append would have given them, and if so the original result. With Any, the
// events must be the stream's last ones.
func (s *Store) retried(idx []int, expected domain.ExpectedRevision, events []domain.NewEvent) (domain.AppendResult, bool) {
	var first uint64
	switch rev, exact := expected.Revision(); {
	case exact:
		first = rev + 1
	case expected.IsNoStream():
		first = 0
	default:
		if len(idx) < len(events) {
			return domain.AppendResult{}, false
		}
		first = uint64(len(idx) - len(events))
	}
	if first+uint64(len(events)) > uint64(len(idx)) {
		return domain.AppendResult{}, false
	}
	for i, ne := range events {
		if s.log[idx[first+uint64(i)]].ID != ne.ID {
			return domain.AppendResult{}, false
		}
	}
	e := s.log[idx[first+uint64(len(events))-1]]
	return domain.AppendResult{Revision: e.Revision, Position: e.Position}, true
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}.UTC()
	}
	return t.UTC()
}

// ReadStream implements domain.EventStore.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		next := from
		for {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			s.mu.RLock()
			if s.closed {
				s.mu.RUnlock()
				yield(domain.Event{}, domain.ErrStoreClosed)
				return
			}
			idx := s.streams[stream]
			var batch []domain.Event
			for r := next; r < uint64(len(idx)) && len(batch) < readBatch; r++ {
				batch = append(batch, clone(s.log[idx[r]]))
			}
			s.mu.RUnlock()
			if len(batch) == 0 {
				return
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
			}
			next += uint64(len(batch))
		}
	}
}

// ReadAll implements domain.EventStore.
func (s *Store) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		next := after.Commit // index of the first event after: position-1+1
		for {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			batch, _, err := s.batchAfter(next)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if len(batch) == 0 {
				return
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
			}
			next += uint64(len(batch))
		}
	}
}

// batchAfter copies up to readBatch events starting at log index next, and
// returns the channel closed by the next append.
func (s *Store) batchAfter(next uint64) ([]domain.Event, <-chan struct{}, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, domain.ErrStoreClosed
	}
	var batch []domain.Event
	for i := next; i < uint64(len(s.log)) && len(batch) < readBatch; i++ {
		batch = append(batch, clone(s.log[i]))
	}
	return batch, s.notify, nil
}

// Subscribe implements domain.EventStore.
func (s *Store) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		next := after.Commit
		for {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			// The notification channel is taken in the same critical section
			// as the batch, so an append after it always wakes us.
			batch, wake, err := s.batchAfter(next)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if len(batch) == 0 {
				select {
				case <-ctx.Done():
					yield(domain.Event{}, ctx.Err())
					return
				case <-wake:
				}
				continue
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
			}
			next += uint64(len(batch))
		}
	}
}

func clone(e domain.Event) domain.Event {
	e.Data = slices.Clone(e.Data)
	if e.Data == nil {
		e.Data = []byte{}
	}
	return e
}
