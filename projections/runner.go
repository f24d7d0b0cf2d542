package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"perfledger/domain"
)

// The runner's own tables in the read-model database.
//
// projection_current says which instance (table prefix) of each projection
// serves queries; projection_checkpoints holds, per instance, the position of
// the last event applied to its tables. A checkpoint row is only ever written
// in the transaction that writes the rows it accounts for.
//
// Policies keep their checkpoint in projection_checkpoints too, under the name
// "policy:<name>" (policyCheckpointPrefix) and an empty prefix.
const runnerSchema = `
CREATE TABLE IF NOT EXISTS projection_current (
	name       TEXT PRIMARY KEY,
	prefix     TEXT NOT NULL,
	version    INTEGER NOT NULL,
	generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projection_checkpoints (
	name             TEXT NOT NULL,
	prefix           TEXT NOT NULL,
	version          INTEGER NOT NULL,
	position_commit  INTEGER NOT NULL,
	position_prepare INTEGER NOT NULL,
	PRIMARY KEY (name, prefix)
);
`

// policyCheckpointPrefix starts the checkpoint names of the policies.
const policyCheckpointPrefix = "policy:"

// DefaultBatchSize is how many events the runner's direct replay path
// (Rebuild, CatchUp) applies per transaction. Long transactions are what make
// a rebuild fast: the leaderboard rewrites a touched row once per
// transaction, and a Batcher folds the events in runs, so the events of a
// transaction are never held at once (1M-event demo log: 10,000–11,000
// events/s with 50,000 events held per transaction, 12,500 with 250,000 in
// runs, 216 MB peak; see BENCHMARKS.md "Read models").
const DefaultBatchSize = 250000

// progressEvery is how often a long replay logs its progress.
const progressEvery = 10 * time.Second

// Errors of the runner.
var (
	// ErrUnknownProjection: no projection of that name is registered.
	ErrUnknownProjection = errors.New("unknown projection")
)

// EventLog is what the runner reads the global log from when it replays
// (rebuilds and direct catch-up). domain.EventStore satisfies it.
type EventLog interface {
	ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error]
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// DB is the read-model database (SQLite: the runner lists and drops an
	// instance's tables through sqlite_master).
	DB *sql.DB
	// ReadDB, when set, is another pool on the same database that DB()
	// hands to queries, so that readers neither wait behind the runner's
	// write transactions for a connection nor grow the writers' pool; nil
	// means DB.
	ReadDB *sql.DB
	// Projections lists the read models to run; names must be unique.
	Projections []Factory
	// Decode turns a stored event's data into its payload. Nil means
	// domain.DecodePayload.
	Decode func(domain.Event) (domain.Payload, error)
	// BatchSize is the number of events per transaction of the direct replay
	// path (they are applied in runs, not held at once); 0 means
	// DefaultBatchSize.
	BatchSize int
	// Logger receives rebuild and failure reports; nil means slog.Default().
	Logger *slog.Logger
	// Separate gives projections a database of their own (by name: the pool
	// that writes it). Such a projection's tables, instances and checkpoints
	// live there instead of in DB, and it is written on its own connection,
	// so that a replay applies it on one core while the others are applied
	// on another. ReadDB must then see every database under one connection
	// (SQLite's ATTACH): queries name tables without their database.
	// Instances of such a projection left in DB (it lived there before) are
	// dropped at start.
	Separate map[string]*sql.DB
}

// Validate reports a configuration that cannot work.
func (c RunnerConfig) Validate() error {
	if c.DB == nil {
		return errors.New("projections: runner config: DB is nil")
	}
	if c.BatchSize < 0 {
		return errors.New("projections: runner config: negative BatchSize")
	}
	seen := map[string]bool{}
	for i, f := range c.Projections {
		if f == nil {
			return fmt.Errorf("projections: runner config: projection %d is nil", i)
		}
		n := f("").Name()
		if n == "" || seen[n] {
			return fmt.Errorf("projections: runner config: projection name %q empty or repeated", n)
		}
		seen[n] = true
	}
	if len(c.Separate) > 0 && c.ReadDB == nil {
		return errors.New("projections: runner config: Separate needs a ReadDB that attaches every database")
	}
	pools := map[*sql.DB]bool{c.DB: true}
	for n, db := range c.Separate {
		if !seen[n] {
			return fmt.Errorf("projections: runner config: Separate names %q, which is not among the projections", n)
		}
		if db == nil || pools[db] {
			return fmt.Errorf("projections: runner config: the database of %q is nil or another projection's", n)
		}
		pools[db] = true
	}
	return nil
}

// dbFile is a database the runner writes: RunnerConfig.DB or one of
// RunnerConfig.Separate.
type dbFile struct {
	db *sql.DB
	// wmu serialises the runner's write transactions on db (see beginWrite).
	wmu sync.Mutex
}

// instance is one set of tables of a projection, with its checkpoint.
type instance struct {
	proj       Projector
	prefix     string
	version    int
	generation int
	file       *dbFile         // the database of its tables and checkpoint
	pos        domain.Position // committed checkpoint; guarded by Runner.mu
}

// projection is a registered read model and the instance serving it.
type projection struct {
	name    string
	factory Factory
	// model is an instance of the factory's, never set up: what the read
	// model is, whichever instance serves (Handles asks it, lock-free).
	model Projector
	// apply serialises every write to the serving instance (live batches,
	// catch-up, the swap of a rebuild).
	apply sync.Mutex
	// file is the database of its instances.
	file *dbFile

	// Guarded by Runner.mu.
	cur     *instance
	stuck   bool
	stuckAt domain.Position
	lastErr error
}

// Runner applies events to every registered projection, each in its own
// transactions with its checkpoint, and rebuilds them. It is safe for
// concurrent use; batches of one projection are applied one at a time.
type Runner struct {
	main      *dbFile   // RunnerConfig.DB: every projection not Separate, the policies' checkpoints
	files     []*dbFile // main, then the Separate databases in the order of their projections' names
	readDB    *sql.DB
	decode    func(domain.Event) (domain.Payload, error)
	batchSize int
	log       *slog.Logger

	byName map[string]*projection
	names  []string // registration order

	reset []string // projections whose version changed at start

	// rebuild serialises rebuilds.
	rebuild sync.Mutex
	// live serialises the live batches (Apply) of every database: they
	// take turns as when every read model shared one database, so that the
	// read models never take both cores from the API. Under a POST load
	// with the leaderboard apart, live batches of both databases at once
	// cut the requests served by a quarter: each read model then applied
	// smaller batches, more of them, for more CPU in all.
	live sync.Mutex

	cache *payloadCache

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a checkpoint moves
}

