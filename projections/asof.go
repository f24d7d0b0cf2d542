package projections

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"perfledger/domain"
)

// Defaults of AsOfConfig.
const (
	DefaultAsOfCache        = 4
	DefaultSnapshotEvery    = 50_000
	DefaultMaxSnapshots     = 8
	DefaultMaxSnapshotBytes = 4 << 30
)

// AsOfConfig configures an AsOf.
type AsOfConfig struct {
	// Log is the event log (required).
	Log EventLog
	// Projections are the read models to replay (required); the same
	// factories the serving runner uses, so that an as-of answer comes from
	// the same code as a live one.
	Projections []Factory
	// Open returns a new, empty, private read-model database and a function
	// that closes and deletes it (required).
	Open func(ctx context.Context) (db *sql.DB, release func(), err error)
	// Copy returns a new private database holding a copy of src (for SQLite:
	// VACUUM INTO a new file) and its release function. Nil disables
	// snapshots: every as-of database is then replayed from the start.
	Copy func(ctx context.Context, src *sql.DB) (db *sql.DB, release func(), err error)
	// CacheSize is how many as-of databases are kept (least recently used
	// goes first); 0 means DefaultAsOfCache.
	CacheSize int
	// Snapshots are taken at multiples of SnapshotEvery events (0:
	// DefaultSnapshotEvery), at most MaxSnapshots of each view's read
	// models and scope (0: DefaultMaxSnapshots), spread over the log (see
	// snapshotPoints and trimSnapshots); MaxSnapshotBytes bounds the
	// database bytes of them all (0: DefaultMaxSnapshotBytes), past which
	// those of the scopes least recently used go first.
	SnapshotEvery    int
	MaxSnapshots     int
	MaxSnapshotBytes int64
	// Decode turns a stored event's data into its payload; nil means
	// domain.DecodePayload.
	Decode func(domain.Event) (domain.Payload, error)
	// Store, when set (with Copy), keeps the snapshots for the processes
	// after this one, which use those that still match the log and the
	// read models' versions. Nil: snapshots last as long as the process.
	Store SnapshotStore
	// Built, when set, is told of every build once its waiters have their
	// view (or a Prepare is done): how many events it covers (a server
	// returns a big build's garbage to the system then).
	Built func(events int)
	// Logger receives build reports; nil discards them.
	Logger *slog.Logger
}

// Validate reports a configuration that cannot work.
func (c AsOfConfig) Validate() error {
	switch {
	case c.Log == nil:
		return errors.New("projections: as-of config: Log is nil")
	case len(c.Projections) == 0:
		return errors.New("projections: as-of config: no projections")
	case c.Open == nil:
		return errors.New("projections: as-of config: Open is nil")
	case c.CacheSize < 0 || c.SnapshotEvery < 0 || c.MaxSnapshots < 0 || c.MaxSnapshotBytes < 0:
		return errors.New("projections: as-of config: negative size")
	}
	return nil
}

// AsOf answers read-model queries as the ledger knew them at a past recorded
// time: the read models are rebuilt by replaying, through the same
// projection code and the same runner, exactly the events whose RecordedAt is
// at or before that time, in global order, into a private database.
//
// Keeping it interactive on big logs:
//   - an in-memory index of every event's position and recorded time (32
//     bytes an event, extended incrementally) turns a time into the exact set
//     of events it covers without reading the log;
//   - two times covering the same set share one database: the last few are
//     kept in an LRU cache;
//   - snapshots: while a database is being replayed, a copy is taken every
//     SnapshotEvery events of the log prefix (when Copy is set); a later
//     query starts from a copy of the nearest snapshot, or of a cached
//     database without stragglers, at or before its time and replays only
//     the tail;
//   - a build runs detached from the request that started it and lands in
//     the cache, so that a caller that stops waiting can ask again later.
//
// Recorded times are nearly, not strictly, increasing in global order (the
// service stamps them before appending). The set for T is the prefix of the
// log whose running maximum recorded time is ≤ T, plus the later events
// recorded ≤ T ("stragglers"); snapshots are only ever taken inside such a
// prefix, so a snapshot never holds an event the set excludes.
//
// Safe for concurrent use; builds run one at a time.
type AsOf struct {
	cfg AsOfConfig
	log *slog.Logger

	idxMu sync.Mutex
	idx   timeIndex

	build sync.Mutex // serialises builds and snapshot bookkeeping

	mu      sync.Mutex
	lru     *list.List // of *AsOfView, most recent first
	byKey   map[string]*list.Element
	pending map[string]*pendingBuild
	closed  bool

	snaps      []*snapshot // sorted by n; guarded by build
	uses       uint64      // snapshot use clock; guarded by build
	keptLoaded bool        // the store's snapshots were loaded; guarded by build
	unkept     []*snapshot // taken, not yet handed to the store; guarded by build
	running    sync.WaitGroup

	waiting int                     // builds waiting for the build lock; guarded by mu
	giveWay context.CancelCauseFunc // stops the Prepare building, if any; guarded by mu
}

