package domain

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testNow = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// stateWith folds events into the empty state of stream's kind.
func stateWith(tb testing.TB, stream string, events ...Payload) State {
	tb.Helper()
	s := NewState(stream)
	for _, e := range events {
		s.Apply(e, testNow)
	}
	return s
}

func joined(id, role string) *MemberJoined {
	return &MemberJoined{MemberID: id, DisplayName: "Name " + id, Role: role, TeamID: "t-1", JoinedOn: "2024-01-10"}
}

func testFacts() Facts {
	return Facts{
		Now: testNow,
		Org: *NewOrgState(),
		Members: map[string]MemberFacts{
			"m-1":  {Joined: true, Role: "salesperson", TeamID: "t-1", JoinedOn: "2024-01-10", RoleSince: "2024-01-10"},
			"m-2":  {Joined: true, Role: "salesperson", TeamID: "t-1", JoinedOn: "2024-01-10", RoleSince: "2024-01-10"},
			"boss": {Joined: true, Role: "sales_supervisor", TeamID: "t-1", JoinedOn: "2020-01-01"},
			"rd":   {Joined: true, Role: "regional_director", TeamID: "t-0", JoinedOn: "2018-01-01"},
			"gone": {Joined: true, Left: true, LeftOn: "2025-05-01", Role: "salesperson"},
		},
		Teams: map[string]TeamFacts{
			"t-0": {Formed: true, Name: "Region", Department: "sales", Region: "Madrid"},
			"t-1": {Formed: true, Name: "One", Department: "sales", Region: "Madrid", ParentTeamID: "t-0"},
			"t-2": {Formed: true, Name: "Two", Department: "sales", Region: "Madrid", ParentTeamID: "t-0"},
		},
	}
}

type decideCase struct {
	name  string
	cmd   Command
	state State
	facts func(*Facts)
	want  error // nil: accepted
}

func runDecideCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := testFacts()
			if tc.facts != nil {
				tc.facts(&f)
			}
			evs, err := tc.cmd.Decide(tc.state, f)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decide: %v, want accepted", err)
				}
				if len(evs) == 0 {
					t.Fatal("accepted with no event")
				}
				for _, e := range evs {
					if _, _, err := EncodePayload(e); err != nil {
						t.Errorf("decided event does not encode: %v", err)
					}
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decide error = %v, want %v", err, tc.want)
			}
			if evs != nil {
				t.Errorf("refused but returned events %v", evs)
			}
		})
	}
}

func member(tb testing.TB, events ...Payload) State { return stateWith(tb, "member-m-1", events...) }

