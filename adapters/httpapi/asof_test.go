package httpapi

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// withAsOf gives the env an as-of engine on temporary SQLite files, with
// snapshots every few events so that the tests go through them.
func withAsOf(tb testing.TB, every int) envOption {
	dir := tb.TempDir()
	var n atomic.Int64
	open := func(path string) (*sql.DB, func(), error) {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)")
		if err != nil {
			return nil, nil, err
		}
		return db, func() {
			_ = db.Close()
			for _, s := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + s)
			}
		}, nil
	}
	newPath := func() string { return filepath.Join(dir, fmt.Sprintf("asof-%d.db", n.Add(1))) }
	return func(c *Config) {
		a, err := projections.NewAsOf(projections.AsOfConfig{
			Log:         c.Log,
			Projections: readModelFactories(),
			Open:        func(context.Context) (*sql.DB, func(), error) { return open(newPath()) },
			Copy: func(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
				p := newPath()
				if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
					return nil, nil, err
				}
				return open(p)
			},
			CacheSize:     2,
			SnapshotEvery: every,
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = a.Close() })
		c.AsOf = a
	}
}

// stamp returns the fake clock's time in RFC 3339 and moves it on a minute,
// so that what is recorded next is recorded after it.
func (e *env) stamp() string {
	s := e.clock.Now().Format(time.RFC3339Nano)
	e.clock.Advance(time.Minute)
	return s
}

func (e *env) getJSON(tb testing.TB, who, path string, v any) response {
	tb.Helper()
	res := e.do(tb, who, http.MethodGet, path, nil, nil)
	if res.status == http.StatusOK && v != nil {
		res.decode(tb, v)
	}
	return res
}

func TestAsOf(t *testing.T) {
	for _, every := range []int{0, 7} {
		name := "replayed_from_the_start"
		if every > 0 {
			name = "from_snapshots"
		}
		t.Run(name, func(t *testing.T) {
			if every == 0 {
				every = 1 << 30 // never reached: no snapshot is taken
			}
			testAsOf(t, every)
		})
	}
}

func testAsOf(t *testing.T, every int) {
	e := newEnv(t, withAsOf(t, every))
	beforeAll := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	e.clock.Advance(time.Hour)
	target := fresh("target")
	e.exec(t, domain.SetTarget{TargetID: target, SubjectKind: "member", SubjectID: "rui", KPI: "visits", Period: "2026-W48", Value: domain.FixedFromInt(15)})
	act := fresh("visit")
	e.exec(t, domain.LogActivity{ActivityID: act, MemberID: "rui", Kind: "visit", Quantity: 10,
		OccurredAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)})
	beforeVoid := e.stamp()
	e.exec(t, domain.VoidActivity{MemberID: "rui", ActivityID: act, Reason: "logged twice"})
	e.exec(t, domain.ReviseTarget{TargetID: target, NewValue: domain.FixedFromInt(20), Reason: "new territory", ApprovedBy: "mara"})
	afterAll := e.stamp()
	future := e.clock.Now().Add(24 * time.Hour).Format(time.RFC3339)
	e.settle(t)

	points := func(asOf string) (map[string]string, response) {
		t.Helper()
		var b boardPage
		q := "/v1/leaderboards/activity_points?period=2026-11"
		if asOf != "" {
			q += "&as_of=" + asOf
		}
		res := e.getJSON(t, "rep", q, &b)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", q, res.status, res.body)
		}
		m := map[string]string{}
		for _, r := range b.Items {
			m[r.SubjectID] = r.Value
		}
		return m, res
	}
	visitTarget := func(asOf string) (string, response) {
		t.Helper()
		var card projections.ScorecardWeek
		q := "/v1/members/rui/scorecards/weeks/2026-W48"
		if asOf != "" {
			q += "?as_of=" + asOf
		}
		res := e.getJSON(t, "rep", q, &card)
		if res.status != http.StatusOK {
			return "", res
		}
		for _, k := range card.KPIs {
			if k.KPI == "visits" {
				return k.Target.String(), res
			}
		}
		t.Fatalf("%s: no visits line in %s", q, res.body)
		return "", res
	}

	now, _ := points("")
	then, res := points(beforeVoid)
	after, _ := points(afterAll)
	t.Run("voided_activity_counts_before_the_void_only", func(t *testing.T) {
		if then["rui"] == now["rui"] {
			t.Errorf("as of before the void, rui has %q points, the same as now: the voided visits are missing", then["rui"])
		}
		if after["rui"] != now["rui"] {
			t.Errorf("as of after the void: %q, now: %q", after["rui"], now["rui"])
		}
		if res.header.Get("Ledger-As-Of") == "" || res.header.Get("Ledger-Position") == "" {
			t.Errorf("headers %v", res.header)
		}
		// The same answer again comes from the cache, and is the same.
		if again, _ := points(beforeVoid); again["rui"] != then["rui"] {
			t.Errorf("cached answer %q, first %q", again["rui"], then["rui"])
		}
	})
	t.Run("revised_target_shows_the_old_value_before_the_revision", func(t *testing.T) {
		old, res := visitTarget(beforeVoid)
		if res.status != http.StatusOK {
			t.Fatalf("%d %s", res.status, res.body)
		}
		cur, _ := visitTarget("")
		if old != "15.0000" || cur != "20.0000" {
			t.Errorf("target as of before the revision %q (want 15.0000), now %q (want 20.0000)", old, cur)
		}
	})
	t.Run("future_is_now", func(t *testing.T) {
		fut, _ := points(future)
		if fut["rui"] != now["rui"] || len(fut) != len(now) {
			t.Errorf("future %v, now %v", fut, now)
		}
	})
	t.Run("before_the_first_event_is_empty", func(t *testing.T) {
		empty, _ := points(beforeAll)
		if len(empty) != 0 {
			t.Errorf("before the first event: %v", empty)
		}
		var d directoryPage
		if res := e.getJSON(t, "hr", "/v1/directory?as_of="+beforeAll, &d); res.status != http.StatusOK || len(d.Items) != 0 {
			t.Errorf("directory before the first event: %d %s", res.status, res.body)
		}
	})
	t.Run("bad_as_of_is_400", func(t *testing.T) {
		for _, q := range []string{"/v1/leaderboards/revenue?period=2026-11&as_of=yesterday", "/v1/members/rui/rewards?as_of=2026-13-01T00:00:00Z", "/v1/directory?as_of=27/11/2026"} {
			if res := e.do(t, "hr", http.MethodGet, q, nil, nil); res.status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, res.status, res.body)
			}
		}
	})
	t.Run("bad_period_with_as_of_is_400", func(t *testing.T) {
		// The period scopes the replay: a wrong one is refused before anything is replayed.
		for _, q := range []string{"/v1/leaderboards/revenue?period=2026-13&as_of=" + afterAll,
			"/v1/leaderboards/revenue?as_of=" + afterAll, "/v1/members/rui/scorecards/weeks/2026-W60?as_of=" + afterAll} {
			res := e.do(t, "hr", http.MethodGet, q, nil, nil)
			if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "period") && !strings.Contains(string(res.body), "week") {
				t.Errorf("%s: %d %s, want 400 naming the period", q, res.status, res.body)
			}
		}
	})
	t.Run("another_members_card_as_of_is_403", func(t *testing.T) {
		// Refused before the card's replay, as without as_of.
		q := "/v1/members/mara/scorecards/weeks/2026-W48?as_of=" + afterAll
		if res := e.do(t, "rep", http.MethodGet, q, nil, nil); res.status != http.StatusForbidden {
			t.Errorf("%s as rui's rep: %d %s, want 403", q, res.status, res.body)
		}
	})
	t.Run("bad_metric_with_as_of_is_400", func(t *testing.T) {
		// The metric scopes a board's replay too.
		q := "/v1/leaderboards/charm?period=2026-11&as_of=" + afterAll
		if res := e.do(t, "hr", http.MethodGet, q, nil, nil); res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "charm") {
			t.Errorf("%s: %d %s, want 400 naming the metric", q, res.status, res.body)
		}
	})
	t.Run("every_read_model_route_takes_as_of", func(t *testing.T) {
		n := 0
		for _, rt := range e.api.routes {
			if !rt.asOf {
				continue
			}
			n++
			if len(rt.reads) == 0 {
				t.Errorf("%s takes as_of but names no read model: every read model would be replayed for it", rt.path)
			}
			path, _ := samples[rt.method+" "+rt.path](t, e, "auditor")
			u, err := url.Parse(path)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("as_of", beforeVoid)
			u.RawQuery = q.Encode()
			if res := e.do(t, "auditor", rt.method, u.String(), nil, nil); res.status != http.StatusOK || res.header.Get("Ledger-As-Of") == "" {
				t.Errorf("%s as_of: %d %s", rt.path, res.status, res.body)
			}
		}
		if n < 10 {
			t.Errorf("only %d routes take as_of", n)
		}
	})
}

