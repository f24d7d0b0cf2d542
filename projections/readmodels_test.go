package projections_test

import (
	"context"
	"database/sql"
	"iter"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
)

// allGoldenEvents concatenates every golden event log, renumbering positions,
// so that each read model sees every event type, including those it ignores.
func allGoldenEvents(tb testing.TB) []projections.Envelope {
	tb.Helper()
	var out []projections.Envelope
	for _, name := range []string{"leaderboard", "scorecard", "evaluations", "promotions", "rewards", "audit", "honour", "suggestions", "directory"} {
		for _, e := range goldenEvents(tb, name) {
			e.Position.Commit = uint64(len(out) + 1)
			e.Position.Prepare = e.Position.Commit
			out = append(out, e)
		}
	}
	return out
}

func TestAllReadModelsShareOneDatabase(t *testing.T) {
	db := goldenDB(t)
	events := allGoldenEvents(t)
	names := map[string]bool{}
	for _, f := range projections.All() {
		p := f("g1_" + f("x").Name() + "_")
		if names[p.Name()] {
			t.Fatalf("two read models named %q", p.Name())
		}
		names[p.Name()] = true
		if p.Version() < 1 {
			t.Errorf("%s: version %d, want ≥ 1", p.Name(), p.Version())
		}
		goldenProject(t, db, p, events, 50)
		// Setup is idempotent: a restart runs it again on existing tables.
		goldenTx(t, db, func(tx *sql.Tx) error { return p.Setup(context.Background(), tx) })
	}
	if len(names) != 8 { // the scorecards are kept by the leaderboard
		t.Errorf("All() lists %d read models, want 8", len(names))
	}
}