func TestDecideMembersAndTeams(t *testing.T) {
	active := func() State { return member(t, joined("m-1", "salesperson")) }
	left := func() State {
		return member(t, joined("m-1", "salesperson"), &MemberLeft{MemberID: "m-1", LeftOn: "2025-06-01", Reason: "x"})
	}
	empty := func() State { return member(t) }
	team := func() State { return stateWith(t, "team-t-9") }
	runDecideCases(t, []decideCase{
		{"team formed", FormTeam{TeamID: "t-9", Name: "Nine", Department: "sales", Region: "Sevilla", ParentTeamID: "t-0"}, team(), nil, nil},
		{"team formed twice is already exists", FormTeam{TeamID: "t-9", Name: "Nine", Department: "sales", Region: "Sevilla"},
			stateWith(t, "team-t-9", &TeamFormed{TeamID: "t-9"}), nil, ErrAlreadyExists},
		{"team with unknown department is invalid", FormTeam{TeamID: "t-9", Name: "Nine", Department: "hr", Region: "Sevilla"}, team(), nil, ErrInvalid},
		{"team with unknown parent is not found", FormTeam{TeamID: "t-9", Name: "Nine", Department: "sales", Region: "S", ParentTeamID: "t-404"}, team(), nil, ErrNotFound},
		{"team its own parent is a rule violation", FormTeam{TeamID: "t-9", Name: "Nine", Department: "sales", Region: "S", ParentTeamID: "t-9"}, team(), nil, ErrRuleViolated},

		{"member joins", JoinMember{MemberID: "m-1", DisplayName: "Ana", Role: "salesperson", TeamID: "t-1", JoinedOn: "2026-01-01"}, empty(), nil, nil},
		{"member joins twice is already exists", JoinMember{MemberID: "m-1", DisplayName: "Ana", Role: "salesperson", TeamID: "t-1", JoinedOn: "2026-01-01"}, active(), nil, ErrAlreadyExists},
		{"join with role off the ladder is invalid", JoinMember{MemberID: "m-1", DisplayName: "Ana", Role: "ceo", TeamID: "t-1", JoinedOn: "2026-01-01"}, empty(), nil, ErrInvalid},
		{"join to unknown team is not found", JoinMember{MemberID: "m-1", DisplayName: "Ana", Role: "salesperson", TeamID: "t-404", JoinedOn: "2026-01-01"}, empty(), nil, ErrNotFound},
		{"join with bad date is invalid", JoinMember{MemberID: "m-1", DisplayName: "Ana", Role: "salesperson", TeamID: "t-1", JoinedOn: "2026-13-01"}, empty(), nil, ErrInvalid},
		{"join without name is invalid", JoinMember{MemberID: "m-1", Role: "salesperson", TeamID: "t-1", JoinedOn: "2026-01-01"}, empty(), nil, ErrInvalid},

		{"transfer to existing team", TransferMember{MemberID: "m-1", ToTeamID: "t-2", EffectiveOn: "2026-02-01"}, active(), nil, nil},
		{"transfer to unknown team is not found", TransferMember{MemberID: "m-1", ToTeamID: "t-404", EffectiveOn: "2026-02-01"}, active(), nil, ErrNotFound},
		{"transfer to own team is a rule violation", TransferMember{MemberID: "m-1", ToTeamID: "t-1", EffectiveOn: "2026-02-01"}, active(), nil, ErrRuleViolated},
		{"transfer of unknown member is not found", TransferMember{MemberID: "m-1", ToTeamID: "t-2", EffectiveOn: "2026-02-01"}, empty(), nil, ErrNotFound},
		{"transfer of left member is a rule violation", TransferMember{MemberID: "m-1", ToTeamID: "t-2", EffectiveOn: "2026-02-01"}, left(), nil, ErrRuleViolated},
		{"transfer before joining is a rule violation", TransferMember{MemberID: "m-1", ToTeamID: "t-2", EffectiveOn: "2020-02-01"}, active(), nil, ErrRuleViolated},

		{"leave", RecordLeave{MemberID: "m-1", LeftOn: "2026-11-01", Reason: "new job"}, active(), nil, nil},
		{"leave twice is already exists", RecordLeave{MemberID: "m-1", LeftOn: "2026-11-01", Reason: "new job"}, left(), nil, ErrAlreadyExists},
		{"leave without reason is invalid", RecordLeave{MemberID: "m-1", LeftOn: "2026-11-01"}, active(), nil, ErrInvalid},

		{"profile", RecordProfile{MemberID: "m-1", Profile: Profile{Birthday: "1990-04-01", Hobbies: []string{"chess"}}}, active(), nil, nil},
		{"profile with bad birthday is invalid", RecordProfile{MemberID: "m-1", Profile: Profile{Birthday: "1990-02-30"}}, active(), nil, ErrInvalid},
		{"profile of forgotten member is a rule violation", RecordProfile{MemberID: "m-1"},
			member(t, joined("m-1", "salesperson"), &MemberForgotten{MemberID: "m-1"}), nil, ErrRuleViolated},
		{"forget", ForgetMember{MemberID: "m-1", RequestedBy: "hr-1", Reason: "request"}, left(), nil, nil},
		{"forget twice is already exists", ForgetMember{MemberID: "m-1", RequestedBy: "hr-1", Reason: "request"},
			member(t, joined("m-1", "salesperson"), &MemberForgotten{MemberID: "m-1"}), nil, ErrAlreadyExists},
		{"forget unknown member is not found", ForgetMember{MemberID: "m-1", RequestedBy: "hr-1", Reason: "request"}, empty(), nil, ErrNotFound},
	})
}

