package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// separateDBs are a main read-model database, a database of its own for
// some projections (RunnerConfig.Separate), and a read pool of one
// connection that attaches them all, as `ledger` opens them.
type separateDBs struct {
	main     *sql.DB
	separate map[string]*sql.DB
	read     *sql.DB
}

func openSeparate(tb testing.TB, names ...string) separateDBs {
	tb.Helper()
	return openSeparateIn(tb, tb.TempDir(), "journal_mode(wal)&_pragma=busy_timeout(10000)&_pragma=synchronous(normal)", names...)
}

// openSeparateIn is openSeparate in dir, every database opened with
// pragmas (the _pragma values of the DSN, joined by &_pragma=).
func openSeparateIn(tb testing.TB, dir, pragmas string, names ...string) separateDBs {
	tb.Helper()
	open := func(file string) *sql.DB {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, file)+"?_pragma="+pragmas)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db.Close() })
		return db
	}
	d := separateDBs{main: open("views.db"), separate: map[string]*sql.DB{}}
	d.read = open("views.db")
	d.read.SetMaxOpenConns(1)
	d.read.SetMaxIdleConns(1)
	for _, n := range names {
		d.separate[n] = open("views-" + n + ".db")
		if err := d.separate[n].Ping(); err != nil { // creates the file
			tb.Fatal(err)
		}
		if _, err := d.read.Exec(`ATTACH DATABASE ? AS ?`, "file:"+filepath.Join(dir, "views-"+n+".db"), n); err != nil {
			tb.Fatal(err)
		}
	}
	return d
}

// close closes every pool, the reader first.
func (d separateDBs) close() {
	d.read.Close()
	d.main.Close()
	for _, db := range d.separate {
		db.Close()
	}
}

