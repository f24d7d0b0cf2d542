package bus_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
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
)

// TestCrashChild is the projecting process of TestCrash; it does nothing
// unless started by it.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("run by TestCrash only")
	}
	db := openDB(t, os.Getenv(envCrashDB))
	mark := os.Getenv(envCrashMark)
	// The tally blocks, inside an open transaction, in a batch past event
	// crashAt, after it has written rows of the batch: the parent kills it
	// there.
	slow := func(e projections.Envelope) error {
		if e.Position.Commit >= crashAt {
			if err := os.WriteFile(mark, []byte(e.Position.String()), 0o600); err != nil {
				return err
			}
			time.Sleep(time.Minute)
		}
		return nil
	}
	h := start(t, crashStore(t, os.Getenv(envCrashLog)), db, bus.Config{MaxBatch: 50}, crashFactories(slow)...)
	h.waitFor(t, domain.Seq(1<<40)) // never reached: killed first
}

func TestCrash(t *testing.T) {
	if os.Getenv(envCrashChild) != "" {
		t.Skip("inside the child")
	}
	t.Run("after SIGKILL mid-batch and a restart, queries equal a from-scratch rebuild", func(t *testing.T) {
		dir := t.TempDir()
		path, mark, logPath := filepath.Join(dir, "views.db"), filepath.Join(dir, "mark"), filepath.Join(dir, "events.db")
		log := crashStore(t, logPath)
		if err := generate(context.Background(), log, 900); err != nil {
			t.Fatal(err)
		}
		total, head := countAll(t, log)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDB+"="+path, envCrashMark+"="+mark, envCrashLog+"="+logPath)
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
				t.Fatalf("child exited before the crash point: %v", err)
			case <-deadline:
				cmd.Process.Kill()
				t.Fatal("child never reached the crash point")
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-exited; err == nil {
			t.Fatal("the child exited normally; it should have been killed")
		}

		// Restart on the crashed database.
		db := openDB(t, path)
		h := start(t, log, db, bus.Config{}, crashFactories(nil)...)
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

		// The tally was killed inside a batch past 1200, after committing
		// some batches: the restart resumed from its checkpoint.
		if got := killedAt[0].Position.Commit; got == 0 || got >= crashAt {
			t.Errorf("tally checkpoint at the kill = %d, want within (0, %d)", got, crashAt)
		}
		sameTables(t, fresh, r, db, h.runner)
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
	})
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
	for _, st := range want.Positions() {
		w := projectionstest.Tables(tb, wantDB, projectionstest.Prefix(tb, wantDB, st.Name))
		rows := 0
		for _, r := range w {
			rows += len(r)
		}
		if rows == 0 {
			tb.Errorf("%s holds no rows at all", st.Name)
		}
		if diff := cmp.Diff(w, projectionstest.Tables(tb, gotDB, projectionstest.Prefix(tb, gotDB, st.Name))); diff != "" {
			tb.Errorf("%s tables (-rebuilt +live):\n%s", st.Name, diff)
		}
	}
}
