package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
)

func openKeys(t testing.TB, path string) *sqlite.KeyStore {
	t.Helper()
	ks, err := sqlite.OpenKeyStore(context.Background(), sqlite.KeyConfig{Path: path})
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func TestKeyStoreKeyIsStableAndPerMember(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	ks := openKeys(t, path)
	if _, err := ks.Lookup(ctx, "m1"); !errors.Is(err, domain.ErrKeyNotFound) {
		t.Fatalf("Lookup before Key: err = %v, want ErrKeyNotFound", err)
	}
	k1, err := ks.Key(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 {
		t.Fatalf("key length = %d, want 32", len(k1))
	}
	again, err := ks.Key(ctx, "m1")
	if err != nil || !bytes.Equal(again, k1) {
		t.Errorf("second Key = %x, %v; want the first %x", again, err, k1)
	}
	k2, err := ks.Key(ctx, "m2")
	if err != nil || bytes.Equal(k1, k2) {
		t.Errorf("keys of two members: %x and %x, %v; want different keys", k1, k2, err)
	}
	ks.Close()
	reopened := openKeys(t, path)
	got, err := reopened.Lookup(ctx, "m1")
	if err != nil || !bytes.Equal(got, k1) {
		t.Errorf("after reopen Lookup = %x, %v; want %x", got, err, k1)
	}
}

func TestKeyStoreConcurrentFirstUseAgrees(t *testing.T) {
	ks := openKeys(t, filepath.Join(t.TempDir(), "keys.db"))
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := ks.Key(context.Background(), "racer")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("caller %d got key %x, caller 0 got %x", i, keys[i], keys[0])
		}
	}
}

func TestKeyStoreDestroyRemovesTheBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	ks := openKeys(t, path)
	var victim []byte
	for _, m := range []string{"keep-1", "victim", "keep-2"} {
		k, err := ks.Key(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if m == "victim" {
			victim = k
		}
	}
	if !filesHold(t, dir, victim) {
		t.Fatal("precondition: the key's bytes are not in the files before Destroy")
	}
	if err := ks.Destroy(ctx, "victim"); err != nil {
		t.Fatal(err)
	}
	if filesHold(t, dir, victim) {
		t.Error("the files still hold the destroyed key's bytes")
	}
	if err := ks.Destroy(ctx, "victim"); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	for _, call := range []func(context.Context, string) ([]byte, error){ks.Key, ks.Lookup} {
		if k, err := call(ctx, "victim"); !errors.Is(err, domain.ErrKeyDestroyed) || k != nil {
			t.Errorf("after Destroy: %x, %v; want nil, ErrKeyDestroyed", k, err)
		}
	}
	if _, err := ks.Lookup(ctx, "keep-1"); err != nil {
		t.Errorf("other member's key: %v", err)
	}
}

// filesHold reports whether any file of the key store in dir contains b.
func filesHold(t testing.TB, dir string, b []byte) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "keys.db*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(content, b) {
			return true
		}
	}
	return false
}

func TestKeyStoreDestroyBeforeUseBlocksCreation(t *testing.T) {
	ctx := context.Background()
	ks := openKeys(t, filepath.Join(t.TempDir(), "keys.db"))
	if err := ks.Destroy(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Key(ctx, "never"); !errors.Is(err, domain.ErrKeyDestroyed) {
		t.Errorf("Key after Destroy: err = %v, want ErrKeyDestroyed", err)
	}
}

func TestOpenDerivedDBAndReaderSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	db, err := sqlite.OpenDerivedDB(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sync, temp int
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA temp_store").Scan(&temp); err != nil {
		t.Fatal(err)
	}
	if sync != 1 || temp != 2 {
		t.Fatalf("derived database: synchronous=%d temp_store=%d, want 1 (NORMAL) and 2 (MEMORY)", sync, temp)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	r, err := sqlite.OpenReader(ctx, path, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err == nil {
		t.Fatal("the reader pool wrote")
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := r.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader sees %d rows (%v), want the writer's one", n, err)
	}
	if _, err := sqlite.OpenReader(ctx, path, 0, 1); err == nil {
		t.Fatal("a reader pool of no connection opened")
	}
}

func TestOpenReaderAttaches(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mainPath, otherPath := filepath.Join(dir, "views.db"), filepath.Join(dir, "views-leaderboard.db")
	if _, err := sqlite.OpenReader(ctx, mainPath, 2, 1, otherPath); err == nil {
		t.Fatal("a reader attached a database that does not exist")
	}
	mainDB, err := sqlite.OpenDerivedDB(ctx, mainPath)
	if err != nil {
		t.Fatal(err)
	}
	defer mainDB.Close()
	other, err := sqlite.OpenDerivedDB(ctx, otherPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for db, q := range map[*sql.DB]string{mainDB: "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1)",
		other: "CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (2)"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := sqlite.OpenReader(ctx, mainPath, 2, 3, otherPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// Both tables by name, on each connection of the pool.
	conns := make([]*sql.Conn, 2)
	for i := range conns {
		if conns[i], err = r.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		var x, y, cache int
		if err := conns[i].QueryRowContext(ctx, "SELECT (SELECT x FROM a), (SELECT y FROM b)").Scan(&x, &y); err != nil || x != 1 || y != 2 {
			t.Fatalf("connection %d reads a=%d b=%d (%v), want 1 and 2", i, x, y, err)
		}
		if err := conns[i].QueryRowContext(ctx, `PRAGMA "views-leaderboard".cache_size`).Scan(&cache); err != nil || cache != -3*1024 {
			t.Fatalf("the attached database's cache is %d (%v), want -3072", cache, err)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if _, err := r.ExecContext(ctx, "INSERT INTO b VALUES (3)"); err == nil {
		t.Fatal("the reader pool wrote to an attached database")
	}
	// A table created later by the attached database's writer is seen.
	if _, err := other.ExecContext(ctx, "CREATE TABLE c (z INTEGER); INSERT INTO c VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	var z int
	if err := r.QueryRowContext(ctx, "SELECT z FROM c").Scan(&z); err != nil || z != 4 {
		t.Fatalf("reader sees c.z=%d (%v), want 4", z, err)
	}
}
