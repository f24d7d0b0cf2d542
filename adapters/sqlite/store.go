// Package sqlite is the embedded default: an event store, and a key store,
// each in its own SQLite file, through the pure-Go driver modernc.org/sqlite.
//
// The event store writes through one goroutine that commits concurrent
// appends together (group commit: one transaction and one sync for all the
// appends pending when the previous commit ended), and reads through a small
// pool of read-only connections that never block the writer (WAL).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite" // also registers the "sqlite" driver

	"perfledger/domain"
)

// Durability says when an append is acknowledged.
type Durability int

const (
	// Durable (the default) acknowledges an append once it is synced to the
	// disk (synchronous=FULL): it survives a crash of the process or of the
	// machine.
	Durable Durability = iota
	// Relaxed acknowledges once the commit is in the write-ahead log
	// without a sync per commit (synchronous=NORMAL): it survives a crash
	// of the process, but the last commits may be lost if the machine
	// loses power.
	Relaxed
)

func (d Durability) String() string {
	switch d {
	case Durable:
		return "durable"
	case Relaxed:
		return "relaxed"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Config configures an event store.
type Config struct {
	// Path is the database file, e.g. "data/events.db". Its directory is
	// created if missing.
	Path string
	// Durability defaults to Durable.
	Durability Durability
	// BusyTimeout is how long a statement waits for a lock held by another
	// process. Zero means 5 s.
	BusyTimeout time.Duration
	// PollInterval is how often a live subscription looks for events
	// appended by another process; appends through this Store wake
	// subscriptions at once. Zero means 1 s; negative disables polling.
	PollInterval time.Duration
	// MaxBatch caps the events committed in one group-commit transaction.
	// Zero means 2048.
	MaxBatch int
	// Clock stamps RecordedAt when an event comes without one. Nil means
	// domain.SystemClock.
	Clock domain.Clock
	// Fdatasync makes SQLite sync commits with fdatasync(2) instead of
	// fsync(2): as durable (the file's data and size are synced, not its
	// timestamps) and often much faster on journaling file systems. The
	// switch is process-wide: Open turns it on for every SQLite database of
	// the process, and it stays on. Honoured on Linux and some BSDs.
	Fdatasync bool
}

// Validate reports a configuration that Open would refuse.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("sqlite: config: empty Path")
	case c.Durability != Durable && c.Durability != Relaxed:
		return fmt.Errorf("sqlite: config: unknown %s", c.Durability)
	case c.BusyTimeout < 0:
		return errors.New("sqlite: config: negative BusyTimeout")
	case c.MaxBatch < 0:
		return errors.New("sqlite: config: negative MaxBatch")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 5 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 2048
	}
	if c.Clock == nil {
		c.Clock = domain.SystemClock
	}
	return c
}

// Store is the SQLite domain.EventStore. Positions are dense: the n-th event
// ever appended is at domain.Seq(n). Several processes may open the same
// file; each one's appends are serialised by SQLite's write lock, and their
// subscriptions see each other's events within PollInterval.
type Store struct {
	cfg Config
	wdb *sql.DB // one connection, used only by the writer goroutine
	rdb *sql.DB // read-only connections
	cdb *sql.DB // one connection, used only by the checkpointer goroutine

	checkpoint     chan struct{} // wakes the checkpointer; buffered 1
	ckMu           sync.Mutex    // held by whoever checkpoints: the checkpointer, or the writer (boundLog)
	checkpointDone chan struct{}

	reqs       chan *appendReq
	done       chan struct{} // closed by Close
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	mu     sync.Mutex
	notify chan struct{} // closed and replaced after every commit

	names streamNames
	stats struct{ commits, appends, events atomic.Int64 }
	w     writer
	rd    readStmts
}

var _ domain.EventStore = (*Store)(nil)

// The event store's page caches, per connection: the writer's and each of
// its four readers'. They are small on purpose: the operating system caches
// the file as well, and the pure-Go SQLite driver's allocator gives each
// cached page twice its size and keeps what it frees, so that big caches
// were most of the server's memory. With every SQLite cache of `ledger
// serve` at 1 MiB, its SQLite memory under a POST load fell from 150–218 MB
// to 19 MB at the same request rate (BENCHMARKS.md, fifth session).
const (
	WriterCacheMiB = 2
	ReaderCacheMiB = 1
)

// Open opens (creating if needed) the event store at cfg.Path, checks that
// the WAL journal and the configured durability are in effect, and applies
// the embedded schema migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	syncPragma := "FULL"
	if cfg.Durability == Relaxed {
		syncPragma = "NORMAL"
	}
	if cfg.Fdatasync {
		if _, err := msqlite.Fdatasync(true); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	base := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)", fileURI(cfg.Path), cfg.BusyTimeout.Milliseconds())
	// WAL checkpoints run in their own goroutine (see checkpointer). The
	// log can only restart from its beginning after a checkpoint made by the
	// writer itself, so the writer still checkpoints when the log reaches
	// 4,096 pages; by then the checkpointer has copied nearly every page
	// and the writer's checkpoint is short.
	wdb, err := sql.Open("sqlite", base+"&_pragma=synchronous("+syncPragma+")&_pragma=cache_size(-"+strconv.Itoa(WriterCacheMiB<<10)+
		")&_pragma=wal_autocheckpoint(4096)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s := &Store{
		cfg:        cfg,
		wdb:        wdb,
		reqs:       make(chan *appendReq, appendQueue),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		notify:     make(chan struct{}),

		checkpoint:     make(chan struct{}, 1),
		checkpointDone: make(chan struct{}),
	}
	fail := func(err error) (*Store, error) {
		wdb.Close()
		if s.rdb != nil {
			s.rdb.Close()
		}
		if s.cdb != nil {
			s.cdb.Close()
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	if err := checkPragmas(ctx, wdb, map[Durability]int{Durable: 2, Relaxed: 1}[cfg.Durability]); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, wdb, "events"); err != nil {
		return fail(err)
	}
	s.rdb, err = sql.Open("sqlite", base+"&_pragma=query_only(1)&_pragma=cache_size(-"+strconv.Itoa(ReaderCacheMiB<<10)+")")
	if err != nil {
		return fail(err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	if err := s.prepare(ctx); err != nil {
		return fail(err)
	}
	s.cdb, err = sql.Open("sqlite", base+"&_pragma=synchronous("+syncPragma+")")
	if err != nil {
		return fail(err)
	}
	s.cdb.SetMaxOpenConns(1)
	s.names.init(s.rdb)
	go s.write()
	go s.checkpointer()
	return s, nil
}

// fileURI returns the SQLite URI of the file at path, escaping the
// characters that URIs give a meaning to.
func fileURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// checkPragmas verifies that the settings asked for in the DSN took effect.
func checkPragmas(ctx context.Context, db *sql.DB, wantSync int) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var syncMode int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return err
	}
	if syncMode != wantSync {
		return fmt.Errorf("synchronous is %d, want %d", syncMode, wantSync)
	}
	return nil
}