func TestAsOfUnavailableWithoutEngine(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "rep", http.MethodGet, "/v1/leaderboards/revenue?period=2026-11&as_of=2026-11-01T00:00:00Z", nil, nil)
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("%d %s, want 503", res.status, res.body)
	}
}

// slowAsOf never finishes a build within the request's wait.
type slowAsOf struct{}

func (slowAsOf) AtScope(ctx context.Context, _ time.Time, _ projections.AsOfScope, _ ...string) (*projections.AsOfView, func(), error) {
	<-ctx.Done()
	return nil, nil, ctx.Err()
}

func TestAsOfStillBuildingIs503WithRetryAfter(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AsOf, c.AsOfWait = slowAsOf{}, 20*time.Millisecond })
	res := e.do(t, "rep", http.MethodGet, "/v1/leaderboards/revenue?period=2026-11&as_of=2026-11-01T00:00:00Z", nil, nil)
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Errorf("%d %v %s, want 503 with Retry-After", res.status, res.header, res.body)
	}
}

// TestAsOfRefusesBadParametersBeforeReplaying: with as_of, a parameter
// the route refuses is answered 400 at once, not after the replay: here
// the engine never finishes a build, so a request that waited for one
// would be 503. Every list route's limit is checked, and the leaderboard's
// scope and cursor.
func TestAsOfRefusesBadParametersBeforeReplaying(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AsOf, c.AsOfWait = slowAsOf{}, 20*time.Millisecond })
	var paths []string
	for _, rt := range e.api.routes {
		if !rt.asOf || !rt.list {
			continue
		}
		path, _ := samples[rt.method+" "+rt.path](t, e, "auditor")
		u, err := url.Parse(path)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("limit", "100000")
		q.Set("as_of", "2026-11-01T00:00:00Z")
		u.RawQuery = q.Encode()
		paths = append(paths, u.String())
	}
	if len(paths) < 8 {
		t.Fatalf("only %d list routes take as_of", len(paths))
	}
	asOf := "&as_of=2026-11-01T00:00:00Z"
	paths = append(paths, "/v1/leaderboards/revenue?period=2026-11&scope=team"+asOf,
		"/v1/leaderboards/revenue?period=2026-11&scope=galaxy"+asOf,
		"/v1/leaderboards/revenue?period=2026-11&scope=company&scope_id=t-north"+asOf)
	for _, p := range paths {
		if res := e.do(t, "auditor", http.MethodGet, p, nil, nil); res.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", p, res.status, res.body)
		}
	}
}
