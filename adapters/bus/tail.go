package bus

import (
	"context"
	"errors"
	"iter"
	"sync"

	"perfledger/domain"
)

// Tail is a Log whose subscriptions share one store subscription once they
// reach the head: the most recent events are kept in a ring, and each
// subscription reads them from it at its own pace. A subscription that is
// behind the ring (catching up from an old checkpoint, or too slow to keep
// up) reads the store itself until it is back inside the ring's window, then
// continues from the ring. Every subscription still sees every event after
// its starting position, in order, exactly once.
//
// Without it each of the bus's subscriptions (one per projection and
// policy) reads and decodes every new event from the store on its own, and
// holds its own copy of it.
type Tail struct {
	log  Log
	size int

	mu      sync.Mutex
	ring    []domain.Event // ring[(start+i)%size] for i < n: consecutive events of the log
	start   int
	n       int
	floor   domain.Position // every event after floor is in the ring, or not read yet
	running bool            // the shared subscription runs
	gen     int             // the shared subscription's number (one more at each start)
	err     error           // why shared subscription gen ended (nil while it runs)
	waiters int             // subscriptions waiting for the next event
	changed chan struct{}   // closed (and replaced) when an event arrives or the subscription ends

	ctx    context.Context // the shared subscription's
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Log = (*Tail)(nil)

// DefaultTailSize is the number of recent events a Tail keeps.
const DefaultTailSize = 16384

// tailChunk is the most events a subscription copies out of the ring at once.
const tailChunk = 256

// NewTail returns a Tail over log keeping the last size events (0:
// DefaultTailSize). Close stops its shared subscription.
func NewTail(log Log, size int) *Tail {
	if size <= 0 {
		size = DefaultTailSize
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Tail{log: log, size: size, ring: make([]domain.Event, size), changed: make(chan struct{}), ctx: ctx, cancel: cancel}
}

// Close stops the shared subscription and waits for it to end; the
// subscriptions still open end with an error.
func (t *Tail) Close() {
	t.cancel()
	t.wg.Wait()
}

// errTailClosed ends the subscriptions of a closed Tail.
var errTailClosed = errors.New("bus: log tail closed")

// Subscribe implements Log: the events after `after`, then each new one as
// it is stored, until ctx ends or an error is yielded.
func (t *Tail) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		pos := after
		gen := 0 // the shared subscription this one reads from (0: none)
		chunk := make([]domain.Event, 0, tailChunk)
		for {
			// From the ring, while pos is inside its window.
			in, wait, err := t.next(pos, &gen, &chunk)
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if in {
				for i := range chunk {
					if !yield(chunk[i], nil) {
						return
					}
					pos = chunk[i].Position
				}
				clear(chunk)
				chunk = chunk[:0]
				if wait != nil {
					select {
					case <-wait:
					case <-ctx.Done():
						yield(domain.Event{}, ctx.Err())
						return
					}
				}
				continue
			}
			// Outside the ring (behind it, or ahead of the shared
			// subscription): from the store, until inside it.
			back := false
			for ev, err := range t.log.Subscribe(ctx, pos) {
				if err != nil {
					yield(domain.Event{}, err)
					return
				}
				if !yield(ev, nil) {
					return
				}
				pos = ev.Position
				if t.covers(pos) {
					back = true
					break
				}
			}
			if !back {
				if err := ctx.Err(); err != nil {
					yield(domain.Event{}, err)
				} else {
					yield(domain.Event{}, errors.New("bus: store subscription ended"))
				}
				return
			}
		}
	}
}

// covers reports whether pos is inside the ring's window: every event after
// it is in the ring or still to be read by the shared subscription, which
// has read up to pos at least. t.mu is held.
func (t *Tail) coversLocked(pos domain.Position) bool {
	return t.running && t.windowLocked(pos)
}

// windowLocked reports whether floor ≤ pos ≤ the ring's last event.
func (t *Tail) windowLocked(pos domain.Position) bool {
	last := t.floor
	if t.n > 0 {
		last = t.at(t.n - 1).Position
	}
	return t.floor.Compare(pos) <= 0 && pos.Compare(last) <= 0
}

func (t *Tail) covers(pos domain.Position) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.coversLocked(pos)
}

// next copies into chunk the ring's events after pos, when pos is inside
// the ring's window (in); when there are none yet, wait is closed at the
// next change. A subscription that read from a shared subscription that has
// since failed (*gen) gets its error; otherwise a new shared subscription
// starts after pos if none runs.
func (t *Tail) next(pos domain.Position, gen *int, chunk *[]domain.Event) (in bool, wait <-chan struct{}, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx.Err() != nil {
		return false, nil, errTailClosed
	}
	failed := false
	if !t.running {
		if *gen == t.gen && t.err != nil {
			// What the failed shared subscription read, then its error.
			if !t.windowLocked(pos) {
				return false, nil, t.err
			}
			failed = true
		} else {
			t.startAt(pos)
		}
	}
	if !failed && !t.coversLocked(pos) {
		return false, nil, nil
	}
	*gen = t.gen
	// The first event after pos: the ring's positions increase.
	lo, hi := 0, t.n
	for lo < hi {
		m := (lo + hi) / 2
		if t.at(m).Position.Compare(pos) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < t.n && len(*chunk) < tailChunk; i++ {
		*chunk = append(*chunk, *t.at(i))
	}
	if len(*chunk) == 0 {
		if failed {
			return false, nil, t.err
		}
		t.waiters++
		return true, t.changed, nil
	}
	return true, nil, nil
}

func (t *Tail) at(i int) *domain.Event { return &t.ring[(t.start+i)%t.size] }

// startAt starts a shared subscription after pos with an empty ring.
// t.mu is held.
func (t *Tail) startAt(pos domain.Position) {
	clear(t.ring)
	t.gen++
	t.start, t.n, t.floor, t.running, t.err = 0, 0, pos, true, nil
	t.wg.Add(1)
	go t.feed(t.gen, pos)
}

// feed runs shared subscription gen, appending to the ring.
func (t *Tail) feed(gen int, after domain.Position) {
	defer t.wg.Done()
	var err error
	for ev, e := range t.log.Subscribe(t.ctx, after) {
		if e != nil {
			err = e
			break
		}
		t.mu.Lock()
		if t.n == t.size {
			t.floor = t.at(0).Position
			t.ring[t.start] = domain.Event{}
			t.start = (t.start + 1) % t.size
			t.n--
		}
		*t.at(t.n) = ev
		t.n++
		t.wake()
		t.mu.Unlock()
	}
	if err == nil {
		err = errors.New("bus: store subscription ended")
	}
	if t.ctx.Err() != nil {
		err = errTailClosed
	}
	t.mu.Lock()
	if t.gen == gen {
		t.running, t.err = false, err
		t.waiters = 1 // wake everyone
		t.wake()
	}
	t.mu.Unlock()
}

// wake tells the waiting subscriptions that something changed. t.mu is held.
func (t *Tail) wake() {
	if t.waiters == 0 {
		return
	}
	close(t.changed)
	t.changed = make(chan struct{})
	t.waiters = 0
}
