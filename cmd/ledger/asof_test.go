package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

func TestCopyFileFoldsTheLogAndCopies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	from := filepath.Join(dir, "a.db")
	src, err := sql.Open("sqlite", "file:"+from+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	if _, err := src.ExecContext(ctx, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "b.db")
	if err := copyFile(ctx, src, from, to); err != nil {
		t.Fatal(err)
	}
	dst, err := sql.Open("sqlite", "file:"+to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var n, sum int
	if err := dst.QueryRowContext(ctx, "SELECT COUNT(*), SUM(x) FROM t").Scan(&n, &sum); err != nil || n != 3 || sum != 6 {
		t.Fatalf("copy holds %d rows summing to %d (%v), want 3 and 6", n, sum, err)
	}
	if err := copyFile(ctx, src, from, to); err == nil {
		t.Fatal("copied over an existing file")
	}
}

// TestAsOfFilesKeepSnapshotsAcrossStarts: a kept snapshot, its database
// synced and described beside it, is all that survives the next start of
// the as-of folder; the next process opens it with its description, and
// numbers its new files past it. A description whose database is missing,
// has changed size or does not open is deleted, not used; a kept
// snapshot's release deletes it and its description.
func TestAsOfFilesKeepSnapshotsAcrossStarts(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "asof")
	files, err := openAsOfFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	work, _, err := files.open(ctx, files.newPath())
	if err != nil {
		t.Fatal(err)
	}
	defer work.Close()
	if _, err := work.ExecContext(ctx, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	snap := func() (*sql.DB, string) { // a snapshot of work, kept
		db, _, err := files.copy(ctx, work)
		if err != nil {
			t.Fatal(err)
		}
		path, _ := files.paths.Load(db)
		info := projections.SnapshotInfo{Format: 1, Models: "m", Events: 3, Last: domain.Seq(3), Recorded: 42}
		if err := files.Keep(ctx, db, info); err != nil {
			t.Fatal(err)
		}
		return db, path.(string)
	}
	kept, keptPath := snap()
	kept.Close()
	changed, changedPath := snap()
	changed.Close()
	f, err := os.OpenFile(changedPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, "asof-99.db"+keptSuffix), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Not a database, though its description gives its size.
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = 'x'
	}
	desc, _ := json.Marshal(keptFile{Info: projections.SnapshotInfo{Format: 1, Events: 3}, Size: int64(len(junk))})
	if err := os.WriteFile(filepath.Join(dir, "asof-50.db"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "asof-50.db"+keptSuffix), desc, 0o600); err != nil {
		t.Fatal(err)
	}
	work.Close()

	files, err = openAsOfFiles(dir) // the next start
	if err != nil {
		t.Fatal(err)
	}
	got, err := files.Kept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d snapshots kept, want the one unchanged", len(got))
	}
	want := projections.SnapshotInfo{Format: 1, Models: "m", Events: 3, Last: domain.Seq(3), Recorded: 42}
	if got[0].Info != want {
		t.Errorf("kept snapshot described as %+v, want %+v", got[0].Info, want)
	}
	var n int
	if err := got[0].DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 3 {
		t.Errorf("kept snapshot holds %d rows (%v), want 3", n, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range left {
		if !strings.HasPrefix(p, keptPath) {
			t.Errorf("%s left in the as-of folder at start", filepath.Base(p))
		}
	}
	for range 3 {
		if p := files.newPath(); p == keptPath {
			t.Fatalf("a new file takes the kept snapshot's name %s", filepath.Base(p))
		}
	}
	got[0].Release()
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("released, the kept snapshot leaves %v", left)
	}
}

// TestAsOfDatabasesCloseIdleConnections: an as-of database left unread (a
// kept snapshot waiting for a build to start from it) gives its connection
// and the memory it holds back, and opens one again when read.
func TestAsOfDatabasesCloseIdleConnections(t *testing.T) {
	ctx := context.Background()
	files, err := openAsOfFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, release, err := files.open(ctx, files.newPath())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	if n := db.Stats().OpenConnections; n == 0 {
		t.Fatal("no connection open after a write")
	}
	for deadline := time.Now().Add(asOfIdle + 10*time.Second); db.Stats().OpenConnections > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open %s after the last use", db.Stats().OpenConnections, asOfIdle+10*time.Second)
		}
	}
	var x int
	if err := db.QueryRowContext(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 7 {
		t.Fatalf("read after the connection closed: %d, %v", x, err)
	}
}
