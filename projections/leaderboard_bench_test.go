package projections_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// benchEvents builds an organisation of n members in 40 teams (4 regions, 2
// departments) with one week of activities and sales each.
func benchEvents(tb testing.TB, n int) []projections.Envelope {
	tb.Helper()
	var out []projections.Envelope
	at := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	add := func(stream string, p domain.Payload) {
		data, err := json.Marshal(p)
		if err != nil {
			tb.Fatal(err)
		}
		pos := uint64(len(out) + 1)
		out = append(out, projections.Envelope{Event: domain.Event{
			ID: domain.EventID("bench", int(pos)), Type: p.EventType(), Stream: stream, Position: domain.Seq(pos),
			Data: data, OccurredAt: at, RecordedAt: at, Actor: "bench",
		}, Payload: p})
	}
	depts := []string{domain.DepartmentSales, domain.DepartmentCommercial}
	for t := range 40 {
		id := fmt.Sprintf("t%02d", t)
		add(domain.TeamStream(id), &domain.TeamFormed{TeamID: id, Name: "Team " + id, Department: depts[t%2], Region: fmt.Sprintf("r%d", t%4)})
	}
	kinds := domain.ActivityKinds
	for m := range n {
		id := fmt.Sprintf("m%05d", m)
		add(domain.MemberStream(id), &domain.MemberJoined{MemberID: id, DisplayName: "Member " + id, Role: "salesperson",
			TeamID: fmt.Sprintf("t%02d", m%40), JoinedOn: "2026-10-01"})
	}
	for m := range n {
		id := fmt.Sprintf("m%05d", m)
		for k := range 3 {
			at = at.Add(time.Second)
			add(domain.MemberStream(id), &domain.ActivityLogged{ActivityID: fmt.Sprintf("a%05d-%d", m, k), MemberID: id,
				Kind: kinds[(m+k)%len(kinds)], Quantity: int64(1 + (m*7+k*13)%17), OccurredAt: at})
		}
		add(domain.MemberStream(id), &domain.SaleClosed{SaleID: fmt.Sprintf("s%05d", m), MemberID: id, Customer: "c",
			AmountMinor: int64(100_000 + (m*7919)%2_000_000), Currency: "EUR", OccurredAt: at})
	}
	return out
}

// BenchmarkLeaderboardTop50 measures the top-50 query of a company board
// over 10,000 members, reporting the median and p99 latency.
func BenchmarkLeaderboardTop50(b *testing.B) {
	ctx := context.Background()
	db := goldenDB(b)
	lb := projections.NewLeaderboard("bench_").(*projections.Leaderboard)
	goldenProject(b, db, lb, benchEvents(b, 10_000), projections.DefaultBatchSize)
	for _, metric := range []string{projections.MetricActivityPoints, projections.MetricRevenue, projections.MetricAttainment} {
		b.Run(metric, func(b *testing.B) {
			q := projections.BoardQuery{Metric: metric, Period: "2026-W47", Scope: projections.ScopeCompany, Limit: 50}
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				board, err := lb.Board(ctx, db, q)
				lat = append(lat, time.Since(start))
				if err != nil || len(board.Rows) != 50 {
					b.Fatalf("board: %d rows, %v", len(board.Rows), err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkLeaderboardApply measures projecting the same organisation.
func BenchmarkLeaderboardApply(b *testing.B) {
	events := benchEvents(b, 2_000)
	for b.Loop() {
		db := goldenDB(b)
		lb := projections.NewLeaderboard("bench_")
		goldenProject(b, db, lb, events, projections.DefaultBatchSize)
	}
	b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// realisticEvents builds members × weeks of daily work: each working day a
// visit, a call and a quote log, a sale twice a week, a weekly quality
// rating, a praise now and then, an occasional void.
func realisticEvents(tb testing.TB, members, weeks int) []projections.Envelope {
	tb.Helper()
	var out []projections.Envelope
	start := time.Date(2026, 9, 7, 9, 0, 0, 0, time.UTC) // a Monday
	at := start
	add := func(stream string, p domain.Payload) {
		data, err := json.Marshal(p)
		if err != nil {
			tb.Fatal(err)
		}
		pos := uint64(len(out) + 1)
		out = append(out, projections.Envelope{Event: domain.Event{
			ID: domain.EventID("real", int(pos)), Type: p.EventType(), Stream: stream, Position: domain.Seq(pos),
			Data: data, OccurredAt: at, RecordedAt: at, Actor: "bench",
		}, Payload: p})
	}
	for t := range 10 {
		id := fmt.Sprintf("t%02d", t)
		add(domain.TeamStream(id), &domain.TeamFormed{TeamID: id, Name: "Team " + id, Department: domain.DepartmentSales, Region: fmt.Sprintf("r%d", t%3)})
	}
	for m := range members {
		id := fmt.Sprintf("m%04d", m)
		add(domain.MemberStream(id), &domain.MemberJoined{MemberID: id, DisplayName: "Member " + id, Role: "salesperson",
			TeamID: fmt.Sprintf("t%02d", m%10), JoinedOn: "2026-09-01"})
	}
	n := 0
	for w := range weeks {
		for d := range 5 {
			day := start.AddDate(0, 0, 7*w+d)
			for m := range members {
				id := fmt.Sprintf("m%04d", m)
				at = day.Add(time.Duration(m) * time.Second)
				for _, kind := range []string{domain.ActivityVisit, domain.ActivityCall, domain.ActivityQuote} {
					n++
					add(domain.MemberStream(id), &domain.ActivityLogged{ActivityID: fmt.Sprintf("a%d", n), MemberID: id, Kind: kind,
						Quantity: int64(1 + (n*7)%9), OccurredAt: at})
					if n%97 == 0 {
						add(domain.MemberStream(id), &domain.ActivityVoided{ActivityID: fmt.Sprintf("a%d", n), MemberID: id, Reason: "typo"})
					}
				}
				if d == 1 || d == 3 {
					n++
					add(domain.MemberStream(id), &domain.SaleClosed{SaleID: fmt.Sprintf("s%d", n), MemberID: id, Customer: "c",
						AmountMinor: int64(200_000 + (n*7919)%1_000_000), Currency: "EUR", OccurredAt: at})
				}
				if d == 4 {
					week := domain.PeriodOf(domain.PeriodWeek, at).String()
					add(domain.MemberStream(id), &domain.QualityAssessed{MemberID: id, Week: week, Rating: 1 + m%5, AssessorID: "boss"})
					if m%7 == 0 {
						add(domain.MemberStream(id), &domain.PraiseGiven{FromID: "boss", ToID: id, Reason: "good week"})
					}
				}
			}
		}
	}
	return out
}

// BenchmarkReadModelsApply measures each read model projecting a realistic
// log (200 members, 8 weeks, ≈ 30,000 events) in batches of 2,000.
func BenchmarkReadModelsApply(b *testing.B) {
	events := realisticEvents(b, 200, 8)
	for _, f := range projections.All() {
		name := f("x").Name()
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				db := goldenDB(b)
				goldenProject(b, db, f("bench_"), events, benchBatch)
			}
			b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchBatch is the batch size of BenchmarkReadModelsApply (the runner's
// default unless -readmodels.batch says otherwise).
var benchBatch = projections.DefaultBatchSize

func init() {
	flag.IntVar(&benchBatch, "readmodels.batch", projections.DefaultBatchSize, "events per transaction in BenchmarkReadModelsApply")
}
