package sqlite

// Benchmarks of the event store, each beside its raw ceiling: plain SQLite
// inserts of the same rows (same schema, same encoded meta and data, same
// pragmas), one transaction per batch, with no Go store around them. The
// ratio store/raw shows how close the store is to what SQLite allows here.
//
//	go test ./adapters/sqlite -run '^$' -bench . -benchtime 3s
//
// Benchmarks with "1M" in their name first build a 1,000,000-event fixture
// in a temporary directory (once per run, with fast bulk inserts).

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"perfledger/domain"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

const (
	benchDataSize = 300 // bytes of JSON payload per event, as in PERF-NOTES
	fixtureEvents = 1_000_000
	longStream    = 100_000 // events of the fixture's one long stream
	fixtureSpread = 900     // other streams of the fixture, 1,000 events each
)

// benchEvents returns n events of one stream with ~300 B payloads.
func benchEvents(n int) []domain.NewEvent {
	evs := make([]domain.NewEvent, n)
	for i := range evs {
		evs[i] = domain.NewEvent{
			ID:            domain.NewID(),
			Type:          "ActivityLogged.v1",
			Data:          benchPayload(i),
			OccurredAt:    time.Date(2026, 11, 27, 9, 0, 0, i, time.UTC),
			Actor:         "user:7f3c9a2e",
			CorrelationID: domain.NewID(),
			CausationID:   domain.NewID(),
		}
	}
	return evs
}

func benchPayload(i int) []byte {
	b := fmt.Appendf(nil, `{"member_id":"m-%06d","kind":"call","quantity":1,"note":"`, i%5000)
	for len(b) < benchDataSize-2 {
		b = append(b, 'n')
	}
	return append(b, '"', '}')
}

func reportRate(b *testing.B, events int64) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

