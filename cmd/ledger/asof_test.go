package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
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
