package scoring_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

func fx(tb testing.TB, s string) domain.Fixed {
	tb.Helper()
	f, err := domain.ParseFixed(s)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func ptr(f domain.Fixed) *domain.Fixed { return &f }

func period(tb testing.TB, s string) domain.Period {
	tb.Helper()
	p, err := domain.ParsePeriod(s)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestGoldenExample is the worked example of DOMAIN.md §3, end to end.
func TestGoldenExample(t *testing.T) {
	r := scoring.DefaultRules()
	week := period(t, "2023-W06")
	targets, err := r.Targets(scoring.RoleSalesperson, week, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTargets := map[string]domain.Fixed{
		"visits": fx(t, "15"), "calls": fx(t, "60"), "quotes": fx(t, "5"), "revenue": fx(t, "20000"),
	}
	if diff := cmp.Diff(wantTargets, targets); diff != "" {
		t.Fatalf("week targets (-want +got):\n%s", diff)
	}

	actuals := map[string]int64{"visits": 12, "calls": 75, "quotes": 5, "revenue": 2_600_000}
	got, err := r.Week(actuals, targets, []int{4})
	if err != nil {
		t.Fatal(err)
	}
	want := scoring.WeekScore{
		Attainments: map[string]domain.Fixed{
			"visits": fx(t, "0.8"), "calls": fx(t, "1.25"), "quotes": fx(t, "1"), "revenue": fx(t, "1.3"),
		},
		Quantity:   fx(t, "113.5"),
		Quality:    fx(t, "75"),
		HasQuality: true,
		Total:      fx(t, "101.95"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("week (-want +got):\n%s", diff)
	}

	// February 2023 starts on a Wednesday: its weeks have 3, 5, 5, 5 and 2
	// working days inside the month.
	month := period(t, "2023-02")
	shares := scoring.MonthWeeks(month)
	var days []int
	for _, s := range shares {
		days = append(days, s.WorkingDays)
	}
	if diff := cmp.Diff([]int{3, 5, 5, 5, 2}, days); diff != "" {
		t.Fatalf("working days per week (-want +got):\n%s", diff)
	}
	totals := []domain.Fixed{got.Total, fx(t, "95"), fx(t, "88"), fx(t, "110"), fx(t, "120")}
	var weeks []scoring.WeightedScore
	for i, s := range shares {
		weeks = append(weeks, scoring.WeightedScore{Score: totals[i], WorkingDays: s.WorkingDays})
	}
	rollup, ok := scoring.Rollup(weeks)
	if !ok || rollup != fx(t, "100.5425") {
		t.Fatalf("R = %s, %v; want 100.5425, true", rollup, ok)
	}

	target, err := r.TargetFor(scoring.RoleSalesperson, scoring.KPIRevenue, month, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(scoring.Target{Value: fx(t, "80000")}, target); diff != "" {
		t.Fatalf("month revenue target (-want +got):\n%s", diff)
	}
	objective, err := r.Objective(8_400_000, target.Value)
	if err != nil || objective != fx(t, "105") {
		t.Fatalf("O = %s, %v; want 105", objective, err)
	}
	manager, err := scoring.ManagerScore(4)
	if err != nil || manager != fx(t, "75") {
		t.Fatalf("M = %s, %v; want 75", manager, err)
	}

	e, ok := r.Evaluation(scoring.Components{Objective: &objective, Rollup: &rollup, Manager: &manager})
	if !ok || e != fx(t, "100.217") {
		t.Fatalf("E = %s, %v; want 100.2170", e, ok)
	}
	if got := e.Round2(); got != "100.22" {
		t.Errorf("E shown as %q, want 100.22", got)
	}
	if diff := cmp.Diff(scoring.Band{Min: fx(t, "90"), Level: 3, Label: "meets"}, r.Band(e)); diff != "" {
		t.Errorf("band (-want +got):\n%s", diff)
	}
}

func TestBandBoundaries(t *testing.T) {
	r := scoring.DefaultRules()
	for _, tc := range []struct {
		score string
		level int
		label string
	}{
		{"150", 5, "outstanding"},
		{"120", 5, "outstanding"},
		{"119.9999", 4, "exceeds"},
		{"105", 4, "exceeds"},
		{"104.9999", 3, "meets"},
		{"90", 3, "meets"},
		{"89.9999", 2, "partially meets"},
		{"75", 2, "partially meets"},
		{"74.9999", 1, "below"},
		{"0", 1, "below"},
	} {
		t.Run(tc.score+"_is_band_"+tc.label, func(t *testing.T) {
			b := r.Band(fx(t, tc.score))
			if b.Level != tc.level || b.Label != tc.label {
				t.Errorf("Band(%s) = %d %q, want %d %q", tc.score, b.Level, b.Label, tc.level, tc.label)
			}
		})
	}
}

func TestEvaluationRenormalisesMissingComponents(t *testing.T) {
	r := scoring.DefaultRules()
	o, rr, m := fx(t, "105"), fx(t, "100.5425"), fx(t, "75")
	for _, tc := range []struct {
		name string
		c    scoring.Components
		want string
		ok   bool
	}{
		{"all_three_weighted_0.5_0.4_0.1", scoring.Components{Objective: &o, Rollup: &rr, Manager: &m}, "100.217", true},
		{"no_objective_weights_0.8_0.2", scoring.Components{Rollup: &rr, Manager: &m}, "95.434", true},
		{"no_manager_rounds_half_even", scoring.Components{Objective: &o, Rollup: &rr}, "103.0189", true},
		{"no_rollup", scoring.Components{Objective: &o, Manager: &m}, "100", true},
		{"objective_alone_is_itself", scoring.Components{Objective: &o}, "105", true},
		{"manager_alone_is_itself", scoring.Components{Manager: &m}, "75", true},
		{"zero_is_present_not_missing", scoring.Components{Objective: ptr(0), Manager: &m}, "12.5", true},
		{"nothing_present_is_no_evaluation", scoring.Components{}, "0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := r.Evaluation(tc.c)
			if got != fx(t, tc.want) || ok != tc.ok {
				t.Errorf("Evaluation = %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestAttainment(t *testing.T) {
	higher := scoring.KPI{Code: "k", Direction: scoring.Higher, Weight: fx(t, "1"), Cap: fx(t, "1.5"), WeeklyNorm: 10}
	lower := higher
	lower.Direction = scoring.Lower
	for _, tc := range []struct {
		name   string
		k      scoring.KPI
		x      int64
		target string
		want   string
	}{
		{"higher_is_ratio", higher, 8, "10", "0.8"},
		{"higher_is_capped", higher, 40, "10", "1.5"},
		{"higher_zero_is_zero", higher, 0, "10", "0"},
		{"higher_rounds_half_even_for_display", higher, 2, "3", "0.6667"},
		{"lower_is_inverse_ratio", lower, 20, "10", "0.5"},
		{"lower_is_capped", lower, 5, "10", "1.5"},
		{"lower_zero_actual_is_cap", lower, 0, "10", "1.5"},
		{"lower_on_target_is_one", lower, 10, "10", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scoring.Attainment(tc.k, tc.x, fx(t, tc.target))
			if err != nil {
				t.Fatal(err)
			}
			if got != fx(t, tc.want) {
				t.Errorf("Attainment(%d, %s) = %s, want %s", tc.x, tc.target, got, tc.want)
			}
		})
	}
	t.Run("non_positive_target_is_an_error", func(t *testing.T) {
		if _, err := scoring.Attainment(higher, 1, 0); !errors.Is(err, scoring.ErrInvalidTarget) {
			t.Errorf("err = %v, want ErrInvalidTarget", err)
		}
	})
	t.Run("negative_actual_is_an_error", func(t *testing.T) {
		if _, err := scoring.Attainment(higher, -1, fx(t, "1")); !errors.Is(err, scoring.ErrInvalidQuantity) {
			t.Errorf("err = %v, want ErrInvalidQuantity", err)
		}
	})
}

func TestLowerIsBetterInQuantityScore(t *testing.T) {
	r := scoring.DefaultRules()
	r.KPIs = []scoring.KPI{
		{Code: "complaints", Source: "complaint", Direction: scoring.Lower, Weight: fx(t, "0.4"), Cap: fx(t, "1.5"), WeeklyNorm: fx(t, "4")},
		{Code: scoring.KPIRevenue, Source: scoring.SourceSale, Direction: scoring.Higher, Weight: fx(t, "0.6"), Cap: fx(t, "1.5"), WeeklyNorm: fx(t, "100")},
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	targets := map[string]domain.Fixed{"complaints": fx(t, "4"), "revenue": fx(t, "100")}
	// No complaint at all: attainment is the cap, 0.4 × 1.5 + 0.6 × 1 = 1.2.
	got, err := r.QuantityScore(map[string]int64{"revenue": 10_000}, targets)
	if err != nil || got != fx(t, "120") {
		t.Errorf("Q = %s, %v; want 120", got, err)
	}
	// Eight complaints against four: 0.4 × 0.5 + 0.6 × 1 = 0.8.
	got, err = r.QuantityScore(map[string]int64{"complaints": 8, "revenue": 10_000}, targets)
	if err != nil || got != fx(t, "80") {
		t.Errorf("Q = %s, %v; want 80", got, err)
	}
}

func TestQuality(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ratings []int
		want    string
		has     bool
	}{
		{"none_is_missing", nil, "0", false},
		{"one_is_lowest", []int{1}, "0", true},
		{"five_is_hundred", []int{5}, "100", true},
		{"several_are_averaged", []int{4, 5}, "87.5", true},
		{"average_rounds_half_even", []int{4, 5, 5}, "91.6667", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, has, err := scoring.Quality(tc.ratings...)
			if err != nil {
				t.Fatal(err)
			}
			if got != fx(t, tc.want) || has != tc.has {
				t.Errorf("Quality(%v) = %s, %v; want %s, %v", tc.ratings, got, has, tc.want, tc.has)
			}
		})
	}
	for _, bad := range []int{0, 6, -1} {
		if _, _, err := scoring.Quality(3, bad); !errors.Is(err, scoring.ErrInvalidRating) {
			t.Errorf("Quality(3, %d): err = %v, want ErrInvalidRating", bad, err)
		}
	}
}

func TestWeekWithoutQualityIsQuantityAlone(t *testing.T) {
	r := scoring.DefaultRules()
	targets, err := r.Targets(scoring.RoleSalesperson, period(t, "2026-W47"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Week(map[string]int64{"visits": 12, "calls": 75, "quotes": 5, "revenue": 2_600_000}, targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.HasQuality || got.Total != fx(t, "113.5") || got.Total != got.Quantity {
		t.Errorf("week = %+v; want no quality and W = Q = 113.5", got)
	}
}

func TestTargetFor(t *testing.T) {
	r := scoring.DefaultRules()
	nov := period(t, "2026-11") // 21 working days
	set := map[scoring.TargetKey]domain.Fixed{
		{KPI: "revenue", Period: nov}:                  fx(t, "90000"),
		{KPI: "visits", Period: period(t, "2026-W47")}: fx(t, "20"),
		{KPI: "visits", Period: period(t, "2026-Q4")}:  fx(t, "1"),
		{KPI: "calls", Period: period(t, "2026-W48")}:  fx(t, "0"),
	}
	for _, tc := range []struct {
		name, role, kpi, period string
		want                    scoring.Target
	}{
		{"exact_month_target_wins", scoring.RoleSalesperson, "revenue", "2026-11", scoring.Target{Value: fx(t, "90000"), Set: true}},
		{"exact_week_target_wins", scoring.RoleSalesperson, "visits", "2026-W47", scoring.Target{Value: fx(t, "20"), Set: true}},
		{"month_without_target_is_norm_times_days_over_5", scoring.RoleSalesperson, "visits", "2026-11", scoring.Target{Value: fx(t, "63")}},
		{"week_without_target_is_role_norm", scoring.RoleSalesperson, "visits", "2026-W49", scoring.Target{Value: fx(t, "15")}},
		{"assistant_norm_is_halved", scoring.RoleSalesAssistant, "visits", "2026-W49", scoring.Target{Value: fx(t, "7.5")}},
		{"customer_service_norm_is_halved", scoring.RoleCustomerService, "calls", "2026-W49", scoring.Target{Value: fx(t, "30")}},
		{"supervisor_norm_is_one_and_a_half", scoring.RoleSalesSupervisor, "quotes", "2026-W49", scoring.Target{Value: fx(t, "7.5")}},
		{"general_manager_norm_is_one_and_a_half", scoring.RoleGeneralManager, "revenue", "2026-W49", scoring.Target{Value: fx(t, "30000")}},
		{"supervisor_month_scales_by_days", scoring.RoleSalesSupervisor, "visits", "2027-11", scoring.Target{Value: fx(t, "99")}},
		{"assistant_month_scales_by_days", scoring.RoleSalesAssistant, "quotes", "2027-11", scoring.Target{Value: fx(t, "11")}},
		{"assistant_month_keeps_fractions", scoring.RoleSalesAssistant, "visits", "2026-11", scoring.Target{Value: fx(t, "31.5")}},
		{"quarter_target_in_other_period_does_not_apply", scoring.RoleSalesperson, "visits", "2026-12", scoring.Target{Value: fx(t, "69")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.TargetFor(tc.role, tc.kpi, period(t, tc.period), set)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("TargetFor (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("zero_target_set_is_an_error", func(t *testing.T) {
		if _, err := r.TargetFor(scoring.RoleSalesperson, "calls", period(t, "2026-W48"), set); !errors.Is(err, scoring.ErrInvalidTarget) {
			t.Errorf("err = %v, want ErrInvalidTarget", err)
		}
	})
	t.Run("unknown_role_is_an_error", func(t *testing.T) {
		if _, err := r.TargetFor("astronaut", "calls", period(t, "2026-W48"), nil); !errors.Is(err, scoring.ErrUnknownRole) {
			t.Errorf("err = %v, want ErrUnknownRole", err)
		}
	})
	t.Run("unknown_kpi_is_an_error", func(t *testing.T) {
		if _, err := r.TargetFor(scoring.RoleSalesperson, "hugs", period(t, "2026-W48"), nil); !errors.Is(err, scoring.ErrUnknownKPI) {
			t.Errorf("err = %v, want ErrUnknownKPI", err)
		}
	})
}

func TestRollupAndMeans(t *testing.T) {
	t.Run("weeks_without_days_are_left_out", func(t *testing.T) {
		got, ok := scoring.Rollup([]scoring.WeightedScore{{Score: fx(t, "80"), WorkingDays: 2}, {Score: fx(t, "500"), WorkingDays: 0}, {Score: fx(t, "100"), WorkingDays: 3}})
		if !ok || got != fx(t, "92") {
			t.Errorf("Rollup = %s, %v; want 92", got, ok)
		}
	})
	t.Run("no_week_is_no_rollup", func(t *testing.T) {
		if _, ok := scoring.Rollup(nil); ok {
			t.Error("Rollup(nil) ok = true, want false")
		}
	})
	t.Run("quarter_is_mean_of_months", func(t *testing.T) {
		got, ok := scoring.Quarter([]domain.Fixed{fx(t, "100.217"), fx(t, "90"), fx(t, "95.5")})
		if !ok || got != fx(t, "95.239") {
			t.Errorf("Quarter = %s, %v; want 95.2390", got, ok)
		}
	})
	t.Run("year_is_mean_of_quarters_rounded_half_even", func(t *testing.T) {
		// (100.0001 + 100.0002) / 2 = 100.00015 → 100.0002 (half to even).
		got, ok := scoring.Year([]domain.Fixed{fx(t, "100.0001"), fx(t, "100.0002")})
		if !ok || got != fx(t, "100.0002") {
			t.Errorf("Year = %s, %v; want 100.0002", got, ok)
		}
		got, _ = scoring.Year([]domain.Fixed{fx(t, "100.0002"), fx(t, "100.0003")})
		if got != fx(t, "100.0002") {
			t.Errorf("Year = %s; want 100.0002", got)
		}
	})
	t.Run("no_month_is_no_quarter", func(t *testing.T) {
		if _, ok := scoring.Quarter(nil); ok {
			t.Error("Quarter(nil) ok = true, want false")
		}
	})
}

func TestMonthWeeksCoverEveryWorkingDay(t *testing.T) {
	for _, s := range []string{"2026-01", "2026-02", "2026-03", "2026-11", "2027-01", "2028-02", "2020-12"} {
		m := period(t, s)
		total := 0
		for _, w := range scoring.MonthWeeks(m) {
			if w.WorkingDays < 1 || w.WorkingDays > 5 {
				t.Errorf("%s: week %s has %d days", s, w.Week, w.WorkingDays)
			}
			total += w.WorkingDays
		}
		if total != m.WorkingDaysIn() {
			t.Errorf("%s: weeks hold %d working days, month has %d", s, total, m.WorkingDaysIn())
		}
	}
	// 2027-01 starts on a Friday (ISO week 2026-W53) and ends on a Sunday.
	got := scoring.MonthWeeks(period(t, "2027-01"))
	if got[0].Week != period(t, "2026-W53") || got[0].WorkingDays != 1 {
		t.Errorf("first week of 2027-01 = %+v, want 2026-W53 with 1 day", got[0])
	}
}

func TestDefaultRules(t *testing.T) {
	r := scoring.DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	t.Run("survive_json", func(t *testing.T) {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back scoring.Rules
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	})
	t.Run("hold_the_v1_values", func(t *testing.T) {
		base, _ := r.BonusBase(scoring.RoleRegionalDirector)
		if base != 200_000 || r.ActivityPointsFor("expo", 2) != fx(t, "10") || r.ActivityPointsFor("unknown", 3) != 0 || r.Currency != "EUR" {
			t.Errorf("v1 values differ: base %d, expo %d", base, r.ActivityPointsFor("expo", 2))
		}
	})
	for name, mutate := range map[string]func(*scoring.Rules){
		"weights_not_summing_to_one": func(r *scoring.Rules) { r.KPIs[0].Weight++ },
		"non_positive_cap":           func(r *scoring.Rules) { r.KPIs[1].Cap = 0 },
		"bad_direction":              func(r *scoring.Rules) { r.KPIs[2].Direction = "sideways" },
		"duplicate_kpi":              func(r *scoring.Rules) { r.KPIs[1].Code = r.KPIs[0].Code },
		"alpha_above_one":            func(r *scoring.Rules) { r.Alpha = domain.FixedFromInt(2) },
		"evaluation_weights":         func(r *scoring.Rules) { r.Weights.Manager = 0 },
		"bands_out_of_order":         func(r *scoring.Rules) { r.Bands[0], r.Bands[1] = r.Bands[1], r.Bands[0] },
		"no_bottom_band":             func(r *scoring.Rules) { r.Bands = r.Bands[:4] },
		"bad_currency":               func(r *scoring.Rules) { r.Currency = "EURO" },
		"no_version":                 func(r *scoring.Rules) { r.Version = 0 },
	} {
		t.Run("reject_"+name, func(t *testing.T) {
			r := scoring.DefaultRules()
			mutate(&r)
			if err := r.Validate(); !errors.Is(err, scoring.ErrInvalidRules) {
				t.Errorf("Validate() = %v, want ErrInvalidRules", err)
			}
		})
	}
}

func TestPublishedRoundTrip(t *testing.T) {
	r := scoring.DefaultRules()
	e := r.Published("2026-01-01")
	if e.Version != 1 || e.EffectiveFrom != "2026-01-01" || len(e.KPIs) != 4 || e.KPIs[3].WeeklyNorm != fx(t, "20000") {
		t.Fatalf("Published = %+v", e)
	}
	if diff := cmp.Diff(r, scoring.FromPublished(e)); diff != "" {
		t.Errorf("FromPublished(Published()) (-want +got):\n%s", diff)
	}
	t.Run("missing_maps_default", func(t *testing.T) {
		e.RoleNormMultipliers, e.ActivityPoints, e.BonusBaseMinor = nil, nil, nil
		got := scoring.FromPublished(e)
		if err := got.Validate(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestDefaultRulesMatchTheDomainDefault(t *testing.T) {
	got := scoring.FromPublished(domain.DefaultScoringRules())
	if diff := cmp.Diff(scoring.DefaultRules(), got); diff != "" {
		t.Errorf("scoring.DefaultRules differs from domain.DefaultScoringRules (-want +got):\n%s", diff)
	}
}
