package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// logEvents returns the number of events in dir's log and the position of
// the last one, once the log has stopped growing (the server's policies react
// to the demo's events after its last request has been answered).
func logEvents(t testing.TB, dir string) (int, string) {
	t.Helper()
	var (
		prev   = -1
		stable int
	)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out, errText := ledgerCLI(t, "events", "--data", dir)
		if code != 0 {
			t.Fatalf("ledger events: %s", errText)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		n := len(lines)
		if prev == n {
			stable++
		} else {
			stable = 0
		}
		if stable >= 2 || time.Now().After(deadline) {
			var last struct {
				Position string `json:"position"`
			}
			if err := json.Unmarshal([]byte(lines[n-1]), &last); err != nil {
				t.Fatalf("last event line: %v", err)
			}
			return n, last.Position
		}
		prev = n
		time.Sleep(150 * time.Millisecond)
	}
}

// TestDemoToServer loads the demo into a running `ledger serve` over HTTP,
// checks the server shows the generated organisation, that a second run
// appends nothing, and that a bad token is refused with one clear line.
func TestDemoToServer(t *testing.T) {
	dir := t.TempDir()
	admin, _ := startServe(t, dir)
	base, token := admin.base, admin.token
	args := []string{"demo", "--server", base, "--members", "8", "--months", "2", "--seed", "3", "--workers", "8"}

	code, out, errText := ledgerCLI(t, append(args, "--token", token)...)
	if code != 0 {
		t.Fatalf("demo --server exited %d: %s%s", code, out, errText)
	}
	if !strings.Contains(out, "0 already there") {
		t.Errorf("first run: %s, want nothing already there", out)
	}
	n1, pos := logEvents(t, dir)
	if n1 < 100 {
		t.Fatalf("the log holds %d events after the demo, want hundreds", n1)
	}

	status, dirOut := admin.do("GET", "/v1/directory?limit=100&min_position="+pos, "")
	if status != http.StatusOK {
		t.Fatalf("directory: %d %v", status, dirOut)
	}
	items, _ := dirOut["items"].([]any)
	if len(items) != 8 {
		t.Fatalf("directory lists %d members, want 8: %v", len(items), dirOut)
	}

	// The second run, with the token from LEDGER_TOKEN, finds every command
	// already there and appends nothing.
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "LEDGER_TOKEN" {
			return token
		}
		return ""
	}
	if code := run(context.Background(), args, &environment{stdout: &stdout, stderr: &stderr, getenv: getenv}); code != 0 {
		t.Fatalf("second demo --server exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	if strings.Contains(stdout.String(), " 0 already there") {
		t.Errorf("second run: %s, want the commands found already there", stdout.String())
	}
	if n2, _ := logEvents(t, dir); n2 != n1 {
		t.Fatalf("the second run appended %d events, want none", n2-n1)
	}

	t.Run("bad token is refused in one line", func(t *testing.T) {
		code, out, errText := ledgerCLI(t, append(args, "--token", "plg_wrong")...)
		if code == 0 {
			t.Fatalf("a bad token exited 0: %s", out)
		}
		line := strings.TrimSpace(errText)
		if strings.Contains(line, "\n") || !strings.Contains(line, "refused the token") || !strings.Contains(line, "401") {
			t.Fatalf("stderr %q, want one line saying the token was refused (401)", errText)
		}
		if n3, _ := logEvents(t, dir); n3 != n1 {
			t.Fatalf("a refused run appended %d events", n3-n1)
		}
	})
	t.Run("no token is a usage error", func(t *testing.T) {
		code, _, errText := ledgerCLI(t, args...)
		if code == 0 || !strings.Contains(errText, "LEDGER_TOKEN") {
			t.Fatalf("exit %d, stderr %q: want a usage error naming LEDGER_TOKEN", code, errText)
		}
	})
}
