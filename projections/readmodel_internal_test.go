package projections

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"
)

// TestRowBufferWritesEveryRowInOrder: rows flushed at any count reach the
// table in order (an upsert sees the rows before it), and flushes of every
// count from 1 to 200 prepare at most one statement per power of two.
func TestRowBufferWritesEveryRowInOrder(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE x_t (k INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	s := newStmts(tx, "x_")
	defer s.close()
	rb := rowBuffer{head: `INSERT INTO {p}t (k, v, n) VALUES `, tail: ` ON CONFLICT (k) DO UPDATE SET v = v || excluded.v, n = n + 1`, cols: 3}
	want := map[int64]string{}
	seq := 0
	for count := 1; count <= 200; count++ {
		for range count {
			k := int64(seq % 97) // keys repeat within and across flushes
			if err := rb.add(ctx, s, k, string(rune('a'+seq%26)), 1); err != nil {
				t.Fatal(err)
			}
			want[k] += string(rune('a' + seq%26))
			seq++
		}
		if err := rb.flush(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := rb.flush(ctx, s); err != nil { // nothing held: nothing written
		t.Fatal(err)
	}
	got := map[int64]string{}
	rows, err := tx.QueryContext(ctx, `SELECT k, v, n FROM x_t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, n int64
		var v string
		if err := rows.Scan(&k, &v, &n); err != nil {
			t.Fatal(err)
		}
		if int(n) != len(v) {
			t.Errorf("key %d: %d writes for %d rows", k, n, len(v))
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if len(s.m) > rowChunkLog+1 {
		t.Errorf("%d statements prepared, want at most %d", len(s.m), rowChunkLog+1)
	}
}