// NewRunner creates the runner's tables, sets every projection's serving
// instance up, and loads its checkpoint. A projection whose stored version
// differs from its Version() gets fresh, empty tables at once (the old ones
// cannot be read by the new code) and starts from the beginning of the log:
// call CatchUp to fill it quickly before serving. Reset lists the
// projections so reset.
func NewRunner(ctx context.Context, cfg RunnerConfig) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{
		main:      &dbFile{db: cfg.DB},
		readDB:    cfg.ReadDB,
		decode:    cfg.Decode,
		batchSize: cfg.BatchSize,
		log:       cfg.Logger,
		byName:    map[string]*projection{},
		changed:   make(chan struct{}),
		cache:     newPayloadCache(payloadCacheSlots),
	}
	if r.readDB == nil {
		r.readDB = cfg.DB
	}
	if r.decode == nil {
		r.decode = decodePayload
	}
	if r.batchSize == 0 {
		r.batchSize = DefaultBatchSize
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.files = []*dbFile{r.main}
	separate := map[string]*dbFile{}
	for _, n := range slices.Sorted(maps.Keys(cfg.Separate)) {
		separate[n] = &dbFile{db: cfg.Separate[n]}
		r.files = append(r.files, separate[n])
	}
	for _, f := range r.files {
		if _, err := f.db.ExecContext(ctx, runnerSchema); err != nil {
			return nil, fmt.Errorf("projections: create runner tables: %w", err)
		}
	}
	for _, f := range cfg.Projections {
		model := f("")
		p := &projection{name: model.Name(), factory: f, model: model, file: r.main}
		if sep := separate[p.name]; sep != nil {
			p.file = sep
			if err := r.moveOut(ctx, p.name); err != nil {
				return nil, err
			}
		}
		if err := r.open(ctx, p); err != nil {
			return nil, err
		}
		r.byName[p.name] = p
		r.names = append(r.names, p.name)
	}
	return r, nil
}

func decodePayload(e domain.Event) (domain.Payload, error) {
	return domain.DecodePayload(e.Type, e.Data)
}

// prefixFor names the tables of generation gen of a projection.
func prefixFor(name string, gen int) string {
	return name + "_g" + strconv.Itoa(gen) + "_"
}

