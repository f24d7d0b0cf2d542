package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// OpenBulkDB creates a database that one writer fills from nothing, such as
// read models rebuilt from the event log into a scratch folder, and that is
// thrown away if anything goes wrong before SealDB: it keeps no rollback
// journal and never syncs (journal_mode=OFF, synchronous=OFF), which is how
// SQLite loads in bulk. The 1M-event demo ledger's read models were rebuilt
// in a median 31.0 s so, against 33.5 s in WAL mode (BENCHMARKS.md).
//
// Without a journal a failed statement or transaction cannot be undone and a
// crash leaves the file unusable: callers must not roll back and go on, and
// must delete the file on any error. path must not exist yet.
//
// Otherwise the database is as OpenDerivedDB's: the same page cache, memory
// temporary storage, foreign keys and immediate write transactions.
func OpenBulkDB(ctx context.Context, path string) (*sql.DB, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("sqlite: bulk database %s: it exists already; want a new file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sqlite: bulk database: %w", err)
	}
	db, err := openJournaled(ctx, path, "off", DerivedCacheMiB, "synchronous(OFF)&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(1)
	return db, nil
}

// SealDB turns a database filled through OpenBulkDB, whose every connection
// is closed, into one OpenDerivedDB opens as it is: in WAL mode, every page
// on disk (the file is synced).
func SealDB(ctx context.Context, path string) error {
	if err := checkpointAndClose(ctx, path); err != nil {
		return err
	}
	return SyncFile(path)
}

// checkpointAndClose opens the database at path as OpenDerivedDB does (in
// WAL mode), writes back what its write-ahead log holds and closes it, which
// removes the log unless another connection has the database open.
func checkpointAndClose(ctx context.Context, path string) error {
	db, err := OpenDerivedDB(ctx, path)
	if err != nil {
		return err
	}
	if err := FoldLog(ctx, db); err != nil {
		db.Close()
		return fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", path, err)
	}
	return nil
}

// ReplaceDB moves the database at from (sealed by SealDB) to the path to,
// replacing the database there if any, in one rename.
//
// The database at to must not be open anywhere. It is first opened and
// closed once, which writes back what its write-ahead log held and removes
// the log: a log left beside the new file would be read as its own. If the
// log is still there afterwards (another process has the database open),
// ReplaceDB stops with an error and changes nothing. A crash at any point
// leaves either the old database or the new one at to, each whole.
func ReplaceDB(ctx context.Context, from, to string) error {
	if _, err := os.Stat(to); err == nil {
		if err := checkpointAndClose(ctx, to); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: replace %s: %w", to, err)
	}
	if _, err := os.Lstat(to + "-wal"); err == nil {
		return fmt.Errorf("sqlite: replace %s: its write-ahead log is still there (is another process using it?)", to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: replace %s: %w", to, err)
	}
	// The shared-memory index of a log that is gone: SQLite makes it anew.
	if err := os.Remove(to + "-shm"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: replace %s: %w", to, err)
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("sqlite: replace %s: %w", to, err)
	}
	return SyncFile(filepath.Dir(to))
}

// FoldLog writes everything the write-ahead log of db holds back into the
// database file and empties the log, and fails if another connection keeps
// part of it in use.
func FoldLog(ctx context.Context, db *sql.DB) error {
	var busy, logFrames, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return fmt.Errorf("fold the write-ahead log: %w", err)
	}
	if busy != 0 || logFrames != done {
		return errors.New("the write-ahead log is still in use")
	}
	return nil
}

// SyncFile flushes the file or folder at path to the disk.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqlite: sync %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sqlite: sync %s: %w", path, err)
	}
	return f.Close()
}
