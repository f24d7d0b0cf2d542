package bus_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/bus"
	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// totals sums quantities per member with an upsert: applying an event twice,
// or losing one, shows in the sums.
type totals struct{ prefix string }

func (t *totals) Name() string { return "totals" }
func (t *totals) Version() int { return 1 }

func (t *totals) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.prefix+`sums (member TEXT PRIMARY KEY, qty INTEGER NOT NULL, n INTEGER NOT NULL)`)
	return err
}

func (t *totals) Apply(ctx context.Context, tx *sql.Tx, batch []projections.Envelope) error {
	for _, e := range batch {
		a, ok := e.Payload.(*domain.ActivityLogged)
		if !ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.prefix+`sums (member, qty, n) VALUES (?, ?, 1)
			ON CONFLICT (member) DO UPDATE SET qty = qty + excluded.qty, n = n + 1`, a.MemberID, a.Quantity); err != nil {
			return err
		}
	}
	return nil
}

type sum struct {
	Member string
	Qty, N int64
}

func (t *totals) query(tb testing.TB, db *sql.DB) []sum {
	tb.Helper()
	rs, err := db.Query(`SELECT member, qty, n FROM ` + t.prefix + `sums ORDER BY member`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var out []sum
	for rs.Next() {
		var s sum
		if err := rs.Scan(&s.Member, &s.Qty, &s.N); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func totalsOf(prefix string) projections.Projector { return &totals{prefix: prefix} }

// crashStore opens the SQLite event store the parent and the child share.
func crashStore(tb testing.TB, path string) domain.EventStore {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Durability: sqlite.Relaxed})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// crashFactories are the projections of the crash test: the tally that
// blocks mid-batch in the child, the totals, and every read model.
func crashFactories(fail func(projections.Envelope) error) []projections.Factory {
	return append([]projections.Factory{tallyOf("tally", fail), totalsOf}, benchFactories()...)
}

// crashAt is where the child's tally blocks; the log is longer.
const crashAt = 500

const (
	envCrashChild = "PERFLEDGER_BUS_CRASH_CHILD"
	envCrashDB    = "PERFLEDGER_BUS_CRASH_DB"
	envCrashMark  = "PERFLEDGER_BUS_CRASH_MARK"
	envCrashLog   = "PERFLEDGER_BUS_CRASH_LOG"
	envCrashApart = "PERFLEDGER_BUS_CRASH_APART" // the leaderboard's own database, as ledger serve keeps it; "": none
)

// crashViews opens the read-model databases of the crash test: path, and
// when apart is set the leaderboard's own database there, attached to a
// read pool, as ledger serve lays them out.
func crashViews(tb testing.TB, path, apart string, fs []projections.Factory) projections.RunnerConfig {
	tb.Helper()
	dbs := map[string]string{}
	if apart != "" {
		dbs["leaderboard"] = apart
	}
	rc := viewsConfig(tb, openDB, path, dbs, 4, 1)
	rc.Projections = fs
	return rc
}

// dbOf returns the database holding the named projection's tables.
func dbOf(rc projections.RunnerConfig) func(name string) *sql.DB {
	return func(name string) *sql.DB {
		if db := rc.Separate[name]; db != nil {
			return db
		}
		return rc.DB
	}
}

// TestCrashChild is the projecting process of TestCrash; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("run by TestCrash only")
	}
	mark, apart := os.Getenv(envCrashMark), os.Getenv(envCrashApart)
	var running atomic.Pointer[projections.Runner]
	// The tally blocks, inside an open transaction, in a batch past event
	// crashAt, after it has written rows of the batch: the parent kills it
	// there. Live batches take turns across databases, so while the tally
	// blocks no other read model commits. With the leaderboard in a
	// database of its own, the tally blocks only once the leaderboard has
	// committed a batch there (it goes on past crashAt until then), and
	// blocks as soon as the leaderboard has passed crashAt: the kill finds
	// both databases part-way.
	slow := func(e projections.Envelope) error {
		if apart != "" {
			var lb domain.Position
			if r := running.Load(); r != nil {
				lb = statusOf(r.Positions(), "leaderboard").Position
			}
			if lb.IsZero() || (e.Position.Commit < crashAt && lb.Commit < crashAt) {
				return nil
			}
		} else if e.Position.Commit < crashAt {
			return nil
		}
		// Written whole, then renamed: the parent kills the child as soon
		// as it sees the mark.
		if err := os.WriteFile(mark+".new", []byte(strconv.FormatUint(e.Position.Commit, 10)), 0o600); err != nil {
			return err
		}
		if err := os.Rename(mark+".new", mark); err != nil {
			return err
		}
		time.Sleep(time.Minute)
		return nil
	}
	rc := crashViews(t, os.Getenv(envCrashDB), apart, crashFactories(slow))
	h := startWith(t, crashStore(t, os.Getenv(envCrashLog)), rc, bus.Config{MaxBatch: 50})
	running.Store(h.runner)
	h.waitFor(t, domain.Seq(1<<40)) // never reached: killed first
}

// statusOf returns the named projection's status among sts (zero: none).
func statusOf(sts []projections.Status, name string) projections.Status {
	for _, st := range sts {
		if st.Name == name {
			return st
		}
	}
	return projections.Status{}
}

