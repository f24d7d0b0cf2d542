package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/domain/storetest"
)

// openStore opens a store in a fresh temporary directory, closed at cleanup.
func openStore(t testing.TB, cfg sqlite.Config) *sqlite.Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "events.db")
	}
	s, err := sqlite.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t testing.TB) domain.EventStore {
		return openStore(t, sqlite.Config{})
	}, storetest.Features{Dense: true})
}

// Appends racing Close each end, stored or refused with ErrStoreClosed:
// one still queued when the writer stops is answered, not left waiting.
func TestAppendsRacingCloseAllReturn(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			var err error
			for j := 0; err == nil; j++ {
				_, err = s.Append(ctx, fmt.Sprintf("s-%d", i), domain.Any(), storetest.Events(1, 10))
			}
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for range 64 {
		select {
		case err := <-errs:
			if !errors.Is(err, domain.ErrStoreClosed) {
				t.Errorf("append racing Close: %v, want ErrStoreClosed", err)
			}
		case <-timeout:
			t.Fatal("appends still waiting 10 s after Close")
		}
	}
}

func TestOpenAppliesSchemaOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "events.db")
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	evs := storetest.Events(3, 50)
	if _, err := s.Append(ctx, "reopen", domain.NoStream(), evs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "reopen", domain.Any(), storetest.Events(1, 5)); !errors.Is(err, domain.ErrStoreClosed) {
		t.Errorf("Append after Close: err = %v, want ErrStoreClosed", err)
	}
	s = openStore(t, sqlite.Config{Path: path})
	res, err := s.Append(ctx, "reopen", domain.Exact(2), storetest.Events(1, 50))
	if err != nil {
		t.Fatal(err)
	}
	if want := (domain.AppendResult{Revision: 3, Position: domain.Seq(4)}); res != want {
		t.Errorf("append after reopen = %+v, want %+v", res, want)
	}
}

func TestOpenAcceptsPathsWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	s := openStore(t, sqlite.Config{Path: filepath.Join(dir, "events.db")})
	if _, err := s.Append(context.Background(), "x", domain.NoStream(), storetest.Events(1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "events.db")); err != nil {
		t.Errorf("database not at the given path: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != 1 {
		t.Fatalf("user_version = %d, %v; want 1", v, err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(ctx, sqlite.Config{Path: path}); err == nil {
		s.Close()
		t.Fatal("Open of a schema newer than the binary succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]sqlite.Config{
		"empty_path":         {},
		"unknown_durability": {Path: "x.db", Durability: 7},
		"negative_batch":     {Path: "x.db", MaxBatch: -1},
	}
	for name, cfg := range cases {
		t.Run(name+"_is_refused", func(t *testing.T) {
			if err := cfg.Validate(); err == nil {
				t.Error("Validate() = nil, want an error")
			}
		})
	}
	if err := (sqlite.Config{Path: "x.db", Durability: sqlite.Relaxed}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestRelaxedDurabilityPassesContract(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	storetest.Run(t, func(t testing.TB) domain.EventStore {
		return openStore(t, sqlite.Config{Durability: sqlite.Relaxed, MaxBatch: 3})
	}, storetest.Features{Dense: true})
}

// Two Stores on one file behave like two processes: each sees the other's
// appends, in its conflict checks and in its subscriptions.
func TestTwoStoresOnOneFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "events.db")
	a := openStore(t, sqlite.Config{Path: path, PollInterval: 10 * time.Millisecond})
	b := openStore(t, sqlite.Config{Path: path, PollInterval: 10 * time.Millisecond})

	if _, err := a.Append(ctx, "shared", domain.NoStream(), storetest.Events(1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "shared", domain.Exact(0), storetest.Events(1, 10)); err != nil {
		t.Fatalf("b appending after a: %v", err)
	}
	_, err := a.Append(ctx, "shared", domain.Exact(0), storetest.Events(1, 10))
	var ce *domain.ConflictError
	if !errors.As(err, &ce) || ce.Actual != 1 {
		t.Fatalf("a with a stale revision: err = %v, want a conflict at actual 1", err)
	}
	res, err := a.Append(ctx, "other", domain.NoStream(), storetest.Events(1, 10))
	if err != nil || res.Position != domain.Seq(3) {
		t.Fatalf("a after b: %+v, %v; want position 3", res, err)
	}

	evs := storetest.Events(1, 10)
	go func() {
		time.Sleep(20 * time.Millisecond)               // let the subscription reach the live phase
		b.Append(ctx, "from-b", domain.NoStream(), evs) //nolint:errcheck // checked by the subscriber
	}()
	var got []string
	for e, err := range a.Subscribe(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Stream)
		if e.Stream == "from-b" {
			break
		}
	}
	if want := []string{"shared", "shared", "other", "from-b"}; !slices.Equal(got, want) {
		t.Errorf("a's subscription saw %v, want %v", got, want)
	}
}

// A conflicting append committed in the same group as others fails alone.
func TestConflictFailsAlone(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, sqlite.Config{})
	const n = 64
	for i := range n {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i), domain.NoStream(), storetest.Events(1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			exp := domain.Exact(0)
			if i%2 == 1 {
				exp = domain.Exact(5) // wrong
			}
			_, errs[i] = s.Append(ctx, fmt.Sprintf("s-%d", i), exp, storetest.Events(2, 10))
		})
	}
	wg.Wait()
	for i, err := range errs {
		want := 3
		if i%2 == 1 {
			want = 1
			if !errors.Is(err, domain.ErrConflict) {
				t.Errorf("append %d: err = %v, want ErrConflict", i, err)
			}
		} else if err != nil {
			t.Errorf("append %d: %v", i, err)
		}
		evs, err := collectStream(s, fmt.Sprintf("s-%d", i))
		if err != nil || len(evs) != want {
			t.Errorf("stream %d has %d events (%v), want %d", i, len(evs), err, want)
		}
	}
}

