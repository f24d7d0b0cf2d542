package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

type apiClient struct {
	t     testing.TB
	base  string
	token string
}

func (c apiClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return res.StatusCode, out
}

// TestServeSession runs `ledger serve` the way the README shows: first start
// creates the admin token file, a team and members are created, activities and
// sales are logged, and a leaderboard reflects them; SIGINT-like cancellation
// stops it cleanly and a restart keeps everything.
func TestServeSession(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", dir, "--addr", addr},
			&environment{stdout: io.Discard, stderr: &syncWriter{w: &stderr}, getenv: func(string) string { return "" }})
	}()
	base := "http://" + addr
	waitUp(t, base, done)

	tokenFile := filepath.Join(dir, "admin.token")
	st, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("first start wrote no admin token: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file mode %v, want 0600", st.Mode().Perm())
	}
	secret, _ := os.ReadFile(tokenFile)
	admin := apiClient{t: t, base: base, token: strings.TrimSpace(string(secret))}

	if code, _ := (apiClient{t: t, base: base, token: "plg_wrong"}).do("GET", "/v1/tokens", ""); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token got %d, want 401", code)
	}
	code, out := admin.do("POST", "/v1/teams", `{"team_id":"north","name":"North","department":"sales","region":"north"}`)
	if code != http.StatusCreated {
		t.Fatalf("create team: %d %v", code, out)
	}
	for _, m := range []string{"ana", "ben"} {
		code, out = admin.do("POST", "/v1/members", fmt.Sprintf(`{"member_id":%q,"display_name":%q,"role":"salesperson","team_id":"north","joined_on":"2026-01-05"}`, m, strings.ToUpper(m)))
		if code != http.StatusCreated {
			t.Fatalf("create member %s: %d %v", m, code, out)
		}
	}
	// A rep token for ana, made with the CLI while the server runs.
	code2, repSecret, errText := ledgerCLI(t, "token", "create", "--data", dir, "--role", "rep", "--member", "ana", "--team", "north")
	if code2 != 0 {
		t.Fatalf("token create: %s", errText)
	}
	ana := apiClient{t: t, base: base, token: strings.TrimSpace(repSecret)}
	today := time.Now().UTC().Format(time.RFC3339)
	code, out = ana.do("POST", "/v1/members/ana/activities", `{"kind":"visit","quantity":3,"occurred_at":"`+today+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("log activity: %d %v", code, out)
	}
	code, out = ana.do("POST", "/v1/members/ana/sales", `{"customer":"ACME","amount_minor":250000,"currency":"EUR","occurred_at":"`+today+`"}`)
	if code != http.StatusCreated {
		t.Fatalf("close sale: %d %v", code, out)
	}
	pos, _ := out["position"].(string)
	if pos == "" {
		t.Fatalf("a write answered without a position: %v", out)
	}
	if code, out = ana.do("POST", "/v1/members/ben/activities", `{"kind":"visit","quantity":1}`); code != http.StatusForbidden {
		t.Fatalf("a rep logging for another member got %d %v, want 403", code, out)
	}
	month := time.Now().UTC().Format("2006-01")
	code, out = ana.do("GET", "/v1/leaderboards/revenue?period="+month+"&min_position="+pos, "")
	if code != http.StatusOK {
		t.Fatalf("leaderboard: %d %v", code, out)
	}
	items, _ := out["items"].([]any)
	if len(items) == 0 || items[0].(map[string]any)["subject_id"] != "ana" {
		t.Fatalf("leaderboard after the sale: %v", out)
	}

	stop() // as SIGINT does
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s of the signal")
	}
	if !strings.Contains(stderr.String(), "admin.token") || strings.Contains(stderr.String(), admin.token) {
		t.Fatalf("the log must say where the token is and never print it:\n%s", stderr.String())
	}

	// A restart keeps the ledger and does not make a second admin token.
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	done2 := make(chan int, 1)
	go func() {
		done2 <- run(ctx2, []string{"serve", "--data", dir, "--addr", addr},
			&environment{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	}()
	waitUp(t, base, done2)
	code, out = admin.do("GET", "/v1/leaderboards/revenue?period="+month, "")
	if code != http.StatusOK || len(out["items"].([]any)) != 1 {
		t.Fatalf("leaderboard after restart: %d %v", code, out)
	}
	stop2()
	<-done2
}

// startServe runs `ledger serve` on the data folder dir (with extra flags)
// in the test process and returns an admin client and a stop function that
// stops the server and returns its exit code; the server also stops when
// the test ends.
func startServe(t *testing.T, dir string, extra ...string) (apiClient, func() int) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--data", dir, "--addr", addr}, extra...),
			&environment{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	}()
	var once sync.Once
	code := -1
	stop := func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Error("serve did not stop within 20 s")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	base := "http://" + addr
	waitUp(t, base, done)
	secret, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return apiClient{t: t, base: base, token: strings.TrimSpace(string(secret))}, stop
}

func waitUp(t testing.TB, base string, done chan int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("serve exited early with %d", code)
		default:
		}
		if res, err := http.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("serve did not come up within 30 s")
}

// syncWriter makes a bytes.Buffer safe for the server's concurrent logging.
type syncWriter struct {
	mu chanMutex
	w  io.Writer
}

type chanMutex struct{ ch chan struct{} }

func (m *chanMutex) lock() {
	if m.ch == nil {
		m.ch = make(chan struct{}, 1)
	}
	m.ch <- struct{}{}
}
func (m *chanMutex) unlock() { <-m.ch }

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.lock()
	defer s.mu.unlock()
	return s.w.Write(p)
}
