package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func TestParseWarm(t *testing.T) {
	got, err := parseWarm(" year, last-year,2026-Q4,,2026-W47 ")
	if err != nil || !cmp.Equal(got, []string{"year", "last-year", "2026-Q4", "2026-W47"}) {
		t.Errorf("parseWarm = %v, %v", got, err)
	}
	if got, err := parseWarm(""); err != nil || len(got) != 0 {
		t.Errorf("parseWarm(\"\") = %v, %v; want none", got, err)
	}
	if _, err := parseWarm("year,2026-13"); err == nil || !strings.Contains(err.Error(), `"2026-13"`) {
		t.Errorf("parseWarm of a bad period: %v", err)
	}
	if got, err := parseWarm(" none "); err != nil || len(got) != 0 {
		t.Errorf("parseWarm(none) = %v, %v; want none", got, err)
	}
	if _, err := parseWarm("year,none"); err == nil {
		t.Error("parseWarm(year,none): no error")
	}
	def, err := parseWarm(defaultWarm)
	if err != nil || !cmp.Equal(def, []string{"year", "last-year", "quarter", "month", "week"}) {
		t.Errorf("parseWarm(default) = %v, %v", def, err)
	}
	// 2027-01-03 is a Sunday: ISO week 53 of 2026.
	now := time.Date(2027, 1, 3, 23, 0, 0, 0, time.FixedZone("CET", 3600))
	if got := warmPeriods(append(def, "2026-Q4", "2027-01"), now); !cmp.Equal(got, []string{"2027", "2026", "2027-Q1", "2027-01", "2026-W53", "2026-Q4"}) {
		t.Errorf("warmPeriods = %v", got)
	}
}