// The write-ahead log is checkpointed and restarted under continuous
// appends, so it does not grow with the store.
func TestWriteAheadLogStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s := openStore(t, sqlite.Config{Path: path, Durability: sqlite.Relaxed})
	ctx := context.Background()
	exp := domain.NoStream()
	for range 250 { // 25 MB of events
		res, err := s.Append(ctx, "big", exp, storetest.Events(1, 100_000))
		if err != nil {
			t.Fatal(err)
		}
		exp = domain.Exact(res.Revision)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 20<<20 {
		t.Errorf("write-ahead log is %d MiB after 25 MB of appends, want at most 20", fi.Size()>>20)
	}
}

// RecordedTimes lists every event's position, recorded time, type and
// occurred time as ReadAll reads them, across its pages, from the start or after any position.
func TestRecordedTimesMatchReadAll(t *testing.T) {
	ctx := context.Background()
	s, all := storeOf5000(t)
	var _ domain.TimeLister = s
	for _, from := range []int{0, 1, 4095, 4096, 4100, 4999, 5000} {
		var after domain.Position
		if from > 0 {
			after = all[from-1].Position
		}
		var got []domain.EventTime
		for e, err := range s.RecordedTimes(ctx, after) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != len(all)-from {
			t.Fatalf("after %d events: %d times, want %d", from, len(got), len(all)-from)
		}
		for i, e := range got {
			if w := all[from+i]; e.Position != w.Position || !e.RecordedAt.Equal(w.RecordedAt) || e.Type != w.Type ||
				!e.OccurredAt.Equal(w.OccurredAt) {
				t.Fatalf("after %d events, time %d: %v at %s (%s, occurred %s), want %v at %s (%s, occurred %s)", from, i, e.Position,
					e.RecordedAt, e.Type, e.OccurredAt, w.Position, w.RecordedAt, w.Type, w.OccurredAt)
			}
		}
	}
}

