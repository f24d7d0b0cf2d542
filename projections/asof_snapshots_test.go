package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// keptFiles is a projections.SnapshotStore over the as-of files of a test:
// it lists the snapshots kept, and outlives the AsOf instances that share
// it as a data folder outlives the processes of a server.
type keptFiles struct {
	dir   string
	n     atomic.Int64
	mu    sync.Mutex
	paths map[*sql.DB]string
	kept  map[string]projections.SnapshotInfo // by file
}

func newKeptFiles(tb testing.TB) *keptFiles {
	return &keptFiles{dir: tb.TempDir(), paths: map[*sql.DB]string{}, kept: map[string]projections.SnapshotInfo{}}
}

func (k *keptFiles) open(path string) (*sql.DB, func(), error) {
	db, release, err := openTempDB(path)
	if err != nil {
		return nil, nil, err
	}
	k.mu.Lock()
	k.paths[db] = path
	k.mu.Unlock()
	return db, func() {
		k.mu.Lock()
		delete(k.kept, path)
		delete(k.paths, db)
		k.mu.Unlock()
		release()
	}, nil
}

func (k *keptFiles) next() string { return filepath.Join(k.dir, fmt.Sprintf("v%d.db", k.n.Add(1))) }

func (k *keptFiles) Keep(_ context.Context, db *sql.DB, info projections.SnapshotInfo) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	path, ok := k.paths[db]
	if !ok {
		return fmt.Errorf("keep: unknown database")
	}
	k.kept[path] = info
	return nil
}

func (k *keptFiles) Kept(context.Context) ([]projections.KeptSnapshot, error) {
	k.mu.Lock()
	kept := make(map[string]projections.SnapshotInfo, len(k.kept))
	for p, info := range k.kept {
		kept[p] = info
	}
	k.mu.Unlock()
	var out []projections.KeptSnapshot
	for path, info := range kept {
		db, release, err := k.open(path)
		if err != nil {
			return nil, err
		}
		out = append(out, projections.KeptSnapshot{Info: info, DB: db, Release: release})
	}
	return out, nil
}

// events returns the prefix lengths of the snapshots kept, sorted.
func (k *keptFiles) events() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []int
	for _, info := range k.kept {
		out = append(out, info.Events)
	}
	slices.Sort(out)
	return out
}

// keepingConfig configures an as-of engine over log running the tally
// projector at version, with its files and kept snapshots in k.
func keepingConfig(log projections.EventLog, k *keptFiles, every, version int) projections.AsOfConfig {
	return projections.AsOfConfig{
		Log: log, Projections: []projections.Factory{tallyFactory(version, nil)},
		Open: func(context.Context) (*sql.DB, func(), error) { return k.open(k.next()) },
		Copy: func(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
			p := k.next()
			if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
				return nil, nil, err
			}
			return k.open(p)
		},
		Store: k, SnapshotEvery: every, CacheSize: 2,
	}
}