func benchStore(b *testing.B, path string) *Store {
	b.Helper()
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// appendLoop appends one event per call to stream, b.N times, from one
// goroutine, starting at expected.
func appendLoop(b *testing.B, s *Store, stream string, expected domain.ExpectedRevision) {
	evs := benchEvents(b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		res, err := s.Append(ctx, stream, expected, evs[i:i+1])
		if err != nil {
			b.Fatal(err)
		}
		expected = domain.Exact(res.Revision)
	}
	b.StopTimer()
	reportRate(b, int64(b.N))
}

// parallelAppends runs b.N one-event appends from writers goroutines, each
// on its own stream; tips gives each stream's expected revision.
func parallelAppends(b *testing.B, s *Store, writers int, streams []string, tips []domain.ExpectedRevision) {
	ctx := context.Background()
	var next atomic.Int64
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	evs := benchEvents(b.N)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			exp := tips[w]
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				res, err := s.Append(ctx, streams[w], exp, evs[i:i+1])
				if err != nil {
					errs <- err
					return
				}
				exp = domain.Exact(res.Revision)
				done.Add(1)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	reportRate(b, done.Load())
	st := s.Stats()
	b.ReportMetric(float64(st.Appends)/float64(max(st.Commits, 1)), "appends/commit")
}

// rawDB writes rows of the store's schema with plain SQL: the ceiling.
type rawDB struct {
	db       *sql.DB
	ins, ups *sql.Stmt
	nextPos  int64
	meta     [][]byte
	data     [][]byte
}

func openRaw(b *testing.B, path string) *rawDB {
	b.Helper()
	s, err := Open(context.Background(), Config{Path: path}) // creates the schema
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", fileURI(path)+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-32768)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	r := &rawDB{db: db}
	if r.ins, err = db.Prepare("INSERT INTO events (position, stream_id, revision, meta, data) VALUES (?, ?, ?, ?, ?)"); err != nil {
		b.Fatal(err)
	}
	if r.ups, err = db.Prepare("INSERT INTO streams (id, name, last_revision, last_hash) VALUES (?, ?, ?, ?) " +
		"ON CONFLICT (id) DO UPDATE SET last_revision = excluded.last_revision, last_hash = excluded.last_hash"); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRow("SELECT coalesce(max(position), 0) + 1 FROM events").Scan(&r.nextPos); err != nil {
		b.Fatal(err)
	}
	// A pool of encoded rows, made before timing.
	prev := ""
	for i, ne := range benchEvents(4096) {
		e := domain.Event{ID: ne.ID, Type: ne.Type, Stream: "raw", Revision: uint64(i), Data: ne.Data,
			OccurredAt: ne.OccurredAt, RecordedAt: time.Now().UTC(), Actor: ne.Actor,
			CorrelationID: ne.CorrelationID, CausationID: ne.CausationID}
		domain.Seal(prev, &e)
		prev = e.Hash
		r.meta = append(r.meta, encodeMeta(nil, &e))
		r.data = append(r.data, e.Data)
	}
	return r
}

// rawStream is a stream the raw writer appends to.
type rawStream struct {
	id   int64
	name string
	next int64 // next revision
}

// existingStreams returns the raw writer's view of the named streams
// (created on first write if missing, with ids from base).
func (r *rawDB) streams(b *testing.B, names []string, base int64) []*rawStream {
	out := make([]*rawStream, len(names))
	for i, name := range names {
		st := &rawStream{id: base + int64(i), name: name}
		var last int64
		err := r.db.QueryRow("SELECT id, last_revision FROM streams WHERE name = ?", name).Scan(&st.id, &last)
		switch {
		case err == sql.ErrNoRows:
		case err != nil:
			b.Fatal(err)
		default:
			st.next = last + 1
		}
		out[i] = st
	}
	return out
}

// run inserts b.N rows, one per stream in turn, batch rows per
// transaction, and reports events/s.
func (r *rawDB) run(b *testing.B, streams []*rawStream, batch int) {
	hash := make([]byte, 32)
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		tx, err := r.db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		ins, ups := tx.Stmt(r.ins), tx.Stmt(r.ups)
		for i := range n {
			st := streams[(done+i)%len(streams)]
			k := (done + i) % len(r.meta)
			if _, err := ins.Exec(r.nextPos, st.id, st.next, r.meta[k], r.data[k]); err != nil {
				b.Fatal(err)
			}
			if _, err := ups.Exec(st.id, st.name, st.next, hash); err != nil {
				b.Fatal(err)
			}
			r.nextPos++
			st.next++
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.StopTimer()
	reportRate(b, int64(b.N))
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func noStreams(n int) []domain.ExpectedRevision {
	return make([]domain.ExpectedRevision, n) // Any: the streams are new
}

// BenchmarkAppendOneWriter: one writer, one event per append, durable.
func BenchmarkAppendOneWriter(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, filepath.Join(b.TempDir(), "events.db"))
		appendLoop(b, s, "one", domain.NoStream())
	})
	b.Run("raw", func(b *testing.B) {
		r := openRaw(b, filepath.Join(b.TempDir(), "events.db"))
		r.run(b, r.streams(b, []string{"one"}, 1), 1)
	})
	// The same with Config.Fdatasync, switched off again afterwards (it is
	// process-wide).
	b.Run("store_fdatasync", func(b *testing.B) {
		b.Cleanup(func() { msqlite.Fdatasync(false) }) //nolint:errcheck // restoring the default
		s, err := Open(context.Background(), Config{Path: filepath.Join(b.TempDir(), "events.db"), Fdatasync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		appendLoop(b, s, "one", domain.NoStream())
	})
	b.Run("raw_fdatasync", func(b *testing.B) {
		if _, err := msqlite.Fdatasync(true); err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { msqlite.Fdatasync(false) }) //nolint:errcheck // restoring the default
		r := openRaw(b, filepath.Join(b.TempDir(), "events.db"))
		r.run(b, r.streams(b, []string{"one"}, 1), 1)
	})
}

// BenchmarkAppend64Writers: 64 concurrent writers on different streams,
// durable, fresh store. The raw ceiling commits 64 rows per transaction,
// the batch group commit sees with 64 writers.
func BenchmarkAppend64Writers(b *testing.B) {
	const writers = 64
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, filepath.Join(b.TempDir(), "events.db"))
		parallelAppends(b, s, writers, names("w", writers), noStreams(writers))
	})
	b.Run("raw", func(b *testing.B) {
		r := openRaw(b, filepath.Join(b.TempDir(), "events.db"))
		r.run(b, r.streams(b, names("w", writers), 1), writers)
	})
}

// fixture is the 1M-event store shared by the benchmarks that need it.
var fixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// fixturePath returns a store holding fixtureEvents events: one stream
// "long" of longStream events and fixtureSpread streams "fx-N" of 1,000,
// interleaved in the global log. It is built once per test binary run.
func fixturePath(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("the 1M-event fixture is not built in -short mode")
	}
	fixture.once.Do(func() {
		start := time.Now()
		fixture.dir, fixture.err = os.MkdirTemp("", "perfledger-bench-*")
		if fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "events.db")
		fixture.err = buildFixture(fixture.path)
		fmt.Fprintf(os.Stderr, "built the %d-event fixture in %s\n", fixtureEvents, time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		b.Fatal(fixture.err)
	}
	return fixture.path
}

