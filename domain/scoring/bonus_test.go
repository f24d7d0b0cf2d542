package scoring_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain/scoring"
)

func TestGoalBonus(t *testing.T) {
	for _, tc := range []struct {
		name string
		base int64
		a    string
		want int64
	}{
		{"example_1_05_of_1000_is_1075", 100_000, "1.05", 107_500},
		{"below_0_80_is_nothing", 100_000, "0.7999", 0},
		{"zero_is_nothing", 100_000, "0", 0},
		{"at_0_80_is_half", 100_000, "0.8", 50_000},
		{"between_0_80_and_1_is_linear", 100_000, "0.9", 75_000},
		{"at_1_is_full", 100_000, "1", 100_000},
		{"above_1_adds_one_and_a_half_per_unit", 100_000, "1.6", 190_000},
		{"capped_at_2", 100_000, "1.6667", 200_000},
		{"stays_capped", 100_000, "3", 200_000},
		{"half_cent_rounds_up_to_even", 30_000, "0.8001", 15_008},   // 15 007.5 → 15 008
		{"half_cent_rounds_down_to_even", 30_000, "0.8003", 15_022}, // 15 022.5 → 15 022
		{"supervisor_base", 150_000, "1.05", 161_250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scoring.GoalBonus(tc.base, fx(t, tc.a)); got != tc.want {
				t.Errorf("GoalBonus(%d, %s) = %d, want %d", tc.base, tc.a, got, tc.want)
			}
		})
	}
}

func TestGoalBonusFor(t *testing.T) {
	r := scoring.DefaultRules()
	t.Run("uses_role_base_and_exact_ratio", func(t *testing.T) {
		got, err := r.GoalBonusFor(scoring.RoleSalesperson, 8_400_000, fx(t, "80000"))
		if err != nil {
			t.Fatal(err)
		}
		want := scoring.Bonus{
			RulesVersion: 1, Role: scoring.RoleSalesperson, Base: 100_000,
			Revenue: 8_400_000, Target: fx(t, "80000"), Attainment: fx(t, "1.05"), Amount: 107_500,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("bonus (-want +got):\n%s", diff)
		}
	})
	t.Run("exact_ratio_not_rounded_attainment", func(t *testing.T) {
		// Revenue 53 333.34 of 60 000.00 is 0.8888890 (not 0.8889):
		// 300.00 × (0.5 + 2.5 × 0.088889) = 216.6667 → 216.67.
		got, err := r.GoalBonusFor(scoring.RoleSalesAssistant, 5_333_334, fx(t, "60000"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Amount != 21_667 || got.Attainment != fx(t, "0.8889") {
			t.Errorf("bonus = %d at %s, want 21667 at 0.8889", got.Amount, got.Attainment)
		}
	})
	t.Run("unknown_role_is_an_error", func(t *testing.T) {
		if _, err := r.GoalBonusFor("astronaut", 1, fx(t, "1")); !errors.Is(err, scoring.ErrUnknownRole) {
			t.Errorf("err = %v, want ErrUnknownRole", err)
		}
	})
	t.Run("zero_target_is_an_error", func(t *testing.T) {
		if _, err := r.GoalBonusFor(scoring.RoleSalesperson, 1, 0); !errors.Is(err, scoring.ErrInvalidTarget) {
			t.Errorf("err = %v, want ErrInvalidTarget", err)
		}
	})
}

func TestClawback(t *testing.T) {
	r := scoring.DefaultRules()
	target := fx(t, "80000")
	for _, tc := range []struct {
		name             string
		granted, revenue int64
		sale             int64
		want             int64
	}{
		{"sale_above_target_claws_its_share", 107_500, 8_400_000, 400_000, 7_500},
		{"sale_dropping_to_0_80_leaves_half", 107_500, 8_400_000, 2_000_000, 57_500},
		{"sale_dropping_below_0_80_claws_all", 107_500, 8_400_000, 2_000_001, 107_500},
		{"sale_larger_than_revenue_claws_all", 107_500, 8_400_000, 9_000_000, 107_500},
		{"sale_within_cap_plateau_claws_nothing", 200_000, 14_000_000, 500_000, 0},
		{"no_bonus_nothing_to_claw", 0, 6_000_000, 1_000_000, 0},
		{"never_more_than_granted", 50_000, 8_400_000, 2_000_001, 50_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Clawback(scoring.RoleSalesperson, tc.granted, tc.revenue, target, tc.sale)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Clawback = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("successive_reversals_add_up_to_one", func(t *testing.T) {
		granted, revenue := int64(107_500), int64(8_400_000)
		first, err := r.Clawback(scoring.RoleSalesperson, granted, revenue, target, 300_000)
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Clawback(scoring.RoleSalesperson, granted-first, revenue-300_000, target, 500_000)
		if err != nil {
			t.Fatal(err)
		}
		both, err := r.Clawback(scoring.RoleSalesperson, granted, revenue, target, 800_000)
		if err != nil {
			t.Fatal(err)
		}
		if first+second != both {
			t.Errorf("%d + %d clawed in two steps, %d in one", first, second, both)
		}
	})
}

func TestClawbackApplies(t *testing.T) {
	r := scoring.DefaultRules()
	closed := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		reversed time.Time
		want     bool
	}{
		{"same_day", closed.Add(time.Hour), true},
		{"at_90_days", closed.AddDate(0, 0, 90), true},
		{"after_90_days", closed.AddDate(0, 0, 90).Add(time.Second), false},
		{"before_the_sale", closed.Add(-time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.ClawbackApplies(closed, tc.reversed); got != tc.want {
				t.Errorf("ClawbackApplies = %v, want %v", got, tc.want)
			}
		})
	}
}
