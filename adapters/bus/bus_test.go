package bus_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"perfledger/adapters/bus"
	"perfledger/adapters/esdb"
	"perfledger/adapters/esdb/esdbtest"
	"perfledger/adapters/memory"
	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
)

func openDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)&_pragma=synchronous(normal)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// tally is a test projector: a row per ActivityLogged (primary key on the
// position, so a double application fails the batch) and a failure hook.
type tally struct {
	name   string
	prefix string
	fail   func(projections.Envelope) error
}

func (t *tally) Name() string { return t.name }
func (t *tally) Version() int { return 1 }

func (t *tally) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.prefix+`events (pos INTEGER PRIMARY KEY, id TEXT NOT NULL, member TEXT NOT NULL, qty INTEGER NOT NULL)`)
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
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.prefix+`events (pos, id, member, qty) VALUES (?, ?, ?, ?)`,
			int64(e.Position.Commit), e.ID, a.MemberID, a.Quantity); err != nil {
			return err
		}
	}
	return nil
}

// row is what a tally holds per event.
type row struct {
	Pos    uint64
	ID     string
	Member string
	Qty    int64
}

func (t *tally) rows(tb testing.TB, db *sql.DB) []row {
	tb.Helper()
	rs, err := db.Query(`SELECT pos, id, member, qty FROM ` + t.prefix + `events ORDER BY pos`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.Pos, &r.ID, &r.Member, &r.Qty); err != nil {
			tb.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func tallyOf(name string, fail func(projections.Envelope) error) projections.Factory {
	return func(prefix string) projections.Projector { return &tally{name: name, prefix: prefix, fail: fail} }
}

// appendActivities appends n activities, one per append, spread over
// members, and returns the last position.
func appendActivities(tb testing.TB, s domain.EventStore, from, n int) domain.Position {
	tb.Helper()
	var last domain.Position
	for i := from; i < from+n; i++ {
		at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		typ, data, err := domain.EncodePayload(&domain.ActivityLogged{
			ActivityID: fmt.Sprintf("a%d", i), MemberID: fmt.Sprintf("m%d", i%5),
			Kind: domain.ActivityCall, Quantity: int64(i%7 + 1), OccurredAt: at,
		})
		if err != nil {
			tb.Fatal(err)
		}
		res, err := s.Append(context.Background(), fmt.Sprintf("member-m%d", i%5), domain.Any(), []domain.NewEvent{{
			ID: domain.EventID(fmt.Sprintf("cmd-%d", i), 0), Type: typ, Data: data, OccurredAt: at, Actor: "test",
		}})
		if err != nil {
			tb.Fatal(err)
		}
		last = res.Position
	}
	return last
}

// want lists the rows a tally must hold for the whole log of s.
func want(tb testing.TB, s domain.EventStore) []row {
	tb.Helper()
	var out []row
	for e, err := range s.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		pl, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			tb.Fatal(err)
		}
		if a, ok := pl.(*domain.ActivityLogged); ok {
			out = append(out, row{Pos: e.Position.Commit, ID: e.ID, Member: a.MemberID, Qty: a.Quantity})
		}
	}
	return out
}

type harness struct {
	db     *sql.DB
	runner *projections.Runner
	bus    *bus.Bus
	done   chan error
}

func start(tb testing.TB, log bus.Log, db *sql.DB, cfg bus.Config, fs ...projections.Factory) *harness {
	tb.Helper()
	return startWith(tb, log, projections.RunnerConfig{DB: db, Projections: fs}, cfg)
}

// startWith is start with the runner configured by rc (its databases).
func startWith(tb testing.TB, log bus.Log, rc projections.RunnerConfig, cfg bus.Config) *harness {
	tb.Helper()
	ctx := context.Background()
	db := rc.DB
	r, err := projections.NewRunner(ctx, rc)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Log, cfg.Runner = log, r
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval, cfg.RetryMaxInterval = time.Millisecond, 5*time.Millisecond
	}
	if cfg.ResumeMin == 0 {
		cfg.ResumeMin, cfg.ResumeMax = time.Millisecond, 20*time.Millisecond
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := bus.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{db: db, runner: r, bus: b, done: make(chan error, 1)}
	go func() { h.done <- b.Run(ctx) }()
	<-b.Running()
	tb.Cleanup(func() { h.stop(tb) })
	return h
}

func (h *harness) stop(tb testing.TB) {
	tb.Helper()
	if h.bus == nil {
		return
	}
	if err := h.bus.Close(); err != nil {
		tb.Errorf("Close: %v", err)
	}
	if err := <-h.done; err != nil {
		tb.Errorf("Run: %v", err)
	}
	h.bus = nil
}

