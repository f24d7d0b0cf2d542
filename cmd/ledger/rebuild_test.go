package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// allReadModels names every read model `ledger rebuild` knows.
func allReadModels() []string {
	var names []string
	for _, f := range append(projections.All(), projections.PolicyFacts) {
		names = append(names, f("").Name())
	}
	return names
}

// instancePrefix matches the generation in a read model's table prefix
// (audit_g2_), which differs between two ways of building the same rows.
var instancePrefix = regexp.MustCompile(`_g[0-9]+_`)

// generation matches the column of projection_current that counts a read
// model's instances.
var generation = regexp.MustCompile(`generation=[0-9]+`)

// dumpViews returns every row of every table of the read-model databases
// of the data folder dir (projectionstest.Tables), by database and table,
// with the instance generations left out.
func dumpViews(t *testing.T, dir string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, path := range viewsPaths(dir) {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		for table, rows := range projectionstest.Tables(t, db, "") {
			for i, row := range rows {
				rows[i] = generation.ReplaceAllString(instancePrefix.ReplaceAllString(row, "_g_"), "generation=")
			}
			out[filepath.Base(path)+" "+instancePrefix.ReplaceAllString(table, "_g_")] = rows
		}
		db.Close()
	}
	return out
}

// copyLedger copies the files of the data folder from into a new folder.
func copyLedger(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// policyCheckpoints reads the policies' checkpoints of the data folder dir.
func policyCheckpoints(t *testing.T, dir string) map[string]domain.Position {
	t.Helper()
	db, err := sqlite.OpenDerivedDB(context.Background(), dataConfig{Dir: dir}.viewsPath())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := projections.PolicyCheckpoints(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// damage deletes every row of the table of the serving instance of
// a read model in the database at path.
func damage(t *testing.T, path, readModel, table string) {
	t.Helper()
	db, err := sqlite.OpenDerivedDB(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var prefix string
	if err := db.QueryRow(`SELECT prefix FROM projection_current WHERE name = ?`, readModel).Scan(&prefix); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM "` + prefix + table + `"`)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		t.Fatalf("damage %s%s: %d rows deleted (%v)", prefix, table, n, err)
	}
}

// TestRebuildEveryReadModelIntoNewFiles checks `ledger rebuild` without
// names, which builds new database files and moves them over the old ones:
// every table holds what rebuilding each read model in place gives (rows
// lost from the old ones are back), the
// policies' checkpoints are carried over, and what is left is ordinary WAL
// databases, with no scratch folder.
func TestRebuildEveryReadModelIntoNewFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, out, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "12", "--months", "2", "--seed", "7"); code != 0 {
		t.Fatalf("demo: exit %d: %s %s", code, out, stderr)
	}
	// Read models built in place, and a policy that has gone part of the way.
	all := allReadModels()
	if code, _, stderr := ledgerCLI(t, append([]string{"rebuild", "--data", dir}, all...)...); code != 0 {
		t.Fatalf("rebuild in place: exit %d: %s", code, stderr)
	}
	v, err := openViews(ctx, dataConfig{Dir: dir}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.NewRunner(ctx, v.runnerConfig())
	if err != nil {
		t.Fatal(err)
	}
	policy := domain.Position{Commit: 40, Prepare: 40}
	if err := r.SavePolicyCheckpoint(ctx, "goal_bonus", policy); err != nil {
		t.Fatal(err)
	}
	v.Close()
	// Rows lost from both databases, which only a rebuild puts back.
	damage(t, dataConfig{Dir: dir}.viewsPath(), "audit", "audit")
	damage(t, dataConfig{Dir: dir}.separatePath("leaderboard"), "leaderboard", "totals")

	// The reference: every read model rebuilt in place once more.
	ref := copyLedger(t, dir)
	if code, _, stderr := ledgerCLI(t, append([]string{"rebuild", "--data", ref}, all...)...); code != 0 {
		t.Fatalf("rebuild in place: exit %d: %s", code, stderr)
	}
	code, out, stderr := ledgerCLI(t, "rebuild", "--data", dir)
	if code != 0 {
		t.Fatalf("rebuild into new files: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "rebuilt [") {
		t.Fatalf("rebuild said %q", out)
	}

	if _, err := os.Stat(dataConfig{Dir: dir}.rebuildDir()); err == nil {
		t.Fatal("the scratch folder is still there")
	}
	for _, path := range viewsPaths(dir) {
		if _, err := os.Stat(path + "-wal"); err == nil {
			t.Fatalf("%s-wal is left", path)
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		err = db.QueryRow("PRAGMA journal_mode").Scan(&mode)
		db.Close()
		if err != nil || mode != "wal" {
			t.Fatalf("%s: journal_mode %q (%v), want wal", filepath.Base(path), mode, err)
		}
	}
	want, got := dumpViews(t, ref), dumpViews(t, dir)
	if len(want) < 2*len(all) {
		t.Fatalf("the reference holds only %d tables", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("read models rebuilt into new files differ from those rebuilt in place (-want +got):\n%s", diff)
	}
	if got := policyCheckpoints(t, dir); !cmp.Equal(got, map[string]domain.Position{"goal_bonus": policy}) {
		t.Fatalf("policy checkpoints after the rebuild: %v, want goal_bonus at %v", got, policy)
	}
	// The server takes the new files as they are: nothing to rebuild.
	v, err = openViews(ctx, dataConfig{Dir: dir}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if r, err = projections.NewRunner(ctx, v.runnerConfig()); err != nil {
		t.Fatal(err)
	}
	if reset := r.Reset(); len(reset) > 0 {
		t.Fatalf("read models reset after the rebuild: %v", reset)
	}
}

// demoWithReadModels returns a data folder with a small demo ledger and its
// read models.
func demoWithReadModels(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if code, out, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "12", "--months", "1", "--seed", "7"); code != 0 {
		t.Fatalf("demo: exit %d: %s %s", code, out, stderr)
	}
	if code, _, stderr := ledgerCLI(t, "rebuild", "--data", dir); code != 0 {
		t.Fatalf("rebuild: exit %d: %s", code, stderr)
	}
	return dir
}

// TestRebuildThatFailsKeepsTheOldReadModels checks that a rebuild into new
// files that stops half-way (here at an event it cannot decode) leaves the
// data folder's read models exactly as they were, and no scratch folder; and
// that what an interrupted rebuild left is removed at the next open.
func TestRebuildThatFailsKeepsTheOldReadModels(t *testing.T) {
	dir := demoWithReadModels(t)

	scratch := dataConfig{Dir: dir}.rebuildDir()
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "views.db"), []byte("half a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := ledgerCLI(t, "rebuild", "--data", dir, "audit"); code != 0 {
		t.Fatalf("rebuild audit: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(scratch); err == nil {
		t.Fatal("what an interrupted rebuild left is still there")
	}

	before := map[string][]byte{}
	for _, path := range viewsPaths(dir) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		before[path] = b
	}
	tamper(t, dir, `UPDATE events SET data = CAST('{"activity_id":' AS BLOB) WHERE position = (SELECT max(position) / 2 FROM events)`)
	code, _, stderr := ledgerCLI(t, "rebuild", "--data", dir)
	if code == 0 {
		t.Fatal("a rebuild over an event that cannot be decoded succeeded")
	}
	if !strings.Contains(stderr, "decode payload") { // which event sits there depends on how the demo interleaved its writers
		t.Fatalf("the error does not say what failed: %s", stderr)
	}
	for path, b := range before {
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after, b) {
			t.Fatalf("a failed rebuild changed %s", filepath.Base(path))
		}
	}
	if _, err := os.Stat(scratch); err == nil {
		t.Fatal("a failed rebuild left its scratch folder")
	}
}

// TestRebuildOverADamagedDatabaseSaysWhatToDo checks that a read-model
// database SQLite cannot read stops `ledger rebuild` with advice that works.
func TestRebuildOverADamagedDatabaseSaysWhatToDo(t *testing.T) {
	dir := demoWithReadModels(t)
	paths := viewsPaths(dir)
	if err := os.WriteFile(paths[len(paths)-1], bytes.Repeat([]byte("not a database "), 512), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := ledgerCLI(t, "rebuild", "--data", dir)
	if code == 0 || !strings.Contains(stderr, "delete views*.db") {
		t.Fatalf("rebuild over a damaged database: exit %d: %s", code, stderr)
	}
	for _, p := range paths {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(p + suffix); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	if code, _, stderr := ledgerCLI(t, "rebuild", "--data", dir); code != 0 {
		t.Fatalf("rebuild after deleting the read models: exit %d: %s", code, stderr)
	}
}