// pendingBuild is a build in flight; requests for the same set wait on it.
type pendingBuild struct {
	done chan struct{}
	v    *AsOfView
	err  error
}

type snapshot struct {
	n       int    // events of the log prefix it holds
	models  string // the read models it holds (modelSet.key)
	db      *sql.DB
	release func()
	used    uint64 // when it was last taken or copied (AsOf.uses)
	kept    bool   // the store keeps it for later processes
	bytes   int64  // of its database
}

// AsOfView is the read-model database as of a recorded time. Query it like
// the serving runner: View.Current(name) is the instance, View.DB() its
// database. Release it when done.
type AsOfView struct {
	runner   *Runner
	db       *sql.DB
	release  func()
	key      string
	position domain.Position
	events   int

	prefix  int    // the view's events are exactly the first prefix of the log (when pure)
	pure    bool   // no straggler: a copy of the view can be extended
	models  string // the read models it holds (modelSet.key)
	refs    int    // guarded by AsOf.mu
	evicted bool   // guarded by AsOf.mu
}

// DB returns the view's database.
func (v *AsOfView) DB() *sql.DB { return v.db }

// Current returns the named projection's instance in the view (nil: unknown).
func (v *AsOfView) Current(name string) Projector { return v.runner.Current(name) }

// Position is the last event the view includes (zero: none).
func (v *AsOfView) Position() domain.Position { return v.position }

// Events is the number of events the view includes.
func (v *AsOfView) Events() int { return v.events }

// NewAsOf returns an AsOf; nothing is read until the first query.
func NewAsOf(cfg AsOfConfig) (*AsOf, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultAsOfCache
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = DefaultSnapshotEvery
	}
	if cfg.MaxSnapshots == 0 {
		cfg.MaxSnapshots = DefaultMaxSnapshots
	}
	if cfg.MaxSnapshotBytes == 0 {
		cfg.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	a := &AsOf{cfg: cfg, log: cfg.Logger, lru: list.New(), byKey: map[string]*list.Element{}, pending: map[string]*pendingBuild{}}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return a, nil
}

// Close releases every cached database and snapshot (but those the store
// keeps), once the builds running are done. Views still held are released
// when their holders let them go.
func (a *AsOf) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.running.Wait()
	a.build.Lock()
	defer a.build.Unlock()
	for _, s := range a.snaps {
		if s.kept {
			_ = s.db.Close() // for the processes after this one
		} else {
			s.release()
		}
	}
	a.snaps = nil
	a.mu.Lock()
	var drop []*AsOfView
	for e := a.lru.Front(); e != nil; e = e.Next() {
		v := e.Value.(*AsOfView)
		v.evicted = true
		if v.refs == 0 {
			drop = append(drop, v)
		}
	}
	a.lru.Init()
	clear(a.byKey)
	a.mu.Unlock()
	for _, v := range drop {
		v.close()
	}
	return nil
}

func (v *AsOfView) close() {
	if v.release != nil {
		v.release()
	}
}

