package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
)

// ledgerCLI runs the command line in-process and returns exit status, stdout, stderr.
func ledgerCLI(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &environment{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// seedLedger writes a small log of three streams into dir's events.db.
func seedLedger(t testing.TB, dir string) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "events.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 12; i++ {
		stream := fmt.Sprintf("member-%d", i%3)
		ev := domain.NewEvent{ID: domain.EventID(fmt.Sprint("cmd-", i), 0), Type: "ActivityLogged.v1",
			Data:       []byte(fmt.Sprintf(`{"activity_id":"a%d","kind":"visit","quantity":%d,"note":"ünïcödé"}`, i, i+1)),
			OccurredAt: at.Add(time.Duration(i) * time.Hour), RecordedAt: at.Add(time.Duration(i)*time.Hour + time.Minute),
			Actor: "token:admin"}
		if _, err := s.Append(ctx, stream, domain.Any(), []domain.NewEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadFlagsExitTwoWithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"events", "--nope"},
		{"events", "--limit", "x"},
		{"events", "--limit", "-1"},
		{"verify", "--digest", "abc"},
		{"serve", "--memory-limit", "lots"},
		{"serve", "--memory-limit", "-5MiB"},
		{"serve", "--pprof", "nowhere"},
		{"import"},
		{"frobnicate"},
		{},
	} {
		code, _, stderr := ledgerCLI(t, args...)
		if code != exitUsage {
			t.Errorf("ledger %v: exit %d, want %d", args, code, exitUsage)
		}
		if lines := strings.Count(strings.TrimSpace(stderr), "\n"); len(args) > 0 && lines != 0 {
			t.Errorf("ledger %v: error is %d lines, want one: %q", args, lines+1, stderr)
		}
	}
}

func TestEverySubcommandHasHelp(t *testing.T) {
	code, out, _ := ledgerCLI(t, "--help")
	if code != 0 || !strings.Contains(out, "Commands:") {
		t.Fatalf("ledger --help: exit %d, output %q", code, out)
	}
	for name := range commands() {
		code, out, _ := ledgerCLI(t, name, "--help")
		if code != 0 || strings.Count(out, "Usage: ledger "+name) != 1 {
			t.Errorf("ledger %s --help: exit %d, want its usage once, got %q", name, code, out)
		}
	}
}