func (d separateDBs) runner(tb testing.TB, batch int, fs ...projections.Factory) *projections.Runner {
	tb.Helper()
	r, err := projections.NewRunner(context.Background(), projections.RunnerConfig{DB: d.main, ReadDB: d.read,
		Separate: d.separate, Projections: fs, BatchSize: batch})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// tables returns every table of every database, as projectionstest.Tables
// (the runner's tables of each database together).
func (d separateDBs) tables(tb testing.TB) map[string][]string {
	tb.Helper()
	out := projectionstest.Tables(tb, d.main, "")
	for _, n := range slices.Sorted(maps.Keys(d.separate)) {
		for table, rows := range projectionstest.Tables(tb, d.separate[n], "") {
			if have, ok := out[table]; ok {
				rows = append(have, rows...)
				slices.Sort(rows)
			}
			out[table] = rows
		}
	}
	return out
}

// tableNames lists the tables of db.
func tableNames(tb testing.TB, db *sql.DB) []string {
	tb.Helper()
	return slices.Sorted(maps.Keys(projectionstest.Tables(tb, db, "")))
}

// TestSeparateDatabaseHoldsTheSameReadModels: with the leaderboard in a
// database of its own, replayed on its own goroutine and then fed live
// batches, every table holds what it holds with one database, and queries
// through the read pool find its tables.
func TestSeparateDatabaseHoldsTheSameReadModels(t *testing.T) {
	ctx := context.Background()
	log := demoSliceLog(t, 12, 2)
	all := append(projections.All(), projections.PolicyFacts)

	one := openDB(t)
	single := newRunnerBatch(t, one, 500, all...)
	if err := single.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}

	d := openSeparate(t, "leaderboard")
	split := d.runner(t, 500, all...)
	cut := len(log.events) * 2 / 3
	head := &sliceLog{}
	head.add(log.events[:cut]...)
	if err := split.CatchUp(ctx, head); err != nil {
		t.Fatal(err)
	}
	for _, name := range split.Names() { // the rest as the live flow applies it
		for rest := log.events[cut:]; len(rest) > 0; {
			n := min(len(rest), 97)
			if err := split.Apply(ctx, name, rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	if diff := cmp.Diff(projectionstest.Tables(t, one, ""), d.tables(t)); diff != "" {
		t.Fatalf("tables with the leaderboard apart differ from one database's (-one +apart):\n%s", diff)
	}
	for _, table := range tableNames(t, d.main) {
		if strings.HasPrefix(table, "leaderboard_") {
			t.Errorf("the main database holds %s", table)
		}
	}
	for _, table := range tableNames(t, d.separate["leaderboard"]) {
		if !strings.HasPrefix(table, "leaderboard_") && !strings.HasPrefix(table, "projection_") {
			t.Errorf("the leaderboard's database holds %s", table)
		}
	}
	q := projections.BoardQuery{Metric: projections.MetricRevenue, Period: "2025-01", Scope: projections.ScopeCompany, Limit: 50}
	want, err := single.Current("leaderboard").(*projections.Leaderboard).Board(ctx, single.DB(), q)
	if err != nil {
		t.Fatal(err)
	}
	got, err := split.Current("leaderboard").(*projections.Leaderboard).Board(ctx, split.DB(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Rows) == 0 {
		t.Fatal("the board is empty: the log does not test it")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("board through the read pool (-one +apart):\n%s", diff)
	}
}

// TestSeparateDatabaseMovesOutRebuildsAndDrops: a read model given a
// database of its own leaves the main one (where it lived before) and starts
// afresh in its own; a rebuild swaps it there; DropRetired drops from each
// database what does not live in it.
func TestSeparateDatabaseMovesOutRebuildsAndDrops(t *testing.T) {
	ctx := context.Background()
	log := activityLog(t, 40)
	d := openSeparate(t, "tally")
	before := newRunner(t, d.main, tallyFactory(1, nil), projections.NewAudit)
	if err := before.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if n := tableCount(t, d.main, "tally_"); n == 0 {
		t.Fatal("no tally tables in the main database to move out")
	}

	r := d.runner(t, 7, tallyFactory(1, nil), projections.NewAudit)
	if n := tableCount(t, d.main, "tally_"); n != 0 {
		t.Fatalf("the main database still holds %d tally tables", n)
	}
	var rows int
	if err := d.main.QueryRow(`SELECT count(*) FROM projection_current WHERE name = 'tally'`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the main database still names a tally instance (%d rows, %v)", rows, err)
	}
	if pos, _ := r.Checkpoint("tally"); !pos.IsZero() {
		t.Fatalf("the tally starts at %s in its own database, want the start", pos)
	}
	if pos, _ := r.Checkpoint("audit"); pos != domain.Seq(40) {
		t.Fatalf("the audit trail was moved: at %s, want 40", pos)
	}
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if got := current(t, r).rows(t, r.DB()); !slices.Equal(got, seq(1, 40)) {
		t.Fatalf("tally rows through the read pool = %v", got)
	}

	log.add(activities(t, 41, 45)...)
	if err := r.Rebuild(ctx, log); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		db     *sql.DB
		name   string
		prefix string
	}{{d.separate["tally"], "tally", "tally_g2_"}, {d.main, "audit", "audit_g2_"}} {
		if p := projectionstest.Prefix(t, c.db, c.name); p != c.prefix {
			t.Fatalf("%s serves %s after the rebuild, want %s", c.name, p, c.prefix)
		}
		old := strings.Replace(c.prefix, "_g2_", "_g1_", 1)
		if n := tableCount(t, c.db, old); n != 0 {
			t.Fatalf("%d tables of %s stay after the rebuild", n, old)
		}
	}
	if got := current(t, r).rows(t, r.DB()); !slices.Equal(got, seq(1, 45)) {
		t.Fatalf("tally rows after the rebuild = %v", got)
	}

	// A read model's instance in a database it does not live in goes.
	if _, err := d.separate["tally"].Exec(`CREATE TABLE audit_g7_audit (x); INSERT INTO projection_current VALUES ('audit', 'audit_g7_', 2, 7)`); err != nil {
		t.Fatal(err)
	}
	dropped, err := r.DropRetired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"audit"}) || tableCount(t, d.separate["tally"], "audit_") != 0 {
		t.Fatalf("DropRetired = %v, audit tables left in the tally's database: %d", dropped, tableCount(t, d.separate["tally"], "audit_"))
	}
	if n := tableCount(t, d.main, "audit_g2_"); n == 0 {
		t.Fatal("DropRetired dropped the serving audit trail")
	}
}

// TestSeparateDatabaseReplayFailure: when one database's read models fail
// during a replay, the replay reports that failure (not the others'
// cancellation), whichever database it is in.
func TestSeparateDatabaseReplayFailure(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	for _, separate := range []string{"tally", "audit"} {
		t.Run(separate+" apart", func(t *testing.T) {
			d := openSeparate(t, separate)
			r := d.runner(t, 7, tallyFactory(1, failAt(30, boom)), projections.NewAudit)
			err := r.CatchUp(ctx, activityLog(t, 2000))
			if !errors.Is(err, boom) {
				t.Fatalf("CatchUp = %v, want the tally's failure", err)
			}
			if pos, _ := r.Checkpoint("tally"); !pos.Less(domain.Seq(30)) {
				t.Fatalf("the tally is at %s, past its failure at 30", pos)
			}
		})
	}
}

// TestSeparateConfigRefused: Separate needs a ReadDB, known names and a
// pool per database.
func TestSeparateConfigRefused(t *testing.T) {
	db, other := openDB(t), openDB(t)
	fs := []projections.Factory{tallyFactory(1, nil), projections.NewAudit}
	for name, cfg := range map[string]projections.RunnerConfig{
		"no read pool":  {DB: db, Projections: fs, Separate: map[string]*sql.DB{"tally": other}},
		"unknown name":  {DB: db, ReadDB: db, Projections: fs, Separate: map[string]*sql.DB{"leaderboard": other}},
		"the main pool": {DB: db, ReadDB: db, Projections: fs, Separate: map[string]*sql.DB{"tally": db}},
		"one pool twice": {DB: db, ReadDB: db, Projections: fs,
			Separate: map[string]*sql.DB{"tally": other, "audit": other}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

// renamedTally is a tally under another name, so that a runner can run two.
type renamedTally struct {
	*tally
	name string
}

func (r renamedTally) Name() string { return r.name }

// TestLiveBatchesTakeTurnsAcrossDatabases: live batches (Apply) of read
// models in different databases never run at once, as when they shared one.
func TestLiveBatchesTakeTurnsAcrossDatabases(t *testing.T) {
	ctx := context.Background()
	var inside atomic.Int32
	var overlapped atomic.Bool
	slow := func(projections.Envelope) error {
		if inside.Add(1) > 1 {
			overlapped.Store(true)
		}
		time.Sleep(20 * time.Millisecond)
		inside.Add(-1)
		return nil
	}
	d := openSeparate(t, "tally2")
	r := d.runner(t, 7, tallyFactory(1, slow), func(prefix string) projections.Projector {
		return renamedTally{tally: &tally{prefix: prefix, version: 1, fail: slow}, name: "tally2"}
	})
	var wg sync.WaitGroup
	for _, name := range []string{"tally", "tally2"} {
		wg.Go(func() {
			for pos := uint64(1); pos <= 5; pos++ {
				if err := r.Apply(ctx, name, []domain.Event{activity(t, pos)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if overlapped.Load() {
		t.Fatal("live batches of two databases ran at once")
	}
	for _, name := range []string{"tally", "tally2"} {
		if pos, _ := r.Checkpoint(name); pos != domain.Seq(5) {
			t.Fatalf("%s is at %s, want 5", name, pos)
		}
	}
}