// waitFor waits (bounded) for every projection to reach pos.
func (h *harness) waitFor(tb testing.TB, pos domain.Position) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.runner.WaitFor(ctx, pos); err != nil {
		tb.Fatalf("projections did not reach %s: %v; status %+v", pos, err, h.runner.Positions())
	}
}

func (h *harness) tally(tb testing.TB, name string) *tally {
	tb.Helper()
	t, ok := h.runner.Current(name).(*tally)
	if !ok {
		tb.Fatalf("Current(%s) = %T", name, h.runner.Current(name))
	}
	return t
}

// stores are the event stores the bus runs against.
func stores(tb testing.TB) map[string]func(testing.TB) domain.EventStore {
	return map[string]func(testing.TB) domain.EventStore{
		"memory": func(testing.TB) domain.EventStore { return memory.New(nil) },
		"sqlite": func(tb testing.TB) domain.EventStore {
			s, err := sqlite.Open(context.Background(), sqlite.Config{
				Path: filepath.Join(tb.TempDir(), "events.db"), Durability: sqlite.Relaxed})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { s.Close() })
			return s
		},
		// The EventStoreDB adapter against the in-process protocol server.
		"esdb": func(tb testing.TB) domain.EventStore {
			srv := esdbtest.New(tb, esdbtest.Config{})
			s, err := esdb.Open(esdb.Config{URL: srv.URL()})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { s.Close() })
			return s
		},
	}
}

