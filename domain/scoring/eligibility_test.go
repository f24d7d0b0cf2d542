package scoring_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// atBoundary returns what a nominee observes when every criterion of the
// rule is met exactly at its threshold.
func atBoundary(tb testing.TB, rule scoring.EligibilityRule) scoring.Observed {
	tb.Helper()
	since := time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC)
	evals := make([]domain.Fixed, rule.Evaluations)
	for i := range evals {
		evals[i] = rule.MinMeanEvaluation
	}
	target := int64(480_000) // major units
	revenue := target * scoring.MinorPerMajor * int64(rule.MinRevenueAttainment) / domain.FixedScale
	o := scoring.Observed{
		RoleSince:   since,
		EffectiveOn: since.AddDate(0, rule.MinMonthsInRole, 0),
		Evaluations: evals,
	}
	if rule.TeamRevenue {
		o.TeamRevenue, o.TeamRevenueTarget = revenue, domain.FixedFromInt(target)
	} else {
		o.Revenue, o.RevenueTarget = revenue, domain.FixedFromInt(target)
	}
	if rule.MinCulture != nil {
		o.AdoptedSuggestions = *rule.MinCulture / 2
		o.ExperienceSharingChaired = *rule.MinCulture - o.AdoptedSuggestions
	}
	return o
}

func failed(cs []scoring.Criterion) []string {
	var out []string
	for _, c := range cs {
		if !c.Passed {
			out = append(out, c.Code)
		}
	}
	return out
}

func TestEligibilityBoundaries(t *testing.T) {
	rules := scoring.DefaultEligibility()
	tick := domain.Fixed(1) // 0.0001
	for _, rule := range rules.Rules {
		tr := rule.Transition
		cases := []struct {
			name   string
			mutate func(*scoring.Observed)
			failed []string
		}{
			{"passes_at_every_threshold", func(*scoring.Observed) {}, nil},
			{"fails_E1_one_day_short", func(o *scoring.Observed) { o.EffectiveOn = o.EffectiveOn.AddDate(0, 0, -1) }, []string{"E1"}},
			{"fails_E1_without_role_start", func(o *scoring.Observed) { o.RoleSince = time.Time{} }, []string{"E1"}},
			{"fails_E2_mean_just_below", func(o *scoring.Observed) { o.Evaluations[len(o.Evaluations)-1] -= tick }, []string{"E2"}},
			{"fails_E2_with_too_few_evaluations", func(o *scoring.Observed) { o.Evaluations = o.Evaluations[1:] }, []string{"E2"}},
			{"passes_E2_ignoring_older_evaluations", func(o *scoring.Observed) {
				o.Evaluations = append([]domain.Fixed{0, 0}, o.Evaluations...)
			}, nil},
			{"fails_E3_one_cent_short", func(o *scoring.Observed) {
				if rule.TeamRevenue {
					o.TeamRevenue--
				} else {
					o.Revenue--
				}
			}, []string{"E3"}},
			{"fails_E3_without_target", func(o *scoring.Observed) { o.RevenueTarget, o.TeamRevenueTarget = 0, 0 }, []string{"E3"}},
		}
		if rule.EvaluationFloor != nil {
			floor := *rule.EvaluationFloor
			lift := func(o *scoring.Observed, low domain.Fixed) {
				// One evaluation at low, the others raised so the mean still passes.
				n := len(o.Evaluations)
				o.Evaluations[0] = low
				for i := 1; i < n; i++ {
					o.Evaluations[i] = rule.MinMeanEvaluation + (rule.MinMeanEvaluation-low)/domain.Fixed(n-1) + tick
				}
			}
			cases = append(cases,
				struct {
					name   string
					mutate func(*scoring.Observed)
					failed []string
				}{"passes_E2_with_one_at_the_floor", func(o *scoring.Observed) { lift(o, floor) }, nil},
				struct {
					name   string
					mutate func(*scoring.Observed)
					failed []string
				}{"fails_E2_with_one_below_the_floor", func(o *scoring.Observed) { lift(o, floor-tick) }, []string{"E2"}},
			)
		}
		if rule.MinCulture != nil {
			cases = append(cases, struct {
				name   string
				mutate func(*scoring.Observed)
				failed []string
			}{"fails_E4_one_short", func(o *scoring.Observed) { o.ExperienceSharingChaired-- }, []string{"E4"}})
		}
		if rule.TeamRevenue {
			cases = append(cases, struct {
				name   string
				mutate func(*scoring.Observed)
				failed []string
			}{"passes_E3_on_team_revenue_alone", func(o *scoring.Observed) { o.Revenue, o.RevenueTarget = 0, domain.FixedFromInt(1) }, nil})
		}
		for _, tc := range cases {
			t.Run(tr.From+"_to_"+tr.To+"/"+tc.name, func(t *testing.T) {
				o := atBoundary(t, rule)
				tc.mutate(&o)
				cs, eligible := scoring.Evaluate(rules, tr, o)
				if diff := cmp.Diff(tc.failed, failed(cs)); diff != "" {
					t.Errorf("failed criteria (-want +got):\n%s\n%+v", diff, cs)
				}
				if eligible != (len(tc.failed) == 0) {
					t.Errorf("eligible = %v with failed %v", eligible, failed(cs))
				}
				for _, c := range cs {
					if c.Passed != (c.ObservedValue >= c.RequiredValue) && c.Code != "E2" {
						t.Errorf("%s: exact values %s vs %s disagree with passed=%v", c.Code, c.ObservedValue, c.RequiredValue, c.Passed)
					}
				}
			})
		}
	}
}