// At returns the read models as of recorded time t, and the function that
// releases the view (call it once, when the queries are done). With names,
// only those read models are replayed (a view of the leaderboard alone is
// built, copied and snapshotted far faster than one of every read model);
// without, all of AsOfConfig.Projections.
//
// A build, once started, runs to its end even if ctx ends first (it runs
// detached and lands in the cache, so that asking again later is answered at
// once); At then returns ctx's error. Requests for the same set of events
// and read models share one build.
func (a *AsOf) At(ctx context.Context, t time.Time, names ...string) (*AsOfView, func(), error) {
	return a.AtScope(ctx, t, AsOfScope{}, names...)
}

// AsOfScope narrows an as-of view to what some queries read (LeaderboardScope:
// one period of the boards and cards): its replay skips the events that
// cannot change their answers, so that it reads the log up to t but applies
// only a part of it. A view built with a scope answers only the queries its
// scope was made for. Views and snapshots of different scopes are kept apart.
type AsOfScope struct {
	// Key names the scope in the caches ("" only for the zero scope).
	Key string
	// Keep reports whether the replay applies an event; nil keeps every one.
	// It sees only the event's Position, Type, OccurredAt, RecordedAt and
	// Data, the last valid during the call alone (domain.FilteringReader).
	Keep func(domain.Event) bool
	// Types, when set, are the only event types Keep can accept: a replay
	// that knows where those are (the index of recorded times lists each
	// event's type) reads them alone when they are few
	// (domain.PositionReader).
	Types func(typ string) bool
	// Occurred, when set, gives for a type the times [from, to) outside
	// which Keep refuses an event of that type by its occurred time (zero
	// times: none); the index knows every event's, and the replay reads
	// those alone as it does by type.
	Occurred func(typ string) (from, to time.Time)
	// Models, when set, replace the read models of the same names in the
	// scope's views: instances that keep only what the scope's queries
	// read (the same projection code, with less to recompute).
	Models []Factory
}

// AtScope is At for the queries of scope alone (see AsOfScope).
func (a *AsOf) AtScope(ctx context.Context, t time.Time, scope AsOfScope, names ...string) (*AsOfView, func(), error) {
	set, err := a.eventSetFor(ctx, t, scope, names)
	if err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, nil, errors.New("projections: as-of: closed")
	}
	if v := a.lookupLocked(set.key); v != nil {
		a.mu.Unlock()
		return v, a.releaser(v), nil
	}
	pb, running := a.pending[set.key]
	if !running {
		pb = &pendingBuild{done: make(chan struct{})}
		a.pending[set.key] = pb
		a.running.Add(1)
		go func() {
			defer a.running.Done()
			ctx := context.WithoutCancel(ctx)
			a.runBuild(ctx, t, set, pb)
			a.keepNew(ctx) // once the build's waiters have their view
			if a.cfg.Built != nil {
				a.cfg.Built(set.count)
			}
		}()
	}
	a.mu.Unlock()
	select {
	case <-pb.done:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if pb.err != nil {
		return nil, nil, pb.err
	}
	if v := a.lookup(set.key); v != nil {
		return v, a.releaser(v), nil
	}
	// Evicted already (a tiny cache under heavy use): build it again.
	return a.AtScope(ctx, t, scope, names...)
}

// eventSetFor returns the events and read models of the view as of t of
// scope and names (all read models when none).
func (a *AsOf) eventSetFor(ctx context.Context, t time.Time, scope AsOfScope, names []string) (eventSet, error) {
	models, err := a.models(names)
	if err != nil {
		return eventSet{}, err
	}
	if scope.Keep != nil {
		if scope.Key == "" {
			return eventSet{}, errors.New("projections: as-of: a scope that skips events needs a key")
		}
		models.key += "@" + scope.Key
		models.keep, models.heads = scope.Keep, headFilter{types: scope.Types, occurred: scope.Occurred}
		models.factories = slices.Clone(models.factories)
		for _, f := range scope.Models {
			name := f("").Name()
			i := slices.IndexFunc(models.factories, func(g Factory) bool { return g("").Name() == name })
			if i < 0 {
				return eventSet{}, fmt.Errorf("projections: as-of scope %s: %q: %w", scope.Key, name, ErrUnknownProjection)
			}
			models.factories[i] = f
		}
	}
	models.key += "#" + modelsVersions(models.factories)
	models.keep, models.heads.types = typeKeep(models.factories, models.keep, models.heads.types)
	if err := a.index(ctx); err != nil {
		return eventSet{}, err
	}
	set := a.setAt(t)
	set.models = models
	set.key += "|" + models.key
	return set, nil
}