func TestDecideDailyWork(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	active := func() State {
		return member(t, joined("m-1", "salesperson"),
			&ActivityLogged{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 1},
			&ActivityLogged{ActivityID: "a-2", MemberID: "m-1", Kind: "call", Quantity: 1},
			&ActivityVoided{ActivityID: "a-2", MemberID: "m-1", Reason: "dup"},
			&SaleClosed{SaleID: "s-1", MemberID: "m-1", AmountMinor: 100, Currency: "EUR"},
			&SaleClosed{SaleID: "s-2", MemberID: "m-1", AmountMinor: 100, Currency: "EUR"},
			&SaleReversed{SaleID: "s-2", MemberID: "m-1", Reason: "x"})
	}
	left := func() State {
		return member(t, joined("m-1", "salesperson"),
			&ActivityLogged{ActivityID: "a-1", MemberID: "m-1", Kind: "visit", Quantity: 1},
			&MemberLeft{MemberID: "m-1", LeftOn: "2025-06-01", Reason: "x"})
	}
	act := func(mod func(*LogActivity)) LogActivity {
		c := LogActivity{ActivityID: "a-9", MemberID: "m-1", Kind: "visit", Quantity: 2, OccurredAt: at}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	sale := func(mod func(*CloseSale)) CloseSale {
		c := CloseSale{SaleID: "s-9", MemberID: "m-1", Customer: "ACME", AmountMinor: 500000, Currency: "EUR", OccurredAt: at}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runDecideCases(t, []decideCase{
		{"activity logged", act(nil), active(), nil, nil},
		{"activity at zero time is now", act(func(c *LogActivity) { c.OccurredAt = time.Time{} }), active(), nil, nil},
		{"activity with zero quantity is invalid", act(func(c *LogActivity) { c.Quantity = 0 }), active(), nil, ErrInvalid},
		{"activity with negative quantity is invalid", act(func(c *LogActivity) { c.Quantity = -3 }), active(), nil, ErrInvalid},
		{"activity of unknown kind is invalid", act(func(c *LogActivity) { c.Kind = "lunch" }), active(), nil, ErrInvalid},
		{"activity id reused is already exists", act(func(c *LogActivity) { c.ActivityID = "a-1" }), active(), nil, ErrAlreadyExists},
		{"activity in the future is invalid", act(func(c *LogActivity) { c.OccurredAt = testNow.Add(72 * time.Hour) }), active(), nil, ErrInvalid},
		{"activity before joining is a rule violation", act(func(c *LogActivity) { c.OccurredAt = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC) }), active(), nil, ErrRuleViolated},
		{"activity of member never joined is not found", act(nil), member(t), nil, ErrNotFound},
		{"activity of member who left is a rule violation", act(nil), left(), nil, ErrRuleViolated},

		{"sale closed", sale(nil), active(), nil, nil},
		{"sale of zero amount is invalid", sale(func(c *CloseSale) { c.AmountMinor = 0 }), active(), nil, ErrInvalid},
		{"sale of negative amount is invalid", sale(func(c *CloseSale) { c.AmountMinor = -1 }), active(), nil, ErrInvalid},
		{"sale in a non-ISO currency is invalid", sale(func(c *CloseSale) { c.Currency = "ABC" }), active(), nil, ErrInvalid},
		{"sale in lower-case currency is invalid", sale(func(c *CloseSale) { c.Currency = "eur" }), active(), nil, ErrInvalid},
		{"sale in another ISO currency is a rule violation", sale(func(c *CloseSale) { c.Currency = "USD" }), active(), nil, ErrRuleViolated},
		{"sale in a published rule set's currency", sale(func(c *CloseSale) { c.Currency = "USD" }), active(),
			func(f *Facts) { f.Org.Rules.Currency = "USD" }, nil},
		{"sale id reused is already exists", sale(func(c *CloseSale) { c.SaleID = "s-1" }), active(), nil, ErrAlreadyExists},
		{"sale of member who left is a rule violation", sale(nil), left(), nil, ErrRuleViolated},

		{"void activity", VoidActivity{MemberID: "m-1", ActivityID: "a-1", Reason: "typo"}, active(), nil, nil},
		{"void after the member left is a correction", VoidActivity{MemberID: "m-1", ActivityID: "a-1", Reason: "typo"}, left(), nil, nil},
		{"void voided activity is already exists", VoidActivity{MemberID: "m-1", ActivityID: "a-2", Reason: "typo"}, active(), nil, ErrAlreadyExists},
		{"void unknown activity is not found", VoidActivity{MemberID: "m-1", ActivityID: "a-404", Reason: "typo"}, active(), nil, ErrNotFound},
		{"void without reason is invalid", VoidActivity{MemberID: "m-1", ActivityID: "a-1"}, active(), nil, ErrInvalid},
		{"reverse sale", ReverseSale{MemberID: "m-1", SaleID: "s-1", Reason: "cancelled"}, active(), nil, nil},
		{"reverse reversed sale is already exists", ReverseSale{MemberID: "m-1", SaleID: "s-2", Reason: "cancelled"}, active(), nil, ErrAlreadyExists},
		{"reverse unknown sale is not found", ReverseSale{MemberID: "m-1", SaleID: "s-404", Reason: "cancelled"}, active(), nil, ErrNotFound},
	})
}

func TestDecideEvaluation(t *testing.T) {
	active := func() State { return member(t, joined("m-1", "salesperson")) }
	finalized := func() State {
		return member(t, joined("m-1", "salesperson"), &EvaluationFinalized{MemberID: "m-1", Month: "2026-10"})
	}
	fin := func(mod func(*FinalizeEvaluation)) FinalizeEvaluation {
		c := FinalizeEvaluation{MemberID: "m-1", Month: "2026-10", Components: EvaluationComponents{Objective: fxp("105"), Rollup: fxp("100.5425"), Manager: fxp("75")},
			Score: fx("100.217"), Band: 3, BandLabel: "meets", RulesVersion: 1, InputsDigest: "d", FinalizedBy: "boss"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runDecideCases(t, []decideCase{
		{"quality for a week", AssessQuality{MemberID: "m-1", Week: "2026-W47", Rating: 4, AssessorID: "boss"}, active(), nil, nil},
		{"quality for a day", AssessQuality{MemberID: "m-1", Day: "2026-11-20", Rating: 1, AssessorID: "boss"}, active(), nil, nil},
		{"quality rating 0 is invalid", AssessQuality{MemberID: "m-1", Week: "2026-W47", Rating: 0, AssessorID: "boss"}, active(), nil, ErrInvalid},
		{"quality rating 6 is invalid", AssessQuality{MemberID: "m-1", Week: "2026-W47", Rating: 6, AssessorID: "boss"}, active(), nil, ErrInvalid},
		{"quality with week 54 is invalid", AssessQuality{MemberID: "m-1", Week: "2026-W54", Rating: 3, AssessorID: "boss"}, active(), nil, ErrInvalid},
		{"quality with a month as week is invalid", AssessQuality{MemberID: "m-1", Week: "2026-11", Rating: 3, AssessorID: "boss"}, active(), nil, ErrInvalid},
		{"quality with week and day is invalid", AssessQuality{MemberID: "m-1", Week: "2026-W47", Day: "2026-11-20", Rating: 3, AssessorID: "boss"}, active(), nil, ErrInvalid},
		{"quality of oneself is forbidden", AssessQuality{MemberID: "m-1", Week: "2026-W47", Rating: 5, AssessorID: "m-1"}, active(), nil, ErrForbidden},
		{"quality by unknown assessor is not found", AssessQuality{MemberID: "m-1", Week: "2026-W47", Rating: 5, AssessorID: "nobody"}, active(), nil, ErrNotFound},
		{"manager rating", RecordManagerRating{MemberID: "m-1", Month: "2026-11", Rating: 4, RaterID: "boss"}, active(), nil, nil},
		{"manager rating with a quarter is invalid", RecordManagerRating{MemberID: "m-1", Month: "2026-Q4", Rating: 4, RaterID: "boss"}, active(), nil, ErrInvalid},
		{"manager rating of oneself is forbidden", RecordManagerRating{MemberID: "m-1", Month: "2026-11", Rating: 4, RaterID: "m-1"}, active(), nil, ErrForbidden},

		{"evaluation finalized after the month", fin(nil), active(), nil, nil},
		{"evaluation finalized twice is already exists", fin(nil), finalized(), nil, ErrAlreadyExists},
		{"evaluation of another month after one finalized", fin(func(c *FinalizeEvaluation) { c.Month = "2026-09" }), finalized(), nil, nil},
		{"evaluation of the current month is a rule violation", fin(func(c *FinalizeEvaluation) { c.Month = "2026-11" }), active(), nil, ErrRuleViolated},
		{"evaluation on the first instant after the month", fin(func(c *FinalizeEvaluation) { c.Month = "2026-10" }), active(),
			func(f *Facts) { f.Now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC) }, nil},
		{"evaluation one nanosecond before the month ends is a rule violation", fin(nil), active(),
			func(f *Facts) { f.Now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(-1) }, ErrRuleViolated},
		{"evaluation with a week is invalid", fin(func(c *FinalizeEvaluation) { c.Month = "2026-W40" }), active(), nil, ErrInvalid},
		{"evaluation with band 6 is invalid", fin(func(c *FinalizeEvaluation) { c.Band = 6 }), active(), nil, ErrInvalid},
		{"evaluation with no component is invalid", fin(func(c *FinalizeEvaluation) { c.Components = EvaluationComponents{} }), active(), nil, ErrInvalid},
		{"evaluation finalized by the member is forbidden", fin(func(c *FinalizeEvaluation) { c.FinalizedBy = "m-1" }), active(), nil, ErrForbidden},
		{"evaluation of a month before joining is a rule violation", fin(func(c *FinalizeEvaluation) { c.Month = "2023-05" }), active(), nil, ErrRuleViolated},
		{"evaluation of the month the member left in", fin(func(c *FinalizeEvaluation) { c.Month = "2025-06" }),
			member(t, joined("m-1", "salesperson"), &MemberLeft{MemberID: "m-1", LeftOn: "2025-06-15", Reason: "x"}), nil, nil},
		{"evaluation of a month after leaving is a rule violation", fin(func(c *FinalizeEvaluation) { c.Month = "2025-07" }),
			member(t, joined("m-1", "salesperson"), &MemberLeft{MemberID: "m-1", LeftOn: "2025-06-15", Reason: "x"}), nil, ErrRuleViolated},
	})
}

func TestDecideRecognitionAndRewards(t *testing.T) {
	active := func() State {
		return member(t, joined("m-1", "salesperson"),
			&RewardGranted{RewardID: "r-1", MemberID: "m-1", Kind: "goal_bonus", AmountMinor: 1000, Currency: "EUR"},
			&RewardGranted{RewardID: "r-2", MemberID: "m-1", Kind: "badge"},
			&RewardGranted{RewardID: "r-3", MemberID: "m-1", Kind: "spot_award", AmountMinor: 500, Currency: "EUR"},
			&RewardRevoked{RewardID: "r-3", MemberID: "m-1", AmountMinor: 500})
	}
	team := func() State { return stateWith(t, "team-t-1", &TeamFormed{TeamID: "t-1"}) }
	grant := func(mod func(*GrantReward)) GrantReward {
		c := GrantReward{RewardID: "r-9", MemberID: "m-1", Kind: "goal_bonus", AmountMinor: 107500, Currency: "EUR", Reason: "goal", GrantedBy: "policy:goal-bonus"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runDecideCases(t, []decideCase{
		{"praise", GivePraise{FromID: "m-2", ToID: "m-1", Reason: "great demo"}, active(), nil, nil},
		{"praise of oneself is a rule violation", GivePraise{FromID: "m-1", ToID: "m-1", Reason: "me"}, active(), nil, ErrRuleViolated},
		{"praise from a member who left is a rule violation", GivePraise{FromID: "gone", ToID: "m-1", Reason: "x"}, active(), nil, ErrRuleViolated},
		{"achievement of a member", PublicizeAchievement{SubjectKind: "member", SubjectID: "m-1", Headline: "Top seller", Audience: "company"}, active(), nil, nil},
		{"achievement of a team", PublicizeAchievement{SubjectKind: "team", SubjectID: "t-1", Headline: "Top team", Audience: "region"}, team(), nil, nil},
		{"achievement with unknown audience is invalid", PublicizeAchievement{SubjectKind: "member", SubjectID: "m-1", Headline: "x", Audience: "world"}, active(), nil, ErrInvalid},

		{"goal bonus granted", grant(nil), active(), nil, nil},
		{"badge granted", grant(func(c *GrantReward) { c.Kind, c.AmountMinor, c.Currency = "badge", 0, "" }), active(), nil, nil},
		{"badge with money is invalid", grant(func(c *GrantReward) { c.Kind = "badge" }), active(), nil, ErrInvalid},
		{"bonus without amount is invalid", grant(func(c *GrantReward) { c.AmountMinor = 0 }), active(), nil, ErrInvalid},
		{"bonus in another currency is a rule violation", grant(func(c *GrantReward) { c.Currency = "GBP" }), active(), nil, ErrRuleViolated},
		{"reward of unknown kind is invalid", grant(func(c *GrantReward) { c.Kind = "car" }), active(), nil, ErrInvalid},
		{"reward id reused is already exists", grant(func(c *GrantReward) { c.RewardID = "r-1" }), active(), nil, ErrAlreadyExists},
		{"clawback under a new revocation id", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: RevokeClawback, AmountMinor: 100, RevocationID: "clawback:s-2"},
			active(), nil, nil},
		{"clawback repeated under the same revocation id is already exists", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: RevokeClawback, AmountMinor: 100, RevocationID: "clawback:s-1"},
			member(t, joined("m-1", "salesperson"),
				&RewardGranted{RewardID: "r-1", MemberID: "m-1", Kind: "goal_bonus", AmountMinor: 1000, Currency: "EUR"},
				&RewardRevoked{RewardID: "r-1", MemberID: "m-1", Reason: RevokeClawback, AmountMinor: 100, RevocationID: "clawback:s-1"}), nil, ErrAlreadyExists},
		{"reward to oneself is forbidden", grant(func(c *GrantReward) { c.GrantedBy = "m-1" }), active(), nil, ErrForbidden},

		{"revoke part of a bonus", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: "clawback", AmountMinor: 300}, active(), nil, nil},
		{"revoke all of a bonus", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: "correction"}, active(), nil, nil},
		{"revoke more than granted is a rule violation", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: "clawback", AmountMinor: 1001}, active(), nil, ErrRuleViolated},
		{"revoke a fully revoked reward is already exists", RevokeReward{MemberID: "m-1", RewardID: "r-3", Reason: "correction"}, active(), nil, ErrAlreadyExists},
		{"revoke a badge", RevokeReward{MemberID: "m-1", RewardID: "r-2", Reason: "correction"}, active(), nil, nil},
		{"revoke money from a badge is invalid", RevokeReward{MemberID: "m-1", RewardID: "r-2", Reason: "correction", AmountMinor: 5}, active(), nil, ErrInvalid},
		{"revoke unknown reward is not found", RevokeReward{MemberID: "m-1", RewardID: "r-404", Reason: "correction"}, active(), nil, ErrNotFound},
		{"revoke with unknown reason is invalid", RevokeReward{MemberID: "m-1", RewardID: "r-1", Reason: "mood"}, active(), nil, ErrInvalid},
	})
}

