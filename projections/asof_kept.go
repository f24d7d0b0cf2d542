package projections

import (
	"context"
	"database/sql"
	"slices"
	"sort"
	"strconv"
	"strings"

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
	a.keptLoaded = true
	kept, err := a.cfg.Store.Kept(ctx)
	if err != nil {
		a.log.Warn("as-of: the snapshots of earlier processes cannot be read; they are not used", "err", err)
		return
	}
	loaded, dropped := 0, 0
	for _, k := range kept {
		if !a.matchesLog(k.Info) || slices.ContainsFunc(a.snaps, func(s *snapshot) bool {
			return s.n == k.Info.Events && s.models == k.Info.Models
		}) {
			k.Release()
			dropped++
			continue
		}
		// Never used yet by this process: the first to go when full.
		a.snaps = append(a.snaps, &snapshot{n: k.Info.Events, models: k.Info.Models, db: k.DB, release: k.Release, kept: true})
		loaded++
	}
	sort.Slice(a.snaps, func(i, j int) bool { return a.snaps[i].n < a.snaps[j].n })
	a.trimSnapshots()
	a.log.Info("as-of snapshots of earlier processes", "kept", loaded, "dropped", dropped)
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

// trimSnapshots drops the least recently used snapshots past MaxSnapshots.
// The caller holds a.build.
func (a *AsOf) trimSnapshots() {
	for len(a.snaps) > a.cfg.MaxSnapshots {
		lru := 0
		for i, s := range a.snaps {
			if s.used < a.snaps[lru].used {
				lru = i
			}
		}
		a.snaps[lru].release()
		a.snaps = slices.Delete(a.snaps, lru, lru+1)
	}
}
