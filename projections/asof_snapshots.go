package projections

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"perfledger/domain"
)

// SnapshotStore keeps an AsOf's snapshots for the processes after it
// (AsOfConfig.Store): a heavy as-of board, whose first build replays most
// of the log, is then answered after a restart from the snapshots an
// earlier process took, replaying only the events after the nearest one.
type SnapshotStore interface {
	// Keep makes db, a snapshot that AsOfConfig.Copy returned and that
	// nobody writes any more, outlive the process, described by info: once
	// Keep returns, Kept lists it in the processes after this one, even
	// after a crash. Its release function then deletes it for good.
	Keep(ctx context.Context, db *sql.DB, info SnapshotInfo) error
	// Kept opens the snapshots earlier processes kept. Each one's Release
	// closes and deletes it.
	Kept(ctx context.Context) ([]KeptSnapshot, error)
}

// SnapshotInfo describes a kept snapshot: what an AsOf checks before it
// uses one that an earlier process took.
type SnapshotInfo struct {
	// Format is snapshotFormat of the process that took it.
	Format int `json:"format"`
	// Models names its read models, their versions and its scope.
	Models string `json:"models"`
	// Events is the length of the log prefix it holds (every event of it
	// the scope keeps); Last and Recorded are the position and recorded
	// time (Unix nanoseconds) of that prefix's last event.
	Events   int             `json:"events"`
	Last     domain.Position `json:"last"`
	Recorded int64           `json:"recorded_unix_nano"`
}

// KeptSnapshot is a snapshot an earlier process kept, opened.
type KeptSnapshot struct {
	Info    SnapshotInfo
	DB      *sql.DB
	Release func() // closes and deletes it
}

// snapshotFormat is the meaning of a kept snapshot beyond its read models'
// versions: bump it when a scope (AsOfScope) changes what it keeps, or a
// snapshot what it holds, so that the snapshots of earlier processes are
// dropped instead of used.
const snapshotFormat = 1

// modelsVersions names the read models of factories and their versions, in
// the order given: part of a view's and a snapshot's key, so that a kept
// snapshot of other versions of the projection code is never used.
func modelsVersions(factories []Factory) string {
	parts := make([]string, len(factories))
	for i, f := range factories {
		p := f("")
		parts[i] = p.Name() + ":" + strconv.Itoa(p.Version())
	}
	return strings.Join(parts, ",")
}

// loadKept adds to the snapshots those the store kept that hold a prefix
// of the log as it is (the same number of events, ending with the same
// event at the same recorded time), and deletes the others. Once per AsOf,
// after the index covers the log; the caller holds a.build.
func (a *AsOf) loadKept(ctx context.Context) {
	if a.keptLoaded || a.cfg.Store == nil || a.cfg.Copy == nil {
		return
	}
	kept, err := a.cfg.Store.Kept(ctx)
	if err != nil {
		if ctx.Err() == nil { // else the next build tries again
			a.keptLoaded = true
			a.log.Warn("as-of: the snapshots of earlier processes cannot be read; they are not used", "err", err)
		}
		return
	}
	a.keptLoaded = true
	loaded, dropped := 0, 0
	for _, k := range kept {
		if !a.matchesLog(k.Info) || a.hasSnapshot(k.Info.Events, k.Info.Models) {
			k.Release()
			dropped++
			continue
		}
		size, err := dbBytes(ctx, k.DB)
		if err != nil {
			k.Release()
			dropped++
			continue
		}
		// Never used yet by this process: the first to go when full.
		a.snaps = append(a.snaps, &snapshot{n: k.Info.Events, models: k.Info.Models, db: k.DB, release: k.Release, kept: true, bytes: size})
		loaded++
	}
	sort.Slice(a.snaps, func(i, j int) bool { return a.snaps[i].n < a.snaps[j].n })
	a.trimSnapshots()
	a.log.Info("as-of snapshots of earlier processes", "kept", loaded, "dropped", dropped)
}

// hasSnapshot reports whether a snapshot of models at n events is held.
// The caller holds a.build.
func (a *AsOf) hasSnapshot(n int, models string) bool {
	return slices.ContainsFunc(a.snaps, func(s *snapshot) bool { return s.n == n && s.models == models })
}

// matchesLog reports whether a kept snapshot holds a prefix of the log as
// indexed: the log is append-only, so a prefix whose last event is the same
// is the same prefix (a changed log is what `ledger verify` catches).
func (a *AsOf) matchesLog(info SnapshotInfo) bool {
	a.idxMu.Lock()
	defer a.idxMu.Unlock()
	n := info.Events
	return info.Format == snapshotFormat && n >= 1 && n <= a.idx.len() &&
		a.idx.pos(n-1) == info.Last && a.idx.rec(n-1) == info.Recorded
}

// keepNew hands the snapshots taken since it last ran, and still held, to
// the store: after a build, so that its waiters do not wait for the disk. A
// snapshot the store cannot keep still serves this process.
func (a *AsOf) keepNew(ctx context.Context) {
	a.build.Lock()
	defer a.build.Unlock()
	for _, s := range a.unkept {
		if !slices.Contains(a.snaps, s) {
			continue // dropped already
		}
		info := SnapshotInfo{Format: snapshotFormat, Models: s.models, Events: s.n}
		a.idxMu.Lock()
		info.Last, info.Recorded = a.idx.pos(s.n-1), a.idx.rec(s.n-1)
		a.idxMu.Unlock()
		if err := a.cfg.Store.Keep(ctx, s.db, info); err != nil {
			a.log.Warn("as-of: a snapshot cannot be kept for later processes", "events", s.n, "err", err)
			continue
		}
		s.kept = true
	}
	a.unkept = nil
}

