package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"perfledger/domain"
	"perfledger/projections"
)

// asOfDir is the folder, under the data folder, of the temporary read-model
// databases that answer as_of queries; it is emptied at every start.
func (c dataConfig) asOfDir() string { return filepath.Join(c.Dir, "asof") }

// asOfConfig sizes the as-of engine (flags of serve).
type asOfConfig struct {
	cache, snapshotEvery, snapshots int
}

// newAsOf builds the as-of engine of the API: private SQLite files under
// DIR/asof (no durability needed: they are rebuilt from the log at will),
// copied file by file for snapshots (VACUUM INTO when that cannot be done).
func newAsOf(dc dataConfig, c asOfConfig, log domain.EventStore, logger *slog.Logger) (*projections.AsOf, error) {
	dir := dc.asOfDir()
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("as-of folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("as-of folder: %w", err)
	}
	var n atomic.Int64
	newPath := func() string { return filepath.Join(dir, fmt.Sprintf("asof-%d.db", n.Add(1))) }
	var paths sync.Map // *sql.DB → its file
	open := func(ctx context.Context, path string) (*sql.DB, func(), error) {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=busy_timeout(5000)&_pragma=cache_size(-8192)&_pragma=temp_store(MEMORY)&_txlock=immediate")
		if err == nil {
			err = db.PingContext(ctx)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("open %s: %w", path, err)
		}
		paths.Store(db, path)
		return db, func() {
			paths.Delete(db)
			_ = db.Close()
			for _, s := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + s)
			}
		}, nil
	}
	return projections.NewAsOf(projections.AsOfConfig{
		Log:           log,
		Projections:   projections.All(),
		Open:          func(ctx context.Context) (*sql.DB, func(), error) { return open(ctx, newPath()) },
		CacheSize:     c.cache,
		SnapshotEvery: c.snapshotEvery,
		MaxSnapshots:  c.snapshots,
		Copy: func(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
			p := newPath()
			from, _ := paths.Load(src)
			if path, ok := from.(string); !ok || copyFile(ctx, src, path, p) != nil {
				// The slower way, which needs nothing of the source but a connection.
				_ = os.Remove(p)
				if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
					_ = os.Remove(p)
					return nil, nil, fmt.Errorf("copy into %s: %w", p, err)
				}
			}
			return open(ctx, p)
		},
		Logger: logger,
	})
}

// copyFile copies the SQLite database src, whose file is at from and which
// nobody writes while it is copied (a snapshot, or an as-of database already
// built), to a new file at to: its write-ahead log is folded into the file
// first, then the file's bytes are copied (far faster than VACUUM INTO,
// which rebuilds every table). It fails, leaving the caller to copy another
// way, when the log cannot be folded in completely.
func copyFile(ctx context.Context, src *sql.DB, from, to string) error {
	var busy, logFrames, done int
	if err := src.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return err
	}
	if busy != 0 || logFrames != done {
		return fmt.Errorf("copy %s: the write-ahead log is still in use", from)
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
