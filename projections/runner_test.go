package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"perfledger/domain"
	"perfledger/projections"
)

// openDB opens a fresh read-model database in the test's temporary directory.
func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "views.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)&_pragma=synchronous(normal)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// tally is a test projector: one row per event it applies (a primary key on
// the position, so applying an event twice fails), and an optional failure.
type tally struct {
	prefix  string
	version int
	fail    func(e projections.Envelope) error
}

func (t *tally) Name() string { return "tally" }
func (t *tally) Version() int { return t.version }

func (t *tally) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.prefix+`events (pos INTEGER PRIMARY KEY, id TEXT NOT NULL, member TEXT NOT NULL)`)
	return err
}

func (t *tally) Apply(ctx context.Context, tx *sql.Tx, batch []projections.Envelope) error {
	for _, e := range batch {
		if t.fail != nil {
			if err := t.fail(e); err != nil {
				return err
			}
		}
		a, ok := e.Payload.(*domain.ActivityLogged)
		if !ok {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.prefix+`events (pos, id, member) VALUES (?, ?, ?)`,
			int64(e.Position.Commit), e.ID, a.MemberID); err != nil {
			return err
		}
	}
	return nil
}

// rows lists the positions in the tally's tables.
func (t *tally) rows(tb testing.TB, db *sql.DB) []uint64 {
	tb.Helper()
	return positionsOf(tb, db, `SELECT pos FROM `+t.prefix+`events ORDER BY pos`)
}

