package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"perfledger/adapters/sqlite"
	"perfledger/domain"
)

// The handler-path benchmarks call the API's http.Handler directly (no
// network), with parallel clients: b.SetParallelism(32) on 2 cores gives 64
// concurrent requests. Run:
//
//	go test ./adapters/httpapi -run '^$' -bench . -benchtime 2s
//
// The load-tool numbers over a real listener are the lead's (BENCHMARKS.md).

func benchRequest(b *testing.B, e *env, method, path, body string) *http.Request {
	b.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+e.tok["rep"])
	return r
}

func benchPostActivity(b *testing.B, e *env) {
	body := `{"kind":"visit","quantity":1,"customer":"ACME","occurred_at":"2026-11-20T10:00:00Z"}`
	// Every rep of its own: one member stream per client, as in real use.
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		m := fresh("bench")
		e.exec(b, domain.JoinMember{MemberID: m, DisplayName: m, Role: "salesperson", TeamID: teamNorth1, JoinedOn: "2024-01-08"})
		info, secret, err := e.api.Tokens().Create(context.Background(), NewToken{Role: RoleRep, MemberID: m, TeamID: teamNorth1})
		if err != nil {
			b.Error(err)
			return
		}
		_ = info
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/v1/members/"+m+"/activities", strings.NewReader(body))
			r.Header.Set("Authorization", "Bearer "+secret)
			w := httptest.NewRecorder()
			e.api.ServeHTTP(w, r)
			if w.Code != http.StatusCreated {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkPostActivitySQLiteDurableNoProjections measures the API and the
// store alone: nothing projects the events meanwhile.
func BenchmarkPostActivitySQLiteDurableNoProjections(b *testing.B) {
	clock := newFakeClock()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db"), Durability: sqlite.Durable, Clock: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	e := newEnvOn(b, st)
	e.stop()
	benchPostActivity(b, e)
}

func BenchmarkPostActivityMemory(b *testing.B) {
	benchPostActivity(b, newEnv(b))
}

// BenchmarkPostActivityMemoryNoProjections is the API's own cost: an
// in-memory store and nothing projecting.
func BenchmarkPostActivityMemoryNoProjections(b *testing.B) {
	e := newEnv(b)
	e.stop()
	benchPostActivity(b, e)
}

func BenchmarkPostActivitySQLiteDurable(b *testing.B) {
	clock := newFakeClock()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "events.db"), Durability: sqlite.Durable, Clock: clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	benchPostActivity(b, newEnvOn(b, st))
}

func BenchmarkGetLeaderboard(b *testing.B) {
	e := newEnv(b)
	var last domain.Position
	for i := range 1000 {
		m := fmt.Sprintf("lb-%d", i)
		e.exec(b, domain.JoinMember{MemberID: m, DisplayName: m, Role: "salesperson", TeamID: teamNorth1, JoinedOn: "2024-01-08"})
		res := e.exec(b, domain.CloseSale{SaleID: m, MemberID: m, Customer: "ACME", AmountMinor: int64(1000 + i%97*100), Currency: "EUR",
			OccurredAt: time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)})
		last = res.Position
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.runner.WaitFor(ctx, last); err != nil {
		b.Fatal(err)
	}
	path := "/v1/leaderboards/revenue?period=2026-11&limit=50"
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			e.api.ServeHTTP(w, benchRequest(b, e, http.MethodGet, path, ""))
			if w.Code != http.StatusOK {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkGetLeaderboardHTTP goes through the real listener with 64
// keep-alive connections.
func BenchmarkGetLeaderboardHTTP(b *testing.B) {
	e := newEnv(b)
	for i := range 200 {
		m := fmt.Sprintf("lbh-%d", i)
		e.exec(b, domain.JoinMember{MemberID: m, DisplayName: m, Role: "salesperson", TeamID: teamNorth1, JoinedOn: "2024-01-08"})
		e.exec(b, domain.CloseSale{SaleID: m, MemberID: m, Customer: "ACME", AmountMinor: int64(1000 + i*100), Currency: "EUR",
			OccurredAt: time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)})
	}
	e.settle(b)
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	url := e.srv.URL + "/v1/leaderboards/revenue?period=2026-11&limit=50"
	auth := "Bearer " + e.tok["rep"]
	b.SetParallelism(32)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", auth)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
