package bus_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/adapters/bus"
	"perfledger/adapters/memory"
	"perfledger/domain"
	"perfledger/projections"
)

// ledger is a memory store with the domain service over it.
type ledger struct {
	store *memory.Store
	svc   *domain.Service
	now   time.Time
	n     int
}

func newLedger(tb testing.TB, now time.Time) *ledger {
	l := &ledger{store: memory.New(func() time.Time { return now }), now: now}
	l.svc = domain.NewService(l.store, domain.NewMemKeys(), func() time.Time { return l.now })
	return l
}

// do executes a command as admin and returns its result.
func (l *ledger) do(tb testing.TB, cmd domain.Command) domain.Result {
	tb.Helper()
	l.n++
	res, err := l.svc.Execute(context.Background(), cmd, domain.CommandMeta{
		CommandID: domain.NewID(), Actor: "admin", CorrelationID: domain.NewID()})
	if err != nil {
		tb.Fatalf("%s: %v", cmd.CommandName(), err)
	}
	return res
}

// rewardEvents lists the reward events of a member's stream, simplified.
type rewardEvent struct {
	Type, RewardID, Kind, Reason, Actor, CausationID string
	Amount                                           int64
}

func rewards(tb testing.TB, s domain.EventStore, member string) []rewardEvent {
	tb.Helper()
	var out []rewardEvent
	for e, err := range s.ReadStream(context.Background(), domain.MemberStream(member), 0) {
		if err != nil {
			tb.Fatal(err)
		}
		pl, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			tb.Fatal(err)
		}
		switch p := pl.(type) {
		case *domain.RewardGranted:
			out = append(out, rewardEvent{Type: "granted", RewardID: p.RewardID, Kind: p.Kind, Amount: p.AmountMinor,
				Actor: e.Actor, CausationID: e.CausationID})
		case *domain.RewardRevoked:
			out = append(out, rewardEvent{Type: "revoked", RewardID: p.RewardID, Reason: p.Reason, Amount: p.AmountMinor,
				Actor: e.Actor, CausationID: e.CausationID})
		}
	}
	return out
}

