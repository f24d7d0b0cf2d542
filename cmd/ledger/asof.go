package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
)

// asOfDir is the folder, under the data folder, of the read-model databases
// that answer as_of queries. At every start it is emptied of all but the
// snapshots kept by earlier processes (asOfFiles.Keep); the folder can be
// deleted whenever the server is stopped.
func (c dataConfig) asOfDir() string { return filepath.Join(c.Dir, "asof") }

// asOfConfig sizes the as-of engine (flags of serve).
type asOfConfig struct {
	cache, snapshotEvery, snapshots int
	snapshotMiB                     int64
	warm                            string // --asof-warm (parseWarm)
}

// bigBuild is the size, in events, from which an as-of build's garbage is
// given back to the system at once.
const bigBuild = 200_000

// newAsOf builds the as-of engine of the API: private SQLite files under
// DIR/asof (no durability needed: they are rebuilt from the log at will),
// copied file by file for snapshots (VACUUM INTO when that cannot be done),
// its snapshots kept for the processes after this one.
func newAsOf(dc dataConfig, c asOfConfig, log domain.EventStore, logger *slog.Logger) (*projections.AsOf, error) {
	files, err := openAsOfFiles(dc.asOfDir())
	if err != nil {
		return nil, err
	}
	return projections.NewAsOf(projections.AsOfConfig{
		Log:              log,
		Projections:      projections.All(),
		Open:             func(ctx context.Context) (*sql.DB, func(), error) { return files.open(ctx, files.newPath()) },
		Copy:             files.copy,
		Store:            files,
		CacheSize:        c.cache,
		SnapshotEvery:    c.snapshotEvery,
		MaxSnapshots:     c.snapshots,
		MaxSnapshotBytes: c.snapshotMiB << 20,
		Built: func(events int) {
			// A big build leaves its garbage (the heap grew to the memory
			// limit) and the collector would give it back over minutes.
			if events >= bigBuild {
				debug.FreeOSMemory()
			}
		},
		Logger: logger,
	})
}

// asOfFiles are the as-of engine's SQLite files, asof-N.db in one folder,
// and the SnapshotStore that keeps some of them for later processes: a kept
// snapshot has beside it asof-N.db.kept, its description, written once the
// database is on disk.
type asOfFiles struct {
	dir   string
	n     atomic.Int64 // the last file number used
	paths sync.Map     // *sql.DB → its file
	kept  []string     // the kept snapshots found at start
}

// keptSuffix names the description of a kept snapshot, beside its database.
const keptSuffix = ".kept"

// asOfFileSuffixes are, after a database's path, the files that are part of
// it: the description first, so that a database losing its files loses it
// before anything else (one without it is deleted at the next start).
var asOfFileSuffixes = []string{keptSuffix, "", "-wal", "-shm"}

// removeAsOfFiles deletes the database at path and the files beside it.
func removeAsOfFiles(path string) {
	for _, s := range asOfFileSuffixes {
		_ = os.Remove(path + s)
	}
}

// keptFile is what a kept snapshot's description holds.
type keptFile struct {
	Info projections.SnapshotInfo `json:"info"`
	Size int64                    `json:"size"` // of the database file
}

// openAsOfFiles makes dir and empties it of everything but the kept
// snapshots (their databases, write-ahead logs and descriptions).
func openAsOfFiles(dir string) (*asOfFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("as-of folder: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("as-of folder: %w", err)
	}
	f := &asOfFiles{dir: dir}
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = true
	}
	keep := map[string]bool{}
	for _, e := range entries {
		db, ok := strings.CutSuffix(e.Name(), keptSuffix)
		if !ok || !names[db] {
			continue
		}
		num, ok := strings.CutPrefix(strings.TrimSuffix(db, ".db"), "asof-")
		n, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || !strings.HasSuffix(db, ".db") {
			continue
		}
		for _, s := range asOfFileSuffixes {
			keep[db+s] = true
		}
		f.kept = append(f.kept, filepath.Join(dir, db))
		f.n.Store(max(f.n.Load(), n))
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("as-of folder: %w", err)
			}
		}
	}
	return f, nil
}

// asOfIdle is how long an as-of database's connection may stay unused
// before it is closed.
const asOfIdle = 2 * time.Second