func TestBusDeliversEveryEventOnce(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name+": every projection holds the whole log", func(t *testing.T) {
			s := mk(t)
			appendActivities(t, s, 0, 300) // catch-up part
			h := start(t, s, openDB(t, filepath.Join(t.TempDir(), "v.db")), bus.Config{MaxBatch: 64},
				tallyOf("one", nil), tallyOf("two", nil))
			head := appendActivities(t, s, 300, 200) // live part
			h.waitFor(t, head)
			w := want(t, s)
			for _, p := range []string{"one", "two"} {
				if diff := cmp.Diff(w, h.tally(t, p).rows(t, h.db)); diff != "" {
					t.Errorf("%s rows (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}

func TestReadModelsLive(t *testing.T) {
	for name, mk := range stores(t) {
		t.Run(name+": read models fed live equal a from-scratch rebuild", func(t *testing.T) {
			s := mk(t)
			ctx := context.Background()
			if err := generate(ctx, s, 500); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			h := start(t, s, openDB(t, filepath.Join(dir, "live.db")), bus.Config{MaxBatch: 100}, benchFactories()...)
			_, head := countAll(t, s)
			h.waitFor(t, head)
			fresh := openDB(t, filepath.Join(dir, "fresh.db"))
			r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: fresh, Projections: benchFactories(),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Rebuild(ctx, s); err != nil {
				t.Fatal(err)
			}
			sameTables(t, fresh, r, h.db, h.runner)
		})
	}
}

func TestBusRebuild(t *testing.T) {
	t.Run("a rebuild during live appends swaps in tables equal to the log", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 300)
		h := start(t, s, openDB(t, filepath.Join(t.TempDir(), "v.db")), bus.Config{MaxBatch: 32}, tallyOf("t", nil), totalsOf)
		old := h.tally(t, "t").prefix
		done := make(chan domain.Position)
		go func() { done <- appendActivities(t, s, 300, 300) }()
		if err := h.runner.Rebuild(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		h.waitFor(t, <-done)
		if got := h.tally(t, "t").prefix; got == old {
			t.Fatalf("prefix still %q after the rebuild", got)
		}
		if diff := cmp.Diff(want(t, s), h.tally(t, "t").rows(t, h.db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		var n, qty int64
		if err := h.db.QueryRow(`SELECT sum(n), sum(qty) FROM `+h.runner.Current("totals").(*totals).prefix+`sums`).Scan(&n, &qty); err != nil {
			t.Fatal(err)
		}
		var wantQty int64
		for _, r := range want(t, s) {
			wantQty += r.Qty
		}
		if n != 600 || qty != wantQty {
			t.Errorf("totals: %d events, quantity %d; want 600, %d", n, qty, wantQty)
		}
	})
}

func TestBusRetries(t *testing.T) {
	t.Run("a handler failing twice then succeeding applies the event once", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 20)
		var failures atomic.Int32
		flaky := func(e projections.Envelope) error {
			if e.Position == domain.Seq(7) && failures.Load() < 2 {
				failures.Add(1)
				return errors.New("flaky")
			}
			return nil
		}
		h := start(t, s, openDB(t, filepath.Join(t.TempDir(), "v.db")), bus.Config{Retries: 3}, tallyOf("flaky", flaky))
		head := appendActivities(t, s, 20, 5)
		h.waitFor(t, head)
		if got := failures.Load(); got != 2 {
			t.Errorf("failures = %d, want 2", got)
		}
		if diff := cmp.Diff(want(t, s), h.tally(t, "flaky").rows(t, h.db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if !h.runner.Healthy() {
			t.Errorf("unhealthy after recovering: %+v", h.runner.Positions())
		}
	})
	t.Run("a projection that keeps failing stops there, unhealthy, while the others go on", func(t *testing.T) {
		s := memory.New(nil)
		head := appendActivities(t, s, 0, 30)
		var calls atomic.Int32
		broken := func(e projections.Envelope) error {
			if e.Position == domain.Seq(12) {
				calls.Add(1)
				return errors.New("cannot apply")
			}
			return nil
		}
		h := start(t, s, openDB(t, filepath.Join(t.TempDir(), "v.db")), bus.Config{Retries: 2},
			tallyOf("broken", broken), tallyOf("fine", nil))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var st map[string]projections.Status
		for {
			st = map[string]projections.Status{}
			for _, x := range h.runner.Positions() {
				st[x.Name] = x
			}
			if !st["broken"].Healthy && st["broken"].StuckAt == domain.Seq(12) && st["fine"].Position == head {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("status never settled: %+v", st)
			case <-time.After(5 * time.Millisecond):
			}
		}
		if got := st["broken"].Position; got != domain.Seq(11) {
			t.Errorf("broken position = %s, want 11", got)
		}
		if st["broken"].Err == "" {
			t.Error("broken status carries no error")
		}
		if !st["fine"].Healthy {
			t.Errorf("fine is unhealthy: %+v", st["fine"])
		}
		w := want(t, s)
		if diff := cmp.Diff(w[:11], h.tally(t, "broken").rows(t, h.db)); diff != "" {
			t.Errorf("broken rows (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(w, h.tally(t, "fine").rows(t, h.db)); diff != "" {
			t.Errorf("fine rows (-want +got):\n%s", diff)
		}
		// It keeps retrying that event rather than skipping it.
		before := calls.Load()
		for calls.Load() == before {
			select {
			case <-ctx.Done():
				t.Fatal("the stuck event is not retried")
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
}

// droppingLog ends the store subscription with an error after every `every`
// events, `drops` times.
type droppingLog struct {
	domain.EventStore
	every int
	drops atomic.Int32
	subs  atomic.Int32
}

var errDropped = errors.New("connection lost")

func (d *droppingLog) Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	d.subs.Add(1)
	return func(yield func(domain.Event, error) bool) {
		n := 0
		for e, err := range d.EventStore.Subscribe(ctx, after) {
			if err == nil && n == d.every && d.drops.Load() > 0 {
				d.drops.Add(-1)
				yield(domain.Event{}, errDropped)
				return
			}
			n++
			if !yield(e, err) {
				return
			}
		}
	}
}

func TestBusResumesDroppedSubscription(t *testing.T) {
	t.Run("no gap and no duplicate", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 50)
		log := &droppingLog{EventStore: s, every: 13}
		log.drops.Store(5)
		h := start(t, log, openDB(t, filepath.Join(t.TempDir(), "v.db")), bus.Config{MaxBatch: 8}, tallyOf("t", nil))
		head := appendActivities(t, s, 50, 50)
		h.waitFor(t, head)
		if diff := cmp.Diff(want(t, s), h.tally(t, "t").rows(t, h.db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		if got := log.drops.Load(); got != 0 {
			t.Errorf("%d drops left unused", got)
		}
		if got := log.subs.Load(); got < 6 {
			t.Errorf("%d subscriptions, want at least 6 (one per drop)", got)
		}
	})
}

func TestBusClose(t *testing.T) {
	t.Run("close stops a busy bus and a restart continues from the checkpoints", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 400)
		path := filepath.Join(t.TempDir(), "v.db")
		db := openDB(t, path)
		h := start(t, s, db, bus.Config{MaxBatch: 16}, tallyOf("t", nil))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendActivities(t, s, 400, 100)
		}()
		h.stop(t)
		wg.Wait()
		h2 := start(t, s, db, bus.Config{}, tallyOf("t", nil))
		head := appendActivities(t, s, 500, 1)
		h2.waitFor(t, head)
		if diff := cmp.Diff(want(t, s), h2.tally(t, "t").rows(t, db)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

// subscribe opens a Subscriber with cfg, closed when the test ends, and
// subscribes to topic.
func subscribe(t *testing.T, cfg bus.SubscriberConfig, topic string) <-chan *message.Message {
	t.Helper()
	sub, err := bus.NewSubscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// ackNext receives the next message of ch, acks it and returns its event.
func ackNext(t *testing.T, ch <-chan *message.Message) (domain.Event, *message.Message) {
	t.Helper()
	msg := <-ch
	e, err := bus.EventOf(msg)
	if err != nil {
		t.Fatal(err)
	}
	msg.Ack()
	return e, msg
}

func TestSubscriber(t *testing.T) {
	t.Run("a message carries the event: id, data and envelope", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 3)
		ch := subscribe(t, bus.SubscriberConfig{Log: s,
			From: func(context.Context, string) (domain.Position, error) { return domain.Seq(1), nil }}, "projection:x")
		var want []domain.Event
		for e, err := range s.ReadAll(context.Background(), domain.Seq(1)) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		var got []domain.Event
		for range want {
			msg := <-ch
			e, err := bus.EventOf(msg)
			if err != nil {
				t.Fatal(err)
			}
			if msg.UUID != e.ID {
				t.Errorf("message UUID %s, event id %s", msg.UUID, e.ID)
			}
			got = append(got, e)
			msg.Ack()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("skipped events do not become messages, but the last one before the head does", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 50)
		var head domain.Position
		for e, err := range s.ReadAll(context.Background(), domain.Position{}) {
			if err != nil {
				t.Fatal(err)
			}
			head = e.Position
		}
		ch := subscribe(t, bus.SubscriberConfig{Log: s,
			From: func(context.Context, string) (domain.Position, error) { return domain.Position{}, nil },
			Skip: func(topic, typ string) bool { return topic == "policy:p" && typ == domain.TypeActivityLogged }}, "policy:p")
		time.Sleep(50 * time.Millisecond) // let the read-ahead fill: the first message waits for us
		n := 0
		for {
			e, _ := ackNext(t, ch)
			n++
			if e.Position == head {
				break
			}
		}
		if n > 3 {
			t.Errorf("%d messages for 50 activities the policy skips (want the first, read before the others, and the head)", n)
		}
	})
	t.Run("a long run of skipped events is broken by a message that ends a batch", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 1000)
		ch := subscribe(t, bus.SubscriberConfig{Log: s, MaxSkipped: 100,
			From: func(context.Context, string) (domain.Position, error) { return domain.Position{}, nil },
			Skip: func(topic, typ string) bool { return typ == domain.TypeActivityLogged }}, "projection:x")
		time.Sleep(50 * time.Millisecond) // let the read-ahead fill
		var last uint64
		n := 0
		for last < 1000 {
			e, msg := ackNext(t, ch)
			n++
			if gap := e.Position.Commit - last; last > 1 && gap > 101 {
				t.Errorf("message at %d follows one at %d: %d events skipped, want at most 100", e.Position.Commit, last, gap-1)
			}
			if last > 1 && msg.Metadata.Get(bus.MetaMore) != "" {
				t.Errorf("message at %d says more are waiting: a projector would not commit its checkpoint", e.Position.Commit)
			}
			last = e.Position.Commit
		}
		if n < 10 || n > 13 {
			t.Errorf("%d messages for 1,000 skipped events with MaxSkipped 100, want 10 to 13", n)
		}
	})
	t.Run("the next message waits for the ack; a nack redelivers from the checkpoint", func(t *testing.T) {
		s := memory.New(nil)
		appendActivities(t, s, 0, 3)
		ch := subscribe(t, bus.SubscriberConfig{Log: s, MinBackoff: time.Millisecond,
			From: func(context.Context, string) (domain.Position, error) { return domain.Position{}, nil }}, "projection:x")
		first := <-ch
		select {
		case m := <-ch:
			t.Fatalf("got %s before acking %s", m.Metadata.Get(bus.MetaPosition), first.Metadata.Get(bus.MetaPosition))
		case <-time.After(20 * time.Millisecond):
		}
		first.Ack()
		second := <-ch
		second.Nack()
		again := <-ch
		if got := again.Metadata.Get(bus.MetaPosition); got != "1" {
			t.Errorf("after a nack the subscription resumed at %s, want 1 (the checkpoint)", got)
		}
		again.Ack()
	})
}