// newKeepingAsOf is newTestAsOf with its files and kept snapshots in k, the
// tally projector at version.
func newKeepingAsOf(tb testing.TB, log projections.EventLog, k *keptFiles, every, version int) *projections.AsOf {
	tb.Helper()
	a, err := projections.NewAsOf(keepingConfig(log, k, every, version))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// TestAsOfKeptSnapshotsServeTheNextProcess: the snapshots a build takes are
// kept through the store, outlive their AsOf, and serve the next one: its
// first build reads only the events after the nearest kept snapshot. It
// uses none that holds another log's prefix (events recorded at other
// times) or other versions of the read models, and its answers are those
// of a replay from the start.
func TestAsOfKeptSnapshotsServeTheNextProcess(t *testing.T) {
	ctx := context.Background()
	log := &sliceLog{}
	for pos := uint64(1); pos <= 400; pos++ {
		log.add(activity(t, pos))
	}
	var seen atomic.Int64
	scope := projections.AsOfScope{Key: "all", Keep: func(domain.Event) bool {
		seen.Add(1)
		return true
	}}
	// build asks log as of its n-th event's recorded time through a new
	// AsOf (tally at version) keeping its snapshots in k, checks the
	// answer, and returns how many events the build read. The AsOf loads
	// the kept snapshots at its first build, or before when a server calls
	// Index at start (on version 1).
	build := func(k *keptFiles, log *sliceLog, n, version int) int64 {
		t.Helper()
		a := newKeepingAsOf(t, filteringLog{log}, k, 10, version)
		defer func() { _ = a.Close() }()
		if version == 1 {
			if err := a.Index(ctx); err != nil {
				t.Fatal(err)
			}
		}
		seen.Store(0)
		v, release, err := a.AtScope(ctx, log.events[n-1].RecordedAt, scope)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		got := tallyRows(t, v.DB())
		if len(got) != n || got[0] != 1 || got[n-1] != uint64(n) {
			t.Fatalf("the view as of event %d holds %d events (%v…)", n, len(got), got[:min(len(got), 3)])
		}
		return seen.Load()
	}

	// primed returns the files of a process that built the view as of the
	// 400th event, and keeps the snapshots it took.
	primed := func() *keptFiles {
		k := newKeptFiles(t)
		if read := build(k, log, 400, 1); read != 400 {
			t.Fatalf("the first build read %d events of 400", read)
		}
		return k
	}
	k := primed()
	want := []int{50, 100, 150, 200, 250, 300, 350, 400} // DefaultMaxSnapshots points, spread
	if got := k.events(); !slices.Equal(got, want) {
		t.Fatalf("kept snapshots at %v events, want %v", got, want)
	}
	for path := range k.kept {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("a kept snapshot is gone once its AsOf is closed: %v", err)
		}
	}

	t.Run("the next process starts from the nearest", func(t *testing.T) {
		if read := build(k, log, 390, 1); read != 40 {
			t.Errorf("the next process's build as of event 390 read %d events, want the 40 after the snapshot at 350", read)
		}
	})
	t.Run("another log", func(t *testing.T) {
		k := primed()
		// The same first 200 events; the later ones recorded 30 s later.
		other := &sliceLog{}
		for pos := uint64(1); pos <= 400; pos++ {
			e := activity(t, pos)
			if pos > 200 {
				e.RecordedAt = e.RecordedAt.Add(30 * time.Second)
			}
			other.add(e)
		}
		// A server's Index at start drops them at once.
		a := newKeepingAsOf(t, filteringLog{other}, k, 10, 1)
		if err := a.Index(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := k.events(), []int{50, 100, 150, 200}; !slices.Equal(got, want) {
			t.Errorf("after Index, snapshots at %v events are kept, want those of the prefix both logs share, %v", got, want)
		}
		_ = a.Close()
		if read := build(k, other, 390, 1); read != 190 {
			t.Errorf("a build over another log read %d events, want the 190 after the snapshot at 200, the last its prefix shares", read)
		}
	})
	t.Run("another format", func(t *testing.T) {
		k := primed()
		k.mu.Lock()
		for path, info := range k.kept {
			info.Format++ // a later program's
			k.kept[path] = info
		}
		k.mu.Unlock()
		if read := build(k, log, 390, 1); read != 390 {
			t.Errorf("a build read %d events, want all 390: it used snapshots of another format", read)
		}
	})
	t.Run("another version of the read models", func(t *testing.T) {
		k := primed()
		if read := build(k, log, 390, 2); read != 390 {
			t.Errorf("a build of tally version 2 read %d events, want all 390: it used version 1's snapshots", read)
		}
		if read := build(k, log, 400, 2); read != 10 {
			t.Errorf("the next build of version 2 read %d events, want the 10 after its own snapshot at 390", read)
		}
	})
}

// ctxLog is a sliceLog that stops reading once its context ends, as the
// stores do.
type ctxLog struct{ *sliceLog }

func (l ctxLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.sliceLog.ReadAll(ctx, after) {
			if ctx.Err() != nil {
				yield(domain.Event{}, ctx.Err())
				return
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestAsOfPrepareTakesSnapshotsAndGivesWay: Prepare takes the snapshots a
// view would (and does nothing once the last is taken); a request that
// comes while it runs stops it, with the snapshots it had taken kept, and
// a later Prepare goes on from those.
func TestAsOfPrepareTakesSnapshotsAndGivesWay(t *testing.T) {
	ctx := context.Background()
	log := &sliceLog{}
	for pos := uint64(1); pos <= 3000; pos++ {
		log.add(activity(t, pos))
	}
	at := func(n int) time.Time { return log.events[n-1].RecordedAt }
	var seen atomic.Int64
	gate := make(chan struct{})
	var blockAt atomic.Int64 // Keep waits for gate at this event (0: never)
	scope := projections.AsOfScope{Key: "all", Keep: func(e domain.Event) bool {
		if n := seen.Add(1); n == blockAt.Load() {
			<-gate
		}
		return true
	}}
	k := newKeptFiles(t)
	a := newKeepingAsOf(t, ctxLog{log}, k, 500, 1)
	defer func() { _ = a.Close() }()

	blockAt.Store(1200)
	prepared := make(chan error, 1)
	go func() { prepared <- a.Prepare(ctx, at(3000), scope) }()
	for seen.Load() < 1200 {
		time.Sleep(time.Millisecond)
	}
	asked := make(chan []uint64, 1)
	go func() {
		v, release, err := a.AtScope(ctx, at(700), scope)
		if err != nil {
			t.Error(err)
			asked <- nil
			return
		}
		defer release()
		asked <- tallyRows(t, v.DB())
	}()
	// Prepare stops for the request, even with its reader held up.
	select {
	case err := <-prepared:
		if !errors.Is(err, projections.ErrGaveWay) {
			t.Fatalf("Prepare returned %v, want ErrGaveWay", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Prepare did not give way to a request in a minute")
	}
	close(gate)
	if got := <-asked; len(got) != 700 || got[699] != 700 {
		t.Fatalf("the request's view holds %d events, want the first 700", len(got))
	}
	// The request's build took none (its points, 500, were taken already).
	got := k.events()
	if len(got) == 0 || got[len(got)-1] > 1000 {
		t.Fatalf("kept snapshots at %v events once Prepare gave way, want some, none past 1000", got)
	}
	from := max(got[len(got)-1], 700) // or the request's view, cached

	// Asked again, it goes on from there, then has nothing left to do.
	blockAt.Store(0)
	seen.Store(0)
	if err := a.Prepare(ctx, at(3000), scope); err != nil {
		t.Fatal(err)
	}
	if n := seen.Load(); n != int64(3000-from) {
		t.Errorf("Prepare read %d events, want the %d after %d", n, 3000-from, from)
	}
	if got := k.events(); !slices.Contains(got, 3000) {
		t.Errorf("kept snapshots at %v events, want one at 3000", got)
	}
	seen.Store(0)
	files := k.n.Load()
	if err := a.Prepare(ctx, at(3000), scope); err != nil || seen.Load() != 0 || k.n.Load() != files {
		t.Errorf("a Prepare with its snapshots taken read %d events and made %d files (%v), want none",
			seen.Load(), k.n.Load()-files, err)
	}
	v, release, err := a.AtScope(ctx, at(2990), scope)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := tallyRows(t, v.DB()); len(got) != 2990 {
		t.Errorf("a view as of event 2990 holds %d events", len(got))
	}
}

// TestAsOfBuiltIsToldOfEveryBuild: AsOfConfig.Built hears of each build, a
// request's or a Prepare's, with the events it covers.
func TestAsOfBuiltIsToldOfEveryBuild(t *testing.T) {
	ctx := context.Background()
	log := &sliceLog{}
	for pos := uint64(1); pos <= 100; pos++ {
		log.add(activity(t, pos))
	}
	var (
		mu    sync.Mutex
		built []int
	)
	cfg := keepingConfig(log, newKeptFiles(t), 10, 1)
	cfg.Built = func(events int) {
		mu.Lock()
		built = append(built, events)
		mu.Unlock()
	}
	a, err := projections.NewAsOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := a.At(ctx, log.events[59].RecordedAt)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := a.Prepare(ctx, log.events[99].RecordedAt, projections.AsOfScope{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // waits for the request's build to end
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(built)
	if want := []int{60, 100}; !slices.Equal(built, want) {
		t.Errorf("Built heard of builds of %v events, want %v", built, want)
	}
}
