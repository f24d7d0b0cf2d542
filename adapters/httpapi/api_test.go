package httpapi

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
)

// TestBadInputAppendsNothing sends every kind of bad request and checks the
// status, the error code, that the message says something, and that no
// event was appended.
func TestBadInputAppendsNothing(t *testing.T) {
	e := newEnv(t)
	act := "/v1/members/rui/activities"
	sale := "/v1/members/rui/sales"
	tests := []struct {
		name     string
		who      string
		method   string
		path     string
		body     any
		header   map[string]string
		status   int
		code     string
		contains string
	}{
		{"unknown field is 400", "rep", "POST", act, `{"kind":"visit","quantity":1,"qty":2}`, nil, 400, "invalid", "unknown field"},
		{"wrong type is 400", "rep", "POST", act, `{"kind":"visit","quantity":"1"}`, nil, 400, "invalid", "want an integer"},
		{"two JSON values is 400", "rep", "POST", act, `{"kind":"visit","quantity":1}{}`, nil, 400, "invalid", "single JSON value"},
		{"malformed JSON is 400", "rep", "POST", act, `{"kind":"visit",`, nil, 400, "invalid", "JSON"},
		{"empty body is 400", "rep", "POST", act, ``, nil, 400, "invalid", "empty"},
		{"body over 1 MiB is 413", "rep", "POST", act, `{"kind":"visit","quantity":1,"notes":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, nil, 413, "too_large", "bytes"},
		{"bad time is 400", "rep", "POST", act, `{"kind":"visit","quantity":1,"occurred_at":"2026-13-40"}`, nil, 400, "invalid", "invalid value"},
		{"zero quantity is 400", "rep", "POST", act, `{"kind":"visit","quantity":0}`, nil, 400, "invalid", "quantity"},
		{"negative quantity is 400", "rep", "POST", act, `{"kind":"visit","quantity":-3}`, nil, 400, "invalid", "quantity"},
		{"unknown activity kind is 400", "rep", "POST", act, `{"kind":"nap","quantity":1}`, nil, 400, "invalid", "nap"},
		{"negative amount is 400", "rep", "POST", sale, `{"customer":"A","amount_minor":-100,"currency":"EUR"}`, nil, 400, "invalid", "amount"},
		{"unknown currency code is 400", "rep", "POST", sale, `{"customer":"A","amount_minor":100,"currency":"EUX"}`, nil, 400, "invalid", "EUX"},
		{"another currency than the rule set's is 422", "rep", "POST", sale, `{"customer":"A","amount_minor":100,"currency":"USD"}`, nil, 422, "rule_violated", "USD"},
		{"bad period is 400", "manager", "POST", "/v1/targets", `{"subject_kind":"member","subject_id":"rui","kpi":"visits","period":"2026-W60","value":"3"}`, nil, 400, "invalid", "2026-W60"},
		{"bad decimal is 400", "manager", "POST", "/v1/targets", `{"subject_kind":"member","subject_id":"rui","kpi":"visits","period":"2026-W50","value":"lots"}`, nil, 400, "invalid", "invalid value"},
		{"rating out of range is 400", "manager", "POST", "/v1/members/rui/quality", `{"week":"2026-W48","rating":6}`, nil, 400, "invalid", "rating"},
		{"bad date is 400", "admin", "POST", "/v1/members", `{"display_name":"N","role":"salesperson","team_id":"north","joined_on":"02/11/2026"}`, nil, 400, "invalid", "joined_on"},
		{"unknown member in scope check is 404", "manager", "POST", "/v1/members/ghost/quality", `{"week":"2026-W48","rating":3}`, nil, 404, "not_found", "ghost"},
		{"unknown member as subject is 404", "admin", "POST", "/v1/members/ghost/leave", `{"left_on":"2026-12-01","reason":"x"}`, nil, 404, "not_found", "ghost"},
		{"unknown team is 404", "admin", "POST", "/v1/members", `{"display_name":"N","role":"salesperson","team_id":"atlantis","joined_on":"2026-11-02"}`, nil, 404, "not_found", "atlantis"},
		{"unknown activity is 404", "manager", "POST", "/v1/members/rui/activities/nope/void", `{"reason":"x"}`, nil, 404, "not_found", "nope"},
		{"finalizing an open month is 422", "manager", "POST", "/v1/members/rui/evaluations/2026-12/finalize", nil, nil, 422, "rule_violated", "2026-12"},
		{"a bad month is 400", "manager", "POST", "/v1/members/rui/evaluations/2026-W47/finalize", nil, nil, 400, "invalid", "month"},
		{"a rep logging for another member is 403", "rep", "POST", "/v1/members/rita/activities", `{"kind":"visit","quantity":1}`, nil, 403, "forbidden", "own"},
		{"a manager outside their subtree is 403", "manager", "POST", "/v1/members/sam/quality", `{"week":"2026-W48","rating":3}`, nil, 403, "forbidden", "subtree"},
		{"nominating yourself is refused", "manager", "POST", "/v1/promotions", `{"member_id":"mara","to_role":"general_manager","justification":"me","proposed_effective_on":"2027-01-01"}`, nil, 403, "forbidden", ""},
		{"a manager rating themselves is 403", "manager", "POST", "/v1/members/mara/ratings", `{"month":"2026-11","rating":5}`, nil, 403, "forbidden", "yourself"},
		{"a manager rewarding themselves is 403", "manager", "POST", "/v1/members/mara/rewards", `{"kind":"badge","reason":"me"}`, nil, 403, "forbidden", "yourself"},
		{"a token for a member outside its team is 400", "admin", "POST", "/v1/tokens", `{"role":"rep","member_id":"rita","team_id":"south"}`, nil, 400, "invalid", "team_id"},
		{"a token with an unknown role is 400", "admin", "POST", "/v1/tokens", `{"role":"boss"}`, nil, 400, "invalid", "boss"},
		{"a form body is 415", "rep", "POST", act, `{"kind":"visit","quantity":1}`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "application/json"},
		{"an unknown token is 401", "", "POST", act, `{"kind":"visit","quantity":1}`, map[string]string{"Authorization": "Bearer plg_forged"}, 401, "unauthenticated", "token"},
		{"a non-bearer scheme is 401", "", "POST", act, `{"kind":"visit","quantity":1}`, map[string]string{"Authorization": "Basic cnVpOnB3"}, 401, "unauthenticated", "Bearer"},
		{"a too long Idempotency-Key is 400", "rep", "POST", act, `{"kind":"visit","quantity":1}`, map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}, 400, "invalid", "Idempotency-Key"},
		{"an unknown route is 404", "rep", "POST", "/v1/nowhere", `{}`, nil, 404, "not_found", "/v1/nowhere"},
		{"a wrong method is 405", "rep", "DELETE", act, nil, nil, 405, "method_not_allowed", "DELETE"},
		{"a bad min_position is 400", "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&min_position=abc", nil, nil, 400, "invalid", "min_position"},
		{"a bad query period is 400", "rep", "GET", "/v1/leaderboards/revenue?period=November", nil, nil, 400, "invalid", "period"},
		{"a bad metric is 400", "rep", "GET", "/v1/leaderboards/charm?period=2026-11", nil, nil, 400, "invalid", "charm"},
		{"a bad limit is 400", "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&limit=0", nil, nil, 400, "invalid", "limit"},
		{"a forged cursor is 400", "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&cursor=!!", nil, nil, 400, "invalid", "cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.events(t)
			res := e.do(t, tt.who, tt.method, tt.path, tt.body, tt.header)
			if res.status != tt.status || res.errorCode() != tt.code {
				t.Fatalf("got %d %s, want %d %s", res.status, res.body, tt.status, tt.code)
			}
			if !strings.Contains(string(res.body), tt.contains) {
				t.Errorf("message %s does not mention %q", res.body, tt.contains)
			}
			if got := res.header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if n := e.events(t) - before; n != 0 {
				t.Errorf("%d events appended by a refused request", n)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	path := "/v1/members/rui/activities"
	body := `{"kind":"call","quantity":4,"occurred_at":"2026-12-02T10:00:00Z"}`
	key := map[string]string{"Idempotency-Key": "3b1e5b0e-9f7e-4a7c-8d0a-6c1f1f4f9a01"}

	first := e.do(t, "rep", "POST", path, body, key)
	if first.status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	n := e.events(t)

	t.Run("the same key and body replay the same response and append nothing", func(t *testing.T) {
		again := e.do(t, "rep", "POST", path, body, key)
		if again.status != first.status || string(again.body) != string(first.body) {
			t.Errorf("replay: %d %s, want %d %s", again.status, again.body, first.status, first.body)
		}
		if got := e.events(t); got != n {
			t.Errorf("replay appended %d events", got-n)
		}
	})
	t.Run("the same key with another body is 409", func(t *testing.T) {
		res := e.do(t, "rep", "POST", path, `{"kind":"call","quantity":5}`, key)
		if res.status != http.StatusConflict || res.errorCode() != "conflict" {
			t.Errorf("got %d %s, want 409", res.status, res.body)
		}
		if got := e.events(t); got != n {
			t.Errorf("appended %d events", got-n)
		}
	})
	t.Run("the same key on another route is 409", func(t *testing.T) {
		res := e.do(t, "rep", "POST", "/v1/members/rui/sales", body, key)
		if res.status != http.StatusConflict {
			t.Errorf("got %d %s, want 409", res.status, res.body)
		}
	})
	t.Run("the same key from another principal is 409", func(t *testing.T) {
		res := e.do(t, "rep2", "POST", "/v1/members/sam/activities", body, key)
		if res.status != http.StatusConflict {
			t.Errorf("got %d %s, want 409", res.status, res.body)
		}
	})
	t.Run("concurrent requests with one key append once", func(t *testing.T) {
		k := map[string]string{"Idempotency-Key": "concurrent-key-1"}
		before := e.events(t)
		var wg sync.WaitGroup
		bodies := make([]string, 8)
		for i := range bodies {
			wg.Go(func() {
				res := e.do(t, "rep", "POST", path, body, k)
				if res.status != http.StatusCreated {
					t.Errorf("request %d: %d %s", i, res.status, res.body)
				}
				bodies[i] = string(res.body)
			})
		}
		wg.Wait()
		if got := e.events(t) - before; got != 1 {
			t.Errorf("%d events appended, want 1", got)
		}
		for i := range bodies {
			if bodies[i] != bodies[0] {
				t.Errorf("response %d differs: %s vs %s", i, bodies[i], bodies[0])
			}
		}
	})
	t.Run("a refused request is not remembered", func(t *testing.T) {
		k := map[string]string{"Idempotency-Key": "retry-after-fix"}
		if res := e.do(t, "rep", "POST", path, `{"kind":"call","quantity":0}`, k); res.status != 400 {
			t.Fatalf("got %d", res.status)
		}
		if res := e.do(t, "rep", "POST", path, `{"kind":"call","quantity":1}`, k); res.status != 201 {
			t.Fatalf("corrected retry: %d %s", res.status, res.body)
		}
	})
}

// TestConcurrentFinalize: two managers finalize the same evaluation at once;
// one succeeds, the other gets 409, and one event is appended.
func TestConcurrentFinalize(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		m, pos := e.ratedMember(t)
		path := "/v1/members/" + m + "/evaluations/2026-11/finalize?min_position=" + pos.String()
		before := e.events(t)
		start := make(chan struct{})
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i, who := range []string{"manager", "manager3"} {
			wg.Go(func() {
				<-start
				statuses[i] = e.do(t, who, "POST", path, nil, nil).status
			})
		}
		close(start)
		wg.Wait()
		got := map[int]int{}
		for _, s := range statuses {
			got[s]++
		}
		if diff := cmp.Diff(map[int]int{201: 1, 409: 1}, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if n := e.events(t) - before; n != 1 {
			t.Errorf("%d events appended, want 1", n)
		}
	}
}

func TestWriteThenReadWithMinPosition(t *testing.T) {
	// A generous wait: reads of reached positions must never depend on the
	// machine's speed. The unreachable case below uses its own short one.
	e := newEnv(t, func(c *Config) { c.WaitTimeout = 20 * time.Second })
	res := e.do(t, "rep", "POST", "/v1/members/rui/sales", `{"customer":"ACME","amount_minor":250000,"currency":"EUR","occurred_at":"2026-11-20T10:00:00Z"}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("sale: %d %s", res.status, res.body)
	}
	var w writeReply
	res.decode(t, &w)
	if w.Stream != "member-rui" || w.Position == "" || w.ID == "" || len(w.Events) != 1 {
		t.Fatalf("write reply %+v", w)
	}
	pos, err := domain.ParsePosition(w.Position)
	if err != nil {
		t.Fatal(err)
	}

	board := e.do(t, "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&min_position="+w.Position, nil, nil)
	if board.status != http.StatusOK {
		t.Fatalf("board: %d %s", board.status, board.body)
	}
	var b boardPage
	board.decode(t, &b)
	got, err := domain.ParsePosition(b.Position)
	if err != nil || got.Less(pos) {
		t.Fatalf("board reflects %q, want at least %s", b.Position, pos)
	}
	if h := board.header.Get("Ledger-Position"); h != b.Position {
		t.Errorf("Ledger-Position %q, body %q", h, b.Position)
	}
	if len(b.Items) == 0 || b.Items[0].SubjectID != "rui" || b.Items[0].Rank != 1 {
		t.Errorf("board rows %+v", b.Items)
	}

	t.Run("a cached board is not served once the read model moved", func(t *testing.T) {
		res := e.do(t, "rep2", "POST", "/v1/members/sam/sales", `{"customer":"B","amount_minor":990000,"currency":"EUR","occurred_at":"2026-11-21T10:00:00Z"}`, nil)
		if res.status != http.StatusCreated {
			t.Fatalf("sale: %d %s", res.status, res.body)
		}
		var w writeReply
		res.decode(t, &w)
		board := e.do(t, "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&min_position="+w.Position, nil, nil)
		var b boardPage
		board.decode(t, &b)
		if len(b.Items) < 2 || b.Items[0].SubjectID != "sam" || b.Position != w.Position {
			t.Errorf("after sam's sale the board is %+v at %s, want sam first at %s", b.Items, b.Position, w.Position)
		}
	})

	t.Run("a position not reached in time is 503 with Retry-After", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.WaitTimeout = 200 * time.Millisecond })
		far := domain.Seq(pos.Commit + 1000).String()
		res := e.do(t, "rep", "GET", "/v1/leaderboards/revenue?period=2026-11&min_position="+far, nil, nil)
		if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
			t.Fatalf("got %d %s", res.status, res.body)
		}
		if !strings.Contains(string(res.body), far) {
			t.Errorf("message %s does not name the position", res.body)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "request deferred") || strings.Contains(logs, "request failed") {
			t.Errorf("a 503 with Retry-After is not logged as deferred (and only that):\n%s", logs)
		}
	})

	t.Run("a request the client gives up on is logged as abandoned, not failed", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.WaitTimeout = 10 * time.Second })
		far := domain.Seq(pos.Commit + 1000).String()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/leaderboards/revenue?period=2026-11&min_position="+far, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.tok["rep"])
		if res, err := e.srv.Client().Do(req); err == nil {
			res.Body.Close()
			t.Fatalf("got %d, want the client to give up", res.StatusCode)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(e.logs.String(), "request abandoned by the client") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "request abandoned by the client") || strings.Contains(logs, "request failed") {
			t.Errorf("logs:\n%s", logs)
		}
	})

	t.Run("a table can be had as CSV", func(t *testing.T) {
		res := e.do(t, "auditor", "GET", "/v1/leaderboards/revenue?period=2026-11", nil, map[string]string{"Accept": "text/csv"})
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("got %d %q", res.status, res.header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0][0] != "rank" || recs[1][1] != "sam" || recs[2][1] != "rui" {
			t.Errorf("csv %q", recs)
		}
		if res.header.Get("Ledger-Position") == "" {
			t.Error("CSV without Ledger-Position")
		}
	})
}