// modelSet is the read models of a view: their factories, the events they
// are replayed (AsOfScope) and a key naming both.
type modelSet struct {
	factories []Factory
	key       string                  // sorted names, comma-separated ("" for all), then "@" and the scope's key, then "#" and modelsVersions
	keep      func(domain.Event) bool // nil: every event
	heads     headFilter              // what keep refuses by an event's type and occurred time
}

// headFilter is what a replay refuses by an event's type and occurred time
// alone (AsOfScope.Types and Occurred); nil funcs refuse nothing.
type headFilter struct {
	types    func(typ string) bool
	occurred func(typ string) (from, to time.Time)
}

// models returns the factories of the named read models (all when none is
// named), or an error naming one that is not configured.
func (a *AsOf) models(names []string) (modelSet, error) {
	if len(names) == 0 {
		return modelSet{factories: a.cfg.Projections}, nil
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out modelSet
	for _, n := range sorted {
		i := slices.IndexFunc(a.cfg.Projections, func(f Factory) bool { return f("").Name() == n })
		if i < 0 {
			return modelSet{}, fmt.Errorf("projections: as-of: %q: %w", n, ErrUnknownProjection)
		}
		out.factories = append(out.factories, a.cfg.Projections[i])
	}
	out.key = strings.Join(sorted, ",")
	return out, nil
}

// typeKeep returns keep (nil: every event) and types (nil: any) narrowed
// to the event types the read models of factories read, when each declares
// them (TypeFilter): the replay of read models that read a few types skips
// the rest of the log unbuilt, as a scope does. Their tables are the same
// (TestTypeFiltersLoseNothing).
func typeKeep(factories []Factory, keep func(domain.Event) bool, types func(string) bool) (func(domain.Event) bool, func(string) bool) {
	filters := make([]TypeFilter, 0, len(factories))
	for _, f := range factories {
		tf, ok := f("").(TypeFilter)
		if !ok {
			return keep, types
		}
		filters = append(filters, tf)
	}
	handled := func(typ string) bool {
		for _, f := range filters {
			if f.Handles(typ) {
				return true
			}
		}
		return false
	}
	narrowed := func(typ string) bool { return handled(typ) && (types == nil || types(typ)) }
	return func(e domain.Event) bool {
		return handled(e.Type) && (keep == nil || keep(e))
	}, narrowed
}

// runBuild builds the view of set and puts it in the cache.
func (a *AsOf) runBuild(ctx context.Context, t time.Time, set eventSet, pb *pendingBuild) {
	defer close(pb.done)
	a.mu.Lock()
	a.waiting++
	if a.giveWay != nil {
		a.giveWay(ErrGaveWay)
	}
	a.mu.Unlock()
	a.build.Lock()
	a.mu.Lock()
	a.waiting--
	a.mu.Unlock()
	start := time.Now()
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	var (
		v   *AsOfView
		err error
	)
	if closed {
		err = errors.New("projections: as-of: closed")
	} else {
		a.loadKept(ctx)
		v, err = a.buildView(ctx, t, set)
	}
	a.build.Unlock()
	a.mu.Lock()
	delete(a.pending, set.key)
	if err != nil || a.closed {
		a.mu.Unlock()
		if err == nil {
			v.close()
			err = errors.New("projections: as-of: closed")
		}
		pb.err = err
		return
	}
	a.log.Info("as-of read models built", "as_of", t, "events", set.count, "took", time.Since(start).Round(time.Millisecond))
	a.byKey[v.key] = a.lru.PushFront(v)
	var drop []*AsOfView
	for a.lru.Len() > a.cfg.CacheSize {
		e := a.lru.Back()
		old := e.Value.(*AsOfView)
		a.lru.Remove(e)
		delete(a.byKey, old.key)
		old.evicted = true
		if old.refs == 0 {
			drop = append(drop, old)
		}
	}
	a.mu.Unlock()
	for _, old := range drop {
		old.close()
	}
	pb.v = v
}

func (a *AsOf) lookup(key string) *AsOfView {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lookupLocked(key)
}

func (a *AsOf) lookupLocked(key string) *AsOfView {
	e, ok := a.byKey[key]
	if !ok {
		return nil
	}
	a.lru.MoveToFront(e)
	v := e.Value.(*AsOfView)
	v.refs++
	return v
}

func (a *AsOf) releaser(v *AsOfView) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			v.refs--
			closeIt := v.refs == 0 && v.evicted
			a.mu.Unlock()
			if closeIt {
				v.close()
			}
		})
	}
}

