package domain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestPropertyRandomCommandsKeepInvariants executes random command sequences
// through the Service and checks that (1) every refusal is a domain error,
// (2) the stored log never breaks an invariant of DOMAIN.md, whatever was
// accepted, and (3) replaying each stream's stored events rebuilds exactly
// the state the Service decided on.
func TestPropertyRandomCommandsKeepInvariants(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 100
	}
	rapid.Check(t, func(rt *rapid.T) {
		w := &world{store: newFakeStore(), keys: NewMemKeys(), clock: newTestClock(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC))}
		w.svc = NewService(w.store, w.keys, w.clock.Now, WithCacheSize(rapid.IntRange(3, 50).Draw(rt, "cache")))
		// A minimal organisation so that most commands have a chance.
		for _, c := range []Command{
			FormTeam{TeamID: "t1", Name: "One", Department: "sales", Region: "North"},
			JoinMember{MemberID: "sup", DisplayName: "Sup", Role: "sales_supervisor", TeamID: "t1", JoinedOn: "2025-01-01"},
			JoinMember{MemberID: "rd", DisplayName: "Rd", Role: "regional_director", TeamID: "t1", JoinedOn: "2020-01-01"},
			JoinMember{MemberID: "m1", DisplayName: "M1", Role: "salesperson", TeamID: "t1", JoinedOn: "2025-02-01"},
			JoinMember{MemberID: "m2", DisplayName: "M2", Role: "sales_assistant", TeamID: "t1", JoinedOn: "2025-03-01"},
		} {
			if _, err := w.try(c); err != nil {
				rt.Fatalf("setup %s: %v", c.CommandName(), err)
			}
		}
		n := rapid.IntRange(steps/2, steps).Draw(rt, "steps")
		var prev Command
		for i := range n {
			w.clock.Set(w.clock.Now().Add(time.Duration(rapid.IntRange(0, 60).Draw(rt, "hours")) * time.Hour))
			cmd := drawCommand(rt, w.clock.Now())
			meta := CommandMeta{CommandID: fmt.Sprintf("c-%d", i), Actor: "prop"}
			switch rapid.IntRange(0, 19).Draw(rt, "repeat") {
			case 0: // a client retrying its previous command
				if prev != nil {
					cmd, meta.CommandID = prev, fmt.Sprintf("c-%d", i-1)
				}
			case 1: // a client misusing an old command id for a new command
				if i > 0 {
					meta.CommandID = fmt.Sprintf("c-%d", rapid.IntRange(0, i-1).Draw(rt, "reused"))
				}
			}
			prev = cmd
			_, err := w.svc.Execute(context.Background(), cmd, meta)
			if err != nil && !isDomainError(err) {
				rt.Fatalf("step %d %s %+v: non-domain error %v", i, cmd.CommandName(), cmd, err)
			}
		}
		checkLogInvariants(rt, w)
		checkReplayRebuildsState(rt, w)
	})
}