func TestPaginationOverHTTP(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"rui", "rita"} {
		_ = m
	}
	var all []TokenInfo
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
		res := e.do(t, "admin", "GET", "/v1/tokens?limit=3&cursor="+cursor, nil, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%d %s", res.status, res.body)
		}
		var p Page[TokenInfo]
		res.decode(t, &p)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	list, err := e.api.Tokens().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(list, all); diff != "" {
		t.Errorf("paged tokens (-want +got):\n%s", diff)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimit = RateLimit{Rate: 0.001, Burst: 3} })
	path := "/v1/leaderboards/revenue?period=2026-11"
	for i := range 3 {
		if res := e.do(t, "rep", "GET", path, nil, nil); res.status != http.StatusOK {
			t.Fatalf("request %d: %d", i, res.status)
		}
	}
	res := e.do(t, "rep", "GET", path, nil, nil)
	if res.status != http.StatusTooManyRequests || res.errorCode() != "rate_limited" || res.header.Get("Retry-After") == "" {
		t.Fatalf("got %d %s (Retry-After %q), want 429", res.status, res.body, res.header.Get("Retry-After"))
	}
	if res := e.do(t, "rep2", "GET", path, nil, nil); res.status != http.StatusOK {
		t.Errorf("another principal: %d, want its own bucket", res.status)
	}
}