// ReadPositions gives the events of ReadAll at the positions asked, in
// their order, across its pages; a position without an event is skipped.
func TestReadPositionsMatchesReadAll(t *testing.T) {
	ctx := context.Background()
	s, all := storeOf5000(t)
	var _ domain.PositionReader = s
	picks := map[string]func(i int) bool{
		"none":        func(int) bool { return false },
		"the first":   func(i int) bool { return i == 0 },
		"the last":    func(i int) bool { return i == 4999 },
		"one in 3":    func(i int) bool { return i%3 == 1 },
		"one in 19":   func(i int) bool { return i%19 == 5 },
		"all":         func(int) bool { return true },
		"a page":      func(i int) bool { return i >= 1000 && i < 1256 },
		"a page + 1":  func(i int) bool { return i >= 1000 && i < 1257 },
		"a few apart": func(i int) bool { return i == 7 || i == 2500 || i == 4998 },
	}
	for name, pick := range picks {
		var positions []domain.Position
		var want []domain.Event
		for i, e := range all {
			if pick(i) {
				positions = append(positions, e.Position)
				want = append(want, e)
			}
		}
		if name == "a few apart" { // and one past the end
			positions = append(positions, domain.Seq(all[4999].Position.Commit+100))
		}
		var got []domain.Event
		for e, err := range s.ReadPositions(ctx, positions) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-ReadAll +ReadPositions):\n%s", name, diff)
		}
	}
}

// storeOf5000 is a store of 5,000 events (ten pages of ReadAll) over seven
// streams, with recorded times that go back and forth, and its events.
func storeOf5000(t *testing.T) (*sqlite.Store, []domain.Event) {
	t.Helper()
	ctx := context.Background()
	s := openStore(t, sqlite.Config{})
	for i := range 50 {
		evs := storetest.Events(100, 16)
		for j := range evs {
			evs[j].RecordedAt = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC).Add(time.Duration((i*100+j)%97) * time.Second)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%7), domain.Any(), evs); err != nil {
			t.Fatal(err)
		}
	}
	var all []domain.Event
	for e, err := range s.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
	}
	if len(all) != 5000 {
		t.Fatalf("%d events, want 5000", len(all))
	}
	return s, all
}

// ReadAllWhere gives exactly the events of ReadAll that keep accepts, after
// a position and up to another, across pages; keep sees each event's
// position, type, times and data, and nothing else.
func TestReadAllWhereMatchesReadAll(t *testing.T) {
	ctx := context.Background()
	s, all := storeOf5000(t)
	var _ domain.FilteringReader = s
	byPos := map[domain.Position]domain.Event{}
	for _, e := range all {
		byPos[e.Position] = e
	}
	keeps := map[string]func(domain.Event) bool{
		"all":                 func(domain.Event) bool { return true },
		"none":                func(domain.Event) bool { return false },
		"one in 700":          func(e domain.Event) bool { return e.Position.Commit%700 == 3 },
		"recorded by 9:00:30": func(e domain.Event) bool { return !e.RecordedAt.After(time.Date(2026, 11, 27, 9, 0, 30, 0, time.UTC)) },
	}
	for name, keep := range keeps {
		for _, r := range [][2]int{{0, 0}, {0, 5000}, {1, 4999}, {511, 513}, {600, 4100}, {4999, 0}, {5000, 0}} {
			var after, upTo domain.Position
			if r[0] > 0 {
				after = all[r[0]-1].Position
			}
			if r[1] > 0 {
				upTo = all[r[1]-1].Position
			}
			var want []domain.Event
			for _, e := range all[r[0]:] {
				if !upTo.IsZero() && upTo.Less(e.Position) {
					break
				}
				if keep(e) {
					want = append(want, e)
				}
			}
			var got []domain.Event
			seen := func(e domain.Event) bool {
				w := byPos[e.Position]
				if e.Type != w.Type || !e.OccurredAt.Equal(w.OccurredAt) || !e.RecordedAt.Equal(w.RecordedAt) ||
					string(e.Data) != string(w.Data) || e.ID != "" || e.Stream != "" || e.Hash != "" {
					t.Fatalf("%s: keep saw %+v, want the head of %+v", name, e, w)
				}
				return keep(e)
			}
			for e, err := range s.ReadAllWhere(ctx, after, upTo, seen) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, e)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("%s, events %d to %d (-ReadAll +ReadAllWhere):\n%s", name, r[0], r[1], diff)
			}
		}
	}
}
