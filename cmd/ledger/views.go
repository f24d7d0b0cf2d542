package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
)

// separateViews names the read models kept in a database of their own,
// next to views.db (views-<name>.db): the runner writes each on its own
// connection, so that a rebuild or catch-up applies it on one core while
// the other read models are applied on another. The leaderboard is the
// longest to replay (1M demo events: about 34 s alone, 46 s with every
// read model in views.db); `ledger rebuild` of 1M events took a median of
// 41.0 s so, against 47.9 s with one database (BENCHMARKS.md).
var separateViews = []string{"leaderboard"}

// viewsDBs are the read-model databases of a data folder: views.db and the
// separate ones, each with the pool that writes it, and one pool that reads
// them all (views.db with the others attached).
type viewsDBs struct {
	main     *sql.DB
	separate map[string]*sql.DB
	read     *sql.DB
}

// separatePath is the database of a read model of separateViews.
func (c dataConfig) separatePath(name string) string {
	return filepath.Join(c.Dir, "views-"+name+".db")
}

// rebuildDir is the folder in which rebuildViews writes new read-model
// databases before they replace the data folder's.
func (c dataConfig) rebuildDir() string { return filepath.Join(c.Dir, "rebuilding") }

// viewsPaths are the read-model databases of a data folder at dir:
// views.db, then those of separateViews in order.
func viewsPaths(dir string) []string {
	c := dataConfig{Dir: dir}
	paths := []string{c.viewsPath()}
	for _, name := range separateViews {
		paths = append(paths, c.separatePath(name))
	}
	return paths
}

// openViews opens the read-model databases of c, creating them if needed,
// with a read pool of readers connections of cacheMiB MiB of page cache per
// database each. The caller holds the data folder's lock: what an
// interrupted rebuildViews left is removed.
func openViews(ctx context.Context, c dataConfig, readers, cacheMiB int) (*viewsDBs, error) {
	if err := os.RemoveAll(c.rebuildDir()); err != nil {
		return nil, fmt.Errorf("remove an interrupted rebuild: %w", err)
	}
	return openViewsAt(ctx, viewsPaths(c.Dir), sqlite.OpenDerivedDB, readers, cacheMiB)
}

// openViewsAt opens the read-model databases at paths (as viewsPaths lays
// them out) with open, and a read pool on them all.
func openViewsAt(ctx context.Context, paths []string, open func(context.Context, string) (*sql.DB, error),
	readers, cacheMiB int) (v *viewsDBs, err error) {
	v = &viewsDBs{separate: map[string]*sql.DB{}}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	if v.main, err = open(ctx, paths[0]); err != nil {
		return v, err
	}
	for i, name := range separateViews {
		if v.separate[name], err = open(ctx, paths[1+i]); err != nil {
			return v, err
		}
	}
	v.read, err = sqlite.OpenReader(ctx, paths[0], readers, cacheMiB, paths[1:]...)
	return v, err
}

// noViews reports whether the data folder c has none of its read-model
// databases yet.
func noViews(c dataConfig) (bool, error) {
	for _, p := range viewsPaths(c.Dir) {
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
	}
	return true, nil
}

// ifDamaged ends the errors of rebuildViews that an old read-model database
// it cannot open causes.
const ifDamaged = " (if the read models are damaged, delete views*.db and run it again: the policies then go " +
	"through the log again, which grants nothing twice)"

// rebuildViews builds every read model from log into new databases, in
// rebuildDir, then moves them over the data folder's. The caller holds the
// data folder's lock, so nothing reads or writes the old ones meanwhile. The
// databases are written without a journal (sqlite.OpenBulkDB), which is
// safe because nothing reads them before they are complete: on any error,
// or after a crash, they are deleted (here, or by the next openViews) and the
// old databases are left as they were. The policies' checkpoints are
// carried over, so that they go on where they were.
func rebuildViews(ctx context.Context, c dataConfig, log projections.EventLog, logger *slog.Logger) (err error) {
	dir := c.rebuildDir()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("rebuild: remove an interrupted rebuild: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = fmt.Errorf("rebuild: %w", rmErr)
		}
	}()
	policies, err := oldPolicyCheckpoints(ctx, c)
	if err != nil {
		return fmt.Errorf("rebuild: %w"+ifDamaged, err)
	}
	fresh := viewsPaths(dir)
	if err := fillViews(ctx, fresh, log, policies, logger); err != nil {
		return err
	}
	for _, p := range fresh {
		if err := sqlite.SealDB(ctx, p); err != nil {
			return err
		}
	}
	// The separate databases first: views.db, which holds the policies'
	// checkpoints, is replaced last. Each database holds its own read models'
	// checkpoints, so a crash between two replacements leaves each whole.
	final := viewsPaths(c.Dir)
	for i := len(fresh) - 1; i >= 0; i-- {
		if err := sqlite.ReplaceDB(ctx, fresh[i], final[i]); err != nil {
			return fmt.Errorf("rebuild: %w"+ifDamaged, err)
		}
	}
	return nil
}

// oldPolicyCheckpoints reads the policies' checkpoints from the data
// folder's views.db, if there is one.
func oldPolicyCheckpoints(ctx context.Context, c dataConfig) (map[string]domain.Position, error) {
	if _, err := os.Stat(c.viewsPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	db, err := sqlite.OpenDerivedDB(ctx, c.viewsPath())
	if err != nil {
		return nil, err
	}
	policies, err := projections.PolicyCheckpoints(ctx, db)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", c.viewsPath(), cerr)
	}
	return policies, err
}

// fillViews creates the read-model databases at paths (as viewsPaths lays
// them out) with sqlite.OpenBulkDB, records the policies' checkpoints and
// applies log to every read model, then closes them.
func fillViews(ctx context.Context, paths []string, log projections.EventLog, policies map[string]domain.Position,
	logger *slog.Logger) error {
	v, err := openViewsAt(ctx, paths, sqlite.OpenBulkDB, 1, 1)
	if err != nil {
		return err
	}
	defer v.Close()
	cfg := v.runnerConfig()
	cfg.Logger = logger
	r, err := projections.NewRunner(ctx, cfg)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(policies)) {
		if err := r.SavePolicyCheckpoint(ctx, name, policies[name]); err != nil {
			return err
		}
	}
	if err := r.CatchUp(ctx, log); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}

// runnerConfig is the runner's configuration over v, for every read model
// and the policies' facts.
func (v *viewsDBs) runnerConfig() projections.RunnerConfig {
	return projections.RunnerConfig{DB: v.main, ReadDB: v.read, Separate: v.separate,
		Projections: append(projections.All(), projections.PolicyFacts)}
}

// Close closes every pool, the readers first.
func (v *viewsDBs) Close() {
	if v == nil {
		return
	}
	dbs := []*sql.DB{v.read, v.main}
	for _, name := range slices.Sorted(maps.Keys(v.separate)) {
		dbs = append(dbs, v.separate[name])
	}
	for _, db := range dbs {
		if db != nil {
			_ = db.Close()
		}
	}
}
