package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"modernc.org/sqlite"
)

// OpenDB opens (creating if needed) a plain SQLite database for the API's
// own tables (tokens, idempotency keys): WAL, durable commits
// (synchronous=FULL), a 5 s busy timeout, foreign keys on, and immediate
// write transactions so that concurrent writers queue instead of failing.
// The settings are checked after opening.
func OpenDB(ctx context.Context, path string) (*sql.DB, error) {
	return openDB(ctx, path, APICacheMiB, "synchronous(FULL)")
}

// APICacheMiB is the page cache of OpenDB's connections: the API's tables
// (tokens, idempotency keys) are small and read by key.
const APICacheMiB = 2

// DerivedCheckpointPages is the write-ahead log's automatic checkpoint of
// OpenDerivedDB, in pages (8,192 pages: 32 MiB). With 64 writers appending
// flat out, the read models kept up with 9,000–9,750 appends/s instead of
// 8,500–8,600, lag p99 0.60–0.80 s instead of 0.87–0.90 s
// (BenchmarkLiveLag; 32,768 pages did no better).
const DerivedCheckpointPages = 8192

// DerivedCacheMiB is the page cache of OpenDerivedDB's connections. The
// pure-Go SQLite driver's allocator gives each cached page twice its size,
// and keeps what it freed. 32 MiB, then 16, made SQLite most of `ledger
// serve`'s memory under a POST load (150–218 MB with every cache); 4 MiB
// rebuilds the read models as fast as 16 (200k demo events: 20,987–21,615
// events/s against 20,853–21,985; 1 MiB: 17,769–19,047).
const DerivedCacheMiB = 4

// OpenDerivedDB opens (creating if needed) a database whose every row can be
// derived again from the event log: the read models. It differs from OpenDB
// in two settings. Commits are not synced one by one (synchronous=NORMAL: in
// WAL mode the database stays consistent, and a power cut can only lose the
// last transactions, whose events the read models apply again from their
// checkpoints, which live in the same transactions). Temporary data, such
// as the statement journal of a multi-row upsert, stays in memory instead of
// a temporary file.
//
// The write-ahead log is checkpointed every DerivedCheckpointPages pages
// instead of SQLite's 1,000: the read models rewrite the same hot pages
// (this week's totals, cards) at every commit, and a checkpoint copies each
// page once however often it changed since the last one.
//
// Its writers take turns (one SQLite writer at a time), so at most one idle
// connection, with its page cache, is kept.
func OpenDerivedDB(ctx context.Context, path string) (*sql.DB, error) {
	db, err := openDB(ctx, path, DerivedCacheMiB, "synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=wal_autocheckpoint("+
		strconv.Itoa(DerivedCheckpointPages)+")")
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(1)
	return db, nil
}

// OpenReader opens a read-only pool on an existing database written by
// another pool of this process (the read models, read by the API): at most
// conns connections, each with a page cache of cacheMiB MiB, so that the
// memory readers hold stays bounded however many requests run at once.
//
// Every connection also attaches the databases at the paths attach (which
// must exist), each with a page cache of cacheMiB MiB too, so that a query
// reads the tables of them all by name (a table name is looked up in path's
// database first, then in attach's in order). Each is attached under the
// name of its file without ".db".
func OpenReader(ctx context.Context, path string, conns, cacheMiB int, attach ...string) (*sql.DB, error) {
	for _, p := range append([]string{path}, attach...) {
		if p == "" || strings.ContainsAny(p, "?#") {
			return nil, fmt.Errorf("sqlite: database path %q: want a file path without '?' or '#'", p)
		}
	}
	if conns < 1 || cacheMiB < 1 {
		return nil, fmt.Errorf("sqlite: reader of %s: want at least one connection and 1 MiB of cache", path)
	}
	for _, p := range attach {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("sqlite: reader of %s: attach: %w", path, err)
		}
	}
	base, err := sqlite.NewConnector("file:" + path + "?_pragma=busy_timeout(5000)&_pragma=query_only(1)" +
		"&_pragma=cache_size(-" + strconv.Itoa(cacheMiB*1024) + ")")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db := sql.OpenDB(attacher{Connector: base, paths: attach, cacheKiB: cacheMiB * 1024})
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// attacher opens connections that attach more databases (see OpenReader).
type attacher struct {
	driver.Connector
	paths    []string
	cacheKiB int
}

// Connect implements driver.Connector.
func (a attacher) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := a.Connector.Connect(ctx)
	if err != nil || len(a.paths) == 0 {
		return conn, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("sqlite: the driver's connection cannot execute statements")
	}
	for _, p := range a.paths {
		name := strings.TrimSuffix(filepath.Base(p), ".db")
		if _, err := ex.ExecContext(ctx, "ATTACH DATABASE ? AS ?",
			[]driver.NamedValue{{Ordinal: 1, Value: "file:" + p}, {Ordinal: 2, Value: name}}); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("sqlite: attach %s: %w", p, err)
		}
		if _, err := ex.ExecContext(ctx, "PRAGMA "+quoteName(name)+".cache_size = -"+strconv.Itoa(a.cacheKiB), nil); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("sqlite: attach %s: %w", p, err)
		}
	}
	return conn, nil
}

// quoteName quotes an SQL identifier.
func quoteName(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// openDB opens a database in WAL mode with a page cache of cacheMiB MiB
// per connection and the extra pragmas.
func openDB(ctx context.Context, path string, cacheMiB int, pragmas string) (*sql.DB, error) {
	return openJournaled(ctx, path, "wal", cacheMiB, pragmas)
}

// openJournaled is openDB with the journal mode journal (lower case, as
// SQLite reports it), which it checks.
func openJournaled(ctx context.Context, path, journal string, cacheMiB int, pragmas string) (*sql.DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: database path %q: want a file path without '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode("+journal+")&_pragma="+pragmas+"&_pragma=foreign_keys(ON)&_pragma=cache_size(-"+strconv.Itoa(cacheMiB<<10)+")&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if mode != journal {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: journal_mode is %q, want %s", path, mode, journal)
	}
	return db, nil
}