// panicky makes every command panic.
type panicky struct{}

func (panicky) Execute(context.Context, domain.Command, domain.CommandMeta) (domain.Result, error) {
	panic("secret internal detail")
}

func TestPanicBecomes500WithoutDetails(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Commands = panicky{} })
	res := e.do(t, "rep", "POST", "/v1/members/rui/activities", `{"kind":"visit","quantity":1}`, nil)
	if res.status != http.StatusInternalServerError || res.errorCode() != "internal" {
		t.Fatalf("got %d %s", res.status, res.body)
	}
	if strings.Contains(string(res.body), "secret") {
		t.Errorf("the response leaks the panic: %s", res.body)
	}
	if !strings.Contains(e.logs.String(), "secret internal detail") {
		t.Error("the panic is not logged")
	}
	if res := e.do(t, "rep", "GET", "/healthz", nil, nil); res.status != http.StatusOK {
		t.Errorf("server unusable after a panic: %d", res.status)
	}
}

func TestHealthReadinessMetrics(t *testing.T) {
	notReady := true
	var mu sync.Mutex
	e := newEnv(t, func(c *Config) {
		c.Ready = ReadyFunc(func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if notReady {
				return errString("projection leaderboard is 12 events behind")
			}
			return nil
		})
		c.Lags = LagFunc(func(context.Context) []ProjectorLag { return []ProjectorLag{{Name: "leaderboard", Events: 12}} })
	})
	if res := e.do(t, "", "GET", "/healthz", nil, nil); res.status != http.StatusOK {
		t.Errorf("healthz %d", res.status)
	}
	if res := e.do(t, "", "GET", "/readyz", nil, nil); res.status != http.StatusServiceUnavailable || !strings.Contains(string(res.body), "behind") {
		t.Errorf("readyz while behind: %d %s", res.status, res.body)
	}
	mu.Lock()
	notReady = false
	mu.Unlock()
	if res := e.do(t, "", "GET", "/readyz", nil, nil); res.status != http.StatusOK {
		t.Errorf("readyz: %d %s", res.status, res.body)
	}
	e.do(t, "rep", "POST", "/v1/members/rui/activities", `{"kind":"visit","quantity":1}`, nil)
	e.do(t, "rep", "GET", "/v1/leaderboards/revenue?period=2026-11", nil, nil)
	res := e.do(t, "", "GET", "/metrics", nil, nil)
	if res.status != http.StatusOK {
		t.Fatalf("metrics %d", res.status)
	}
	for _, want := range []string{
		`ledger_http_request_duration_seconds_count{method="POST",route="/v1/members/{member_id}/activities",status="201"} 1`,
		`ledger_http_request_duration_seconds_count{method="GET",route="/v1/leaderboards/{metric}",status="200"} 1`,
		`ledger_append_duration_seconds_count{outcome="ok"} 1`,
		`ledger_projection_lag_events{projector="leaderboard"} 12`,
	} {
		if !strings.Contains(string(res.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("an empty config must be refused")
	}
}

func TestMemberHistory(t *testing.T) {
	e := newEnv(t)
	m := e.freshMember(t)
	if res := e.do(t, "hr", "POST", "/v1/members/"+m+"/profile", `{"birthday":"1991-02-03","hobbies":["sailing"]}`, nil); res.status != 201 {
		t.Fatalf("profile: %d %s", res.status, res.body)
	}
	e.clock.Advance(time.Hour)
	cut := e.clock.Now()
	e.clock.Advance(time.Hour)
	if res := e.do(t, "hr", "POST", "/v1/members/"+m+"/forget", `{"reason":"erasure request"}`, nil); res.status != 201 {
		t.Fatalf("forget: %d %s", res.status, res.body)
	}
	history := func(who, query string) Page[historyItem] {
		t.Helper()
		res := e.do(t, who, "GET", "/v1/members/"+m+"/history"+query, nil, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%s history: %d %s", who, res.status, res.body)
		}
		var p Page[historyItem]
		res.decode(t, &p)
		return p
	}
	types := func(p Page[historyItem]) []string {
		var out []string
		for _, it := range p.Items {
			out = append(out, it.Type)
		}
		return out
	}
	t.Run("as_of shows the timeline as known then", func(t *testing.T) {
		got := types(history("auditor", "?as_of="+cut.Format(time.RFC3339Nano)))
		want := []string{domain.TypeMemberJoined, domain.TypeMemberProfileRecorded}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("types (-want +got):\n%s", diff)
		}
	})
	t.Run("after forgetting, the profile shows as erased and never as plaintext", func(t *testing.T) {
		p := history("hr", "")
		if diff := cmp.Diff([]string{domain.TypeMemberJoined, domain.TypeMemberProfileRecorded, domain.TypeMemberForgotten}, types(p)); diff != "" {
			t.Fatalf("types (-want +got):\n%s", diff)
		}
		if got := string(p.Items[1].Data); !strings.Contains(got, `"erased":true`) || strings.Contains(got, "sailing") {
			t.Errorf("profile data %s", got)
		}
	})
	t.Run("pages follow each other", func(t *testing.T) {
		first := history("auditor", "?limit=2")
		if len(first.Items) != 2 || first.NextCursor == "" {
			t.Fatalf("first page %+v", first)
		}
		second := history("auditor", "?limit=2&cursor="+first.NextCursor)
		if diff := cmp.Diff([]string{domain.TypeMemberForgotten}, types(second)); diff != "" || second.NextCursor != "" {
			t.Errorf("second page (-want +got):\n%s next=%q", diff, second.NextCursor)
		}
	})
	t.Run("a manager outside the subtree is refused", func(t *testing.T) {
		if res := e.do(t, "manager2", "GET", "/v1/members/"+m+"/history", nil, nil); res.status != http.StatusForbidden {
			t.Errorf("got %d", res.status)
		}
	})
}