// Close stops accepting appends, waits for the commit in progress, ends
// running subscriptions with domain.ErrStoreClosed and closes the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		<-s.writerDone
		<-s.checkpointDone
		s.w.close()
		s.rd.close()
		s.closeErr = errors.Join(s.cdb.Close(), s.rdb.Close(), s.wdb.Close())
	})
	return s.closeErr
}

// Append implements domain.EventStore. Concurrent appends are committed
// together; a conflicting or invalid one fails alone. If ctx ends while the
// append is queued or committing, Append returns ctx's error and the append
// may or may not be stored: retrying it with the same ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected domain.ExpectedRevision, events []domain.NewEvent) (domain.AppendResult, error) {
	if err := domain.ValidateAppend(stream, events); err != nil {
		return domain.AppendResult{}, err
	}
	r := &appendReq{ctx: ctx, stream: stream, expected: expected, events: events, reply: make(chan appendReply, 1)}
	select {
	case s.reqs <- r:
	case <-s.done:
		return domain.AppendResult{}, domain.ErrStoreClosed
	case <-ctx.Done():
		return domain.AppendResult{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep.res, rep.err
	case <-s.writerDone:
		// The writer answers every request it takes before it stops; one
		// still queued was never taken.
		select {
		case rep := <-r.reply:
			return rep.res, rep.err
		default:
			return domain.AppendResult{}, domain.ErrStoreClosed
		}
	case <-ctx.Done():
		return domain.AppendResult{}, ctx.Err()
	}
}

// appendQueue is how many appends can wait for the writer without their
// callers blocking. A caller that hands its request over without waiting for
// the writer to take it is woken once, by the reply, instead of twice: under
// load each needless wake-up is a trip through the scheduler's run queue.
const appendQueue = 1024

// checkpointEvery is how many bytes of events the writer commits between
// two requests for a checkpoint.
const checkpointEvery = 2 << 20

// checkpointer copies committed pages from the write-ahead log into the
// database file when the writer asks for it, off the commit path, so that
// no append waits for a checkpoint. PASSIVE never blocks the writer or
// readers; pages a reader still needs are copied by a later checkpoint.
func (s *Store) checkpointer() {
	defer close(s.checkpointDone)
	for {
		select {
		case <-s.done:
			return
		case <-s.checkpoint:
			// An error here (a busy database) only delays the checkpoint.
			var busy, logFrames, done int
			s.ckMu.Lock()
			s.cdb.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &done) //nolint:errcheck // see above
			s.ckMu.Unlock()
		}
	}
}

// wake returns the channel closed by the next commit.
func (s *Store) wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func (s *Store) broadcast() {
	s.mu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// streamNames caches the immutable mapping between stream names and ids.
type streamNames struct {
	db     *sql.DB
	mu     sync.RWMutex
	byID   map[int64]string
	byName map[string]int64
}

func (n *streamNames) init(db *sql.DB) {
	n.db = db
	n.byID = make(map[int64]string)
	n.byName = make(map[string]int64)
}

func (n *streamNames) add(id int64, name string) {
	n.mu.Lock()
	n.byID[id] = name
	n.byName[name] = id
	n.mu.Unlock()
}

// name returns the name of stream id.
func (n *streamNames) name(ctx context.Context, id int64) (string, error) {
	n.mu.RLock()
	name, ok := n.byID[id]
	n.mu.RUnlock()
	if ok {
		return name, nil
	}
	if err := n.db.QueryRowContext(ctx, "SELECT name FROM streams WHERE id = ?", id).Scan(&name); err != nil {
		return "", err
	}
	n.add(id, name)
	return name, nil
}

// id returns the id of stream name, and false if it has no event.
func (n *streamNames) id(ctx context.Context, name string) (int64, bool, error) {
	n.mu.RLock()
	id, ok := n.byName[name]
	n.mu.RUnlock()
	if ok {
		return id, true, nil
	}
	err := n.db.QueryRowContext(ctx, "SELECT id FROM streams WHERE name = ?", name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	n.add(id, name)
	return id, true, nil
}

// Stats counts the work of the writer since Open.
type Stats struct {
	Commits int64 // group-commit transactions
	Appends int64 // Append calls they carried (including conflicts and retries)
	Events  int64 // events those appends carried
}

// Stats returns the writer's counters; Appends/Commits is the mean group
// size.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.stats.commits.Load(), Appends: s.stats.appends.Load(), Events: s.stats.events.Load()}
}
