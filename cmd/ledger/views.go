package main

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"

	"perfledger/adapters/sqlite"
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

// openViews opens the read-model databases of c, creating them if needed,
// with a read pool of readers connections of cacheMiB MiB of page cache per
// database each.
func openViews(ctx context.Context, c dataConfig, readers, cacheMiB int) (v *viewsDBs, err error) {
	v = &viewsDBs{separate: map[string]*sql.DB{}}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	if v.main, err = sqlite.OpenDerivedDB(ctx, c.viewsPath()); err != nil {
		return v, err
	}
	var paths []string
	for _, name := range separateViews {
		path := c.separatePath(name)
		if v.separate[name], err = sqlite.OpenDerivedDB(ctx, path); err != nil {
			return v, err
		}
		paths = append(paths, path)
	}
	v.read, err = sqlite.OpenReader(ctx, c.viewsPath(), readers, cacheMiB, paths...)
	return v, err
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