func TestProfileVisibleToHRRedactedForManagers(t *testing.T) {
	e := newEnv(t)
	if res := e.do(t, "hr", "POST", "/v1/members/rui/profile", `{"hobbies":["chess"],"email":"rui@example.org"}`, nil); res.status != 201 {
		t.Fatalf("profile: %d %s", res.status, res.body)
	}
	for who, want := range map[string]string{"hr": "rui@example.org", "rep": "rui@example.org", "manager": `"redacted":true`} {
		res := e.do(t, who, "GET", "/v1/members/rui/history", nil, nil)
		if res.status != 200 || !strings.Contains(string(res.body), want) {
			t.Errorf("%s: %d, want %s in %s", who, res.status, want, res.body)
		}
		if who == "manager" && strings.Contains(string(res.body), "rui@example.org") {
			t.Error("a manager sees personal data")
		}
	}
}

// TestPromotionRecords follows a nomination through approval and checks
// what HR reads, with the team filter of issue 6.
func TestPromotionRecords(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "manager", "POST", "/v1/promotions", `{"member_id":"rui","to_role":"sales_supervisor","justification":"leads the north-1 visits","proposed_effective_on":"2027-01-01"}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("nominate: %d %s", res.status, res.body)
	}
	var w writeReply
	res.decode(t, &w)
	e.exec(t, domain.RecordEligibility{PromotionID: w.ID, RulesVersion: 1, Eligible: false,
		Criteria: []domain.Criterion{{Code: "E1", Required: ">= 12 months", Observed: "34 months", Passed: true}, {Code: "E2", Required: ">= 100", Observed: "96.5", Passed: false}}})
	if res := e.do(t, "hr", "POST", "/v1/promotions/"+w.ID+"/approve", `{}`, nil); res.status != http.StatusUnprocessableEntity {
		t.Fatalf("approving an ineligible nomination without justification: %d %s", res.status, res.body)
	}
	res = e.do(t, "hr", "POST", "/v1/promotions/"+w.ID+"/approve", `{"exception_justification":"covered the region alone for 3 months"}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	res.decode(t, &w)
	get := func(who, query string) Page[struct {
		PromotionID string `json:"promotion_id"`
		Override    bool   `json:"override"`
		ApproverID  string `json:"approver_id"`
		NominatedBy string `json:"nominated_by"`
	}] {
		t.Helper()
		res := e.do(t, who, "GET", "/v1/promotions"+query+"&min_position="+w.Position, nil, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", who, query, res.status, res.body)
		}
		var p Page[struct {
			PromotionID string `json:"promotion_id"`
			Override    bool   `json:"override"`
			ApproverID  string `json:"approver_id"`
			NominatedBy string `json:"nominated_by"`
		}]
		res.decode(t, &p)
		return p
	}
	p := get("hr", "?from=2026-01-01&team="+teamNorth)
	if len(p.Items) != 1 || p.Items[0].PromotionID != w.ID || !p.Items[0].Override || p.Items[0].ApproverID != "hana" || p.Items[0].NominatedBy != "mara" {
		t.Errorf("HR record %+v", p.Items)
	}
	if p := get("hr", "?from=2026-01-01&team="+teamSouth); len(p.Items) != 0 {
		t.Errorf("south has no promotion, got %+v", p.Items)
	}
	if p := get("rep", "?from=2026-01-01"); len(p.Items) != 1 {
		t.Errorf("rui sees their own promotion: %+v", p.Items)
	}
	if res := e.do(t, "rep2", "GET", "/v1/promotions?member_id=rui", nil, nil); res.status != http.StatusForbidden {
		t.Errorf("another rep reads rui's promotions: %d", res.status)
	}
	if res := e.do(t, "manager2", "GET", "/v1/members/rui/promotions", nil, nil); res.status != http.StatusForbidden {
		t.Errorf("a manager outside the subtree reads them: %d", res.status)
	}
}