func TestDecideOrgTargetsMeetingsSuggestions(t *testing.T) {
	org := func() State { return stateWith(t, OrgStream()) }
	rules := func(mod func(*ScoringRulesPublished)) PublishScoringRules {
		r := DefaultScoringRules()
		r.Version = 2
		r.EffectiveFrom = "2027-01-01"
		if mod != nil {
			mod(&r)
		}
		return PublishScoringRules{Rules: r}
	}
	target := func() State { return stateWith(t, "target-g-1") }
	setTarget := func() State {
		return stateWith(t, "target-g-1", &TargetSet{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-11", Value: fx("80000")})
	}
	team := func() State {
		return stateWith(t, "team-t-1", &TeamFormed{TeamID: "t-1"}, &MeetingHeld{MeetingID: "mt-1"})
	}
	sugg := func() State {
		return stateWith(t, "suggestion-sg-1", &SuggestionSubmitted{SuggestionID: "sg-1", AuthorID: "m-1"})
	}
	runDecideCases(t, []decideCase{
		{"ladder replaced", DefineRoleLadder{Roles: []string{"junior", "senior", "lead"}}, org(), nil, nil},
		{"ladder with one role is invalid", DefineRoleLadder{Roles: []string{"solo"}}, org(), nil, ErrInvalid},
		{"ladder with a repeated role is invalid", DefineRoleLadder{Roles: []string{"a", "b", "a"}}, org(), nil, ErrInvalid},
		{"rules v2 published", rules(nil), org(), nil, nil},
		{"rules v1 again is a rule violation", rules(func(r *ScoringRulesPublished) { r.Version = 1 }), org(), nil, ErrRuleViolated},
		{"rules with weights not adding to 1 are invalid", rules(func(r *ScoringRulesPublished) { r.KPIs[0].Weight = fx("0.3") }), org(), nil, ErrInvalid},
		{"rules with a bad currency are invalid", rules(func(r *ScoringRulesPublished) { r.Currency = "EURO" }), org(), nil, ErrInvalid},
		{"rules with alpha above 1 are invalid", rules(func(r *ScoringRulesPublished) { r.Alpha = fx("1.1") }), org(), nil, ErrInvalid},
		{"rules with unordered bands are invalid", rules(func(r *ScoringRulesPublished) { r.Bands[0], r.Bands[1] = r.Bands[1], r.Bands[0] }), org(), nil, ErrInvalid},
		{"rules with unknown direction are invalid", rules(func(r *ScoringRulesPublished) { r.KPIs[0].Direction = "up" }), org(), nil, ErrInvalid},

		{"target for a member", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-11", Value: fx("80000")}, target(), nil, nil},
		{"target for a team", SetTarget{TargetID: "g-1", SubjectKind: "team", SubjectID: "t-1", KPI: "visits", Period: "2026-W47", Value: fx("100")}, target(), nil, nil},
		{"target for a year", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "calls", Period: "2026", Value: fx("3000")}, target(), nil, nil},
		{"target with a bad period is invalid", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-13", Value: fx("1")}, target(), nil, ErrInvalid},
		{"target with a loose period is invalid", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-W7", Value: fx("1")}, target(), nil, ErrInvalid},
		{"target with unknown KPI is invalid", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "smiles", Period: "2026-11", Value: fx("1")}, target(), nil, ErrInvalid},
		{"target of zero is invalid", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-11", Value: 0}, target(), nil, ErrInvalid},
		{"target for unknown team is not found", SetTarget{TargetID: "g-1", SubjectKind: "team", SubjectID: "t-404", KPI: "revenue", Period: "2026-11", Value: fx("1")}, target(), nil, ErrNotFound},
		{"target for a member who left is a rule violation", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "gone", KPI: "revenue", Period: "2026-11", Value: fx("1")}, target(), nil, ErrRuleViolated},
		{"target set twice is already exists", SetTarget{TargetID: "g-1", SubjectKind: "member", SubjectID: "m-1", KPI: "revenue", Period: "2026-11", Value: fx("1")}, setTarget(), nil, ErrAlreadyExists},
		{"target revised", ReviseTarget{TargetID: "g-1", NewValue: fx("70000"), Reason: "slow market", ApprovedBy: "rd"}, setTarget(), nil, nil},
		{"revise unknown target is not found", ReviseTarget{TargetID: "g-1", NewValue: fx("70000"), Reason: "x", ApprovedBy: "rd"}, target(), nil, ErrNotFound},
		{"revise to the same value is a rule violation", ReviseTarget{TargetID: "g-1", NewValue: fx("80000"), Reason: "x", ApprovedBy: "rd"}, setTarget(), nil, ErrRuleViolated},

		{"meeting held", HoldMeeting{MeetingID: "mt-2", TeamID: "t-1", Kind: "guidance", ChairID: "boss", AttendeeIDs: []string{"m-1", "m-2"}}, team(), nil, nil},
		{"meeting id reused is already exists", HoldMeeting{MeetingID: "mt-1", TeamID: "t-1", Kind: "guidance", ChairID: "boss", AttendeeIDs: []string{"m-1"}}, team(), nil, ErrAlreadyExists},
		{"meeting with a departed attendee is a rule violation", HoldMeeting{MeetingID: "mt-2", TeamID: "t-1", Kind: "guidance", ChairID: "boss", AttendeeIDs: []string{"gone"}}, team(), nil, ErrRuleViolated},
		{"meeting of unknown kind is invalid", HoldMeeting{MeetingID: "mt-2", TeamID: "t-1", Kind: "party", ChairID: "boss", AttendeeIDs: []string{"m-1"}}, team(), nil, ErrInvalid},
		{"meeting of unknown team is not found", HoldMeeting{MeetingID: "mt-2", TeamID: "t-9", Kind: "guidance", ChairID: "boss", AttendeeIDs: []string{"m-1"}}, stateWith(t, "team-t-9"), nil, ErrNotFound},

		{"suggestion submitted", SubmitSuggestion{SuggestionID: "sg-2", AuthorID: "m-1", Title: "t", Body: "b"}, stateWith(t, "suggestion-sg-2"), nil, nil},
		{"suggestion submitted twice is already exists", SubmitSuggestion{SuggestionID: "sg-1", AuthorID: "m-1", Title: "t", Body: "b"}, sugg(), nil, ErrAlreadyExists},
		{"suggestion adopted", ReviewSuggestion{SuggestionID: "sg-1", ReviewerID: "boss", Decision: "adopt", Rationale: "good"}, sugg(), nil, nil},
		{"suggestion reviewed by its author is forbidden", ReviewSuggestion{SuggestionID: "sg-1", ReviewerID: "m-1", Decision: "adopt", Rationale: "mine"}, sugg(), nil, ErrForbidden},
		{"suggestion with unknown decision is invalid", ReviewSuggestion{SuggestionID: "sg-1", ReviewerID: "boss", Decision: "maybe", Rationale: "x"}, sugg(), nil, ErrInvalid},
		{"suggestion reviewed twice is already exists", ReviewSuggestion{SuggestionID: "sg-1", ReviewerID: "boss", Decision: "adopt", Rationale: "x"},
			stateWith(t, "suggestion-sg-1", &SuggestionSubmitted{SuggestionID: "sg-1", AuthorID: "m-1"}, &SuggestionReviewed{SuggestionID: "sg-1", Decision: "reject"}), nil, ErrAlreadyExists},
		{"review of unknown suggestion is not found", ReviewSuggestion{SuggestionID: "sg-9", ReviewerID: "boss", Decision: "adopt", Rationale: "x"}, stateWith(t, "suggestion-sg-9"), nil, ErrNotFound},
	})
}

func TestDecidePromotions(t *testing.T) {
	nominated := &PromotionNominated{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor",
		NominatedBy: "boss", Justification: "x", ProposedEffectiveOn: "2026-11-01"}
	open := func(extra ...Payload) State {
		return stateWith(t, "promotion-p-1", append([]Payload{nominated}, extra...)...)
	}
	eligible := &PromotionEligibilityEvaluated{PromotionID: "p-1", Eligible: true, Criteria: []Criterion{{Code: "E1", Passed: true}}}
	ineligible := &PromotionEligibilityEvaluated{PromotionID: "p-1", Eligible: false, Criteria: []Criterion{{Code: "E1", Passed: false}}}
	approvedFacts := func(f *Facts) {
		f.Promotions = map[string]PromotionState{"p-1": {PromotionID: "p-1", Nominated: true, MemberID: "m-1", FromRole: "salesperson",
			ToRole: "sales_supervisor", NominatedBy: "boss", ProposedEffectiveOn: "2026-11-01", Evaluated: true, Eligible: true,
			Status: PromotionStatusApproved, ApproverID: "hr-1", DecidedOn: "2026-10-20"}}
	}
	withStatus := func(status string) func(*Facts) {
		return func(f *Facts) {
			approvedFacts(f)
			p := f.Promotions["p-1"]
			p.Status = status
			f.Promotions["p-1"] = p
		}
	}
	memberSt := func(extra ...Payload) State {
		return member(t, append([]Payload{joined("m-1", "salesperson")}, extra...)...)
	}
	nominate := func(mod func(*NominatePromotion)) NominatePromotion {
		c := NominatePromotion{PromotionID: "p-1", MemberID: "m-1", ToRole: "sales_supervisor", NominatedBy: "boss",
			Justification: "leads well", ProposedEffectiveOn: "2027-01-01"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	runDecideCases(t, []decideCase{
		{"nomination by a supervisor", nominate(nil), stateWith(t, "promotion-p-1"), nil, nil},
		{"nomination two steps up", nominate(func(c *NominatePromotion) { c.ToRole, c.NominatedBy = "regional_director", "rd" }), stateWith(t, "promotion-p-1"), nil, nil},
		{"nomination of oneself is forbidden", nominate(func(c *NominatePromotion) { c.NominatedBy = "m-1" }), stateWith(t, "promotion-p-1"), nil, ErrForbidden},
		{"nomination by a peer is forbidden", nominate(func(c *NominatePromotion) { c.NominatedBy = "m-2" }), stateWith(t, "promotion-p-1"), nil, ErrForbidden},
		{"nomination of a supervisor by a supervisor is forbidden", nominate(func(c *NominatePromotion) { c.MemberID, c.NominatedBy, c.ToRole = "boss", "boss", "regional_director" }),
			stateWith(t, "promotion-p-1"), func(f *Facts) { f.Members["boss2"] = f.Members["boss"] }, ErrForbidden},
		{"nomination sideways is a rule violation", nominate(func(c *NominatePromotion) { c.ToRole = "salesperson" }), stateWith(t, "promotion-p-1"), nil, ErrRuleViolated},
		{"nomination downward is a rule violation", nominate(func(c *NominatePromotion) { c.ToRole = "sales_assistant" }), stateWith(t, "promotion-p-1"), nil, ErrRuleViolated},
		{"nomination to a role off the ladder is invalid", nominate(func(c *NominatePromotion) { c.ToRole = "king" }), stateWith(t, "promotion-p-1"), nil, ErrInvalid},
		{"nomination follows a redefined ladder", nominate(func(c *NominatePromotion) { c.ToRole = "sales_assistant" }), stateWith(t, "promotion-p-1"),
			func(f *Facts) {
				f.Org.Roles = []string{"salesperson", "sales_assistant", "sales_supervisor"}
			}, nil},
		{"nomination of a member who left is a rule violation", nominate(func(c *NominatePromotion) { c.MemberID = "gone" }), stateWith(t, "promotion-p-1"), nil, ErrRuleViolated},
		{"nomination twice is already exists", nominate(nil), open(), nil, ErrAlreadyExists},

		{"eligibility recorded", RecordEligibility{PromotionID: "p-1", RulesVersion: 1, Criteria: []Criterion{{Code: "E1", Passed: true}}, Eligible: true}, open(), nil, nil},
		{"eligibility inconsistent is invalid", RecordEligibility{PromotionID: "p-1", RulesVersion: 1, Criteria: []Criterion{{Code: "E1", Passed: false}}, Eligible: true}, open(), nil, ErrInvalid},
		{"eligibility with no rule for the transition", RecordEligibility{PromotionID: "p-1", RulesVersion: 1, Eligible: false}, open(), nil, nil},
		{"eligibility of unknown promotion is not found", RecordEligibility{PromotionID: "p-1", RulesVersion: 1}, stateWith(t, "promotion-p-1"), nil, ErrNotFound},

		{"approval of an eligible nomination", ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(eligible), nil, nil},
		{"approval before evaluation is a rule violation", ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(), nil, ErrRuleViolated},
		{"approval of an ineligible nomination without justification is a rule violation", ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(ineligible), nil, ErrRuleViolated},
		{"approval of an ineligible nomination with justification", ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR, ExceptionJustification: "vacancy"}, open(ineligible), nil, nil},
		{"approval by the nominator is forbidden", ApprovePromotion{PromotionID: "p-1", ApproverID: "boss", ApproverRole: RoleHR}, open(eligible), nil, ErrForbidden},
		{"approval by the member is forbidden", ApprovePromotion{PromotionID: "p-1", ApproverID: "m-1", ApproverRole: RoleHR}, open(eligible), nil, ErrForbidden},
		{"approval by a non-HR principal is forbidden", ApprovePromotion{PromotionID: "p-1", ApproverID: "rd", ApproverRole: "manager"}, open(eligible), nil, ErrForbidden},
		{"approval twice is already exists", ApprovePromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(eligible, &PromotionApproved{PromotionID: "p-1"}), nil, ErrAlreadyExists},
		{"rejection", RejectPromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(), nil, nil},
		{"rejection by the nominator is forbidden", RejectPromotion{PromotionID: "p-1", ApproverID: "boss", ApproverRole: RoleHR}, open(), nil, ErrForbidden},
		{"rejection after approval is already exists", RejectPromotion{PromotionID: "p-1", ApproverID: "hr-1", ApproverRole: RoleHR}, open(eligible, &PromotionApproved{PromotionID: "p-1"}), nil, ErrAlreadyExists},

		{"effected on its date", EffectPromotion{PromotionID: "p-1"}, memberSt(), approvedFacts, nil},
		{"effected before approval is a rule violation", EffectPromotion{PromotionID: "p-1"}, memberSt(), withStatus(PromotionStatusOpen), ErrRuleViolated},
		{"effected after rejection is a rule violation", EffectPromotion{PromotionID: "p-1"}, memberSt(), withStatus(PromotionStatusRejected), ErrRuleViolated},
		{"effected with a date before the approval is a rule violation", EffectPromotion{PromotionID: "p-1", EffectiveOn: "2026-10-01"}, memberSt(), approvedFacts, ErrRuleViolated},
		{"effected before its effective date is a rule violation", EffectPromotion{PromotionID: "p-1", EffectiveOn: "2026-12-01"}, memberSt(), approvedFacts, ErrRuleViolated},
		{"effected twice is already exists", EffectPromotion{PromotionID: "p-1"},
			memberSt(&PromotionEffected{PromotionID: "p-1", FromRole: "salesperson", ToRole: "sales_supervisor", EffectiveOn: "2026-11-01"}), approvedFacts, ErrAlreadyExists},
		{"effected after rescission is a rule violation", EffectPromotion{PromotionID: "p-1"},
			memberSt(&PromotionRescinded{PromotionID: "p-1", FromRole: "salesperson", ToRole: "sales_supervisor"}), approvedFacts, ErrRuleViolated},
		{"effected when the role changed meanwhile is a rule violation", EffectPromotion{PromotionID: "p-1"},
			member(t, joined("m-1", "customer_service")), approvedFacts, ErrRuleViolated},
		{"effect of unknown promotion is not found", EffectPromotion{PromotionID: "p-1"}, memberSt(), nil, ErrNotFound},

		{"rescission by HR", RescindPromotion{PromotionID: "p-1", Reason: "records error", ApprovedBy: "hr-2", ApproverRole: RoleHR}, memberSt(), approvedFacts, nil},
		{"rescission without HR is forbidden", RescindPromotion{PromotionID: "p-1", Reason: "x", ApprovedBy: "rd", ApproverRole: "manager"}, memberSt(), approvedFacts, ErrForbidden},
		{"rescission by the nominator is forbidden", RescindPromotion{PromotionID: "p-1", Reason: "x", ApprovedBy: "boss", ApproverRole: RoleHR}, memberSt(), approvedFacts, ErrForbidden},
		{"rescission of an open nomination is a rule violation", RescindPromotion{PromotionID: "p-1", Reason: "x", ApprovedBy: "hr-2", ApproverRole: RoleHR}, memberSt(), withStatus(PromotionStatusOpen), ErrRuleViolated},
		{"rescission twice is already exists", RescindPromotion{PromotionID: "p-1", Reason: "x", ApprovedBy: "hr-2", ApproverRole: RoleHR},
			memberSt(&PromotionRescinded{PromotionID: "p-1"}), approvedFacts, ErrAlreadyExists},
	})
}

func TestRescissionRestoresTheFormerRole(t *testing.T) {
	s := NewMemberState()
	for _, e := range []Payload{
		joined("m-1", "salesperson"),
		&PromotionEffected{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor", EffectiveOn: "2026-11-01"},
	} {
		s.Apply(e, testNow)
	}
	if s.Role != "sales_supervisor" || s.RoleSince != "2026-11-01" {
		t.Fatalf("after effect: role %q since %q", s.Role, s.RoleSince)
	}
	s.Apply(&PromotionRescinded{PromotionID: "p-1", MemberID: "m-1", FromRole: "salesperson", ToRole: "sales_supervisor"}, testNow)
	if diff := cmp.Diff("salesperson", s.Role); diff != "" {
		t.Errorf("role after rescission (-want +got):\n%s", diff)
	}
}

func TestDecideRefusesTheWrongStateKind(t *testing.T) {
	_, err := LogActivity{MemberID: "m-1"}.Decide(NewState("team-t-1"), testFacts())
	if err == nil {
		t.Fatal("LogActivity decided on a team state")
	}
}
