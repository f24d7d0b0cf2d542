package scoring_test

import (
	"testing"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

func BenchmarkWeek(b *testing.B) {
	r := scoring.DefaultRules()
	week, _ := domain.ParsePeriod("2026-W47")
	targets, err := r.Targets(scoring.RoleSalesperson, week, nil)
	if err != nil {
		b.Fatal(err)
	}
	actuals := map[string]int64{"visits": 13, "calls": 71, "quotes": 4, "revenue": 2_345_678}
	for b.Loop() {
		if _, err := r.Week(actuals, targets, []int{4, 3}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvaluation(b *testing.B) {
	r := scoring.DefaultRules()
	o, rr, m := domain.FixedFromFloat(104.1234), domain.FixedFromFloat(98.7654), domain.FixedFromInt(75)
	c := scoring.Components{Objective: &o, Rollup: &rr, Manager: &m}
	for b.Loop() {
		r.Evaluation(c)
	}
}

func BenchmarkGoalBonusFor(b *testing.B) {
	r := scoring.DefaultRules()
	target := domain.FixedFromInt(88_000)
	for b.Loop() {
		if _, err := r.GoalBonusFor(scoring.RoleSalesperson, 9_123_456, target); err != nil {
			b.Fatal(err)
		}
	}
}