func TestTwoInstancesOfOneReadModelAreIndependent(t *testing.T) {
	ctx := context.Background()
	db := goldenDB(t)
	events := goldenEvents(t, "leaderboard")
	serving := projections.NewLeaderboard("leaderboard_g1_").(*projections.Leaderboard)
	rebuild := projections.NewLeaderboard("leaderboard_g2_").(*projections.Leaderboard)
	goldenProject(t, db, serving, events, 0)
	goldenProject(t, db, rebuild, events[:10], 0)
	q := projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company"}
	before, err := serving.Board(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	partial, err := rebuild.Board(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	if partial.Position != "10" || before.Position != "29" {
		t.Fatalf("positions: rebuild %s serving %s, want 10 and 29", partial.Position, before.Position)
	}
	goldenProject(t, db, rebuild, events[10:], 0)
	after, err := rebuild.Board(ctx, db, q)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a rebuild in its own tables differs from the serving instance (-serving +rebuild):\n%s", diff)
	}
}

// TestLeaderboardRanksByTheRules states the rules the leaderboard golden file
// shows, so that a regenerated golden cannot silently break them.
func TestLeaderboardRanksByTheRules(t *testing.T) {
	ctx := context.Background()
	db := goldenDB(t)
	lb := projections.NewLeaderboard("lb_").(*projections.Leaderboard)
	goldenProject(t, db, lb, goldenEvents(t, "leaderboard"), 0)
	type row struct {
		Rank  int
		ID    string
		Value string
	}
	board := func(q projections.BoardQuery) []row {
		t.Helper()
		b, err := lb.Board(ctx, db, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []row
		for _, r := range b.Rows {
			out = append(out, row{r.Rank, r.SubjectID, r.Value})
		}
		return out
	}
	t.Run("ties share a rank and the next rank skips; the voided activity counts nothing", func(t *testing.T) {
		got := board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company"})
		want := []row{{1, "m-eve", "40.0000"}, {2, "m-ana", "30.0000"}, {2, "m-ben", "30.0000"}, {4, "m-cara", "25.0000"}, {5, "m-dan", "0.0000"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("points earned before a transfer stay with the old team", func(t *testing.T) {
		got := board(projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "team", ScopeID: "t-south"})
		want := []row{{1, "m-cara", "20.0000"}, {2, "m-dan", "0.0000"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("a late transfer moves what was earned from its effective day on; a reversed sale counts nothing", func(t *testing.T) {
		got := board(projections.BoardQuery{Metric: "revenue", Period: "2026-W47", Scope: "department", ScopeID: "operations"})
		want := []row{{1, "m-dan", "10000.00"}, {2, "m-eve", "0.00"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("equal attainment is ordered by the raw revenue; a promotion changes the default target", func(t *testing.T) {
		got := board(projections.BoardQuery{Metric: "attainment", Period: "2026-W47", Scope: "company"})
		// Cara, a sales supervisor on the week's last day: 12,000.00 of
		// 1.5 × 20,000.00.
		want := []row{{1, "m-ana", "130.000000"}, {2, "m-ben", "100.000000"}, {2, "m-dan", "100.000000"}, {4, "m-cara", "40.000000"}, {5, "m-eve", "0.000000"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// eventSlice is an EventLog over golden events.
type eventSlice []domain.Event

func (l eventSlice) ReadAll(_ context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for _, e := range l {
			if after.Less(e.Position) && !yield(e, nil) {
				return
			}
		}
	}
}

func TestReadModelsUnderTheRunner(t *testing.T) {
	ctx := context.Background()
	db := goldenDB(t)
	var log eventSlice
	for _, e := range allGoldenEvents(t) {
		log = append(log, e.Event)
	}
	r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db, Projections: projections.All(), BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx, log); err != nil {
		t.Fatal(err)
	}
	lb, ok := r.Current("leaderboard").(*projections.Leaderboard)
	if !ok {
		t.Fatalf("Current(leaderboard) = %T", r.Current("leaderboard"))
	}
	board, err := lb.Board(ctx, r.DB(), projections.BoardQuery{Metric: "revenue", Period: "2026", Scope: "company"})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := r.Checkpoint("leaderboard")
	if err != nil {
		t.Fatal(err)
	}
	if board.Position != cp.String() || cp.Commit != uint64(len(log)) {
		t.Errorf("board position %s, runner checkpoint %s, log length %d: want all equal", board.Position, cp, len(log))
	}
	if len(board.Rows) == 0 {
		t.Error("the yearly revenue board is empty")
	}
}

// payloadEvents makes envelopes of payloads at positions 1, 2, … occurring
// (and recorded) at the given times.
func payloadEvents(tb testing.TB, at time.Time, ps ...domain.Payload) []projections.Envelope {
	tb.Helper()
	out := make([]projections.Envelope, len(ps))
	for i, p := range ps {
		typ, data, err := domain.EncodePayload(p)
		if err != nil {
			tb.Fatal(err)
		}
		t := at.Add(time.Duration(i) * time.Minute)
		out[i] = projections.Envelope{Event: domain.Event{ID: domain.EventID("payloads", i), Type: typ, Data: data,
			Stream: "s", OccurredAt: t, RecordedAt: t, Position: domain.Seq(uint64(i + 1))}, Payload: p}
	}
	return out
}

// call is a member's call activity (1 point under rule set v1).
func call(member, id string, at time.Time) *domain.ActivityLogged {
	return &domain.ActivityLogged{ActivityID: id, MemberID: member, Kind: "call", Quantity: 1, OccurredAt: at}
}

// voided is the void of a member's activity.
func voided(member, id, reason string) *domain.ActivityVoided {
	return &domain.ActivityVoided{ActivityID: id, MemberID: member, Reason: reason}
}

// projected applies events to p on a fresh in-memory database, in batches
// of size (all at once for 0), and returns the database.
func projected(t *testing.T, p projections.Projector, events []projections.Envelope, size int) *sql.DB {
	t.Helper()
	db := goldenDB(t)
	goldenProject(t, db, p, events, size)
	return db
}

// Activity ids are unique per member (the domain refuses a member's id
// twice, not another member's): the same id logged by two members counts for
// both, a member's repeated id counts once, and a void voids the member's own.
func TestLeaderboardCountsActivityIDsPerMember(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	events := payloadEvents(t, day,
		&domain.TeamFormed{TeamID: "t", Name: "T", Department: "sales", Region: "north"},
		&domain.MemberJoined{MemberID: "a", DisplayName: "A", Role: "salesperson", TeamID: "t", JoinedOn: "2026-11-01"},
		&domain.MemberJoined{MemberID: "b", DisplayName: "B", Role: "salesperson", TeamID: "t", JoinedOn: "2026-11-01"},
		call("a", "x", day),
		call("b", "x", day),
		call("a", "x", day),
		call("a", "y", day),
		voided("a", "y", "typo"),
		call("b", "y", day),
	)
	for _, size := range []int{0, 1, 4} {
		lb := projections.NewLeaderboard("lb_").(*projections.Leaderboard)
		db := projected(t, lb, events, size)
		b, err := lb.Board(ctx, db, projections.BoardQuery{Metric: "activity_points", Period: "2026-W47", Scope: "company"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range b.Rows {
			got[r.SubjectID] = r.Value
		}
		// A call is worth 1 point (rule set v1).
		if diff := cmp.Diff(map[string]string{"a": "1.0000", "b": "2.0000"}, got); diff != "" {
			t.Errorf("batches of %d: board (-want +got):\n%s", size, diff)
		}
	}
}

// A void marks the voiding member's own activity in the audit trail, not
// another member's activity with the same id, however many weeks back. It
// marks the first earlier activity with that id (a log the commands would
// not write can hold two), and nothing when none came before it.
func TestAuditVoidMarksTheMembersOwnActivity(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	events := payloadEvents(t, day,
		call("a", "x", day.AddDate(0, 0, -42)), // 0
		call("b", "x", day),                    // 1
		call("a", "y", day),                    // 2
		voided("b", "x", "typo"),               // 3
		voided("a", "x", "six weeks late"),     // 4
		call("a", "z", day),                    // 5
		voided("a", "w", "before it"),          // 6
		call("a", "z", day),                    // 7: the same id again
		call("a", "w", day),                    // 8: after its void
		voided("a", "z", "once"),               // 9
		voided("a", "z", "twice"),              // 10
	)
	id := func(i int) string { return events[i].ID }
	by := map[string][]string{id(0): {id(4)}, id(1): {id(3)}, id(5): {id(9), id(10)}}
	voids := map[string]string{id(3): id(1), id(4): id(0), id(9): id(5), id(10): id(5)}
	cases := []struct {
		q     projections.AuditQuery
		by    map[string][]string
		voids map[string]string
	}{
		{projections.AuditQuery{}, by, voids},
		{projections.AuditQuery{Limit: 2}, by, voids},
		{projections.AuditQuery{MemberID: "a"}, map[string][]string{id(0): {id(4)}, id(5): {id(9), id(10)}},
			map[string]string{id(4): id(0), id(9): id(5), id(10): id(5)}},
		{projections.AuditQuery{Type: "ActivityVoided"}, map[string][]string{}, voids},
	}
	for _, size := range []int{0, 1, 4} {
		au := projections.NewAudit("au_").(*projections.Audit)
		db := projected(t, au, events, size)
		for _, c := range cases {
			gotBy, gotVoids := map[string][]string{}, map[string]string{}
			q := c.q
			for {
				page, err := au.Trail(ctx, db, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range page.Items {
					if e.VoidedBy != nil {
						gotBy[e.ID] = e.VoidedBy
					}
					if e.Voids != "" {
						gotVoids[e.ID] = e.Voids
					}
				}
				if q.Cursor = page.Next; q.Cursor == "" {
					break
				}
			}
			if diff := cmp.Diff(c.by, gotBy); diff != "" {
				t.Errorf("batches of %d, %+v: voided_by (-want +got):\n%s", size, c.q, diff)
			}
			if diff := cmp.Diff(c.voids, gotVoids); diff != "" {
				t.Errorf("batches of %d, %+v: voids (-want +got):\n%s", size, c.q, diff)
			}
		}
	}
}

// Reward ids are unique per member: a revocation books the kind and currency
// of the member's own reward.
func TestRewardRevocationTakesTheMembersOwnReward(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC)
	events := payloadEvents(t, day,
		&domain.RewardGranted{RewardID: "r1", MemberID: "a", Kind: domain.RewardBadge, Reason: "first", GrantedBy: "boss"},
		&domain.RewardGranted{RewardID: "r1", MemberID: "b", Kind: domain.RewardPraise, Reason: "second", GrantedBy: "boss"},
		&domain.RewardRevoked{RewardID: "r1", MemberID: "a", Reason: domain.RevokeCorrection},
	)
	for _, size := range []int{0, 1} {
		rw := projections.NewRewards("rw_").(*projections.Rewards)
		db := projected(t, rw, events, size)
		page, err := rw.Rewards(ctx, db, projections.RewardQuery{MemberID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range page.Items {
			kinds = append(kinds, e.Entry+" "+e.Kind)
		}
		if diff := cmp.Diff([]string{"grant badge", "revocation badge"}, kinds); diff != "" {
			t.Errorf("batches of %d: a's entries (-want +got):\n%s", size, diff)
		}
	}
}

// A void finds its activity however many weeks back it lies (contributions
// are keyed by member and week; the member's weeks are probed from the
// latest back).
func TestLeaderboardVoidOfAnOlderWeek(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 16, 9, 0, 0, 0, time.UTC) // week 47
	weeksAgo := func(n int) time.Time { return day.AddDate(0, 0, -7*n) }
	events := payloadEvents(t, day,
		&domain.TeamFormed{TeamID: "t", Name: "T", Department: "sales", Region: "north"},
		&domain.MemberJoined{MemberID: "a", DisplayName: "A", Role: "salesperson", TeamID: "t", JoinedOn: "2026-01-05"},
		call("a", "old", weeksAgo(6)),
		call("a", "mid", weeksAgo(3)),
		call("a", "new", day),
		voided("a", "old", "typo"),
		voided("a", "none", "never logged"),
	)
	for _, size := range []int{0, 1} {
		lb := projections.NewLeaderboard("lb_").(*projections.Leaderboard)
		db := projected(t, lb, events, size)
		got := map[string]string{}
		for _, w := range []int{6, 3, 0} {
			period := domain.PeriodOf(domain.PeriodWeek, weeksAgo(w)).String()
			b, err := lb.Board(ctx, db, projections.BoardQuery{Metric: "activity_points", Period: period, Scope: "company"})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range b.Rows {
				got[period] = r.Value
			}
		}
		want := map[string]string{"2026-W41": "0.0000", "2026-W44": "1.0000", "2026-W47": "1.0000"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batches of %d: weekly boards (-want +got):\n%s", size, diff)
		}
	}
}
