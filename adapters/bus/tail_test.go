package bus_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/bus"
	"perfledger/adapters/memory"
	"perfledger/domain"
)

// appendN appends n events to the memory store, one stream per event group.
func appendN(tb testing.TB, st *memory.Store, n int) {
	tb.Helper()
	for i := range n {
		_, err := st.Append(context.Background(), fmt.Sprintf("s-%d", i%7), domain.Any(), []domain.NewEvent{{
			ID: domain.EventID(fmt.Sprintf("tail-%d", time.Now().UnixNano()), i), Type: "Test.v1", Data: []byte(`{}`),
			OccurredAt: time.Now(), Actor: "test"}})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// positions reads the log after `after` through log until it holds want
// events, and returns their positions.
func positions(ctx context.Context, log bus.Log, after domain.Position, want int, slow time.Duration) ([]uint64, error) {
	var out []uint64
	for ev, err := range log.Subscribe(ctx, after) {
		if err != nil {
			return out, err
		}
		out = append(out, ev.Position.Commit)
		if len(out) == want {
			return out, nil
		}
		if slow > 0 && len(out)%50 == 0 {
			time.Sleep(slow)
		}
	}
	return out, errors.New("subscription ended")
}

func seqFrom(from, to uint64) []uint64 {
	var out []uint64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// Subscriptions from the start, from the middle and from the head, one of
// them slow enough to fall out of a small ring, all see every event after
// their position, in order, once, while appends go on.
func TestTailDeliversEveryEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := memory.New(nil)
	defer st.Close()
	appendN(t, st, 500)
	tail := bus.NewTail(st, 64)
	defer tail.Close()
	const total = 3000
	type sub struct {
		after uint64
		slow  time.Duration
	}
	subs := []sub{{500, 0}, {500, 0}, {0, 0}, {250, 0}, {500, 2 * time.Millisecond}, {0, time.Millisecond}}
	var wg sync.WaitGroup
	got := make([][]uint64, len(subs))
	errs := make([]error, len(subs))
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = positions(ctx, tail, domain.Seq(s.after), total-int(s.after), s.slow)
		}()
	}
	appendN(t, st, total-500)
	wg.Wait()
	for i, s := range subs {
		if errs[i] != nil {
			t.Errorf("subscription %d after %d: %v", i, s.after, errs[i])
		}
		if diff := cmp.Diff(seqFrom(s.after+1, total), got[i]); diff != "" {
			t.Errorf("subscription %d after %d (-want +got):\n%s", i, s.after, diff)
		}
	}
}

// failingLog's subscriptions fail after `after` reaches a position, like a
// store that went away.
type failingLog struct {
	log  bus.Log
	at   uint64
	err  error
	mu   sync.Mutex
	subs int
}

func (l *failingLog) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	l.mu.Lock()
	l.subs++
	l.mu.Unlock()
	return func(yield func(domain.Event, error) bool) {
		for ev, err := range l.log.Subscribe(ctx, after) {
			if err == nil && ev.Position.Commit > l.at {
				err = l.err
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// A failure of the shared subscription reaches the subscriptions reading
// from it (so that they resume from their checkpoints, with backoff); a new
// subscription starts a new shared one.
func TestTailPassesOnAFailureOfTheSharedSubscription(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := memory.New(nil)
	defer st.Close()
	appendN(t, st, 100)
	boom := errors.New("store went away")
	fl := &failingLog{log: st, at: 150, err: boom}
	tail := bus.NewTail(fl, 0)
	defer tail.Close()
	done := make(chan error, 1)
	var got []uint64
	go func() {
		var err error
		got, err = positions(ctx, tail, domain.Seq(100), 1000, 0)
		done <- err
	}()
	appendN(t, st, 100)
	if err := <-done; !errors.Is(err, boom) {
		t.Fatalf("subscription ended with %v, want the store's error", err)
	}
	if diff := cmp.Diff(seqFrom(101, 150), got); diff != "" {
		t.Errorf("before the failure (-want +got):\n%s", diff)
	}
	fl.mu.Lock()
	fl.at = 1 << 62 // the store is back
	fl.mu.Unlock()
	again, err := positions(ctx, tail, domain.Seq(150), 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seqFrom(151, 200), again); diff != "" {
		t.Errorf("after resuming (-want +got):\n%s", diff)
	}
}

// Closing the Tail ends its subscriptions.
func TestTailCloseEndsSubscriptions(t *testing.T) {
	st := memory.New(nil)
	defer st.Close()
	appendN(t, st, 10)
	tail := bus.NewTail(st, 0)
	done := make(chan error, 1)
	go func() {
		_, err := positions(context.Background(), tail, domain.Seq(10), 1, 0)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	tail.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the subscription ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end after Close")
	}
}