func TestEligibilityRecordsReadableAndExactValues(t *testing.T) {
	rules := scoring.DefaultEligibility()
	tr := scoring.Transition{From: scoring.RoleSalesperson, To: scoring.RoleSalesSupervisor}
	o := scoring.Observed{
		RoleSince:                time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		EffectiveOn:              time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Evaluations:              []domain.Fixed{fx(t, "101"), fx(t, "99.9999"), fx(t, "104"), fx(t, "89.9999"), fx(t, "110"), fx(t, "105.5"), fx(t, "100.217")},
		Revenue:                  95_999_999,
		RevenueTarget:            fx(t, "960000"),
		AdoptedSuggestions:       1,
		ExperienceSharingChaired: 0,
	}
	got, eligible := scoring.Evaluate(rules, tr, o)
	want := []scoring.Criterion{
		{
			Code: "E1", Description: "time in current role at the effective date",
			Required: "≥ 12 months as salesperson", Observed: "21 months (in role since 2025-03-01, effective 2026-12-01)",
			RequiredValue: fx(t, "12"), ObservedValue: fx(t, "21"), Passed: true,
		},
		{
			Code: "E2", Description: "mean of the last finalized monthly evaluations",
			Required: "mean of the last 6 evaluations ≥ 100.00, none < 90.00",
			Observed: "mean 101.61 of 6 evaluations, lowest 89.99",
			// (99.9999 + 104 + 89.9999 + 110 + 105.5 + 100.217) / 6 = 101.61946…, rounded down.
			RequiredValue: fx(t, "100"), ObservedValue: fx(t, "101.6194"), Passed: false,
		},
		{
			Code: "E3", Description: "own revenue attainment over the trailing 12 months",
			Required: "own revenue attainment ≥ 100.00 %", Observed: "99.99 % (959999.99 of 960000.00)",
			RequiredValue: fx(t, "1"), ObservedValue: fx(t, "0.9999"), Passed: false,
		},
		{
			Code: "E4", Description: "adopted suggestions + experience-sharing meetings chaired in 12 months",
			Required: "≥ 1", Observed: "1 (1 suggestion adopted, 0 meetings chaired)",
			RequiredValue: fx(t, "1"), ObservedValue: fx(t, "1"), Passed: true,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("criteria (-want +got):\n%s", diff)
	}
	if eligible {
		t.Error("eligible = true with failed criteria")
	}
}

func TestEligibilityWithoutRule(t *testing.T) {
	for _, tr := range []scoring.Transition{
		{From: scoring.RoleSalesAssistant, To: scoring.RoleCustomerService},
		{From: scoring.RoleSalesperson, To: scoring.RoleSalesAssistant},
		{From: "astronaut", To: scoring.RoleGeneralManager},
	} {
		t.Run(tr.From+"_to_"+tr.To+"_is_ineligible_with_reason", func(t *testing.T) {
			got, eligible := scoring.Evaluate(scoring.DefaultEligibility(), tr, scoring.Observed{})
			want := []scoring.Criterion{{
				Code:        scoring.CodeNoRule,
				Description: "a promotion rule for this transition",
				Required:    "a rule for " + tr.From + " → " + tr.To,
				Observed:    "no rule for this transition in eligibility rules v1",
			}}
			if diff := cmp.Diff(want, got); diff != "" || eligible {
				t.Errorf("eligible = %v, criteria (-want +got):\n%s", eligible, diff)
			}
		})
	}
}

func TestMonthsBetween(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name      string
		since, at time.Time
		want      int
	}{
		{"same_day_next_month_is_one", d(2026, 1, 15), d(2026, 2, 15), 1},
		{"day_before_is_not_yet", d(2026, 1, 15), d(2026, 2, 14), 0},
		{"across_years", d(2025, 11, 30), d(2026, 11, 30), 12},
		{"end_of_month_waits_for_the_day", d(2026, 1, 31), d(2026, 3, 1), 1},
		{"backwards_is_zero", d(2026, 5, 1), d(2026, 1, 1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scoring.MonthsBetween(tc.since, tc.at); got != tc.want {
				t.Errorf("MonthsBetween = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRecordsKeepWhatTheEventStores(t *testing.T) {
	cs := []scoring.Criterion{{Code: "E1", Required: "≥ 6 months", Observed: "7 months", RequiredValue: 60000, ObservedValue: 70000, Passed: true}}
	want := []domain.Criterion{{Code: "E1", Required: "≥ 6 months", Observed: "7 months", Passed: true}}
	if diff := cmp.Diff(want, scoring.Records(cs)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEligibilityRulesValidate(t *testing.T) {
	if err := scoring.DefaultEligibility().Validate(); err != nil {
		t.Fatalf("DefaultEligibility().Validate() = %v", err)
	}
	for name, mutate := range map[string]func(*scoring.EligibilityRules){
		"no_version":          func(e *scoring.EligibilityRules) { e.Version = 0 },
		"duplicate":           func(e *scoring.EligibilityRules) { e.Rules = append(e.Rules, e.Rules[0]) },
		"same_role":           func(e *scoring.EligibilityRules) { e.Rules[0].Transition.To = e.Rules[0].Transition.From },
		"no_evaluations":      func(e *scoring.EligibilityRules) { e.Rules[1].Evaluations = 0 },
		"negative_months":     func(e *scoring.EligibilityRules) { e.Rules[2].MinMonthsInRole = -1 },
		"negative_attainment": func(e *scoring.EligibilityRules) { e.Rules[3].MinRevenueAttainment = -1 },
	} {
		t.Run("rejects_"+name, func(t *testing.T) {
			e := scoring.DefaultEligibility()
			mutate(&e)
			if err := e.Validate(); !errors.Is(err, scoring.ErrInvalidRules) {
				t.Errorf("Validate() = %v, want ErrInvalidRules", err)
			}
		})
	}
}