func TestCrash(t *testing.T) {
	if os.Getenv(envCrashChild) != "" {
		t.Skip("inside the child")
	}
	for _, apart := range []bool{false, true} {
		name := "one database"
		if apart {
			name = "the leaderboard in a database of its own"
		}
		t.Run(name+": after SIGKILL mid-batch and a restart, queries equal a from-scratch rebuild", func(t *testing.T) {
			crashAndRestart(t, apart)
		})
	}
}

func crashAndRestart(t *testing.T, apart bool) {
	dir := t.TempDir()
	path, mark, logPath := filepath.Join(dir, "views.db"), filepath.Join(dir, "mark"), filepath.Join(dir, "events.db")
	lbPath := ""
	if apart {
		lbPath = filepath.Join(dir, "views-leaderboard.db")
	}
	log := crashStore(t, logPath)
	if err := generate(context.Background(), log, 900); err != nil {
		t.Fatal(err)
	}
	total, head := countAll(t, log)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDB+"="+path, envCrashMark+"="+mark, envCrashLog+"="+logPath,
		envCrashApart+"="+lbPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(50 * time.Second)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("child exited before the crash point: %v\n%s", err, out.Bytes())
		case <-deadline:
			_ = cmd.Process.Kill()
			err := <-exited
			t.Fatalf("child never reached the crash point (%v):\n%s", err, out.Bytes())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err == nil {
		t.Fatal("the child exited normally; it should have been killed")
	}
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatal(err)
	}
	blockedAt, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		t.Fatalf("mark %q: %v", b, err)
	}

	// Restart on the crashed databases.
	rc := crashViews(t, path, lbPath, crashFactories(nil))
	db := rc.DB
	h := startWith(t, log, rc, bus.Config{})
	killedAt := h.runner.Positions()
	h.waitFor(t, head)

	// From scratch, in a fresh database.
	fresh := openDB(t, filepath.Join(dir, "fresh.db"))
	r, err := projections.NewRunner(context.Background(), projections.RunnerConfig{
		DB: fresh, Projections: crashFactories(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Rebuild(context.Background(), log); err != nil {
		t.Fatal(err)
	}

	// The tally was killed inside the batch that holds the event it
	// blocked at, after committing some batches: the restart resumed from
	// its checkpoint.
	if got := statusOf(killedAt, "tally").Position.Commit; got == 0 || got >= blockedAt {
		t.Errorf("tally checkpoint at the kill = %d, want within (0, %d), the event it blocked at", got, blockedAt)
	}
	if apart {
		// The leaderboard had committed batches of its own database when
		// the child died, and its tables are there alone.
		if lb := statusOf(killedAt, "leaderboard").Position; lb.IsZero() || !lb.Less(head) {
			t.Errorf("leaderboard checkpoint at the kill = %s, want within (0, %s)", lb, head)
		}
		if p := projectionstest.Prefix(t, rc.Separate["leaderboard"], "leaderboard"); p == "" {
			t.Error("no leaderboard in its own database")
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name LIKE 'leaderboard%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("the main database holds %d leaderboard tables (%v)", n, err)
		}
	}
	sameTablesIn(t, fresh, r, dbOf(rc), h.runner)
	gotT, wantT := h.runner.Current("tally").(*tally), r.Current("tally").(*tally)
	if diff := cmp.Diff(wantT.rows(t, fresh), gotT.rows(t, db)); diff != "" {
		t.Errorf("tally rows (-rebuilt +restarted):\n%s", diff)
	}
	gotS, wantS := h.runner.Current("totals").(*totals), r.Current("totals").(*totals)
	if diff := cmp.Diff(wantS.query(t, fresh), gotS.query(t, db)); diff != "" {
		t.Errorf("totals (-rebuilt +restarted):\n%s", diff)
	}
	if n := len(wantT.rows(t, fresh)); n == 0 || n >= total {
		t.Errorf("rebuild holds %d activities of %d events", n, total)
	}
}

func countAll(tb testing.TB, st domain.EventStore) (int, domain.Position) {
	tb.Helper()
	n, last := 0, domain.Position{}
	for e, err := range st.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		n++
		last = e.Position
	}
	return n, last
}

// sameTables checks that every projection of got holds exactly the rows of
// the same projection of want, and that none is empty.
func sameTables(tb testing.TB, wantDB *sql.DB, want *projections.Runner, gotDB *sql.DB, got *projections.Runner) {
	tb.Helper()
	sameTablesIn(tb, wantDB, want, func(string) *sql.DB { return gotDB }, got)
}

// sameTablesIn is sameTables with got's projections in the databases
// gotDB returns for their names.
func sameTablesIn(tb testing.TB, wantDB *sql.DB, want *projections.Runner, gotDB func(name string) *sql.DB, got *projections.Runner) {
	tb.Helper()
	for _, st := range want.Positions() {
		w := projectionstest.Tables(tb, wantDB, projectionstest.Prefix(tb, wantDB, st.Name))
		rows := 0
		for _, r := range w {
			rows += len(r)
		}
		if rows == 0 {
			tb.Errorf("%s holds no rows at all", st.Name)
		}
		g := gotDB(st.Name)
		if diff := cmp.Diff(w, projectionstest.Tables(tb, g, projectionstest.Prefix(tb, g, st.Name))); diff != "" {
			tb.Errorf("%s tables (-rebuilt +live):\n%s", st.Name, diff)
		}
	}
}
