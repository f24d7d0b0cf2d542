package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
)

// openTempDB opens an as-of database at path (WAL, unsynced) and the
// function that closes and deletes it.
func openTempDB(path string) (*sql.DB, func(), error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=synchronous(off)")
	if err != nil {
		return nil, nil, err
	}
	return db, func() {
		db.Close()
		for _, s := range []string{"", "-wal", "-shm"} {
			os.Remove(path + s)
		}
	}, nil
}

// newTestAsOf returns an as-of engine over log running the tally projector,
// on temporary SQLite files, copying with VACUUM INTO.
func newTestAsOf(tb testing.TB, log projections.EventLog, every, cache int, more ...projections.Factory) *projections.AsOf {
	tb.Helper()
	dir := tb.TempDir()
	var n atomic.Int64
	next := func() string { return filepath.Join(dir, fmt.Sprintf("v%d.db", n.Add(1))) }
	a, err := projections.NewAsOf(projections.AsOfConfig{
		Log: log, Projections: append([]projections.Factory{tallyFactory(1, nil)}, more...),
		Open: func(context.Context) (*sql.DB, func(), error) { return openTempDB(next()) },
		Copy: func(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
			p := next()
			if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
				return nil, nil, err
			}
			return openTempDB(p)
		},
		SnapshotEvery: every, CacheSize: cache,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a
}

// TestAsOfReplaysExactlyTheEventsRecordedByThen: over a growing log whose
// recorded times are only nearly increasing (some events are recorded
// earlier than the one before them), every view holds exactly the events
// recorded at or before its time, whether it was replayed from the start,
// from a snapshot, or served from the cache; the index of recorded times
// is read through ReadAll, or through a log's domain.TimeLister.
func TestAsOfReplaysExactlyTheEventsRecordedByThen(t *testing.T) {
	t.Run("times_from_ReadAll", func(t *testing.T) { testAsOfExact(t, false) })
	t.Run("times_from_a_TimeLister", func(t *testing.T) { testAsOfExact(t, true) })
}

// timeListingLog is a sliceLog offering domain.TimeLister, counting its
// calls and keeping where each started.
type timeListingLog struct {
	*sliceLog
	calls  atomic.Int64
	mu     sync.Mutex
	afters []domain.Position
}

func (l *timeListingLog) RecordedTimes(ctx context.Context, after domain.Position) iter.Seq2[domain.EventTime, error] {
	l.calls.Add(1)
	l.mu.Lock()
	l.afters = append(l.afters, after)
	l.mu.Unlock()
	return func(yield func(domain.EventTime, error) bool) {
		for e, err := range l.ReadAll(ctx, after) {
			if !yield(domain.EventTime{Position: e.Position, RecordedAt: e.RecordedAt}, err) {
				return
			}
		}
	}
}

func testAsOfExact(t *testing.T, lister bool) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	log := &sliceLog{}
	var src projections.EventLog = log
	tl := &timeListingLog{sliceLog: log}
	if lister {
		src = tl
	}
	a := newTestAsOf(t, src, 5, 3)
	if lister {
		defer func() {
			if tl.calls.Load() == 0 {
				t.Error("the as-of index never used the log's RecordedTimes")
			}
		}()
	}
	var pos uint64
	grow := func(n int) {
		for range n {
			pos++
			e := activity(t, pos)
			e.RecordedAt = base.Add(time.Duration(pos) * time.Minute)
			if rng.IntN(5) == 0 { // a straggler: recorded before earlier events
				e.RecordedAt = e.RecordedAt.Add(-time.Duration(rng.IntN(4)+1) * time.Minute)
			}
			log.add(e)
		}
	}
	want := func(t time.Time) []uint64 {
		var out []uint64
		log.mu.Lock()
		defer log.mu.Unlock()
		for _, e := range log.events {
			if !e.RecordedAt.After(t) {
				out = append(out, e.Position.Commit)
			}
		}
		return out
	}
	ctx := context.Background()
	grow(30)
	for round := range 40 {
		if round%8 == 7 {
			grow(rng.IntN(15))
		}
		at := base.Add(time.Duration(rng.IntN(int(pos)+6)-3)*time.Minute + time.Duration(rng.IntN(2))*30*time.Second)
		v, release, err := a.At(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if v.Current("tally") == nil {
			t.Fatal("the view has no tally instance")
		}
		got := tallyRows(t, v.DB())
		w := want(at)
		if diff := cmp.Diff(w, got); diff != "" {
			t.Fatalf("round %d, as of %s (-want +got):\n%s", round, at, diff)
		}
		if v.Events() != len(w) || (len(w) > 0 && v.Position() != domain.Seq(slices.Max(w))) {
			t.Errorf("round %d: view says %d events up to %s, want %d", round, v.Events(), v.Position(), len(w))
		}
		release()
	}
}

// TestAsOfIndexAtStartServesTheFirstQuery: Index reads the recorded times
// of the whole log; a later query reads only those of the events appended
// since, and its view holds exactly the events recorded by its time.
func TestAsOfIndexAtStartServesTheFirstQuery(t *testing.T) {
	log := &sliceLog{}
	for pos := uint64(1); pos <= 10; pos++ {
		log.add(activity(t, pos))
	}
	tl := &timeListingLog{sliceLog: log}
	a := newTestAsOf(t, tl, 4, 2)
	ctx := context.Background()
	if err := a.Index(ctx); err != nil {
		t.Fatal(err)
	}
	for pos := uint64(11); pos <= 13; pos++ {
		log.add(activity(t, pos))
	}
	v, release, err := a.At(ctx, activity(t, 12).RecordedAt)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got, want := tallyRows(t, v.DB()), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; !slices.Equal(got, want) {
		t.Errorf("view holds %v, want %v", got, want)
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if want := []domain.Position{{}, domain.Seq(10)}; !slices.Equal(tl.afters, want) {
		t.Errorf("recorded times read after %v, want after %v", tl.afters, want)
	}
}

// tallyRows lists the positions in the serving tally instance's table.
func tallyRows(tb testing.TB, db *sql.DB) []uint64 {
	tb.Helper()
	var prefix string
	if err := db.QueryRow(`SELECT prefix FROM projection_current WHERE name = 'tally'`).Scan(&prefix); err != nil {
		tb.Fatal(err)
	}
	return (&tally{prefix: prefix}).rows(tb, db)
}

func TestAsOfConfigValidate(t *testing.T) {
	if _, err := projections.NewAsOf(projections.AsOfConfig{}); err == nil {
		t.Error("an empty config is accepted")
	}
}

// A view of some read models replays only those; views of different read
// models are built, cached and snapshotted apart, and each holds exactly the
// events recorded by its time.
func TestAsOfViewsOfSomeReadModels(t *testing.T) {
	base := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	log := &sliceLog{}
	for pos := uint64(1); pos <= 40; pos++ {
		e := activity(t, pos)
		e.RecordedAt = base.Add(time.Duration(pos) * time.Minute)
		log.add(e)
	}
	a := newTestAsOf(t, log, 5, 4, projections.NewHonour)
	ctx := context.Background()
	for i, q := range []struct {
		minutes int
		names   []string
	}{{12, []string{"tally"}}, {12, nil}, {27, []string{"tally", "tally"}}, {31, nil}, {33, []string{"tally"}}, {8, []string{"honour"}}} {
		at := base.Add(time.Duration(q.minutes) * time.Minute)
		v, release, err := a.At(ctx, at, q.names...)
		if err != nil {
			t.Fatal(err)
		}
		wantHonour := len(q.names) == 0 || q.names[0] == "honour"
		wantTally := len(q.names) == 0 || q.names[0] == "tally"
		if (v.Current("honour") != nil) != wantHonour || (v.Current("tally") != nil) != wantTally {
			t.Fatalf("query %d (%v): honour %v, tally %v", i, q.names, v.Current("honour") != nil, v.Current("tally") != nil)
		}
		if wantTally {
			if got := tallyRows(t, v.DB()); len(got) != q.minutes || got[len(got)-1] != uint64(q.minutes) {
				t.Fatalf("query %d (%v) as of minute %d: tally rows %v", i, q.names, q.minutes, got)
			}
		}
		release()
	}
	if _, _, err := a.At(ctx, base, "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("an unknown read model: %v, want ErrUnknownProjection", err)
	}
}

// TestAsOfLegsReadTheLogOnce: a scoped build that stops at snapshot points
// reads every event of the log once, even when the scope keeps nothing
// after some point (each leg, and each snapshot, is at the point it read
// up to, not at the last event it kept).
func TestAsOfLegsReadTheLogOnce(t *testing.T) {
	log := &sliceLog{}
	for pos := uint64(1); pos <= 400; pos++ {
		log.add(activity(t, pos))
	}
	a := newTestAsOf(t, filteringLog{log}, 40, 4)
	var seen atomic.Int64
	scope := projections.AsOfScope{Key: "the first 30", Keep: func(e domain.Event) bool {
		seen.Add(1)
		return e.Position.Commit <= 30
	}}
	ctx := context.Background()
	at := activity(t, 400).RecordedAt
	v, release, err := a.AtScope(ctx, at, scope)
	if err != nil {
		t.Fatal(err)
	}
	got := tallyRows(t, v.DB())
	release()
	if want := 30; len(got) != want || got[len(got)-1] != 30 {
		t.Errorf("view holds %v, want the first %d", got, want)
	}
	if n := seen.Load(); n != 400 {
		t.Errorf("the build read %d events of a log of 400", n)
	}
	// A build from a snapshot reads on from the snapshot's point (the
	// first build's are spread: 80, 160, … 400).
	seen.Store(0)
	_, release, err = a.AtScope(ctx, activity(t, 390).RecordedAt, scope)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if n := seen.Load(); n > 70 {
		t.Errorf("a build from the snapshot at 320 events read %d events for the 70 more", n)
	}
}
