package projections_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// The leaderboard holds a window of contributions before it writes them in
// the order of their key, and applies voids to those it holds. Whatever the
// window, its tables are those of a leaderboard that writes every
// contribution before the next event, in the same transactions: with
// repeated ids (which the domain refuses, but a log may hold), voids of
// what is held, written, voided already or never logged, late transfers,
// and members and teams renamed between a contribution and its void.
func TestLeaderboardWindowChangesNothing(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	rapid.Check(t, func(rt *rapid.T) {
		members := []string{"a", "b", "c"}
		teams := []string{"t1", "t2"}
		ps := []domain.Payload{
			&domain.TeamFormed{TeamID: "t1", Name: "One", Department: "sales", Region: "north"},
			&domain.TeamFormed{TeamID: "t2", Name: "Two", Department: "operations", Region: "south"},
		}
		for i, m := range members {
			ps = append(ps, &domain.MemberJoined{MemberID: m, DisplayName: "M " + m, Role: "salesperson", TeamID: teams[i%2], JoinedOn: "2026-01-01"})
		}
		day := func(label string) time.Time {
			return base.AddDate(0, 0, rapid.IntRange(-40, 40).Draw(rt, label)).Add(time.Duration(rapid.IntRange(0, 600).Draw(rt, label+" minute")) * time.Minute)
		}
		n := rapid.IntRange(1, 80).Draw(rt, "events")
		for range n {
			m := rapid.SampledFrom(members).Draw(rt, "member")
			id := rapid.SampledFrom([]string{"x", "y", "z"}).Draw(rt, "id")
			switch rapid.IntRange(0, 9).Draw(rt, "kind") {
			case 0, 1, 2:
				ps = append(ps, &domain.ActivityLogged{ActivityID: id, MemberID: m, Kind: "call", Quantity: int64(rapid.IntRange(1, 3).Draw(rt, "quantity")), OccurredAt: day("activity day")})
			case 3, 4:
				currency := rapid.SampledFrom([]string{"EUR", "EUR", "USD"}).Draw(rt, "currency")
				ps = append(ps, &domain.SaleClosed{SaleID: id, MemberID: m, Customer: "c", AmountMinor: int64(rapid.IntRange(1, 9).Draw(rt, "amount")) * 1000, Currency: currency, OccurredAt: day("sale day")})
			case 5:
				ps = append(ps, &domain.ActivityVoided{ActivityID: id, MemberID: m, Reason: "typo"})
			case 6:
				ps = append(ps, &domain.SaleReversed{SaleID: id, MemberID: m, Reason: "refund"})
			case 7:
				to := rapid.SampledFrom(teams).Draw(rt, "to")
				ps = append(ps, &domain.MemberTransferred{MemberID: m, ToTeamID: to, EffectiveOn: day("transfer day").Format(domain.DateLayout)})
			case 8:
				ps = append(ps, &domain.MemberJoined{MemberID: m, DisplayName: fmt.Sprintf("M %s %d", m, rapid.IntRange(0, 3).Draw(rt, "name")), Role: "salesperson", TeamID: rapid.SampledFrom(teams).Draw(rt, "team"), JoinedOn: "2026-01-01"})
			case 9:
				tm := rapid.SampledFrom(teams).Draw(rt, "renamed team")
				ps = append(ps, &domain.TeamFormed{TeamID: tm, Name: fmt.Sprintf("%s %d", tm, rapid.IntRange(0, 3).Draw(rt, "team name")), Department: "sales", Region: rapid.SampledFrom([]string{"north", "south"}).Draw(rt, "region")})
			}
		}
		events := payloadEvents(t, base, ps...)
		tables := func(window, batch int) []string {
			defer projections.SetContribWindow(window)()
			db := projected(t, projections.NewLeaderboard("lb_"), events, batch)
			var out []string
			for table, rows := range projectionstest.Tables(t, db, "lb_") {
				for _, r := range rows {
					out = append(out, table+" "+r)
				}
			}
			slices.Sort(out)
			return out
		}
		window := rapid.IntRange(2, 40).Draw(rt, "window")
		batch := rapid.IntRange(0, len(events)).Draw(rt, "batch (0: all)")
		want := tables(1, batch)
		if diff := cmp.Diff(want, tables(window, batch)); diff != "" {
			rt.Fatalf("window %d, batches of %d: tables (-one by one +windowed):\n%s", window, batch, diff)
		}
	})
}