func fixed(tb testing.TB, s string) domain.Fixed {
	tb.Helper()
	f, err := domain.ParseFixed(s)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func startPolicies(tb testing.TB, l *ledger, db *sql.DB) *harness {
	tb.Helper()
	ctx := context.Background()
	r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: db, Projections: []projections.Factory{projections.PolicyFacts}})
	if err != nil {
		tb.Fatal(err)
	}
	ps, err := projections.NewPolicies(r)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := bus.New(bus.Config{Log: l.store, Runner: r, Policies: ps, Executor: l.svc,
		RetryInterval: time.Millisecond, RetryMaxInterval: 5 * time.Millisecond,
		ResumeMin: time.Millisecond, ResumeMax: 20 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{db: db, runner: r, bus: b, done: make(chan error, 1)}
	go func() { h.done <- b.Run(ctx) }()
	<-b.Running()
	tb.Cleanup(func() { h.stop(tb) })
	return h
}

// settle waits until the member stream holds n reward events.
func settle(tb testing.TB, l *ledger, member string, n int) []rewardEvent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		got := rewards(tb, l.store, member)
		if len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("reward events: got %+v, want %d", got, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// anaLedger is a ledger with team t1, its supervisor "boss", and Ana (m1),
// a salesperson with a revenue target of 80,000.00 for 2026-11 and two sales
// of that month (minor units): s1 on the 10th, s2 on the 20th.
func anaLedger(tb testing.TB, s1, s2 int64) *ledger {
	tb.Helper()
	l := newLedger(tb, time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	l.do(tb, domain.FormTeam{TeamID: "t1", Name: "North", Department: domain.DepartmentSales, Region: "north"})
	l.do(tb, domain.JoinMember{MemberID: "boss", DisplayName: "Boss", Role: "sales_supervisor", TeamID: "t1", JoinedOn: "2025-01-06"})
	l.do(tb, domain.JoinMember{MemberID: "m1", DisplayName: "Ana", Role: "salesperson", TeamID: "t1", JoinedOn: "2025-03-03"})
	l.do(tb, domain.SetTarget{TargetID: "tg1", SubjectKind: domain.SubjectMember, SubjectID: "m1", KPI: "revenue",
		Period: "2026-11", Value: fixed(tb, "80000")})
	l.do(tb, domain.CloseSale{SaleID: "s1", MemberID: "m1", Customer: "c1", AmountMinor: s1, Currency: "EUR",
		OccurredAt: time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)})
	l.do(tb, domain.CloseSale{SaleID: "s2", MemberID: "m1", Customer: "c2", AmountMinor: s2, Currency: "EUR",
		OccurredAt: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)})
	return l
}

func TestPolicies(t *testing.T) {
	t.Run("goal bonus on finalization, clawback on reversal, never twice", func(t *testing.T) {
		l := anaLedger(t, 6_000_000, 2_400_000)
		// Sale ids are unique per member: m2's s2 is another sale.
		l.do(t, domain.JoinMember{MemberID: "m2", DisplayName: "Ben", Role: "salesperson", TeamID: "t1", JoinedOn: "2025-03-03"})
		l.do(t, domain.CloseSale{SaleID: "s2", MemberID: "m2", Customer: "c9", AmountMinor: 100_000, Currency: "EUR",
			OccurredAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)})
		score := fixed(t, "100")
		fin := l.do(t, domain.FinalizeEvaluation{MemberID: "m1", Month: "2026-11",
			Components: domain.EvaluationComponents{Objective: &score}, Score: score, Band: 3, RulesVersion: 1,
			InputsDigest: "x", FinalizedBy: "boss"})

		db := openDB(t, filepath.Join(t.TempDir(), "v.db"))
		h := startPolicies(t, l, db)
		// Revenue 84 000.00 against 80 000.00: a = 1.05, B = 1 000.00 → 1 075.00.
		wantGrant := rewardEvent{Type: "granted", RewardID: projections.GoalBonusRewardID("m1", "2026-11"),
			Kind: domain.RewardGoalBonus, Amount: 107_500, Actor: "policy:goal_bonus", CausationID: fin.Events[0].ID}
		if diff := cmp.Diff([]rewardEvent{wantGrant}, settle(t, l, "m1", 1)); diff != "" {
			t.Fatalf("after finalization (-want +got):\n%s", diff)
		}

		// Reversing m2's s2 claws nothing back from m1; reversing m1's s2
		// leaves 60 000.00: a = 0.75, no bonus: all of it back.
		l.now = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		l.do(t, domain.ReverseSale{MemberID: "m2", SaleID: "s2", Reason: "cancelled"})
		rev := l.do(t, domain.ReverseSale{MemberID: "m1", SaleID: "s2", Reason: "cancelled"})
		wantClaw := rewardEvent{Type: "revoked", RewardID: wantGrant.RewardID, Reason: domain.RevokeClawback,
			Amount: 107_500, Actor: "policy:clawback", CausationID: rev.Events[0].ID}
		if diff := cmp.Diff([]rewardEvent{wantGrant, wantClaw}, settle(t, l, "m1", 2)); diff != "" {
			t.Fatalf("after reversal (-want +got):\n%s", diff)
		}

		// A nomination gets its eligibility recorded.
		l.do(t, domain.NominatePromotion{PromotionID: "p1", MemberID: "m1", ToRole: "sales_supervisor", NominatedBy: "boss",
			Justification: "steady", ProposedEffectiveOn: "2026-12-07"})
		if diff := cmp.Diff([]criterion{
			{Code: "E1", Passed: true}, {Code: "E2"}, {Code: "E3"}, {Code: "E4"},
		}, eligibility(t, l, "p1")); diff != "" {
			t.Errorf("criteria (-want +got):\n%s", diff)
		}

		// Every trigger delivered again (fresh checkpoints): nothing new.
		h.stop(t)
		h2 := startPolicies(t, l, openDB(t, filepath.Join(t.TempDir(), "v2.db")))
		head := l.do(t, domain.LogActivity{ActivityID: "a1", MemberID: "m1", Kind: domain.ActivityCall, Quantity: 1,
			OccurredAt: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}).Position
		waitPolicies(t, h2, head)
		if diff := cmp.Diff([]rewardEvent{wantGrant, wantClaw}, rewards(t, l.store, "m1")); diff != "" {
			t.Errorf("after redelivery (-want +got):\n%s", diff)
		}
		var evaluated int
		for e, err := range l.store.ReadStream(context.Background(), domain.PromotionStream("p1"), 0) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type == domain.TypePromotionEligibilityEvaluated {
				evaluated++
			}
		}
		if evaluated != 1 {
			t.Errorf("eligibility recorded %d times, want once", evaluated)
		}
	})

	t.Run("a sale reversed before the policies start is not counted", func(t *testing.T) {
		// The policy facts catch up on the sales and the reversal in one
		// batch: the reversal must find the sale written before it.
		l := anaLedger(t, 8_400_000, 1_000_000)
		l.do(t, domain.ReverseSale{MemberID: "m1", SaleID: "s2", Reason: "cancelled"})
		score := fixed(t, "100")
		fin := l.do(t, domain.FinalizeEvaluation{MemberID: "m1", Month: "2026-11",
			Components: domain.EvaluationComponents{Objective: &score}, Score: score, Band: 3, RulesVersion: 1,
			InputsDigest: "x", FinalizedBy: "boss"})

		startPolicies(t, l, openDB(t, filepath.Join(t.TempDir(), "v.db")))
		// 84 000.00 counted (94 000.00 with the reversed sale): a = 1.05 → 1 075.00.
		want := []rewardEvent{{Type: "granted", RewardID: projections.GoalBonusRewardID("m1", "2026-11"),
			Kind: domain.RewardGoalBonus, Amount: 107_500, Actor: "policy:goal_bonus", CausationID: fin.Events[0].ID}}
		if diff := cmp.Diff(want, settle(t, l, "m1", 1)); diff != "" {
			t.Fatalf("goal bonus (-want +got):\n%s", diff)
		}
	})
}