// buildFixture writes the fixture with bulk inserts (synchronous off,
// 20,000 rows per transaction), valid hash chains included.
func buildFixture(path string) error {
	s, err := Open(context.Background(), Config{Path: path})
	if err != nil {
		return err
	}
	s.Close()
	db, err := sql.Open("sqlite", fileURI(path)+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-65536)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	type st struct {
		name string
		rev  uint64
		hash string
	}
	streams := []*st{{name: "long"}}
	for _, n := range names("fx", fixtureSpread) {
		streams = append(streams, &st{name: n})
	}
	longEvery := fixtureEvents / longStream // every 10th event is the long stream's
	tmpl := benchEvents(1024)
	now := time.Now().UTC()
	var meta []byte
	ins, err := db.Prepare("INSERT INTO events (position, stream_id, revision, meta, data) VALUES (?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	defer ins.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	insert := tx.Stmt(ins)
	for pos := 1; pos <= fixtureEvents; pos++ {
		var sid int
		if pos%longEvery == 0 {
			sid = 0
		} else {
			sid = 1 + (pos-pos/longEvery)%fixtureSpread
		}
		stream := streams[sid]
		ne := tmpl[pos%len(tmpl)]
		e := domain.Event{ID: domain.NewID(), Type: ne.Type, Stream: stream.name, Revision: stream.rev,
			Data: ne.Data, OccurredAt: ne.OccurredAt, RecordedAt: now, Actor: ne.Actor,
			CorrelationID: ne.CorrelationID, CausationID: ne.CausationID}
		domain.Seal(stream.hash, &e)
		meta = encodeMeta(meta[:0], &e)
		if _, err := insert.Exec(pos, sid+1, stream.rev, meta, e.Data); err != nil {
			return err
		}
		stream.rev++
		stream.hash = e.Hash
		if pos%20000 == 0 {
			if err := tx.Commit(); err != nil {
				return err
			}
			if tx, err = db.Begin(); err != nil {
				return err
			}
			insert = tx.Stmt(ins)
		}
	}
	for i, stream := range streams {
		if _, err := tx.Exec("INSERT INTO streams (id, name, last_revision, last_hash) VALUES (?, ?, ?, ?)",
			i+1, stream.name, stream.rev-1, rawHash(stream.hash)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// BenchmarkAppend64Writers1M: as BenchmarkAppend64Writers, on a store
// already holding 1,000,000 events, each writer appending to an existing
// stream of 1,000 events.
func BenchmarkAppend64Writers1M(b *testing.B) {
	const writers = 64
	path := fixturePath(b)
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, path)
		streams := names("fx", writers)
		tips := make([]domain.ExpectedRevision, writers)
		for i, name := range streams {
			tips[i] = tipOf(b, s, name)
		}
		parallelAppends(b, s, writers, streams, tips)
	})
	b.Run("raw", func(b *testing.B) {
		r := openRaw(b, path)
		r.run(b, r.streams(b, names("fx", 2*writers)[writers:], 0), writers)
	})
}

// tipOf returns the expected revision that appends at the end of stream.
func tipOf(b *testing.B, s *Store, stream string) domain.ExpectedRevision {
	exp := domain.NoStream()
	for e, err := range s.ReadStream(context.Background(), stream, 0) {
		if err != nil {
			b.Fatal(err)
		}
		exp = domain.Exact(e.Revision)
	}
	return exp
}

// BenchmarkAppendLongStream: one writer appending to a stream that already
// holds 100,000 events, against appending to a fresh stream of the same
// 1M-event store.
func BenchmarkAppendLongStream1M(b *testing.B) {
	path := fixturePath(b)
	b.Run("long_stream", func(b *testing.B) {
		s := benchStore(b, path)
		var last uint64
		for e, err := range s.ReadStream(context.Background(), "long", longStream-1) {
			if err != nil {
				b.Fatal(err)
			}
			last = e.Revision
		}
		if last < longStream-1 {
			b.Fatalf("long stream ends at %d", last)
		}
		appendLoop(b, s, "long", domain.Exact(last))
	})
	b.Run("fresh_stream", func(b *testing.B) {
		s := benchStore(b, path)
		appendLoop(b, s, "fresh-"+domain.NewID(), domain.NoStream())
	})
	b.Run("raw", func(b *testing.B) {
		r := openRaw(b, path)
		r.run(b, r.streams(b, []string{"long"}, 0), 1)
	})
}

// BenchmarkReadAll1M: reading the global log of the 1M-event store, decoded
// into domain.Event, warm cache. The raw ceiling scans the same rows with
// database/sql without decoding them.
func BenchmarkReadAll1M(b *testing.B) {
	path := fixturePath(b)
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, path)
		ctx := context.Background()
		b.ResetTimer()
		n := 0
		var sum uint64
		for n < b.N {
			for e, err := range s.ReadAll(ctx, domain.Position{}) {
				if err != nil {
					b.Fatal(err)
				}
				sum += uint64(len(e.Data)) + uint64(len(e.Stream))
				if n++; n == b.N {
					break
				}
			}
		}
		b.StopTimer()
		if sum == 0 {
			b.Fatal("read nothing")
		}
		reportRate(b, int64(n))
	})
	b.Run("raw", func(b *testing.B) {
		db, err := sql.Open("sqlite", fileURI(path)+"?_pragma=query_only(1)&_pragma=cache_size(-4096)") // the store's read settings
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.ResetTimer()
		n := 0
		for n < b.N {
			rows, err := db.Query("SELECT position, stream_id, revision, meta, data FROM events WHERE position > 0 ORDER BY position")
			if err != nil {
				b.Fatal(err)
			}
			var (
				pos, sid, rev int64
				meta, data    sql.RawBytes
			)
			for rows.Next() {
				if err := rows.Scan(&pos, &sid, &rev, &meta, &data); err != nil {
					b.Fatal(err)
				}
				if n++; n == b.N {
					break
				}
			}
			rows.Close()
		}
		b.StopTimer()
		reportRate(b, int64(n))
	})
}
