package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"perfledger/adapters/sqlite"
)

// rowsOf returns the values of column v of table t in db, in order.
func rowsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT v FROM ` + table + ` ORDER BY v`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func journalMode(t *testing.T, db *sql.DB) string {
	t.Helper()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// TestBulkDBIsSealedThenReplacesTheOldDatabase follows a database from
// OpenBulkDB to its place: no journal while it is filled, an ordinary WAL
// database once sealed, and a replacement that refuses while the old
// database's write-ahead log is in use and otherwise takes its place whole.
func TestBulkDBIsSealedThenReplacesTheOldDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	from, to := filepath.Join(dir, "scratch", "views.db"), filepath.Join(dir, "views.db")
	if err := os.Mkdir(filepath.Dir(from), 0o700); err != nil {
		t.Fatal(err)
	}

	// The old database, with a committed transaction still in its log: the
	// pool that wrote it stays open, as another process's would.
	old, err := sqlite.OpenDerivedDB(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, old, "PRAGMA wal_autocheckpoint = 0", "CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('old')")

	bulk, err := sqlite.OpenBulkDB(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	if mode := journalMode(t, bulk); mode != "off" {
		t.Fatalf("bulk database journal_mode %q, want off", mode)
	}
	mustExec(t, bulk, "CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('new 1'), ('new 2')")
	if err := bulk.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenBulkDB(ctx, from); err == nil {
		t.Fatal("OpenBulkDB opened a database that exists")
	}
	if err := sqlite.SealDB(ctx, from); err != nil {
		t.Fatal(err)
	}
	if exists(t, from+"-wal") {
		t.Fatal("a sealed database left a write-ahead log")
	}

	if err := sqlite.ReplaceDB(ctx, from, to); err == nil {
		t.Fatal("ReplaceDB replaced a database whose log another pool holds")
	}
	if !exists(t, from) || !slices.Equal(rowsOf(t, old, "t"), []string{"old"}) {
		t.Fatal("a refused replacement changed something")
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	if err := sqlite.ReplaceDB(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	if exists(t, from) || exists(t, to+"-wal") || exists(t, to+"-shm") {
		t.Fatal("after ReplaceDB: the new file or the old log is still there")
	}
	db, err := sqlite.OpenDerivedDB(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := rowsOf(t, db, "t"); !slices.Equal(got, []string{"new 1", "new 2"}) {
		t.Fatalf("after ReplaceDB: rows %q, want the new database's", got)
	}
}

// TestReplaceDBAfterACrashLeftALog replaces a database whose writer died
// with transactions in its write-ahead log: the log is written back to the
// old database first, and never read as the new one's.
func TestReplaceDBAfterACrashLeftALog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live, to := filepath.Join(dir, "live.db"), filepath.Join(dir, "views.db")
	db, err := sqlite.OpenDerivedDB(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustExec(t, db, "PRAGMA wal_autocheckpoint = 0", "CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('old')",
		"CREATE TABLE u (v TEXT)", "INSERT INTO u VALUES ('in the log')")
	// A copy of the file and its log while the writer is open is what a
	// killed process leaves.
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(live + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Stat(to + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("the copied log is empty or missing: %v", err)
	}

	from := filepath.Join(dir, "new.db")
	bulk, err := sqlite.OpenBulkDB(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, bulk, "CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('new')")
	if err := bulk.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.SealDB(ctx, from); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.ReplaceDB(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	got, err := sqlite.OpenDerivedDB(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if rows := rowsOf(t, got, "t"); !slices.Equal(rows, []string{"new"}) {
		t.Fatalf("rows %q, want the new database's", rows)
	}
	var n int
	if err := got.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'u'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the old log's table is in the new database (%d, %v)", n, err)
	}
	var check string
	if err := got.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
}