// positionsOf returns the numbers a query selects.
func positionsOf(tb testing.TB, db *sql.DB, query string) []uint64 {
	tb.Helper()
	rs, err := db.Query(query)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var out []uint64
	for rs.Next() {
		var p uint64
		if err := rs.Scan(&p); err != nil {
			tb.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rs.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func tallyFactory(version int, fail func(projections.Envelope) error) projections.Factory {
	return func(prefix string) projections.Projector {
		return &tally{prefix: prefix, version: version, fail: fail}
	}
}

// activity returns the stored event at dense position pos: an activity of
// member m<pos%3>.
func activity(tb testing.TB, pos uint64) domain.Event {
	tb.Helper()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(pos) * time.Minute)
	typ, data, err := domain.EncodePayload(&domain.ActivityLogged{
		ActivityID: fmt.Sprintf("a%d", pos), MemberID: fmt.Sprintf("m%d", pos%3),
		Kind: domain.ActivityCall, Quantity: 1, OccurredAt: at,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return domain.Event{
		ID: domain.EventID(fmt.Sprintf("cmd-%d", pos), 0), Type: typ, Stream: fmt.Sprintf("member-m%d", pos%3),
		Position: domain.Seq(pos), Data: data, OccurredAt: at, RecordedAt: at,
	}
}

// failAt is a tally failure hook that fails with err at position pos.
func failAt(pos uint64, err error) func(projections.Envelope) error {
	return func(e projections.Envelope) error {
		if e.Position == domain.Seq(pos) {
			return err
		}
		return nil
	}
}

// activityLog is a log of n activities (activity at positions 1…n).
func activityLog(tb testing.TB, n uint64) *sliceLog {
	l := &sliceLog{}
	l.add(activities(tb, 1, n)...)
	return l
}

func activities(tb testing.TB, from, to uint64) []domain.Event {
	var out []domain.Event
	for p := from; p <= to; p++ {
		out = append(out, activity(tb, p))
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

// sliceLog is a fixed global log for the direct replay path.
type sliceLog struct {
	mu     sync.Mutex
	events []domain.Event
}

func (l *sliceLog) add(es ...domain.Event) {
	l.mu.Lock()
	l.events = append(l.events, es...)
	l.mu.Unlock()
}

func (l *sliceLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		l.mu.Lock()
		es := slices.Clone(l.events)
		l.mu.Unlock()
		for _, e := range es {
			if !after.Less(e.Position) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

func newRunner(tb testing.TB, db *sql.DB, fs ...projections.Factory) *projections.Runner {
	tb.Helper()
	return newRunnerBatch(tb, db, 7, fs...)
}

// newRunnerBatch is newRunner with replay transactions of batch events.
func newRunnerBatch(tb testing.TB, db *sql.DB, batch int, fs ...projections.Factory) *projections.Runner {
	tb.Helper()
	r, err := projections.NewRunner(context.Background(), projections.RunnerConfig{DB: db, Projections: fs, BatchSize: batch})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func current(tb testing.TB, r *projections.Runner) *tally {
	tb.Helper()
	t, ok := r.Current("tally").(*tally)
	if !ok {
		tb.Fatalf("Current(tally) = %T", r.Current("tally"))
	}
	return t
}

func TestApply(t *testing.T) {
	ctx := context.Background()
	t.Run("redelivered events are skipped", func(t *testing.T) {
		db := openDB(t)
		r := newRunner(t, db, tallyFactory(1, nil))
		if err := r.Apply(ctx, "tally", activities(t, 1, 3)); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, "tally", activities(t, 2, 5)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seq(1, 5), current(t, r).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		got, err := r.Checkpoint("tally")
		if err != nil {
			t.Fatal(err)
		}
		if got != domain.Seq(5) {
			t.Errorf("checkpoint = %v, want 5", got)
		}
	})
	t.Run("a failing batch leaves rows and checkpoint as they were", func(t *testing.T) {
		db := openDB(t)
		boom := errors.New("boom")
		r := newRunner(t, db, tallyFactory(1, failAt(5, boom)))
		if err := r.Apply(ctx, "tally", activities(t, 1, 3)); err != nil {
			t.Fatal(err)
		}
		if err := r.Apply(ctx, "tally", activities(t, 4, 6)); !errors.Is(err, boom) {
			t.Fatalf("Apply = %v, want boom", err)
		}
		if diff := cmp.Diff(seq(1, 3), current(t, r).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if got, _ := r.Checkpoint("tally"); got != domain.Seq(3) {
			t.Errorf("checkpoint = %v, want 3", got)
		}
	})
	t.Run("an unknown projection is an error", func(t *testing.T) {
		r := newRunner(t, openDB(t), tallyFactory(1, nil))
		if err := r.Apply(ctx, "nope", nil); !errors.Is(err, projections.ErrUnknownProjection) {
			t.Errorf("Apply = %v, want ErrUnknownProjection", err)
		}
	})
	t.Run("events of unknown types pass the checkpoint", func(t *testing.T) {
		db := openDB(t)
		r := newRunner(t, db, tallyFactory(1, nil))
		odd := activity(t, 2)
		odd.Type = "SomethingNew.v9"
		if err := r.Apply(ctx, "tally", []domain.Event{activity(t, 1), odd}); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]uint64{1}, current(t, r).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if got, _ := r.Checkpoint("tally"); got != domain.Seq(2) {
			t.Errorf("checkpoint = %v, want 2", got)
		}
	})
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	t.Run("the checkpoint and rows survive", func(t *testing.T) {
		db := openDB(t)
		r := newRunner(t, db, tallyFactory(1, nil))
		if err := r.Apply(ctx, "tally", activities(t, 1, 4)); err != nil {
			t.Fatal(err)
		}
		r2 := newRunner(t, db, tallyFactory(1, nil))
		if got, _ := r2.Checkpoint("tally"); got != domain.Seq(4) {
			t.Errorf("checkpoint = %v, want 4", got)
		}
		if diff := cmp.Diff(seq(1, 4), current(t, r2).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("a new version starts from scratch in fresh tables", func(t *testing.T) {
		db := openDB(t)
		log := activityLog(t, 20)
		r := newRunner(t, db, tallyFactory(1, nil))
		if err := r.CatchUp(ctx, log); err != nil {
			t.Fatal(err)
		}
		old := current(t, r)
		r2 := newRunner(t, db, tallyFactory(2, nil))
		if diff := cmp.Diff([]string{"tally"}, r2.Reset()); diff != "" {
			t.Errorf("Reset (-want +got):\n%s", diff)
		}
		if got, _ := r2.Checkpoint("tally"); !got.IsZero() {
			t.Errorf("checkpoint after version change = %v, want zero", got)
		}
		if current(t, r2).prefix == old.prefix {
			t.Errorf("prefix stayed %q", old.prefix)
		}
		if n := tableCount(t, db, old.prefix); n != 0 {
			t.Errorf("%d tables of the old version left", n)
		}
		if err := r2.CatchUp(ctx, log); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seq(1, 20), current(t, r2).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if st := r2.Positions(); st[0].Version != 2 || st[0].Position != domain.Seq(20) {
			t.Errorf("status = %+v, want version 2 at 20", st[0])
		}
	})
}

func tableCount(tb testing.TB, db *sql.DB, prefix string) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?`,
		len(prefix), prefix).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	t.Run("returns once every projection passed the position", func(t *testing.T) {
		db := openDB(t)
		r := newRunner(t, db, tallyFactory(1, nil))
		done := make(chan error, 1)
		go func() { done <- r.WaitFor(ctx, domain.Seq(3)) }()
		if err := r.Apply(ctx, "tally", activities(t, 1, 2)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("WaitFor returned %v at position 2", err)
		default:
		}
		if err := r.Apply(ctx, "tally", activities(t, 3, 4)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Errorf("WaitFor = %v", err)
		}
	})
	t.Run("ends with the context", func(t *testing.T) {
		r := newRunner(t, openDB(t), tallyFactory(1, nil))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.WaitFor(cctx, domain.Seq(1)); !errors.Is(err, context.Canceled) {
			t.Errorf("WaitFor = %v, want context.Canceled", err)
		}
	})
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	t.Run("swaps to fresh tables holding the whole log", func(t *testing.T) {
		db := openDB(t)
		log := activityLog(t, 50)
		r := newRunner(t, db, tallyFactory(1, nil))
		// The serving instance saw only part of the log.
		if err := r.Apply(ctx, "tally", activities(t, 1, 30)); err != nil {
			t.Fatal(err)
		}
		old := current(t, r)
		if err := r.Rebuild(ctx, log); err != nil {
			t.Fatal(err)
		}
		fresh := current(t, r)
		if fresh.prefix == old.prefix {
			t.Fatalf("prefix stayed %q", old.prefix)
		}
		if diff := cmp.Diff(seq(1, 50), fresh.rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if n := tableCount(t, db, old.prefix); n != 0 {
			t.Errorf("%d old tables left", n)
		}
		// Live events continue on the new instance, redeliveries skipped.
		if err := r.Apply(ctx, "tally", activities(t, 31, 52)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seq(1, 52), fresh.rows(t, db)); diff != "" {
			t.Errorf("rows after live (-want +got):\n%s", diff)
		}
		// The swap is durable.
		r2 := newRunner(t, db, tallyFactory(1, nil))
		if got := current(t, r2).prefix; got != fresh.prefix {
			t.Errorf("after reopen prefix = %q, want %q", got, fresh.prefix)
		}
	})
	t.Run("with live writes meanwhile, ends equal to the log", func(t *testing.T) {
		db := openDB(t)
		log := activityLog(t, 200)
		r := newRunner(t, db, tallyFactory(1, nil))
		if err := r.CatchUp(ctx, log); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		errs := make(chan error, 2)
		go func() {
			defer wg.Done()
			for p := uint64(201); p <= 400; p += 10 {
				es := activities(t, p, p+9)
				log.add(es...)
				if err := r.Apply(ctx, "tally", es); err != nil {
					errs <- err
					return
				}
			}
		}()
		if err := r.Rebuild(ctx, log, "tally"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if diff := cmp.Diff(seq(1, 400), current(t, r).rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
	t.Run("a failing rebuild leaves the serving instance", func(t *testing.T) {
		db := openDB(t)
		log := activityLog(t, 30)
		var failing bool
		r := newRunner(t, db, tallyFactory(1, func(e projections.Envelope) error {
			if failing && e.Position == domain.Seq(20) {
				return errors.New("boom")
			}
			return nil
		}))
		if err := r.CatchUp(ctx, log); err != nil {
			t.Fatal(err)
		}
		old := current(t, r)
		failing = true
		if err := r.Rebuild(ctx, log); err == nil {
			t.Fatal("Rebuild succeeded, want the failure")
		}
		if got := current(t, r); got != old {
			t.Errorf("serving instance changed to %q", got.prefix)
		}
		if n := tableCount(t, db, "tally_g2_"); n != 0 {
			t.Errorf("%d tables of the failed rebuild left", n)
		}
		if diff := cmp.Diff(seq(1, 30), old.rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

func TestMarkStuck(t *testing.T) {
	ctx := context.Background()
	r := newRunner(t, openDB(t), tallyFactory(1, nil))
	r.MarkStuck("tally", domain.Seq(2), errors.New("boom"))
	want := projections.Status{Name: "tally", Prefix: "tally_g1_", Version: 1, StuckAt: domain.Seq(2), Err: "boom"}
	if diff := cmp.Diff([]projections.Status{want}, r.Positions()); diff != "" {
		t.Errorf("stuck status (-want +got):\n%s", diff)
	}
	if err := r.Apply(ctx, "tally", activities(t, 1, 2)); err != nil {
		t.Fatal(err)
	}
	want = projections.Status{Name: "tally", Prefix: "tally_g1_", Version: 1, Position: domain.Seq(2), Healthy: true}
	if diff := cmp.Diff([]projections.Status{want}, r.Positions()); diff != "" {
		t.Errorf("status after passing (-want +got):\n%s", diff)
	}
}

// A read model no longer registered (retired, or merged into another) has
// its tables and checkpoints dropped by DropRetired; the registered ones and
// the policies' checkpoints stay.
func TestDropRetiredForgetsUnregisteredReadModels(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	log := activityLog(t, 5)
	r1, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db,
		Projections: []projections.Factory{tallyFactory(1, nil), projections.NewHonour}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if err := r1.SavePolicyCheckpoint(ctx, "bonus", domain.Seq(5)); err != nil {
		t.Fatal(err)
	}
	count := func(like string) int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name LIKE ?`, like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count("tally_%") == 0 || count("honour_%") == 0 {
		t.Fatal("the read models made no tables")
	}
	r2, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db, Projections: []projections.Factory{projections.NewHonour}})
	if err != nil {
		t.Fatal(err)
	}
	retired, err := r2.DropRetired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(retired) != 1 || retired[0] != "tally" {
		t.Fatalf("retired %v, want [tally]", retired)
	}
	if n := count("tally_%"); n != 0 {
		t.Fatalf("%d tables of the retired read model remain", n)
	}
	if count("honour_%") == 0 {
		t.Fatal("the registered read model lost its tables")
	}
	if p, err := r2.PolicyCheckpoint(ctx, "bonus"); err != nil || p != domain.Seq(5) {
		t.Fatalf("policy checkpoint %v (%v), want 5", p, err)
	}
	if again, err := r2.DropRetired(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second DropRetired: %v %v, want nothing", again, err)
	}
}

// A replay into empty instances builds their query-only indexes at the end;
// one lost (a replay cut short) comes back when the runner opens again.
func TestQueryIndexesAfterReplayAndAtStart(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	log := activityLog(t, 20)
	open := func() *projections.Runner {
		r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db, BatchSize: 7,
			Projections: []projections.Factory{projections.NewAudit, projections.NewLeaderboard}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	indexes := func() map[string]bool {
		rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND (name LIKE '%audit_stream' OR name LIKE '%totals_rank')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[n] = true
		}
		return out
	}
	r := open()
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	got := indexes()
	if !got["audit_g1_audit_stream"] || !got["leaderboard_g1_totals_rank"] {
		t.Fatalf("indexes after the replay: %v", got)
	}
	page, err := r.Current("audit").(*projections.Audit).Trail(ctx, db, projections.AuditQuery{Stream: "member-m1"})
	if err != nil || len(page.Items) == 0 {
		t.Fatalf("trail of member-m1 after the replay: %d items, %v", len(page.Items), err)
	}
	if _, err := db.Exec(`DROP INDEX audit_g1_audit_stream`); err != nil {
		t.Fatal(err)
	}
	open()
	if !indexes()["audit_g1_audit_stream"] {
		t.Fatal("a lost query index is not created again at start")
	}
}

// brokenLog yields the events of a sliceLog up to a position, then fails.
type brokenLog struct {
	log   *sliceLog
	until uint64
}

var errLogBroken = errors.New("log broken")

func (l brokenLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.log.ReadAll(ctx, after) {
			if err == nil && e.Position.Commit > l.until {
				err = errLogBroken
			}
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// The log is read and decoded ahead of the replay, in runs: a read error
// stops the replay with the rows of every batch before it committed (and no
// more), and the next replay goes on from there.
func TestCatchUpStopsAtAReadError(t *testing.T) {
	ctx := context.Background()
	log := activityLog(t, 3000)
	db := openDB(t)
	r := newRunner(t, db, tallyFactory(1, nil))
	err := r.CatchUp(ctx, brokenLog{log: log, until: 2000})
	if !errors.Is(err, errLogBroken) {
		t.Fatalf("CatchUp = %v, want the log's error", err)
	}
	got, _ := r.Checkpoint("tally")
	if got.Commit > 2000 {
		t.Errorf("checkpoint %v is past the read error", got)
	}
	if diff := cmp.Diff(seq(1, got.Commit), current(t, r).rows(t, db)); diff != "" {
		t.Errorf("rows after the error (-want +got):\n%s", diff)
	}
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seq(1, 3000), current(t, r).rows(t, db)); diff != "" {
		t.Errorf("rows after the second replay (-want +got):\n%s", diff)
	}
}

// A long replay transaction gives a projector that is not a Batcher its
// events in several Apply calls: all of them, once each, in order.
func TestCatchUpLongTransaction(t *testing.T) {
	ctx := context.Background()
	log := activityLog(t, 20000)
	db := openDB(t)
	r := newRunnerBatch(t, db, 1<<20, tallyFactory(1, nil))
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(seq(1, 20000), current(t, r).rows(t, db)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if got, _ := r.Checkpoint("tally"); got != domain.Seq(20000) {
		t.Errorf("checkpoint = %v, want 20000", got)
	}
}

// A replay that stops on a failing read model stops its reading goroutine
// too.
func TestCatchUpFailureLeavesNoReader(t *testing.T) {
	ctx := context.Background()
	log := activityLog(t, 5000)
	db := openDB(t)
	boom := errors.New("boom")
	r := newRunner(t, db, tallyFactory(1, failAt(700, boom)))
	before := runtime.NumGoroutine()
	for range 5 {
		if err := r.CatchUp(ctx, log); !errors.Is(err, boom) {
			t.Fatalf("CatchUp = %v, want the read model's error", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed replays, %d before", n, before)
	}
}

// cancelling is a read model that cancels a context in the middle of
// applying a batch, at the position its trigger names, and goes on applying
// the batch.
type cancelling struct {
	projections.Projector
	at *cancelAt
}

type cancelAt struct {
	pos    domain.Position
	cancel context.CancelFunc
}

func (c *cancelling) Apply(ctx context.Context, tx *sql.Tx, batch []projections.Envelope) error {
	for i, e := range batch {
		if e.Position == c.at.pos {
			if err := c.Projector.Apply(ctx, tx, batch[:i]); err != nil {
				return err
			}
			c.at.cancel()
			return c.Projector.Apply(ctx, tx, batch[i:])
		}
	}
	return c.Projector.Apply(ctx, tx, batch)
}

// TestCancelledApplyCommitsNoPartOfItsBatch: a replay or a live batch
// cancelled while a read model applies it (its statements do not watch the
// context: the transaction does) stops with the context's error, keeps what
// was committed before, and a later catch-up or delivery finishes from there.
func TestCancelledApplyCommitsNoPartOfItsBatch(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	at := &cancelAt{pos: domain.Seq(700), cancel: cancel}
	audit := func(prefix string) projections.Projector {
		return &cancelling{Projector: projections.NewAudit(prefix), at: at}
	}
	// A replay's transaction takes whole runs of 512 events: here 1–512,
	// 513–1024 (cancelled) and 1025–1200.
	r := newRunnerBatch(t, db, 100, audit)
	log := activityLog(t, 1200)
	if err := r.CatchUp(ctx, log); !errors.Is(err, context.Canceled) {
		t.Fatalf("CatchUp cancelled = %v, want context.Canceled", err)
	}
	var table string
	if err := db.QueryRow(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit%audit'`).Scan(&table); err != nil {
		t.Fatal(err)
	}
	check := func(when string, last uint64) {
		t.Helper()
		if diff := cmp.Diff(seq(1, last), positionsOf(t, db, `SELECT position_commit FROM `+table+` ORDER BY 1`)); diff != "" {
			t.Fatalf("rows %s (-want +got):\n%s", when, diff)
		}
		if cp, err := r.Checkpoint("audit"); err != nil || cp != domain.Seq(last) {
			t.Fatalf("checkpoint %s: %v, %v; want %d", when, cp, err, last)
		}
	}
	check("after the cancelled replay", 512)
	if err := r.CatchUp(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	check("after catching up again", 1200)

	live := activities(t, 1201, 1400)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	at.pos, at.cancel = domain.Seq(1300), cancel
	if err := r.Apply(ctx, "audit", live); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply cancelled = %v, want context.Canceled", err)
	}
	check("after the cancelled live batch", 1200)
	if err := r.Apply(context.Background(), "audit", live); err != nil {
		t.Fatal(err)
	}
	check("after the live batch delivered again", 1400)
}