func TestEventsOnMissingLedgerSaysWhatToDo(t *testing.T) {
	code, _, stderr := ledgerCLI(t, "events", "--data", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "ledger demo") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestEventsFiltersByStreamTypeAndPosition(t *testing.T) {
	dir := t.TempDir()
	seedLedger(t, dir)
	_, all, _ := ledgerCLI(t, "events", "--data", dir)
	if got := strings.Count(all, "\n"); got != 12 {
		t.Fatalf("events printed %d lines, want 12", got)
	}
	_, one, _ := ledgerCLI(t, "events", "--data", dir, "--stream", "member-1")
	if got := strings.Count(one, "\n"); got != 4 || strings.Contains(one, `"member-0"`) {
		t.Fatalf("--stream member-1 printed %d lines: %s", got, one)
	}
	_, from, _ := ledgerCLI(t, "events", "--data", dir, "--from", "11")
	if got := strings.Count(from, "\n"); got != 2 {
		t.Fatalf("--from 11 printed %d lines, want 2", got)
	}
	_, none, _ := ledgerCLI(t, "events", "--data", dir, "--type", "SaleClosed.v2")
	if none != "" {
		t.Fatalf("--type SaleClosed.v2 printed %q", none)
	}
}

func TestExportImportKeepsHashesAndDigest(t *testing.T) {
	dir := t.TempDir()
	seedLedger(t, dir)
	code, out, stderr := ledgerCLI(t, "verify", "--data", dir)
	if code != 0 {
		t.Fatalf("verify: %d %s %s", code, out, stderr)
	}
	digest := strings.Fields(strings.Split(out, "digest ")[1])[0]

	file := filepath.Join(t.TempDir(), "log.jsonl")
	if code, _, stderr := ledgerCLI(t, "export", "--data", dir, "--out", file); code != 0 {
		t.Fatalf("export: %s", stderr)
	}
	dir2 := t.TempDir()
	if code, _, stderr := ledgerCLI(t, "import", "--data", dir2, "--in", file); code != 0 || !strings.Contains(stderr, digest) {
		t.Fatalf("import: exit %d, %s (want digest %s)", code, stderr, digest)
	}
	if code, out, _ := ledgerCLI(t, "verify", "--data", dir2, "--digest", digest, "--at", "12"); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("verify of the imported ledger: %d %s", code, out)
	}
	if code, _, stderr := ledgerCLI(t, "import", "--data", dir2, "--in", file); code == 0 || !strings.Contains(stderr, "empty data folder") {
		t.Fatalf("import into a non-empty folder: exit %d %s", code, stderr)
	}
	// An altered export is refused.
	b, _ := os.ReadFile(file)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, bytes.Replace(b, []byte(`"quantity":3`), []byte(`"quantity":30`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := ledgerCLI(t, "import", "--data", t.TempDir(), "--in", bad); code == 0 || !strings.Contains(stderr, "altered") {
		t.Fatalf("import of an altered export: exit %d %s", code, stderr)
	}
}

// TestVerifyCatchesTamperingWithTheFile edits events.db directly, as an
// attacker with file access would, and checks verify catches each change.
func TestVerifyCatchesTamperingWithTheFile(t *testing.T) {
	cases := map[string]string{
		"payload changed": `UPDATE events SET data = CAST(replace(CAST(data AS TEXT), '"quantity":5', '"quantity":50') AS BLOB) WHERE position = 5`,
		"event deleted":   `DELETE FROM events WHERE position = 5`,
		"events swapped": `UPDATE events SET data = CASE position WHEN 4 THEN (SELECT data FROM events WHERE position = 7) ELSE (SELECT data FROM events WHERE position = 4) END,
		                  meta = CASE position WHEN 4 THEN (SELECT meta FROM events WHERE position = 7) ELSE (SELECT meta FROM events WHERE position = 4) END WHERE position IN (4, 7)`,
	}
	for name, stmt := range cases {
		t.Run(name+" is caught", func(t *testing.T) {
			dir := t.TempDir()
			seedLedger(t, dir)
			tamper(t, dir, stmt)
			code, out, _ := ledgerCLI(t, "verify", "--data", dir)
			if code == 0 || !strings.Contains(out, "BROKEN") {
				t.Fatalf("verify after tampering: exit %d, %s", code, out)
			}
		})
	}
	t.Run("time changed is caught", func(t *testing.T) {
		dir := t.TempDir()
		seedLedger(t, dir)
		db := openRaw(t, dir)
		var meta []byte
		if err := db.QueryRow(`SELECT meta FROM events WHERE position = 6`).Scan(&meta); err != nil {
			t.Fatal(err)
		}
		// meta: version, uvarint len + id, uvarint len + type, tag + 8-byte occurred_at.
		off := 1 + 1 + 36 + 1 + len("ActivityLogged.v1") + 1 + 6
		meta[off]++ // shift occurred_at by 256 ns
		if _, err := db.Exec(`UPDATE events SET meta = ? WHERE position = 6`, meta); err != nil {
			t.Fatal(err)
		}
		db.Close()
		code, out, _ := ledgerCLI(t, "verify", "--data", dir)
		if code == 0 || !strings.Contains(out, "BROKEN") {
			t.Fatalf("verify after changing a time: exit %d, %s", code, out)
		}
	})
	t.Run("a digest taken earlier proves a removed tail", func(t *testing.T) {
		dir := t.TempDir()
		seedLedger(t, dir)
		_, out, _ := ledgerCLI(t, "verify", "--data", dir, "--digest", strings.Repeat("0", 64), "--at", "12")
		if !strings.Contains(out, "MISMATCH") {
			t.Fatalf("a wrong digest was accepted: %s", out)
		}
		_, out, _ = ledgerCLI(t, "verify", "--data", dir)
		digest := strings.Fields(strings.Split(out, "digest ")[1])[0]
		tamper(t, dir, `DELETE FROM events WHERE position = 12`) // the last event: no chain after it to break
		code, out, _ := ledgerCLI(t, "verify", "--data", dir, "--digest", digest, "--at", "12")
		if code == 0 {
			t.Fatalf("verify with the old digest passed after the tail was removed: %s", out)
		}
	})
}

func openRaw(t testing.TB, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func tamper(t testing.TB, dir, stmt string) {
	t.Helper()
	db := openRaw(t, dir)
	defer db.Close()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

func TestDemoThenEventsThenVerify(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "12", "--months", "2", "--seed", "7")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s %s", code, out, stderr)
	}
	code, events, _ := ledgerCLI(t, "events", "--data", dir, "--type", "MemberJoined.v1")
	if code != 0 || strings.Count(events, "\n") != 12 {
		t.Fatalf("events --type MemberJoined.v1: exit %d, %d lines, want 12", code, strings.Count(events, "\n"))
	}
	if code, out, _ := ledgerCLI(t, "verify", "--data", dir); code != 0 || !strings.HasPrefix(out, "ok:") {
		t.Fatalf("verify after demo: exit %d %s", code, out)
	}
	if code, _, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "12", "--months", "2"); code == 0 || !strings.Contains(stderr, "already holds a ledger") {
		t.Fatalf("second demo into the same folder: exit %d %s", code, stderr)
	}
	if code, _, _ := ledgerCLI(t, "demo", "--data", t.TempDir(), "--members", "2"); code != exitUsage {
		t.Fatalf("demo --members 2: exit %d, want %d", code, exitUsage)
	}
}