func (f *asOfFiles) newPath() string {
	return filepath.Join(f.dir, fmt.Sprintf("asof-%d.db", f.n.Add(1)))
}

// open opens the database at path (made when missing) and returns the
// function that closes and deletes it.
func (f *asOfFiles) open(ctx context.Context, path string) (*sql.DB, func(), error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=busy_timeout(5000)&_pragma=cache_size(-2048)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	// A kept snapshot waits, unread, for the build that starts from it: its
	// connection, with the page cache and schema it holds (≈ 175 KB), is
	// closed while it waits, and opened again when it is read.
	db.SetConnMaxIdleTime(asOfIdle)
	f.paths.Store(db, path)
	return db, func() {
		f.paths.Delete(db)
		_ = db.Close()
		removeAsOfFiles(path)
	}, nil
}

// copy copies src into a new file: byte for byte when it can, else with
// VACUUM INTO, which needs nothing of the source but a connection.
func (f *asOfFiles) copy(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
	p := f.newPath()
	from, _ := f.paths.Load(src)
	if path, ok := from.(string); !ok || copyFile(ctx, src, path, p) != nil {
		_ = os.Remove(p)
		if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
			_ = os.Remove(p)
			return nil, nil, fmt.Errorf("copy into %s: %w", p, err)
		}
	}
	return f.open(ctx, p)
}

// Keep implements projections.SnapshotStore: db's write-ahead log is folded
// into its file, the file is synced, then its description is written
// beside it (synced, then renamed into place).
func (f *asOfFiles) Keep(ctx context.Context, db *sql.DB, info projections.SnapshotInfo) error {
	v, _ := f.paths.Load(db)
	path, ok := v.(string)
	if !ok {
		return errors.New("keep a snapshot: not an as-of file")
	}
	if err := sqlite.FoldLog(ctx, db); err != nil {
		return fmt.Errorf("keep %s: %w", path, err)
	}
	if err := sqlite.SyncFile(path); err != nil {
		return fmt.Errorf("keep %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("keep %s: %w", path, err)
	}
	size := st.Size()
	desc, err := json.Marshal(keptFile{Info: info, Size: size})
	if err != nil {
		return err
	}
	tmp := path + keptSuffix + ".tmp"
	if err := os.WriteFile(tmp, desc, 0o600); err != nil {
		return fmt.Errorf("keep %s: %w", path, err)
	}
	if err := sqlite.SyncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("keep %s: %w", path, err)
	}
	if err := os.Rename(tmp, path+keptSuffix); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("keep %s: %w", path, err)
	}
	if err := sqlite.SyncFile(f.dir); err != nil {
		return fmt.Errorf("keep %s: %w", path, err)
	}
	return nil
}

// Kept implements projections.SnapshotStore: the snapshots found at start
// whose description reads and whose database has the size it gives and
// opens (the others are deleted).
func (f *asOfFiles) Kept(ctx context.Context) ([]projections.KeptSnapshot, error) {
	var out []projections.KeptSnapshot
	for _, path := range f.kept {
		var k keptFile
		desc, err := os.ReadFile(path + keptSuffix)
		if err == nil {
			err = json.Unmarshal(desc, &k)
		}
		st, serr := os.Stat(path)
		var (
			db      *sql.DB
			release func()
		)
		if err == nil && serr == nil && st.Size() == k.Size && k.Size > 0 {
			db, release, _ = f.open(ctx, path) // one that does not open is deleted below
		}
		if db == nil {
			if ctx.Err() != nil {
				for _, s := range out {
					_ = s.DB.Close()
				}
				return nil, ctx.Err()
			}
			removeAsOfFiles(path)
			continue
		}
		out = append(out, projections.KeptSnapshot{Info: k.Info, DB: db, Release: release})
	}
	f.kept = nil
	return out, nil
}

// copyFile copies the SQLite database src, whose file is at from and which
// nobody writes while it is copied (a snapshot, or an as-of database already
// built), to a new file at to: its write-ahead log is folded into the file
// first, then the file's bytes are copied (far faster than VACUUM INTO,
// which rebuilds every table). It fails, leaving the caller to copy another
// way, when the log cannot be folded in completely.
func copyFile(ctx context.Context, src *sql.DB, from, to string) error {
	if err := sqlite.FoldLog(ctx, src); err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
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