// index extends the time index with the events appended since.
func (a *AsOf) index(ctx context.Context) error {
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	var after domain.Position
	if n := a.idx.len(); n > 0 {
		after = a.idx.pos(n - 1)
	}
	for e, err := range recordedTimes(ctx, a.cfg.Log, after) {
		if err != nil {
			return fmt.Errorf("projections: as-of: index the log: %w", err)
		}
		a.idx.add(e.Position, e.RecordedAt.UnixNano(), e.Type, e.OccurredAt)
	}
	return nil
}

// Index reads the recorded time of every event of the log not yet indexed
// (the first as-of query of a process otherwise does it: about a second per
// million events). A server calls it once started, in the background, so
// that the first query does not wait for it.
func (a *AsOf) Index(ctx context.Context) error {
	start := time.Now()
	if err := a.index(ctx); err != nil {
		return err
	}
	a.idxMu.Lock()
	n := a.idx.len()
	a.idxMu.Unlock()
	a.log.Info("as-of index of recorded times ready", "events", n, "took", time.Since(start).Round(time.Millisecond))
	a.build.Lock()
	defer a.build.Unlock()
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if !closed {
		a.loadKept(ctx)
	}
	return nil
}

// Indexed extends the index of recorded times with the events appended
// since it was last read, quietly, and returns how many events it holds.
func (a *AsOf) Indexed(ctx context.Context) (int, error) {
	if err := a.index(ctx); err != nil {
		return 0, err
	}
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	return a.idx.len(), nil
}

// SnapshotEvery is the distance, in events, between the snapshots' points.
func (a *AsOf) SnapshotEvery() int { return a.cfg.SnapshotEvery }

// recordedTimes lists the position and recorded time of every event of log
// after a position: through domain.TimeLister when the log offers it (it
// skips the events' contents), else through ReadAll.
func recordedTimes(ctx context.Context, log EventLog, after domain.Position) iter.Seq2[domain.EventTime, error] {
	if tl, ok := log.(domain.TimeLister); ok {
		return tl.RecordedTimes(ctx, after)
	}
	return func(yield func(domain.EventTime, error) bool) {
		for e, err := range log.ReadAll(ctx, after) {
			if !yield(domain.EventTime{Position: e.Position, RecordedAt: e.RecordedAt, Type: e.Type, OccurredAt: e.OccurredAt}, err) || err != nil {
				return
			}
		}
	}
}

// eventSet describes the events recorded at or before a time: the prefix of
// the log up to prefix (exclusive index) and the later stragglers.
type eventSet struct {
	prefix     int
	stragglers []domain.Position
	last       domain.Position // the last event of the set (zero: empty)
	count      int
	key        string   // the events and the read models
	models     modelSet // the read models to replay
}

func (a *AsOf) setAt(t time.Time) eventSet {
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	tn := t.UnixNano()
	k := a.idx.prefixUpTo(tn)
	s := eventSet{prefix: k, count: k}
	if k > 0 {
		s.last = a.idx.pos(k - 1)
	}
	h := fnv.New64a()
	for i := k; i < a.idx.len(); i++ {
		if a.idx.rec(i) <= tn {
			p := a.idx.pos(i)
			s.stragglers = append(s.stragglers, p)
			s.last = p
			h.Write([]byte(p.String() + ","))
		}
	}
	s.count += len(s.stragglers)
	s.key = strconv.Itoa(k) + "+" + strconv.Itoa(len(s.stragglers)) + ":" + strconv.FormatUint(h.Sum64(), 16)
	return s
}