func isDomainError(err error) bool {
	for _, s := range []error{ErrInvalid, ErrNotFound, ErrRuleViolated, ErrAlreadyExists, ErrForbidden} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

var (
	propMembers    = []string{"m1", "m2", "m3", "sup", "rd", "ghost"}
	propTeams      = []string{"t1", "t2", "t3"}
	propRoles      = []string{"sales_assistant", "salesperson", "sales_supervisor", "regional_director", "ceo"}
	propActivities = []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	propSales      = []string{"s1", "s2"}
	propPromotions = []string{"p1", "p2"}
	propRewards    = []string{"r1", "r2"}
	propMonths     = []string{"2025-12", "2026-01", "2026-02", "2026-03", "2026-13"}
)

func drawCommand(rt *rapid.T, now time.Time) Command {
	m := func(label string) string { return rapid.SampledFrom(propMembers).Draw(rt, label) }
	day := func(label string) string {
		return now.AddDate(0, 0, rapid.IntRange(-40, 40).Draw(rt, label)).Format(DateLayout)
	}
	switch rapid.IntRange(0, 30).Draw(rt, "kind") {
	case 0:
		return FormTeam{TeamID: rapid.SampledFrom(propTeams).Draw(rt, "team"), Name: "T", Department: rapid.SampledFrom([]string{"sales", "commercial", "hr"}).Draw(rt, "dept"),
			Region: "R", ParentTeamID: rapid.SampledFrom(append([]string{""}, propTeams...)).Draw(rt, "parent")}
	case 1:
		return JoinMember{MemberID: m("member"), DisplayName: "N", Role: rapid.SampledFrom(propRoles).Draw(rt, "role"),
			TeamID: rapid.SampledFrom(propTeams).Draw(rt, "team"), JoinedOn: day("joined")}
	case 3:
		return TransferMember{MemberID: m("member"), ToTeamID: rapid.SampledFrom(propTeams).Draw(rt, "team"), EffectiveOn: day("on")}
	case 4:
		if rapid.IntRange(0, 3).Draw(rt, "leave") == 0 {
			return RecordLeave{MemberID: m("member"), LeftOn: day("on"), Reason: "r"}
		}
		return SetTarget{TargetID: "g1", SubjectKind: SubjectMember, SubjectID: m("member"), KPI: "revenue", Period: "2026-03", Value: fx("1000")}
	case 2, 5, 6, 7:
		return LogActivity{ActivityID: rapid.SampledFrom(propActivities).Draw(rt, "act"), MemberID: m("member"),
			Kind:     rapid.SampledFrom([]string{"visit", "call", "quote", "lunch"}).Draw(rt, "akind"),
			Quantity: rapid.Int64Range(-1, 20).Draw(rt, "qty"), OccurredAt: now.Add(-time.Duration(rapid.IntRange(-30, 2000).Draw(rt, "ago")) * time.Hour)}
	case 8:
		return CloseSale{SaleID: rapid.SampledFrom(propSales).Draw(rt, "sale"), MemberID: m("member"), Customer: "C",
			AmountMinor: rapid.Int64Range(-5, 1_000_000).Draw(rt, "amount"), Currency: rapid.SampledFrom([]string{"EUR", "USD", "EURO"}).Draw(rt, "cur")}
	case 9:
		return VoidActivity{MemberID: m("member"), ActivityID: rapid.SampledFrom(propActivities).Draw(rt, "act"), Reason: "r"}
	case 10:
		return ReverseSale{MemberID: m("member"), SaleID: rapid.SampledFrom(propSales).Draw(rt, "sale"), Reason: "r"}
	case 11:
		return AssessQuality{MemberID: m("member"), Week: rapid.SampledFrom([]string{"2026-W02", "2026-W53", "2026-05"}).Draw(rt, "week"),
			Rating: rapid.IntRange(0, 6).Draw(rt, "rating"), AssessorID: m("assessor")}
	case 12:
		return RecordManagerRating{MemberID: m("member"), Month: rapid.SampledFrom(propMonths).Draw(rt, "month"),
			Rating: rapid.IntRange(0, 6).Draw(rt, "rating"), RaterID: m("rater")}
	case 13, 14:
		score := fx("95.5")
		return FinalizeEvaluation{MemberID: m("member"), Month: rapid.SampledFrom(propMonths).Draw(rt, "month"),
			Components: EvaluationComponents{Rollup: &score}, Score: score, Band: rapid.IntRange(0, 5).Draw(rt, "band"),
			RulesVersion: 1, FinalizedBy: m("by")}
	case 15, 23, 24:
		return NominatePromotion{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"), MemberID: m("member"),
			ToRole: rapid.SampledFrom(propRoles).Draw(rt, "to"), NominatedBy: m("nominator"), Justification: "j", ProposedEffectiveOn: day("eff")}
	case 16, 25, 26:
		passed := rapid.Bool().Draw(rt, "passed")
		return RecordEligibility{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"), RulesVersion: 1,
			Criteria: []Criterion{{Code: "E1", Passed: passed}}, Eligible: passed || rapid.IntRange(0, 4).Draw(rt, "lie") == 0}
	case 17, 27, 28:
		return ApprovePromotion{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"),
			ApproverID: rapid.SampledFrom([]string{"hr", "hr", "hr", "sup", "m1"}).Draw(rt, "approver"), ApproverRole: rapid.SampledFrom([]string{RoleHR, RoleHR, RoleHR, "manager"}).Draw(rt, "arole"),
			ExceptionJustification: rapid.SampledFrom([]string{"", "vacancy"}).Draw(rt, "exc")}
	case 18:
		return RejectPromotion{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"), ApproverID: "hr", ApproverRole: RoleHR}
	case 19, 29, 30:
		return EffectPromotion{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"), EffectiveOn: rapid.SampledFrom([]string{"", day("eff")}).Draw(rt, "eff")}
	case 20:
		return RescindPromotion{PromotionID: rapid.SampledFrom(propPromotions).Draw(rt, "promo"), Reason: "r",
			ApprovedBy: rapid.SampledFrom([]string{"hr2", "sup"}).Draw(rt, "by"), ApproverRole: rapid.SampledFrom([]string{RoleHR, "manager"}).Draw(rt, "arole")}
	case 21:
		kind := rapid.SampledFrom([]string{"goal_bonus", "badge"}).Draw(rt, "rkind")
		var amount int64
		cur := ""
		if kind == "goal_bonus" {
			amount, cur = rapid.Int64Range(-1, 200000).Draw(rt, "amount"), "EUR"
		}
		return GrantReward{RewardID: rapid.SampledFrom(propRewards).Draw(rt, "reward"), MemberID: m("member"), Kind: kind,
			AmountMinor: amount, Currency: cur, Reason: "r", GrantedBy: m("by")}
	default:
		return RevokeReward{MemberID: m("member"), RewardID: rapid.SampledFrom(propRewards).Draw(rt, "reward"),
			Reason: "clawback", AmountMinor: rapid.Int64Range(0, 150000).Draw(rt, "amount")}
	}
}

// checkLogInvariants replays the global log and checks the invariants of
// DOMAIN.md on what was actually stored.
func checkLogInvariants(rt *rapid.T, w *world) {
	type mem struct {
		joined, left bool
		role         string
		team         string
		activities   map[string]bool
		sales        map[string]bool
		months       map[string]bool
		granted      map[string]int64
		revoked      map[string]int64
	}
	type promo struct {
		member, nominator, from, to string
		evaluated, eligible         bool
		status                      string
		decidedOn                   string
		effected                    bool
	}
	ladder := DefaultLadder()
	rank := func(r string) int { return slices.Index(ladder, r) }
	teams := map[string]bool{}
	members := map[string]*mem{}
	promos := map[string]*promo{}
	corrections := map[string]bool{TypeActivityVoided: true, TypeSaleReversed: true, TypeRewardRevoked: true,
		TypeMemberForgotten: true, TypeEvaluationFinalized: true, TypePromotionRescinded: true}
	activeAt := func(id string) bool { m := members[id]; return m != nil && m.joined && !m.left }
	fail := func(e Event, format string, args ...any) {
		rt.Fatalf("%s rev %d %s: %s", e.Stream, e.Revision, e.Type, fmt.Sprintf(format, args...))
	}
	ids := map[string]bool{}
	for e, err := range w.store.ReadAll(context.Background(), Position{}) {
		if err != nil {
			rt.Fatal(err)
		}
		if ids[e.ID] {
			fail(e, "event id %s stored twice", e.ID)
		}
		ids[e.ID] = true
		p, err := DecodePayload(e.Type, e.Data)
		if err != nil {
			fail(e, "decode: %v", err)
		}
		var m *mem
		if id, ok := cutPrefix(e.Stream, "member-"); ok {
			m = members[id]
			if _, isJoin := p.(*MemberJoined); !isJoin {
				if m == nil || !m.joined {
					fail(e, "recorded for a member who never joined")
				}
				if m.left && !corrections[e.Type] {
					fail(e, "recorded for a member who left")
				}
			}
		}
		switch v := p.(type) {
		case *TeamFormed:
			if teams[v.TeamID] {
				fail(e, "team formed twice")
			}
			if v.ParentTeamID != "" && !teams[v.ParentTeamID] {
				fail(e, "parent team %s does not exist", v.ParentTeamID)
			}
			teams[v.TeamID] = true
		case *MemberJoined:
			if m != nil {
				fail(e, "joined twice")
			}
			if !teams[v.TeamID] || rank(v.Role) < 0 {
				fail(e, "joined unknown team %s or role %s", v.TeamID, v.Role)
			}
			members[v.MemberID] = &mem{joined: true, role: v.Role, team: v.TeamID, activities: map[string]bool{},
				sales: map[string]bool{}, months: map[string]bool{}, granted: map[string]int64{}, revoked: map[string]int64{}}
		case *MemberTransferred:
			if !teams[v.ToTeamID] || v.ToTeamID == m.team || v.FromTeamID != m.team {
				fail(e, "transfer %s→%s while in %s", v.FromTeamID, v.ToTeamID, m.team)
			}
			m.team = v.ToTeamID
		case *MemberLeft:
			m.left = true
		case *ActivityLogged:
			if v.Quantity <= 0 || !slices.Contains(ActivityKinds, v.Kind) {
				fail(e, "quantity %d kind %s", v.Quantity, v.Kind)
			}
			if _, dup := m.activities[v.ActivityID]; dup {
				fail(e, "activity id reused")
			}
			m.activities[v.ActivityID] = false
		case *ActivityVoided:
			if voided, ok := m.activities[v.ActivityID]; !ok || voided {
				fail(e, "void of unknown or voided activity")
			}
			m.activities[v.ActivityID] = true
		case *SaleClosed:
			if v.AmountMinor <= 0 || v.Currency != "EUR" {
				fail(e, "sale %d %s", v.AmountMinor, v.Currency)
			}
			if _, dup := m.sales[v.SaleID]; dup {
				fail(e, "sale id reused")
			}
			m.sales[v.SaleID] = false
		case *SaleReversed:
			if reversed, ok := m.sales[v.SaleID]; !ok || reversed {
				fail(e, "reversal of unknown or reversed sale")
			}
			m.sales[v.SaleID] = true
		case *QualityAssessed:
			if v.Rating < 1 || v.Rating > 5 || v.AssessorID == v.MemberID || !activeAt(v.AssessorID) {
				fail(e, "quality %+v", v)
			}
			if p, err := ParsePeriod(v.Week); err != nil || p.Kind != PeriodWeek {
				fail(e, "bad week %q", v.Week)
			}
		case *ManagerRatingRecorded:
			if v.Rating < 1 || v.Rating > 5 || v.RaterID == v.MemberID || !activeAt(v.RaterID) {
				fail(e, "rating %+v", v)
			}
		case *EvaluationFinalized:
			month, err := ParsePeriod(v.Month)
			if err != nil || month.Kind != PeriodMonth {
				fail(e, "bad month %q", v.Month)
			}
			if m.months[v.Month] {
				fail(e, "month %s finalized twice", v.Month)
			}
			if e.RecordedAt.Before(month.End()) {
				fail(e, "month %s finalized at %s, before it ended", v.Month, e.RecordedAt)
			}
			if v.FinalizedBy == v.MemberID || v.Band < 1 || v.Band > 5 {
				fail(e, "finalization %+v", v)
			}
			m.months[v.Month] = true
		case *PromotionNominated:
			if promos[v.PromotionID] != nil {
				fail(e, "nominated twice")
			}
			nm := members[v.MemberID]
			if !activeAt(v.MemberID) || !activeAt(v.NominatedBy) || nm.role != v.FromRole {
				fail(e, "nomination of inactive member, by inactive nominator, or from a wrong role")
			}
			if rank(v.ToRole) <= rank(v.FromRole) {
				fail(e, "not upward: %s → %s", v.FromRole, v.ToRole)
			}
			nr := rank(members[v.NominatedBy].role)
			if v.NominatedBy == v.MemberID || nr <= rank(v.FromRole) || nr < rank(ManagerRole) {
				fail(e, "nominator %s (%s) may not nominate %s (%s)", v.NominatedBy, members[v.NominatedBy].role, v.MemberID, v.FromRole)
			}
			promos[v.PromotionID] = &promo{member: v.MemberID, nominator: v.NominatedBy, from: v.FromRole, to: v.ToRole, status: "open"}
		case *PromotionEligibilityEvaluated:
			pr := promos[v.PromotionID]
			if pr == nil || pr.status != "open" {
				fail(e, "eligibility of a closed or unknown promotion")
			}
			pr.evaluated, pr.eligible = true, v.Eligible
		case *PromotionApproved:
			pr := promos[v.PromotionID]
			if pr == nil || pr.status != "open" || !pr.evaluated {
				fail(e, "approval of an unevaluated, closed or unknown promotion")
			}
			if v.ApproverID == pr.nominator || v.ApproverID == pr.member {
				fail(e, "separation of duties: approver %s", v.ApproverID)
			}
			if !pr.eligible && v.ExceptionJustification == "" {
				fail(e, "ineligible approval without justification")
			}
			pr.status, pr.decidedOn = "approved", dateOf(e.OccurredAt)
		case *PromotionRejected:
			pr := promos[v.PromotionID]
			if pr == nil || pr.status != "open" {
				fail(e, "rejection of a closed or unknown promotion")
			}
			pr.status = "rejected"
		case *PromotionEffected:
			pr := promos[v.PromotionID]
			if pr == nil || pr.status != "approved" || pr.effected {
				fail(e, "effect of a promotion not approved, or twice")
			}
			if v.EffectiveOn < pr.decidedOn || dateOf(e.RecordedAt) < v.EffectiveOn {
				fail(e, "effective %s, approved %s, recorded %s", v.EffectiveOn, pr.decidedOn, dateOf(e.RecordedAt))
			}
			if m.role != v.FromRole {
				fail(e, "member is %s, promotion from %s", m.role, v.FromRole)
			}
			pr.effected, m.role = true, v.ToRole
		case *PromotionRescinded:
			pr := promos[v.PromotionID]
			if pr == nil || pr.status != "approved" {
				fail(e, "rescission of a promotion not approved")
			}
			if pr.effected {
				m.role = v.FromRole
			}
			pr.status = "rescinded"
		case *RewardGranted:
			if _, dup := m.granted[v.RewardID]; dup {
				fail(e, "reward id reused")
			}
			if v.GrantedBy == v.MemberID || (v.Kind == "goal_bonus" && (v.AmountMinor <= 0 || v.Currency != "EUR")) {
				fail(e, "grant %+v", v)
			}
			m.granted[v.RewardID] = v.AmountMinor
		case *RewardRevoked:
			g, ok := m.granted[v.RewardID]
			if !ok {
				fail(e, "revocation of an unknown reward")
			}
			m.revoked[v.RewardID] += v.AmountMinor
			if m.revoked[v.RewardID] > g {
				fail(e, "revoked %d of %d", m.revoked[v.RewardID], g)
			}
		}
	}
}

// checkReplayRebuildsState folds every stream's stored events into a fresh
// state and compares it with the Service's cached state and with what a
// fresh Service loads.
func checkReplayRebuildsState(rt *rapid.T, w *world) {
	streams := map[string]bool{}
	for e, err := range w.store.ReadAll(context.Background(), Position{}) {
		if err != nil {
			rt.Fatal(err)
		}
		streams[e.Stream] = true
	}
	fresh := NewService(w.store, w.keys, w.clock.Now)
	for stream := range streams {
		replayed := NewState(stream)
		for e, err := range w.store.ReadStream(context.Background(), stream, 0) {
			if err != nil {
				rt.Fatal(err)
			}
			p, err := DecodePayload(e.Type, e.Data)
			if err != nil {
				rt.Fatal(err)
			}
			replayed.Apply(p, e.OccurredAt)
		}
		w.svc.cache.mu.Lock()
		el, cached := w.svc.cache.m[stream]
		w.svc.cache.mu.Unlock()
		if cached {
			ent := el.Value.(*entry)
			ent.mu.Lock()
			diff := cmp.Diff(replayed, ent.state)
			ent.mu.Unlock()
			if diff != "" {
				rt.Fatalf("%s: replay differs from the decided state (-replayed +decided):\n%s", stream, diff)
			}
		}
		var loaded State
		if err := fresh.view(context.Background(), stream, func(s State) { loaded = s }); err != nil {
			rt.Fatal(err)
		}
		if diff := cmp.Diff(replayed, loaded); diff != "" {
			rt.Fatalf("%s: a fresh service loads a different state:\n%s", stream, diff)
		}
	}
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}