// snapshotPoints are the snapshots a build from a base of from events to a
// prefix of the log takes: multiples of every, at most most of them, spread
// evenly over the events it replays and ending with the last multiple (the
// closest to the time asked, which the next queries are often near). Spread,
// rather than the last few, so that a build up to the head leaves a
// snapshot near any time before it.
func snapshotPoints(from, prefix, every, most int) []int {
	first, last := (from/every+1)*every, prefix/every*every
	if last < first || most < 1 {
		return nil
	}
	count := (last-first)/every + 1
	step := every * ((count + most - 1) / most)
	var out []int
	for p := last; p >= first && len(out) < most; p -= step {
		out = append(out, p)
	}
	slices.Reverse(out)
	return out
}

// trimSnapshots bounds the snapshots: at most MaxSnapshots of a scope (read
// models and scope, snapshot.models), and MaxSnapshotBytes in all, taken
// from the scope used least recently. Within a scope, the one to go is the
// one whose neighbours are closest (never the last): what is left stays
// spread over the log. The caller holds a.build.
func (a *AsOf) trimSnapshots() {
	scopes := map[string][]*snapshot{} // each sorted by n, as a.snaps
	var total int64
	for _, s := range a.snaps {
		scopes[s.models] = append(scopes[s.models], s)
		total += s.bytes
	}
	drop := func(scope string, i int) {
		s := scopes[scope][i]
		scopes[scope] = slices.Delete(scopes[scope], i, i+1)
		if len(scopes[scope]) == 0 {
			delete(scopes, scope)
		}
		a.snaps = slices.DeleteFunc(a.snaps, func(x *snapshot) bool { return x == s })
		total -= s.bytes
		s.release()
	}
	for scope, ss := range scopes {
		for len(ss) > a.cfg.MaxSnapshots {
			drop(scope, thinnest(ss))
			ss = scopes[scope]
		}
	}
	for total > a.cfg.MaxSnapshotBytes && len(scopes) > 0 {
		var lru string
		var lruUsed uint64
		first := true
		for scope, ss := range scopes {
			var used uint64
			for _, s := range ss {
				used = max(used, s.used)
			}
			if first || used < lruUsed || (used == lruUsed && scope < lru) {
				lru, lruUsed, first = scope, used, false
			}
		}
		drop(lru, thinnest(scopes[lru]))
	}
}

// thinnest returns which of a scope's snapshots (sorted by n) leaves the
// smallest gap once dropped: the one whose neighbours are closest, never
// the last unless it is alone.
func thinnest(ss []*snapshot) int {
	if len(ss) == 1 {
		return 0
	}
	best, bestGap := 0, -1
	for i := 0; i < len(ss)-1; i++ {
		prev := 0
		if i > 0 {
			prev = ss[i-1].n
		}
		if gap := ss[i+1].n - prev; bestGap < 0 || gap < bestGap {
			best, bestGap = i, gap
		}
	}
	return best
}

// dbBytes is the size of a database.
func dbBytes(ctx context.Context, db *sql.DB) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()").Scan(&n)
	return n, err
}

// ErrGaveWay is what Prepare returns when it stopped for another build.
var ErrGaveWay = errors.New("projections: as-of: the preparation gave way to a request")

// Prepare takes, ahead of the requests that will need them, the snapshots
// a view as of t of scope and names would take (a warm-up), without keeping
// the view itself. Nothing is built when a snapshot of that scope already
// holds the last point of the log prefix, or the view is cached or being
// built. It gives way to every other build: when one is asked for while
// Prepare's runs, Prepare's stops (keeping the snapshots it took) and
// returns ErrGaveWay; asked again later, it goes on from those.
func (a *AsOf) Prepare(ctx context.Context, t time.Time, scope AsOfScope, names ...string) error {
	set, err := a.eventSetFor(ctx, t, scope, names)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("projections: as-of: closed")
	}
	if a.lookupLocked(set.key) != nil || a.pending[set.key] != nil {
		a.mu.Unlock()
		return nil
	}
	a.running.Add(1)
	a.mu.Unlock()
	defer a.running.Done()

	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.build.Lock()
	a.mu.Lock()
	a.giveWay = cancel
	if a.waiting > 0 {
		cancel(ErrGaveWay)
	}
	closed := a.closed
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.giveWay = nil
		a.mu.Unlock()
	}()
	err = nil
	if !closed {
		a.loadKept(ctx)
		if last := set.prefix / a.cfg.SnapshotEvery * a.cfg.SnapshotEvery; last > 0 && a.cfg.Copy != nil &&
			!a.hasSnapshot(last, set.models.key) {
			start := time.Now()
			var v *AsOfView
			if v, err = a.buildView(bctx, t, set); err == nil {
				v.close()
				a.log.Info("as-of snapshots prepared", "as_of", t, "scope", set.models.key, "events", set.count,
					"took", time.Since(start).Round(time.Millisecond))
			}
		}
	}
	a.build.Unlock()
	a.keepNew(ctx)
	if a.cfg.Built != nil {
		a.cfg.Built(set.count)
	}
	if err != nil && errors.Is(context.Cause(bctx), ErrGaveWay) {
		return ErrGaveWay
	}
	return err
}
