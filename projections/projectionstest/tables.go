// Package projectionstest holds what the tests of the read models and of
// their runners share: reading back what a read model's instance holds.
package projectionstest

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Prefix returns the table prefix of the serving instance of the read model
// named name in db.
func Prefix(tb testing.TB, db *sql.DB, name string) string {
	tb.Helper()
	var prefix string
	if err := db.QueryRow(`SELECT prefix FROM projection_current WHERE name = ?`, name).Scan(&prefix); err != nil {
		tb.Fatal(err)
	}
	return prefix
}

// Tables returns every row of the tables of db whose names start with
// prefix ("": every table), by table name without the prefix, each row
// rendered as its columns' names and values, each table's rows sorted: two
// instances hold the same read model exactly when their tables are equal.
func Tables(tb testing.TB, db *sql.DB, prefix string) map[string][]string {
	tb.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ? ORDER BY name`,
		len(prefix), prefix)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, n := range names {
		rs, err := db.Query(`SELECT * FROM "` + n + `"`)
		if err != nil {
			tb.Fatal(err)
		}
		cols, _ := rs.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		lines := []string{}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			var sb strings.Builder
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&sb, "%s=%v\t", cols[i], v)
			}
			lines = append(lines, sb.String())
		}
		rs.Close()
		slices.Sort(lines)
		out[strings.TrimPrefix(n, prefix)] = lines
	}
	return out
}
