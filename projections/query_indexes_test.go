package projections_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"perfledger/projections"
)

// leaderboardIndexes counts the leaderboard's query-only indexes in db (it
// has one: totals_rank).
func leaderboardIndexes(tb testing.TB, db *sql.DB) int {
	tb.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index'
		AND name LIKE 'leaderboard%totals_rank'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// A replay builds the query indexes its read models miss, even when it
// does not start from nothing (one cut short between dropping and building
// them, say).
func TestCatchUpBuildsMissingQueryIndexes(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "v.db")+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db, Projections: []projections.Factory{projections.NewLeaderboard}})
	if err != nil {
		t.Fatal(err)
	}
	log := activityLog(t, 20)
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if n := leaderboardIndexes(t, db); n != 1 {
		t.Fatalf("%d query indexes after a replay from nothing, want 1", n)
	}
	var name string
	if err := db.QueryRow(`SELECT name FROM sqlite_master WHERE name LIKE 'leaderboard%totals_rank'`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP INDEX "` + name + `"`); err != nil {
		t.Fatal(err)
	}
	log.add(activities(t, 21, 30)...)
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	if n := leaderboardIndexes(t, db); n != 1 {
		t.Fatalf("%d query indexes after catching up, want 1", n)
	}
}

// As-of views replay their prefix in steps with a snapshot after each, and
// build the query indexes once at the end: views made from scratch and from
// a snapshot both have them.
func TestAsOfViewsHaveTheirQueryIndexes(t *testing.T) {
	ctx := context.Background()
	log := activityLog(t, 40)
	a := newTestAsOf(t, log, 10, 1, projections.NewLeaderboard)
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, minutes := range []int{35, 25} { // the second starts from the snapshot at 20 events
		v, release, err := a.At(ctx, start.Add(time.Duration(minutes)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if n := leaderboardIndexes(t, v.DB()); n != 1 {
			t.Errorf("view at %d events: %d query indexes, want 1", v.Events(), n)
		}
		release()
	}
}