// TestWarmAsOfReadiesTheBoardsAndKeepsThem: warmAsOf waits while the head
// of the log moves, then builds the year's boards of every metric, keeps
// their snapshots in the data folder, and warms again once the log has
// grown by a snapshot interval and is quiet again (and not before); the
// next process uses those snapshots, and its answers are those of a build
// from nothing.
func TestWarmAsOfReadiesTheBoardsAndKeepsThem(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if code, _, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "12", "--months", "2", "--seed", "7"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	store, err := openStore(ctx, dataConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var events []domain.Event
	for e, err := range store.ReadAll(ctx, domain.Position{}) {
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	last := events[len(events)-1].RecordedAt
	year := strconv.Itoa(last.Year())
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := asOfConfig{cache: 4, snapshotEvery: 200, snapshots: 8, snapshotMiB: 1024}
	asOf, err := newAsOf(dataConfig{Dir: dir}, cfg, store, logger)
	if err != nil {
		t.Fatal(err)
	}
	var moves atomic.Uint64 // the head: moved by a busy server
	head := func(context.Context) (uint64, error) { return moves.Load(), nil }
	busy := make(chan struct{})
	go func() {
		for {
			select {
			case <-busy:
				return
			default:
				moves.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	}()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		warmAsOf(wctx, asOf, []string{warmThisYear}, 5*time.Millisecond, head, func() time.Time { return last }, logger)
	}()
	time.Sleep(100 * time.Millisecond)
	if n := logs.count("as-of snapshots prepared"); n != 0 {
		t.Fatalf("%d boards built while the head of the log moved", n)
	}
	close(busy)
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); logs.count("as-of boards warmed") < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("not warmed %d times in a minute:\n%s", n, logs.buf.String())
			}
		}
	}
	waitFor(1)

	// Every metric's board of the year has snapshots kept.
	kept := map[string]int{}
	descs, _ := filepath.Glob(filepath.Join(dir, "asof", "*"+keptSuffix))
	for _, p := range descs {
		var k keptFile
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &k)
		}
		if err != nil {
			t.Fatal(err)
		}
		kept[k.Info.Models]++
	}
	for _, metric := range projections.BoardMetrics {
		scope, err := projections.LeaderboardBoardScope(metric, year)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for models, c := range kept {
			if strings.HasPrefix(models, "leaderboard@"+scope.Key+"#") {
				n += c
			}
		}
		if n == 0 {
			t.Errorf("no snapshot of the %s board of %s kept (kept: %v)", metric, year, kept)
		}
	}

	// Not again until the log grows by a snapshot interval.
	time.Sleep(50 * time.Millisecond)
	if n := logs.count("as-of boards warmed"); n != 1 {
		t.Fatalf("warmed %d times over a log that did not grow", n)
	}
	moves.Add(1)
	for i := range 200 {
		ev := domain.NewEvent{ID: domain.EventID(fmt.Sprint("grow-", i), 0), Type: "ActivityLogged.v1",
			Data: []byte(fmt.Sprintf(`{"activity_id":"grow-%d","member_id":"nobody","kind":"call","quantity":1}`, i)), Actor: "token:admin"}
		if _, err := store.Append(ctx, "test-grow", domain.Any(), []domain.NewEvent{ev}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(2)
	stop()
	<-done
	if err := asOf.Close(); err != nil {
		t.Fatal(err)
	}

	// The next process starts from the kept snapshots, and answers as a
	// build from nothing does.
	next, err := newAsOf(dataConfig{Dir: dir}, cfg, store, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = next.Close() }()
	cold, err := newAsOf(dataConfig{Dir: t.TempDir()}, cfg, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cold.Close() }()
	if err := next.Index(ctx); err != nil {
		t.Fatal(err)
	}
	if logs.count(`earlier processes" kept=0 `) != 1 || logs.count(`earlier processes" kept=`) != 2 {
		t.Errorf("the next process did not load the kept snapshots:\n%s", logs.buf.String())
	}
	board := func(a *projections.AsOf, metric string, at time.Time) projections.Board {
		t.Helper()
		scope, err := projections.LeaderboardBoardScope(metric, year)
		if err != nil {
			t.Fatal(err)
		}
		v, release, err := a.AtScope(ctx, at, scope, "leaderboard")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		b, err := v.Current("leaderboard").(*projections.Leaderboard).Board(ctx, v.DB(),
			projections.BoardQuery{Metric: metric, Period: year, Scope: projections.ScopeCompany, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, at := range []time.Time{events[len(events)/2].RecordedAt, last} {
		for _, metric := range projections.BoardMetrics {
			want := board(cold, metric, at)
			if len(want.Rows) == 0 && metric != projections.MetricEvaluation { // none finalized yet, maybe
				t.Fatalf("the %s board as of %s is empty", metric, at)
			}
			if diff := cmp.Diff(want, board(next, metric, at)); diff != "" {
				t.Errorf("%s board as of %s from the kept snapshots (-cold +kept):\n%s", metric, at, diff)
			}
		}
	}
}

// TestProgressMovesWithTheLogAndEveryConsumer: the figure the warm-up
// watches grows when an event is appended, when the read models apply it
// and when a policy's checkpoint moves, so that the warm-up waits for a
// fresh data folder's policies to go through the log as well.
func TestProgressMovesWithTheLogAndEveryConsumer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	if code, _, stderr := ledgerCLI(t, "demo", "--data", dir, "--members", "6", "--months", "1", "--seed", "3"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	a, err := openApp(ctx, dataConfig{Dir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	policies, err := projections.NewPolicies(a.runner)
	if err != nil {
		t.Fatal(err)
	}
	progress := a.progress(policies)
	at := func(what string) uint64 {
		t.Helper()
		v, err := progress(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	start := at("start")
	if again := at("again"); again != start {
		t.Fatalf("progress moved from %d to %d with nothing happening", start, again)
	}

	head, _ := a.head.Head(ctx)
	if err := a.runner.SavePolicyCheckpoint(ctx, policies[0].Name(), head); err != nil {
		t.Fatal(err)
	}
	policyMoved := at("policy checkpoint")
	if policyMoved <= start {
		t.Fatalf("a policy's checkpoint moved to %s: progress %d -> %d", head, start, policyMoved)
	}

	go a.head.track(ctx, a.store)
	if _, err := a.service.Execute(ctx, domain.FormTeam{TeamID: "t-progress", Name: "Progress", Department: "sales", Region: "North"},
		domain.CommandMeta{CommandID: "progress-1", Actor: "tester"}); err != nil {
		t.Fatal(err)
	}
	appended := policyMoved
	for deadline := time.Now().Add(10 * time.Second); appended == policyMoved && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		appended = at("append")
	}
	if appended <= policyMoved {
		t.Fatalf("an event was appended: progress stayed at %d", appended)
	}

	if err := a.runner.CatchUp(ctx, a.store); err != nil {
		t.Fatal(err)
	}
	if applied := at("read models"); applied <= appended {
		t.Fatalf("the read models applied the new event: progress %d -> %d", appended, applied)
	}
}