// waitPolicies waits until every policy checkpoint has reached pos.
func waitPolicies(tb testing.TB, h *harness, pos domain.Position) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"goal_bonus", "eligibility", "clawback"} {
		for {
			got, err := h.runner.PolicyCheckpoint(ctx, p)
			if err != nil {
				tb.Fatal(err)
			}
			if !got.Less(pos) {
				break
			}
			select {
			case <-ctx.Done():
				tb.Fatalf("policy %s stays at %s, want %s", p, got, pos)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

type criterion struct {
	Code   string
	Passed bool
}

// eligibility waits for the eligibility of a promotion and returns its
// criteria; each carries what was observed.
func eligibility(tb testing.TB, l *ledger, promotion string) []criterion {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		for e, err := range l.store.ReadStream(ctx, domain.PromotionStream(promotion), 0) {
			if err != nil {
				tb.Fatal(err)
			}
			if e.Type != domain.TypePromotionEligibilityEvaluated {
				continue
			}
			if e.Actor != "policy:eligibility" {
				tb.Errorf("actor = %q", e.Actor)
			}
			pl, err := domain.DecodePayload(e.Type, e.Data)
			if err != nil {
				tb.Fatal(err)
			}
			ev := pl.(*domain.PromotionEligibilityEvaluated)
			if ev.Eligible {
				tb.Errorf("eligible with %+v", ev.Criteria)
			}
			var out []criterion
			for _, c := range ev.Criteria {
				if c.Observed == "" {
					tb.Errorf("criterion %s has no observed value", c.Code)
				}
				out = append(out, criterion{Code: c.Code, Passed: c.Passed})
			}
			return out
		}
		select {
		case <-ctx.Done():
			tb.Fatal("no eligibility recorded")
		case <-time.After(5 * time.Millisecond):
		}
	}
}
