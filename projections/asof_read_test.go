package projections

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"perfledger/domain"
)

// filterLog is a log of positions 1…n offering domain.FilteringReader and
// domain.PositionReader; its reads fail once they reach failAt (0: never).
// Its events' types take turns (filterTypes).
type filterLog struct {
	n, failAt uint64
}

var errReadFailed = errors.New("read failed")

var filterTypes = []string{domain.TypeActivityLogged, domain.TypeSaleClosed, domain.TypeMemberJoined}

func (l filterLog) event(p uint64) domain.Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(p) * time.Second)
	return domain.Event{Position: domain.Seq(p), Type: filterTypes[p%3], OccurredAt: at, RecordedAt: at}
}

func (l filterLog) ReadPositions(ctx context.Context, positions []domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for _, p := range positions {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			if p.Commit >= l.failAt && l.failAt > 0 {
				yield(domain.Event{}, errReadFailed)
				return
			}
			if p.Commit >= 1 && p.Commit <= l.n && !yield(l.event(p.Commit), nil) {
				return
			}
		}
	}
}

func (l filterLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return l.ReadAllWhere(ctx, after, domain.Position{}, func(domain.Event) bool { return true })
}

func (l filterLog) ReadAllWhere(ctx context.Context, after, upTo domain.Position, keep func(domain.Event) bool) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for p := after.Commit + 1; p <= l.n && (upTo.IsZero() || p <= upTo.Commit); p++ {
			if err := ctx.Err(); err != nil {
				yield(domain.Event{}, err)
				return
			}
			if p == l.failAt {
				yield(domain.Event{}, errReadFailed)
				return
			}
			if e := l.event(p); keep(e) && !yield(e, nil) {
				return
			}
		}
	}
}

// TestParallelScopedReadIsTheSequentialOne: a scoped as-of read cut into
// runs read in parallel, some by the positions of the types it keeps,
// yields exactly the events, in the same order, as one sequential read;
// stopping early or failing midway stops every reader.
func TestParallelScopedReadIsTheSequentialOne(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	rapid.Check(t, func(t *rapid.T) {
		n := uint64(rapid.IntRange(1, 3000).Draw(t, "events"))
		after := uint64(rapid.IntRange(0, int(n-1)).Draw(t, "after"))
		upTo := uint64(rapid.IntRange(int(after+1), int(n)).Draw(t, "up to"))
		chunk := rapid.IntRange(1, 400).Draw(t, "run")
		mod := uint64(rapid.IntRange(1, 7).Draw(t, "keep one in"))
		var failAt uint64
		if rapid.Bool().Draw(t, "fail") {
			failAt = uint64(rapid.IntRange(int(after+1), int(upTo)).Draw(t, "fail at"))
		}
		stop := rapid.IntRange(0, int(upTo-after)).Draw(t, "stop after (0: never)")
		kept := rapid.SliceOfNDistinct(rapid.SampledFrom(filterTypes), 1, 3, rapid.ID[string]).Draw(t, "types kept")
		types := func(typ string) bool { return slices.Contains(kept, typ) }
		// A failure where both reads read: at an event of a type kept.
		for failAt > 0 && failAt <= upTo && !types(filterLog{}.event(failAt).Type) {
			failAt++
		}
		if failAt > upTo {
			failAt = 0
		}
		log := filterLog{n: n, failAt: failAt}
		var runs []logRun
		from := after
		for end := after + uint64(chunk); ; end += uint64(chunk) {
			end = min(end, upTo)
			r := logRun{end: domain.Seq(end)}
			if rapid.Bool().Draw(t, "by position") {
				r.only = []domain.Position{}
				for p := from + 1; p <= end; p++ {
					if types(log.event(p).Type) {
						r.only = append(r.only, domain.Seq(p))
					}
				}
			}
			runs, from = append(runs, r), end
			if end == upTo {
				break
			}
		}
		until := log.event(n).RecordedAt
		keep := func(e domain.Event) bool { return e.Position.Commit%mod == 0 && types(e.Type) }
		// The parallel reads share their run buffers, as the legs of a build do.
		bufs := newRunBuffers()
		read := func(parallel bool) (got []uint64, err error) {
			b := boundedLog{log: log, upTo: domain.Seq(upTo), until: until, keep: keep, heads: headFilter{types: types}}
			if parallel {
				b.split = func(domain.Position, domain.Position, headFilter) []logRun { return runs }
				b.bufs = bufs
			}
			for e, err := range b.ReadAll(context.Background(), domain.Seq(after)) {
				if err != nil {
					return got, err
				}
				if got = append(got, e.Position.Commit); len(got) == stop {
					break
				}
			}
			return got, nil
		}
		want, wantErr := read(false)
		for range 2 {
			got, gotErr := read(true)
			if !slices.Equal(got, want) || !errors.Is(gotErr, wantErr) {
				t.Fatalf("parallel read %v (%v), sequential %v (%v)", got, gotErr, want, wantErr)
			}
		}
	})
	// Every reader has stopped (allow the runtime a moment to retire them).
	for i := 0; runtime.NumGoroutine() > goroutines && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines left running, %d before", n, goroutines)
	}
}