// positionAt returns the position of the n-th event of the log (n ≥ 1).
func (a *AsOf) positionAt(n int) domain.Position {
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	return a.idx.pos(n - 1)
}

// buildView replays the set into a new database, starting from the nearest
// snapshot, and takes the snapshots it passes. The caller holds a.build.
func (a *AsOf) buildView(ctx context.Context, t time.Time, set eventSet) (v *AsOfView, err error) {
	var (
		db      *sql.DB
		release func()
		from    int // events of the prefix already in db
	)
	if base, n, done := a.nearestBase(set.prefix, set.models.key); base != nil {
		db, release, err = a.cfg.Copy(ctx, base)
		done()
		from = n
	} else {
		db, release, err = a.cfg.Open(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("projections: as-of: open a database: %w", err)
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	r, err := NewRunner(ctx, RunnerConfig{DB: db, Projections: set.models.factories, Decode: a.cfg.Decode,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	// The set, stopping at every snapshot point of its prefix on the way
	// (each reflects every event up to there, whatever the last event kept:
	// a build from it reads on from there); then the query indexes (built
	// even with nothing to read when missing).
	var stops []replayStop
	if a.cfg.Copy != nil {
		for _, next := range snapshotPoints(from, set.prefix, a.cfg.SnapshotEvery, a.cfg.MaxSnapshots) {
			upTo := a.positionAt(next)
			stops = append(stops, replayStop{at: upTo, do: func(ctx context.Context) error {
				// Snapshots are taken without the query indexes.
				if err := r.passTo(ctx, upTo); err != nil {
					return err
				}
				return a.takeSnapshot(ctx, next, set.models.key, db)
			}})
		}
	}
	bl := boundedLog{log: a.cfg.Log, upTo: set.last, until: t, keep: set.models.keep, heads: set.models.heads, split: a.logRuns,
		bufs: newRunBuffers()}
	if err := r.catchUpStopping(ctx, bl, stops); err != nil {
		return nil, err
	}
	if !set.last.IsZero() {
		// The view reflects every event up to set.last, including those
		// skipped (recorded after t, refused by a scope, of a type unknown
		// to this build): its read models report that position.
		if err := r.passTo(ctx, set.last); err != nil {
			return nil, err
		}
	}
	r.dropMemory()
	return &AsOfView{runner: r, db: db, release: release, key: set.key, position: set.last, events: set.count,
		prefix: set.prefix, pure: len(set.stragglers) == 0, models: set.models.key}, nil
}

// nearestBase picks the database to copy for a set whose prefix has n
// events: the snapshot or cached view (one without stragglers) holding the
// longest prefix of at most n events, and the number it holds. done
// releases the pick once copied. Nil when no base helps (or Copy is nil).
// The caller holds a.build.
func (a *AsOf) nearestBase(n int, models string) (db *sql.DB, events int, done func()) {
	if a.cfg.Copy == nil {
		return nil, 0, nil
	}
	var snap *snapshot
	for _, s := range a.snaps {
		if s.n <= n && s.models == models {
			snap = s
		}
	}
	a.mu.Lock()
	var view *AsOfView
	for e := a.lru.Front(); e != nil; e = e.Next() {
		v := e.Value.(*AsOfView)
		if v.pure && v.models == models && v.prefix <= n && (view == nil || v.prefix > view.prefix) {
			view = v
		}
	}
	if view != nil && (snap == nil || view.prefix > snap.n) {
		view.refs++
		a.mu.Unlock()
		return view.db, view.prefix, a.releaser(view)
	}
	a.mu.Unlock()
	if snap == nil || snap.n == 0 {
		return nil, 0, nil
	}
	a.uses++
	snap.used = a.uses
	return snap.db, snap.n, func() {}
}

func (a *AsOf) takeSnapshot(ctx context.Context, n int, models string, db *sql.DB) error {
	if a.hasSnapshot(n, models) {
		return nil
	}
	cp, release, err := a.cfg.Copy(ctx, db)
	if err != nil {
		return fmt.Errorf("projections: as-of: snapshot at %d events: %w", n, err)
	}
	size, err := dbBytes(ctx, cp)
	if err != nil {
		release()
		return fmt.Errorf("projections: as-of: snapshot at %d events: %w", n, err)
	}
	a.uses++
	s := &snapshot{n: n, models: models, db: cp, release: release, used: a.uses, bytes: size}
	if a.cfg.Store != nil {
		a.unkept = append(a.unkept, s)
	}
	a.snaps = append(a.snaps, s)
	sort.Slice(a.snaps, func(i, j int) bool { return a.snaps[i].n < a.snaps[j].n })
	a.trimSnapshots()
	return nil
}

// boundedLog is the log as known at until: events recorded after until are
// skipped, as are those keep (when set) refuses, and reading stops after
// upTo. keep sees only an event's Position, Type, OccurredAt, RecordedAt
// and Data (see domain.FilteringReader).
type boundedLog struct {
	log   EventLog
	upTo  domain.Position
	until time.Time
	keep  func(domain.Event) bool
	// heads is what keep refuses by type and occurred time.
	heads headFilter
	// split, when set, cuts the log after a position up to another into
	// runs of about readChunk events: a scoped replay then reads them on
	// parallelReaders goroutines (readParallel). A run lists the positions
	// of the events heads does not refuse when they are few.
	split func(after, upTo domain.Position, heads headFilter) []logRun
	// bufs, when set, keeps the buffers of the runs readParallel read for
	// the next runs, and the next legs of the same build.
	bufs runBuffers
}

// runBuffers hold the events of runs read in parallel, rather than slices
// allocated and grown for each run: 3.7 MB each, they were most of what an
// as-of build allocated. Not a sync.Pool: the collector, which an as-of
// build keeps busy, empties those.
type runBuffers chan *[]domain.Event

func newRunBuffers() runBuffers { return make(runBuffers, parallelReaders+2) }

func (rb runBuffers) get() *[]domain.Event {
	select {
	case b := <-rb:
		return b
	default:
		b := make([]domain.Event, 0, readChunk)
		return &b
	}
}

func (rb runBuffers) put(b *[]domain.Event) {
	clear(*b) // let the store's pages go
	*b = (*b)[:0]
	select {
	case rb <- b:
	default:
	}
}

// logRun is a run of the log: up to end (after the previous run's end).
// When only is not nil, the events of the run that the replay can keep are
// at those positions alone, and a log that can read them by position
// (domain.PositionReader) reads those.
type logRun struct {
	end  domain.Position
	only []domain.Position
}

// wanted reports whether the replay applies e.
func (l boundedLog) wanted(e domain.Event) bool {
	return !e.RecordedAt.After(l.until) && (l.keep == nil || l.keep(e))
}

func (l boundedLog) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		if !after.Less(l.upTo) {
			return
		}
		events, filtered := l.log.ReadAll(ctx, after), false
		if fr, ok := l.log.(domain.FilteringReader); ok && l.keep != nil && l.split != nil {
			if runs := l.split(after, l.upTo, l.heads); len(runs) > 1 || len(runs) == 1 && runs[0].only != nil {
				l.readParallel(ctx, fr, after, runs, yield)
				return
			}
		}
		if fr, ok := l.log.(domain.FilteringReader); ok {
			// The store skips what is refused without building it.
			events, filtered = fr.ReadAllWhere(ctx, after, l.upTo, l.wanted), true
		}
		for e, err := range events {
			if err != nil {
				yield(domain.Event{}, err)
				return
			}
			if l.upTo.Less(e.Position) {
				return
			}
			if !filtered && !l.wanted(e) {
				if e.Position == l.upTo {
					return
				}
				continue
			}
			if !yield(e, nil) {
				return
			}
			if e.Position == l.upTo {
				return
			}
		}
	}
}

// Parallel reading of a scoped replay: the runs of the log (readChunk events)
// are read by parallelReaders goroutines, at most one more run than readers
// ahead of the replay. A scope keeps a small part of what it reads, so that
// a run read ahead holds little; a replay that keeps everything reads on
// one goroutine.
const parallelReaders = 2

var readChunk = 16384 // a variable for the tests

// readParallel yields, in log order, the events of the runs after after
// that the replay wants, reading the runs on parallel goroutines: those
// that list their positions by position when the log can. It returns once
// they have all stopped.
func (l boundedLog) readParallel(ctx context.Context, fr domain.FilteringReader, after domain.Position, ends []logRun,
	yield func(domain.Event, error) bool) {
	pr, byPosition := l.log.(domain.PositionReader)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type run struct {
		events *[]domain.Event
		err    error
	}
	runs := make([]chan run, len(ends))
	for i := range runs {
		runs[i] = make(chan run, 1)
	}
	jobs, slots := make(chan int), make(chan struct{}, parallelReaders+1)
	wg.Go(func() {
		defer close(jobs)
		for i := range ends {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	for range parallelReaders {
		wg.Go(func() {
			for i := range jobs {
				from := after
				if i > 0 {
					from = ends[i-1].end
				}
				var events iter.Seq2[domain.Event, error]
				filtered := ends[i].only == nil || !byPosition // by the store, with l.wanted
				if filtered {
					events = fr.ReadAllWhere(ctx, from, ends[i].end, l.wanted)
				} else {
					events = pr.ReadPositions(ctx, ends[i].only)
				}
				r := run{events: l.bufs.get()}
				for e, err := range events {
					if err != nil {
						r.err = err
						break
					}
					if filtered || l.wanted(e) {
						*r.events = append(*r.events, e)
					}
				}
				runs[i] <- r
			}
		})
	}
	for i := range ends {
		var r run
		select {
		case r = <-runs[i]:
		case <-ctx.Done():
			yield(domain.Event{}, ctx.Err())
			return
		}
		<-slots
		for _, e := range *r.events {
			if !yield(e, nil) {
				return
			}
		}
		l.bufs.put(r.events)
		if r.err != nil {
			yield(domain.Event{}, r.err)
			return
		}
	}
}

// sparseRead: a run lists its positions (logRun.only) when at most one
// event in sparseRead is one the replay can keep by its head. Reading an
// event by its position costs about what scanning a few does.
const sparseRead = 4

// logRuns is boundedLog.split over the index of recorded times: runs of
// readChunk events after after, the last ending at upTo; a run lists the
// positions of the events heads does not refuse when they are few
// (sparseRead).
func (a *AsOf) logRuns(after, upTo domain.Position, heads headFilter) []logRun {
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	first, end := a.idx.after(after), a.idx.after(upTo)
	// By type number: whether its events are read, and within which times
	// they occurred (zero: any).
	type rule struct {
		asked, read bool
		from, to    int64
	}
	var rules []rule
	filtered := heads.types != nil || heads.occurred != nil
	if filtered {
		rules = make([]rule, len(a.idx.typeNames))
	}
	wanted := func(i int) bool {
		n := a.idx.typ(i)
		if n == unknownType {
			return true
		}
		r := &rules[n]
		if !r.asked {
			name := a.idx.typeNames[n]
			r.asked, r.read = true, heads.types == nil || heads.types(name)
			if heads.occurred != nil {
				if from, to := heads.occurred(name); !from.IsZero() || !to.IsZero() {
					r.from, r.to = math.MinInt64, math.MaxInt64
					if !from.IsZero() {
						r.from = from.UnixNano()
					}
					if !to.IsZero() {
						r.to = to.UnixNano()
					}
				}
			}
		}
		return r.read && (r.from == 0 && r.to == 0 || a.idx.occurredWithin(i, r.from, r.to))
	}
	var runs []logRun
	for lo := first; lo < end; lo += readChunk {
		hi := min(lo+readChunk, end)
		r := logRun{end: a.idx.pos(hi - 1)}
		if filtered {
			only := make([]domain.Position, 0, (hi-lo)/sparseRead+1)
			for i := lo; i < hi && len(only)*sparseRead <= hi-lo; i++ {
				if wanted(i) {
					only = append(only, a.idx.pos(i))
				}
			}
			if len(only)*sparseRead <= hi-lo {
				r.only = only
			}
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 || runs[len(runs)-1].end != upTo {
		// upTo is not indexed (an empty stretch): the last run ends there,
		// read whole.
		runs = append(runs, logRun{end: upTo})
	}
	return runs
}