// open loads or creates the serving instance of p, resetting it when its
// version changed, and drops leftovers of interrupted rebuilds.
func (r *Runner) open(ctx context.Context, p *projection) error {
	tx, err := r.beginWrite(ctx, p.file)
	if err != nil {
		return fmt.Errorf("projections: %s: begin: %w", p.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	version := p.factory("").Version()
	var (
		prefix     string
		oldVersion int
		gen        int
	)
	err = tx.QueryRowContext(ctx,
		`SELECT prefix, version, generation FROM projection_current WHERE name = ?`, p.name).
		Scan(&prefix, &oldVersion, &gen)
	fresh := errors.Is(err, sql.ErrNoRows)
	if err != nil && !fresh {
		return fmt.Errorf("projections: %s: read current instance: %w", p.name, err)
	}

	// Leftovers of a rebuild that did not finish: any other instance.
	others, err := otherPrefixes(ctx, tx.Tx, p.name, prefix)
	if err != nil {
		return err
	}
	for _, o := range others {
		if err := dropInstance(ctx, tx.Tx, p.name, o); err != nil {
			return err
		}
	}

	switch {
	case fresh:
		gen, prefix = 1, prefixFor(p.name, 1)
	case oldVersion != version:
		r.reset = append(r.reset, p.name)
		r.log.Info("projection version changed: dropping its old tables (this can take minutes on a big log), then rebuilding from the start",
			"projection", p.name, "old_version", oldVersion, "version", version)
		if err := dropInstance(ctx, tx.Tx, p.name, prefix); err != nil {
			return err
		}
		gen++
		prefix = prefixFor(p.name, gen)
	}
	inst := &instance{proj: p.factory(prefix), prefix: prefix, version: version, generation: gen, file: p.file}
	if err := inst.proj.Setup(ctx, tx.Tx); err != nil {
		return fmt.Errorf("projections: %s: setup %s: %w", p.name, prefix, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO projection_current (name, prefix, version, generation) VALUES (?, ?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET prefix = excluded.prefix, version = excluded.version, generation = excluded.generation`,
		p.name, prefix, version, gen); err != nil {
		return fmt.Errorf("projections: %s: record current instance: %w", p.name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO projection_checkpoints (name, prefix, version, position_commit, position_prepare) VALUES (?, ?, ?, 0, 0)
		 ON CONFLICT (name, prefix) DO NOTHING`, p.name, prefix, version); err != nil {
		return fmt.Errorf("projections: %s: create checkpoint: %w", p.name, err)
	}
	pos, err := readCheckpoint(ctx, tx.Tx, p.name, prefix)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: %s: commit setup: %w", p.name, err)
	}
	inst.pos = pos
	p.cur = inst
	return nil
}

// moveOut drops the instances of the named projection that the main
// database holds: it lived there before it was given a database of its own
// (RunnerConfig.Separate), where it starts afresh. Queries name tables
// without their database, so tables of one name must not stay in both.
func (r *Runner) moveOut(ctx context.Context, name string) error {
	tx, err := r.beginWrite(ctx, r.main)
	if err != nil {
		return fmt.Errorf("projections: %s: begin: %w", name, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	prefixes, err := otherPrefixes(ctx, tx.Tx, name, "")
	if err != nil {
		return err
	}
	var cur string
	err = tx.QueryRowContext(ctx, `SELECT prefix FROM projection_current WHERE name = ?`, name).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("projections: %s: read current instance: %w", name, err)
	}
	if cur != "" && !slices.Contains(prefixes, cur) {
		prefixes = append(prefixes, cur)
	}
	for _, prefix := range prefixes {
		r.log.Info("dropping a read model's tables from the main database: it has a database of its own now",
			"projection", name, "prefix", prefix)
		if err := dropInstance(ctx, tx.Tx, name, prefix); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM projection_current WHERE name = ?`, name); err != nil {
		return fmt.Errorf("projections: %s: forget: %w", name, err)
	}
	return tx.Commit()
}

// writeTx is a write transaction of the read-model database. It holds the
// runner's write mutex until Commit or Rollback (whichever comes first).
type writeTx struct {
	*sql.Tx
	release func()
}

func (t *writeTx) Commit() error {
	defer t.release()
	return t.Tx.Commit()
}

func (t *writeTx) Rollback() error {
	defer t.release()
	return t.Tx.Rollback()
}

// beginWrite begins a write transaction on f. Write transactions of the
// runner on one database are serialised in the process (SQLite has one
// writer; projections queueing on a Go mutex wait for exactly as long as
// needed, where SQLite's busy handler would sleep and poll), and each takes
// the database's write lock with its first statement: SQLite starts
// transactions as readers, and one that reads and then writes fails at once
// with SQLITE_BUSY (no busy wait) when another connection committed in
// between. A no-op write takes the lock up front, so writers of other
// processes queue on the busy timeout instead. (Opening the database with
// immediate transactions does the same.)
func (r *Runner) beginWrite(ctx context.Context, f *dbFile) (*writeTx, error) {
	f.wmu.Lock()
	var once sync.Once
	release := func() { once.Do(f.wmu.Unlock) }
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		release()
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projection_checkpoints SET version = version WHERE 0`); err != nil {
		tx.Rollback() //nolint:errcheck // the error above is the one to report
		release()
		return nil, fmt.Errorf("take the write lock: %w", err)
	}
	return &writeTx{Tx: tx, release: release}, nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readCheckpoint(ctx context.Context, q queryer, name, prefix string) (domain.Position, error) {
	var c, p int64
	err := q.QueryRowContext(ctx,
		`SELECT position_commit, position_prepare FROM projection_checkpoints WHERE name = ? AND prefix = ?`,
		name, prefix).Scan(&c, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Position{}, nil
	}
	if err != nil {
		return domain.Position{}, fmt.Errorf("projections: %s: read checkpoint: %w", name, err)
	}
	return domain.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

func writeCheckpoint(ctx context.Context, tx *sql.Tx, name, prefix string, version int, pos domain.Position) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO projection_checkpoints (name, prefix, version, position_commit, position_prepare) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (name, prefix) DO UPDATE SET version = excluded.version,
		 position_commit = excluded.position_commit, position_prepare = excluded.position_prepare`,
		name, prefix, version, int64(pos.Commit), int64(pos.Prepare))
	if err != nil {
		return fmt.Errorf("projections: %s: write checkpoint: %w", name, err)
	}
	return nil
}

// otherPrefixes lists the instances of name recorded in the checkpoints table
// other than keep.
func otherPrefixes(ctx context.Context, q queryer, name, keep string) ([]string, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT prefix FROM projection_checkpoints WHERE name = ? AND prefix <> ?`, name, keep)
	if err != nil {
		return nil, fmt.Errorf("projections: %s: list instances: %w", name, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("projections: %s: list instances: %w", name, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: %s: list instances: %w", name, err)
	}
	return out, nil
}

// dropInstance drops every table and view whose name starts with prefix and
// forgets the instance's checkpoint.
func dropInstance(ctx context.Context, tx *sql.Tx, name, prefix string) error {
	if prefix == "" {
		return nil
	}
	rows, err := tx.QueryContext(ctx,
		`SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') AND substr(name, 1, ?) = ?`,
		len(prefix), prefix)
	if err != nil {
		return fmt.Errorf("projections: %s: list tables of %s: %w", name, prefix, err)
	}
	type obj struct{ kind, name string }
	var objs []obj
	for rows.Next() {
		var o obj
		if err := rows.Scan(&o.kind, &o.name); err != nil {
			rows.Close()
			return fmt.Errorf("projections: %s: list tables of %s: %w", name, prefix, err)
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("projections: %s: list tables of %s: %w", name, prefix, err)
	}
	// Views first: they may depend on the tables.
	slices.SortStableFunc(objs, func(a, b obj) int {
		switch {
		case a.kind == b.kind:
			return 0
		case a.kind == "view":
			return -1
		}
		return 1
	})
	for _, o := range objs {
		stmt := "DROP TABLE IF EXISTS " + quoteIdent(o.name)
		if o.kind == "view" {
			stmt = "DROP VIEW IF EXISTS " + quoteIdent(o.name)
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("projections: %s: drop %s: %w", name, o.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM projection_checkpoints WHERE name = ? AND prefix = ?`, name, prefix); err != nil {
		return fmt.Errorf("projections: %s: forget instance %s: %w", name, prefix, err)
	}
	return nil
}

// DropRetired drops the tables and checkpoints of the read models recorded
// in the database that this runner does not run: one retired, or merged into
// another (the scorecards have been kept by the leaderboard since its
// version 6). It returns their names. Policies' checkpoints are kept. Call it
// only from the process that owns the read models, with every read model
// registered. A database of RunnerConfig.Separate keeps its projection's
// instances alone.
func (r *Runner) DropRetired(ctx context.Context) ([]string, error) {
	var names []string
	for _, f := range r.files {
		dropped, err := r.dropRetired(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, n := range dropped {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	return names, nil
}

// dropRetired is DropRetired in one database.
func (r *Runner) dropRetired(ctx context.Context, f *dbFile) ([]string, error) {
	tx, err := r.beginWrite(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("projections: drop retired read models: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT name, prefix FROM projection_current
		UNION SELECT name, prefix FROM projection_checkpoints WHERE prefix <> '' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("projections: drop retired read models: %w", err)
	}
	type inst struct{ name, prefix string }
	var retired []inst
	for rows.Next() {
		var in inst
		if err := rows.Scan(&in.name, &in.prefix); err != nil {
			rows.Close()
			return nil, fmt.Errorf("projections: drop retired read models: %w", err)
		}
		if p := r.byName[in.name]; p == nil || p.file != f {
			retired = append(retired, in)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: drop retired read models: %w", err)
	}
	var names []string
	for _, in := range retired {
		r.log.Info("dropping the tables of a read model no longer run", "projection", in.name, "prefix", in.prefix)
		if err := dropInstance(ctx, tx.Tx, in.name, in.prefix); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM projection_current WHERE name = ?`, in.name); err != nil {
			return nil, fmt.Errorf("projections: %s: forget: %w", in.name, err)
		}
		if !slices.Contains(names, in.name) {
			names = append(names, in.name)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("projections: drop retired read models: %w", err)
	}
	return names, nil
}

func quoteIdent(s string) string {
	out := make([]byte, 0, len(s)+2)
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, s[i])
	}
	return string(append(out, '"'))
}

// Reset lists the projections NewRunner found at another version and
// restarted from the beginning of the log in fresh tables.
func (r *Runner) Reset() []string { return slices.Clone(r.reset) }

// DB returns the read-model database to query (RunnerConfig.ReadDB if set).
// Queries read the tables of the instance Current returns.
func (r *Runner) DB() *sql.DB { return r.readDB }

// Names lists the registered projections in registration order.
func (r *Runner) Names() []string { return slices.Clone(r.names) }

// Handles reports whether the named projection reads events of type
// eventType (see TypeFilter); true for an unknown name. The bus asks it for
// every event and subscription, so it takes no lock.
func (r *Runner) Handles(name, eventType string) bool {
	p := r.byName[name]
	return p == nil || Handles(p.model, eventType)
}

// Current returns the instance of the named projection that serves queries,
// or nil for an unknown name. After a rebuild swaps instances, Current returns
// the new one; callers must not keep the result across requests.
func (r *Runner) Current(name string) Projector {
	p := r.byName[name]
	if p == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.cur.proj
}

// Checkpoint returns the position of the last event applied to the serving
// instance of the named projection (zero: none yet).
func (r *Runner) Checkpoint(name string) (domain.Position, error) {
	p := r.byName[name]
	if p == nil {
		return domain.Position{}, fmt.Errorf("projections: %q: %w", name, ErrUnknownProjection)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return p.cur.pos, nil
}

// Apply applies events, in global order, to the serving instance of the named
// projection in one transaction that also advances its checkpoint to the last
// event. Events at or before the checkpoint are skipped, so redelivering
// already applied events has no effect; events must be in increasing position
// order. On error nothing is applied and the checkpoint does not move.
func (r *Runner) Apply(ctx context.Context, name string, events []domain.Event) error {
	p := r.byName[name]
	if p == nil {
		return fmt.Errorf("projections: %q: %w", name, ErrUnknownProjection)
	}
	p.apply.Lock()
	defer p.apply.Unlock()
	r.mu.Lock()
	inst := p.cur
	from := inst.pos
	r.mu.Unlock()

	batch := make([]Envelope, 0, len(events))
	last := from
	for _, e := range events {
		if e.Position.Compare(last) <= 0 {
			continue
		}
		env, ok, err := r.envelope(e)
		if err != nil {
			return fmt.Errorf("projections: %s: %w", name, err)
		}
		last = e.Position
		if ok {
			batch = append(batch, env)
		}
	}
	if !from.Less(last) {
		return nil
	}
	r.live.Lock()
	err := cancelled(ctx, r.commit(ctx, []*instance{inst}, batch, last))
	r.live.Unlock()
	if err != nil {
		at := last
		if len(batch) > 0 {
			at = batch[0].Position
		}
		return fmt.Errorf("projections: %s at %s: %w", name, at, err)
	}
	r.advance(map[*instance]domain.Position{inst: last})
	return nil
}

// envelope decodes e. ok is false for an event type this build does not
// know (domain.ErrUnknownEventType): projections never see it, but
// checkpoints pass it. Decoded payloads are shared between projections (and
// cached for the other subscriptions): projectors must not modify them.
func (r *Runner) envelope(e domain.Event) (env Envelope, ok bool, err error) {
	if pl, hit := r.cache.get(e.Position, e.ID); hit {
		return Envelope{Event: e, Payload: pl}, pl != nil, nil
	}
	pl, err := r.decode(e)
	if errors.Is(err, domain.ErrUnknownEventType) {
		r.cache.put(e.Position, e.ID, nil)
		return Envelope{}, false, nil
	}
	if err != nil {
		return Envelope{}, false, fmt.Errorf("decode event %s (%s) at %s: %w", e.ID, e.Type, e.Position, err)
	}
	r.cache.put(e.Position, e.ID, pl)
	return Envelope{Event: e, Payload: pl}, true, nil
}

// payloadCache keeps the most recently decoded payloads so that the live
// subscriptions of the projections, which move through the log together,
// decode each event once instead of once per projection.
type payloadCache struct {
	mu    sync.Mutex
	slots []cached
}

type cached struct {
	pos domain.Position
	id  string
	pl  domain.Payload
}

// payloadCacheSlots is the size of the runner's payload cache: a prime
// (see slot).
const payloadCacheSlots = 16381

func newPayloadCache(n int) *payloadCache { return &payloadCache{slots: make([]cached, n)} }

// slot maps a position to its slot. With a prime number of slots,
// consecutive positions of the embedded store (commit = prepare = n) take
// distinct slots over any window of that many events; the XOR of n and 31n
// used before took about 3 % of the slots of a power-of-two table, so nearly
// every projection decoded every event again.
func (c *payloadCache) slot(pos domain.Position) int {
	return int((pos.Commit + pos.Prepare*31) % uint64(len(c.slots)))
}

func (c *payloadCache) get(pos domain.Position, id string) (domain.Payload, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.slots[c.slot(pos)]
	if s.id == id && s.pos == pos {
		return s.pl, true
	}
	return nil, false
}

func (c *payloadCache) put(pos domain.Position, id string, pl domain.Payload) {
	c.mu.Lock()
	c.slots[c.slot(pos)] = cached{pos: pos, id: id, pl: pl}
	c.mu.Unlock()
}

// reset empties the cache: what its payloads hold (and the ids, which can
// pin what the log read them from) can go.
func (c *payloadCache) reset() {
	c.mu.Lock()
	clear(c.slots)
	c.mu.Unlock()
}

// commit applies batch to every instance, each receiving the events after its
// own checkpoint, advances their checkpoints to upTo (the position of the last
// event read, which may be of an unknown type and absent from batch) and
// commits, in one transaction.
func (r *Runner) commit(ctx context.Context, insts []*instance, batch []Envelope, upTo domain.Position) error {
	t, err := r.begin(ctx, insts)
	if err != nil {
		return err
	}
	defer t.rollback()
	if err := t.add(ctx, batch); err != nil {
		return err
	}
	return t.commit(ctx, upTo)
}

// replayTx is one write transaction of the runner over some instances of
// one database: each instance's events since its checkpoint go to its Batch
// (begun at its first event), then every batch is finished, the
// checkpoints advanced and the transaction committed.
type replayTx struct {
	tx      *writeTx
	insts   []*instance
	froms   []domain.Position // each instance's checkpoint when the transaction began
	batches []Batch
	events  int // events added
}

func (r *Runner) begin(ctx context.Context, insts []*instance) (*replayTx, error) {
	tx, err := r.beginWrite(ctx, insts[0].file)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	t := &replayTx{tx: tx, insts: insts, froms: make([]domain.Position, len(insts)), batches: make([]Batch, len(insts))}
	r.mu.Lock()
	for i, in := range insts {
		t.froms[i] = in.pos
	}
	r.mu.Unlock()
	return t, nil
}

// add gives each instance the events of run after its checkpoint.
func (t *replayTx) add(ctx context.Context, run []Envelope) error {
	t.events += len(run)
	for i, in := range t.insts {
		part := run
		for len(part) > 0 && part[0].Position.Compare(t.froms[i]) <= 0 {
			part = part[1:]
		}
		if len(part) == 0 {
			continue
		}
		if t.batches[i] == nil {
			b, err := beginBatch(ctx, t.tx.Tx, in.proj)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			t.batches[i] = b
		}
		if err := t.batches[i].Add(ctx, part); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	return nil
}

// commit finishes the batches, advances the checkpoints of the instances
// that were behind upTo (the position of the last event read, which may be
// of an unknown type and absent from the runs) and commits.
func (t *replayTx) commit(ctx context.Context, upTo domain.Position) error {
	for i, in := range t.insts {
		if b := t.batches[i]; b != nil {
			t.batches[i] = nil
			if err := b.Finish(ctx); err != nil {
				return fmt.Errorf("apply: %w", err)
			}
		}
		if !t.froms[i].Less(upTo) {
			continue
		}
		if err := writeCheckpoint(ctx, t.tx.Tx, in.proj.Name(), in.prefix, in.version, upTo); err != nil {
			return err
		}
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rollback ends the transaction unless it was committed.
func (t *replayTx) rollback() {
	t.tx.Rollback() //nolint:errcheck // no-op after Commit
}

// advance records committed checkpoints (only ever forward), clears the
// stuck state of the projections that moved, and wakes WaitFor.
func (r *Runner) advance(to map[*instance]domain.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for in, pos := range to {
		if in.pos.Less(pos) {
			in.pos = pos
		}
	}
	for _, p := range r.byName {
		if _, ok := to[p.cur]; ok && p.stuck && p.stuckAt.Compare(p.cur.pos) <= 0 {
			p.stuck, p.lastErr = false, nil
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

// MarkStuck records that the named projection keeps failing at the event at
// position at; Positions reports it unhealthy until its checkpoint passes at.
func (r *Runner) MarkStuck(name string, at domain.Position, err error) {
	p := r.byName[name]
	if p == nil {
		return
	}
	r.mu.Lock()
	p.stuck, p.stuckAt, p.lastErr = true, at, err
	r.mu.Unlock()
	r.log.Error("projection stuck", "projection", name, "position", at.String(), "error", err)
}

// WaitFor returns nil once every projection's serving instance has applied
// the event at pos (or later ones), or ctx's error when ctx ends first.
func (r *Runner) WaitFor(ctx context.Context, pos domain.Position) error {
	for {
		r.mu.Lock()
		done := true
		for _, p := range r.byName {
			if p.cur.pos.Less(pos) {
				done = false
				break
			}
		}
		ch := r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// WaitForProjection returns nil once the serving instance of the named
// projection has applied the event at pos (or later ones), or ctx's error
// when ctx ends first.
func (r *Runner) WaitForProjection(ctx context.Context, name string, pos domain.Position) error {
	p := r.byName[name]
	if p == nil {
		return fmt.Errorf("projections: %q: %w", name, ErrUnknownProjection)
	}
	for {
		r.mu.Lock()
		done := !p.cur.pos.Less(pos)
		ch := r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Status is the state of one projection, for health checks and metrics.
type Status struct {
	Name     string
	Prefix   string // table prefix of the serving instance
	Version  int
	Position domain.Position // last applied event; zero: none yet
	Healthy  bool            // false while it keeps failing at StuckAt
	StuckAt  domain.Position // the event it cannot apply, when unhealthy
	Err      string          // the last failure, when unhealthy
}

// Behind returns how far s is behind head in position units: events for the
// embedded stores (dense positions), log bytes for EventStoreDB. Zero when it
// has reached head.
func (s Status) Behind(head domain.Position) uint64 {
	if !s.Position.Less(head) {
		return 0
	}
	return head.Commit - s.Position.Commit
}

// Positions reports every projection's state, in registration order.
func (r *Runner) Positions() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.names))
	for _, n := range r.names {
		p := r.byName[n]
		s := Status{Name: n, Prefix: p.cur.prefix, Version: p.cur.version, Position: p.cur.pos, Healthy: !p.stuck}
		if p.stuck {
			s.StuckAt = p.stuckAt
			if p.lastErr != nil {
				s.Err = p.lastErr.Error()
			}
		}
		out = append(out, s)
	}
	return out
}

// Healthy reports whether no projection is stuck.
func (r *Runner) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.byName {
		if p.stuck {
			return false
		}
	}
	return true
}

// PolicyCheckpoint returns the position up to which the named policy has
// handled the log (zero: nothing yet).
func (r *Runner) PolicyCheckpoint(ctx context.Context, policy string) (domain.Position, error) {
	return readCheckpoint(ctx, r.main.db, policyCheckpointPrefix+policy, "")
}

// SavePolicyCheckpoint records that the named policy has handled every event
// up to pos. Policies issue idempotent commands, so a checkpoint that lags
// behind (after a crash) only makes them decide again, never act twice.
func (r *Runner) SavePolicyCheckpoint(ctx context.Context, policy string, pos domain.Position) error {
	tx, err := r.beginWrite(ctx, r.main)
	if err != nil {
		return fmt.Errorf("projections: policy %s: begin: %w", policy, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := writeCheckpoint(ctx, tx.Tx, policyCheckpointPrefix+policy, "", 0, pos); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: policy %s: commit checkpoint: %w", policy, err)
	}
	return nil
}

// PolicyCheckpoints returns, by policy name, every policy checkpoint kept
// in db, the RunnerConfig.DB of a runner: what a new read-model database
// must carry over so that the policies go on where they were. A database
// no runner has used yet has none.
func PolicyCheckpoints(ctx context.Context, db *sql.DB) (map[string]domain.Position, error) {
	var n int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'projection_checkpoints'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("projections: policy checkpoints: %w", err)
	}
	out := map[string]domain.Position{}
	if n == 0 {
		return out, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT substr(name, ? + 1), position_commit, position_prepare
		FROM projection_checkpoints WHERE prefix = '' AND substr(name, 1, ?) = ?`,
		len(policyCheckpointPrefix), len(policyCheckpointPrefix), policyCheckpointPrefix)
	if err != nil {
		return nil, fmt.Errorf("projections: policy checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var c, p int64
		if err := rows.Scan(&name, &c, &p); err != nil {
			return nil, fmt.Errorf("projections: policy checkpoints: %w", err)
		}
		out[name] = domain.Position{Commit: uint64(c), Prepare: uint64(p)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("projections: policy checkpoints: %w", err)
	}
	return out, nil
}

// CatchUp applies the log to the serving instances of the named projections
// (all when none is named) straight from log, decoding each event once and
// applying big batches, one transaction per batch for all of them, until the
// end of the log. It is the fast path after a reset or a long stop; the live
// flow then continues from the checkpoints it leaves.
func (r *Runner) CatchUp(ctx context.Context, log EventLog, names ...string) error {
	return r.catchUp(ctx, log, names, true)
}

// replayStop is a position at which a replay commits what it applied and
// calls do before it goes on (an as-of build takes its snapshots so).
type replayStop struct {
	at domain.Position
	do func(ctx context.Context) error
}

// catchUpStopping is CatchUp for every projection, stopping at stops (in
// increasing order, none after the end of log) on the way: the log is read
// once, without the pause between steps that replaying it step by step
// made.
func (r *Runner) catchUpStopping(ctx context.Context, log EventLog, stops []replayStop) error {
	return r.catchUp(ctx, log, nil, true, stops...)
}

func (r *Runner) catchUp(ctx context.Context, log EventLog, names []string, index bool, stops ...replayStop) error {
	ps, err := r.pick(names)
	if err != nil {
		return err
	}
	for _, p := range ps {
		p.apply.Lock()
		defer p.apply.Unlock()
	}
	insts := make([]*instance, len(ps))
	r.mu.Lock()
	for i, p := range ps {
		insts[i] = p.cur
	}
	r.mu.Unlock()
	_, err = r.replayIndexed(ctx, log, insts, domain.Position{}, index, stops...)
	return err
}

func (r *Runner) pick(names []string) ([]*projection, error) {
	if len(names) == 0 {
		names = r.names
	}
	out := make([]*projection, 0, len(names))
	seen := map[string]bool{}
	for _, n := range names {
		p := r.byName[n]
		if p == nil {
			return nil, fmt.Errorf("projections: %q: %w", n, ErrUnknownProjection)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, p)
		}
	}
	// A fixed order keeps lock acquisition consistent.
	slices.SortFunc(out, func(a, b *projection) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out, nil
}

// replay reads the log after the lowest checkpoint of insts (and at least
// after floor) to its end and applies it to insts in batches. It returns the
// position of the last event read.
func (r *Runner) replay(ctx context.Context, log EventLog, insts []*instance, floor domain.Position) (domain.Position, error) {
	return r.replayIndexed(ctx, log, insts, floor, true)
}

// replayIndexed is replay; index says whether the query-only indexes are
// built at the end. Instances filled from nothing have theirs dropped first;
// instances whose indexes are missing (an earlier replay without them, or
// one cut short between the drop and the end) get them built too.
func (r *Runner) replayIndexed(ctx context.Context, log EventLog, insts []*instance, floor domain.Position, index bool,
	stops ...replayStop) (domain.Position, error) {
	from := r.lowest(insts, floor)
	// The log is read and decoded on another goroutine (another core) while
	// the read models apply what was decoded before.
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	groups := r.byFile(insts)
	if len(groups) <= 1 {
		last, err := r.replayGroup(ctx, r.decodeAhead(rctx, log, from), insts, from, floor, index, stops, nil)
		return last, cancelled(ctx, err)
	}
	if len(stops) > 0 {
		return from, errors.New("projections: a replay with stops must cover one database")
	}
	// Each database's read models are applied on a goroutine (a core) of
	// their own, from one reading and decoding of the log: every run goes to
	// each of them in turn, so that none is more than decodeAheadRuns runs
	// ahead of another.
	src := r.decodeAhead(rctx, log, from)
	runs := make([]chan decoded, len(groups))
	for i := range runs {
		runs[i] = make(chan decoded, decodeAheadRuns)
	}
	go func() {
		defer func() {
			for _, c := range runs {
				close(c)
			}
		}()
		for c := range src {
			for _, run := range runs {
				select {
				case run <- c:
				case <-rctx.Done():
					return
				}
			}
		}
	}()
	lasts, errs := make([]domain.Position, len(groups)), make([]error, len(groups))
	var first atomic.Int32 // the group that failed first: the others stop because it did
	first.Store(-1)
	var wg sync.WaitGroup
	for i, group := range groups {
		wg.Go(func() {
			names := make([]string, len(group))
			for k, in := range group {
				names[k] = in.proj.Name()
			}
			// The others stop too when one fails: the log is read for all.
			lasts[i], errs[i] = r.replayGroup(rctx, runs[i], group, from, floor, index, nil, names)
			if errs[i] = cancelled(rctx, errs[i]); errs[i] != nil {
				first.CompareAndSwap(-1, int32(i))
				stop()
			}
		})
	}
	wg.Wait()
	// The error of the one that failed, not the others' (cancelled).
	var failed error
	if i := first.Load(); i >= 0 {
		failed = errs[i]
	}
	if failed == nil {
		if failed = ctx.Err(); failed == nil {
			for _, l := range lasts {
				if from.Less(l) {
					from = l
				}
			}
		}
	}
	return from, failed
}

// cancelled returns err, with ctx's error when ctx has ended: the read
// models' statements do not watch ctx (see newStmts), so once database/sql
// has rolled their transaction back they fail with sql.ErrTxDone, which
// callers must read as the cancellation or deadline it is.
func cancelled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w: %w", ctx.Err(), err)
}

// lowest returns the lowest checkpoint of insts, and at least floor.
func (r *Runner) lowest(insts []*instance, floor domain.Position) domain.Position {
	r.mu.Lock()
	from := domain.Position{}
	for i, in := range insts {
		if i == 0 || in.pos.Less(from) {
			from = in.pos
		}
	}
	r.mu.Unlock()
	if from.Less(floor) {
		from = floor
	}
	return from
}

// replayGroup applies the runs of src (the log after from, read by
// decodeAhead) to insts, instances of one database, in transactions of
// r.batchSize events, and calls stops on the way. It returns the position of
// the last event read. names, when set, are insts' names for the progress
// reports (a replay of several databases reports each).
func (r *Runner) replayGroup(ctx context.Context, src <-chan decoded, insts []*instance, from, floor domain.Position,
	index bool, stops []replayStop, names []string) (domain.Position, error) {
	// Instances filled from nothing build their query-only indexes at the
	// end, as do those whose indexes are missing.
	own := r.lowest(insts, floor)
	var deferred, drop []*instance
	for _, in := range insts {
		if _, ok := in.proj.(IndexDeferrer); !ok {
			continue
		}
		if own.IsZero() {
			deferred, drop = append(deferred, in), append(drop, in)
			continue
		}
		missing, err := r.missingIndexes(ctx, in)
		if err != nil {
			return from, err
		}
		if missing {
			deferred = append(deferred, in)
		}
	}
	if err := r.queryIndexes(ctx, drop, false); err != nil {
		return from, err
	}
	last, flushed := from, from
	var t *replayTx
	defer func() {
		if t != nil {
			t.rollback()
		}
	}()
	start, reported, applied := time.Now(), time.Now(), 0
	flush := func() error {
		if t == nil {
			return nil
		}
		n := t.events
		err := t.commit(ctx, last)
		t.rollback() // after a failed commit
		t = nil
		if err != nil {
			return fmt.Errorf("projections: replay up to %s: %w", last, err)
		}
		flushed = last
		// A long replay says how far it is, so that nobody takes it for a hang.
		if applied += n; time.Since(reported) >= progressEvery {
			reported = time.Now()
			attrs := []any{"position", last.String(), "events", applied,
				"events_per_second", int(float64(applied) / time.Since(start).Seconds())}
			if names != nil {
				attrs = append(attrs, "projections", names)
			}
			r.log.Info("read models replaying the log", attrs...)
		}
		to := make(map[*instance]domain.Position, len(insts))
		for _, in := range insts {
			to[in] = last
		}
		r.advance(to)
		return nil
	}
	// Each transaction takes runs of events until it holds r.batchSize: the
	// read models coalesce their writes over all of it, and no more than a
	// run is held at once.
	add := func(envs []Envelope) error {
		if len(envs) == 0 {
			return nil
		}
		if t == nil {
			var err error
			if t, err = r.begin(ctx, insts); err != nil {
				return fmt.Errorf("projections: replay after %s: %w", last, err)
			}
		}
		if err := t.add(ctx, envs); err != nil {
			return fmt.Errorf("projections: replay after %s: %w", last, err)
		}
		return nil
	}
	// commit commits up to last, even when only events the read models do
	// not use were read since: the checkpoints still pass them.
	commit := func() error {
		if t == nil && flushed.Less(last) {
			var err error
			if t, err = r.begin(ctx, insts); err != nil {
				return fmt.Errorf("projections: replay after %s: %w", last, err)
			}
		}
		return flush()
	}
	// stopAt commits up to the first stop and calls it.
	stopAt := func() error {
		last = stops[0].at
		if err := commit(); err != nil {
			return err
		}
		if err := stops[0].do(ctx); err != nil {
			return fmt.Errorf("projections: replay stopping at %s: %w", last, err)
		}
		stops = stops[1:]
		return nil
	}
	for c := range src {
		envs := c.envs
		for c.err == nil && len(stops) > 0 && !c.last.Less(stops[0].at) {
			k := 0 // the events up to the stop
			for k < len(envs) && envs[k].Position.Compare(stops[0].at) <= 0 {
				k++
			}
			if err := add(envs[:k]); err != nil {
				return last, err
			}
			envs = envs[k:]
			if err := stopAt(); err != nil {
				return last, err
			}
		}
		if err := add(envs); err != nil {
			return last, err
		}
		if c.err != nil {
			return last, c.err
		}
		last = c.last
		if t != nil && t.events >= r.batchSize {
			if err := flush(); err != nil {
				return last, err
			}
		}
	}
	// The stops after the last event read: the log has nothing the read
	// models keep up to them (a filtered log yields only those). Unless the
	// reading was cut short: the decoder stops without a word when ctx ends.
	if err := ctx.Err(); err != nil {
		return last, err
	}
	for len(stops) > 0 {
		if err := stopAt(); err != nil {
			return last, err
		}
	}
	if err := commit(); err != nil {
		return last, err
	}
	if !index {
		return last, nil
	}
	return last, r.queryIndexes(ctx, deferred, true)
}

// passTo records that every projection has read the log up to pos although
// the events after its checkpoint were not given to it (an as-of replay
// skipped them): checkpoints, and the position queries report, move to pos.
// Projections already there are left alone.
func (r *Runner) passTo(ctx context.Context, pos domain.Position) error {
	var insts []*instance
	r.mu.Lock()
	for _, n := range r.names {
		if p := r.byName[n]; p.cur.pos.Less(pos) {
			insts = append(insts, p.cur)
		}
	}
	r.mu.Unlock()
	for _, group := range r.byFile(insts) {
		if err := r.passGroupTo(ctx, group, pos); err != nil {
			return err
		}
	}
	return nil
}

// passGroupTo is passTo for instances of one database.
func (r *Runner) passGroupTo(ctx context.Context, insts []*instance, pos domain.Position) error {
	tx, err := r.beginWrite(ctx, insts[0].file)
	if err != nil {
		return fmt.Errorf("projections: pass to %s: %w", pos, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	to := map[*instance]domain.Position{}
	for _, in := range insts {
		to[in] = pos
		// The position it reflects, for a read model that keeps it ({p}meta).
		var meta int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
			withPrefix(in.prefix, "{p}meta")).Scan(&meta); err != nil {
			return fmt.Errorf("projections: %s: pass to %s: %w", in.proj.Name(), pos, err)
		}
		if meta > 0 {
			s := newStmts(tx.Tx, in.prefix)
			err := saveAt(ctx, s, pos)
			s.close()
			if err != nil {
				return fmt.Errorf("projections: %s: pass to %s: %w", in.proj.Name(), pos, err)
			}
		}
		if err := writeCheckpoint(ctx, tx.Tx, in.proj.Name(), in.prefix, in.version, pos); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: pass to %s: %w", pos, err)
	}
	r.advance(to)
	return nil
}

// byFile splits insts by database, in the order of the runner's databases
// (each part in the order of insts).
func (r *Runner) byFile(insts []*instance) [][]*instance {
	var out [][]*instance
	for _, f := range r.files {
		var part []*instance
		for _, in := range insts {
			if in.file == f {
				part = append(part, in)
			}
		}
		if len(part) > 0 {
			out = append(out, part)
		}
	}
	return out
}

// memoryHolder is a projector that keeps state in memory between its
// batches, which it can read back from its tables (see boardContribs).
type memoryHolder interface {
	// dropMemory lets that state go; the next batch reads it back.
	dropMemory()
}

// dropMemory lets the state its read models keep in memory go, and the
// payloads it decoded: an as-of view is only queried once built (and a
// build that continues from a copy of it reads the state back). A cached
// view held about 11 MB of payloads before, on the collector's hands.
func (r *Runner) dropMemory() {
	r.cache.reset()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.byName {
		if m, ok := p.cur.proj.(memoryHolder); ok {
			m.dropMemory()
		}
	}
}

// missingIndexes reports whether any query-only index of in is absent.
func (r *Runner) missingIndexes(ctx context.Context, in *instance) (bool, error) {
	for _, ix := range in.proj.(IndexDeferrer).QueryIndexes() {
		var n int
		if err := in.file.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`,
			withPrefix(in.prefix, ix.Name)).Scan(&n); err != nil {
			return false, fmt.Errorf("projections: %s: query indexes: %w", in.proj.Name(), err)
		}
		if n == 0 {
			return true, nil
		}
	}
	return false, nil
}

// decoded is a run of the log read and decoded ahead of a replay: the
// envelopes of the events the read models use, the position of the last
// event read (used or not), or the error that ended the reading.
type decoded struct {
	envs []Envelope
	last domain.Position
	err  error
}

// decodeChunk is the number of events of the log in a decoded run, and
// decodeAheadRuns how many runs may wait for the replay.
const (
	decodeChunk     = 512
	decodeAheadRuns = 4
)

// decodeAhead reads the log after from and decodes its events on its own
// goroutine, handing them over in runs. The channel closes after the last
// run, or after a run carrying an error; cancelling ctx stops the goroutine.
func (r *Runner) decodeAhead(ctx context.Context, log EventLog, from domain.Position) <-chan decoded {
	out := make(chan decoded, decodeAheadRuns)
	go func() {
		defer close(out)
		send := func(c decoded) bool {
			select {
			case out <- c:
				return true
			case <-ctx.Done():
				return false
			}
		}
		c := decoded{last: from, envs: make([]Envelope, 0, decodeChunk)}
		n := 0
		for e, err := range log.ReadAll(ctx, from) {
			if err != nil {
				c.err = fmt.Errorf("projections: replay: read log after %s: %w", c.last, err)
				send(c)
				return
			}
			env, ok, err := r.envelope(e)
			if err != nil {
				c.err = fmt.Errorf("projections: replay: %w", err)
				send(c)
				return
			}
			c.last = e.Position
			if ok {
				c.envs = append(c.envs, env)
			}
			if n++; n == decodeChunk {
				if !send(c) {
					return
				}
				c, n = decoded{last: c.last, envs: make([]Envelope, 0, decodeChunk)}, 0
			}
		}
		if n > 0 {
			send(c)
		}
	}()
	return out
}

// indexThreads is how many helper threads SQLite's sorter may use to build
// the query indexes: one per core, at most 8 (SQLite's own limit by
// default). Not GOMAXPROCS: `ledger serve` runs several per core.
func indexThreads() int { return min(runtime.NumCPU(), 8) }

// queryIndexes drops (create false) or creates the query-only indexes of
// insts, in one transaction per database.
func (r *Runner) queryIndexes(ctx context.Context, insts []*instance, create bool) error {
	for _, group := range r.byFile(insts) {
		if err := r.fileIndexes(ctx, group, create); err != nil {
			return err
		}
	}
	return nil
}

// fileIndexes is queryIndexes for instances of one database.
func (r *Runner) fileIndexes(ctx context.Context, insts []*instance, create bool) error {
	f := insts[0].file
	start := time.Now()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("projections: query indexes: %w", err)
	}
	defer conn.Close()
	if create {
		// Sort through temporary files, with a small buffer: building the
		// index of a million rows in memory would hold them all at once.
		// The sorter may use a helper thread per core (PRAGMA threads):
		// the indexes of the 1M-event rebuild took 4.9 s instead of 7.3.
		var mode, cache, threads int
		if err := conn.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&mode); err != nil {
			return fmt.Errorf("projections: query indexes: %w", err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&cache); err != nil {
			return fmt.Errorf("projections: query indexes: %w", err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA threads").Scan(&threads); err != nil {
			return fmt.Errorf("projections: query indexes: %w", err)
		}
		if _, err := conn.ExecContext(ctx, "PRAGMA temp_store = FILE; PRAGMA cache_size = -4096; PRAGMA threads = "+
			strconv.Itoa(indexThreads())); err != nil {
			return fmt.Errorf("projections: query indexes: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), //nolint:errcheck // best effort: only speed depends on it
			"PRAGMA temp_store = "+strconv.Itoa(mode)+"; PRAGMA cache_size = "+strconv.Itoa(cache)+
				"; PRAGMA threads = "+strconv.Itoa(threads))
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projections: query indexes: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for _, in := range insts {
		for _, ix := range in.proj.(IndexDeferrer).QueryIndexes() {
			q := "DROP INDEX IF EXISTS " + quoteIdent(withPrefix(in.prefix, ix.Name))
			if create {
				q = withPrefix(in.prefix, ix.Create)
			}
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("projections: %s: %s: %w", in.proj.Name(), firstLine(q), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projections: query indexes: %w", err)
	}
	if took := time.Since(start); create && took >= time.Second {
		r.log.Info("read models indexed after their replay", "took", took.Round(time.Millisecond))
	}
	return nil
}
