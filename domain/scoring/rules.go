// Package scoring holds the rules of DOMAIN.md §3, §5 and §6 as data and the
// formulas that apply them: KPI attainment, weekly, monthly, quarterly and
// yearly scores, bands, targets, the goal bonus and its clawback, and
// promotion eligibility. Every function is pure.
//
// Units. Scores, weights, caps and ratios are domain.Fixed (1e-4). Money that
// is observed or paid (sale amounts, revenue actuals, bonus bases, bonuses)
// is int64 in minor units of the rule set's currency, which has
// MinorPerMajor minor units per major unit. Targets and norms are
// domain.Fixed in the KPI's unit, as TargetSet stores them: a count for
// activities, major currency units for revenue (20000.0000 is 20 000.00 EUR).
//
// Rounding. Each formula is evaluated exactly (on rationals) from its inputs
// and rounded once, half to even, to the unit it is stored in. A step that
// builds on another step takes that step's stored (rounded) value, never a
// hidden more precise one, so that every stored score can be recomputed
// exactly from the stored components shown beside it (W from Q and q, E from
// O, R and M, and so on).
package scoring

import (
	"errors"
	"fmt"
	"slices"

	"perfledger/domain"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrInvalidRules: a rule set fails Validate.
	ErrInvalidRules = errors.New("invalid scoring rules")
	// ErrUnknownRole: the role has no entry in the rule set.
	ErrUnknownRole = errors.New("unknown role")
	// ErrUnknownKPI: the KPI is not in the rule set.
	ErrUnknownKPI = errors.New("unknown KPI")
	// ErrInvalidRating: a rating outside 1–5.
	ErrInvalidRating = errors.New("rating must be 1 to 5")
	// ErrInvalidTarget: a target that is missing, zero or negative.
	ErrInvalidTarget = errors.New("target must be positive")
	// ErrInvalidQuantity: a negative actual.
	ErrInvalidQuantity = errors.New("quantity must not be negative")
)

// MinorPerMajor is the number of minor units in one major unit of a rule
// set's currency. Rule sets use a currency with two decimals (EUR in v1).
const MinorPerMajor = 100

// Role codes of the ladder (DOMAIN.md §1), lowest first.
const (
	RoleSalesAssistant   = "sales_assistant"
	RoleCustomerService  = "customer_service"
	RoleSalesperson      = "salesperson"
	RoleSalesSupervisor  = "sales_supervisor"
	RoleRegionalDirector = "regional_director"
	RoleSalesDirector    = "sales_director"
	RoleSalesManager     = "sales_manager"
	RoleGeneralManager   = "general_manager"
)

// Direction says whether more of a KPI is better.
type Direction string

const (
	Higher Direction = "higher"
	Lower  Direction = "lower"
)

// KPI codes of rule set v1.
const (
	KPIVisits  = "visits"
	KPICalls   = "calls"
	KPIQuotes  = "quotes"
	KPIRevenue = "revenue"
)

// SourceSale is the KPI source that counts SaleClosed amounts; any other
// source is an ActivityLogged kind whose quantities are summed.
const SourceSale = "sale"

// KPI is one scored indicator of a rule set.
type KPI struct {
	Code      string       `json:"kpi"`
	Source    string       `json:"source"` // activity kind, or SourceSale
	Direction Direction    `json:"direction"`
	Weight    domain.Fixed `json:"weight"`
	Cap       domain.Fixed `json:"cap"` // attainment is clamped to [0, Cap]
	// WeeklyNorm is a salesperson's weekly target in the KPI's unit: a count
	// for activities, major units of the rule set's currency for revenue.
	WeeklyNorm domain.Fixed `json:"weekly_norm"`
}

// Money reports whether the KPI counts money: its actuals are in minor
// units, its targets and norm in major units.
func (k KPI) Money() bool { return k.Source == SourceSale }

// EvaluationWeights weigh the monthly evaluation E = O·Objective +
// R·Rollup + M·Manager. They sum to 1.
type EvaluationWeights struct {
	Objective domain.Fixed `json:"objective"`
	Rollup    domain.Fixed `json:"rollup"`
	Manager   domain.Fixed `json:"manager"`
}

// Band is a score band; a score is in the first band (highest Min first)
// whose Min it reaches.
type Band struct {
	Min   domain.Fixed `json:"min"`
	Level int          `json:"band"`
	Label string       `json:"label"`
}

// Rules is a scoring rule set (ScoringRulesPublished), as data.
type Rules struct {
	Version  int    `json:"version"`
	Currency string `json:"currency"` // the one reporting currency (ISO 4217)
	KPIs     []KPI  `json:"kpis"`
	// Alpha weighs quantity against quality in the weekly total.
	Alpha   domain.Fixed      `json:"alpha"`
	Weights EvaluationWeights `json:"evaluation_weights"`
	Bands   []Band            `json:"bands"` // highest Min first; the last has Min 0
	// NormMultipliers scale the weekly norms by role code.
	NormMultipliers map[string]domain.Fixed `json:"role_norm_multipliers"`
	// ActivityPoints per unit of quantity, by activity kind (leaderboards).
	ActivityPoints map[string]domain.Fixed `json:"activity_points"`
	// GoalBonusBase is B of the goal bonus per role, in minor units.
	GoalBonusBase map[string]int64 `json:"bonus_base_minor"`
	// ClawbackWindowDays: a sale reversed within this many days of closing
	// claws back its share of a goal bonus.
	ClawbackWindowDays int `json:"clawback_window_days"`
}

// DefaultRules returns rule set v1 of DOMAIN.md §3 and §6. Each call returns
// a fresh value the caller may modify.
func DefaultRules() Rules {
	kpiCap := domain.FixedFromFloat(1.5)
	leader := domain.FixedFromFloat(1.5)
	half := domain.FixedFromFloat(0.5)
	pts := domain.FixedFromInt
	return Rules{
		Version:  1,
		Currency: "EUR",
		KPIs: []KPI{
			{Code: KPIVisits, Source: "visit", Direction: Higher, Weight: domain.FixedFromFloat(0.2), Cap: kpiCap, WeeklyNorm: domain.FixedFromInt(15)},
			{Code: KPICalls, Source: "call", Direction: Higher, Weight: domain.FixedFromFloat(0.1), Cap: kpiCap, WeeklyNorm: domain.FixedFromInt(60)},
			{Code: KPIQuotes, Source: "quote", Direction: Higher, Weight: domain.FixedFromFloat(0.2), Cap: kpiCap, WeeklyNorm: domain.FixedFromInt(5)},
			{Code: KPIRevenue, Source: SourceSale, Direction: Higher, Weight: domain.FixedFromFloat(0.5), Cap: kpiCap, WeeklyNorm: domain.FixedFromInt(20_000)},
		},
		Alpha: domain.FixedFromFloat(0.7),
		Weights: EvaluationWeights{
			Objective: domain.FixedFromFloat(0.5),
			Rollup:    domain.FixedFromFloat(0.4),
			Manager:   domain.FixedFromFloat(0.1),
		},
		Bands: []Band{
			{Min: domain.FixedFromInt(120), Level: 5, Label: "outstanding"},
			{Min: domain.FixedFromInt(105), Level: 4, Label: "exceeds"},
			{Min: domain.FixedFromInt(90), Level: 3, Label: "meets"},
			{Min: domain.FixedFromInt(75), Level: 2, Label: "partially meets"},
			{Min: 0, Level: 1, Label: "below"},
		},
		NormMultipliers: map[string]domain.Fixed{
			RoleSalesAssistant:   half,
			RoleCustomerService:  half,
			RoleSalesperson:      domain.FixedFromInt(1),
			RoleSalesSupervisor:  leader,
			RoleRegionalDirector: leader,
			RoleSalesDirector:    leader,
			RoleSalesManager:     leader,
			RoleGeneralManager:   leader,
		},
		ActivityPoints: map[string]domain.Fixed{
			"visit": pts(3), "call": pts(1), "quote": pts(4), "demo": pts(4), "market_research": pts(3),
			"expo": pts(5), "email_campaign": pts(1), "report": pts(1), "training": pts(2), "meeting": pts(1),
		},
		GoalBonusBase: map[string]int64{
			RoleSalesAssistant:   30_000,
			RoleCustomerService:  30_000,
			RoleSalesperson:      100_000,
			RoleSalesSupervisor:  150_000,
			RoleRegionalDirector: 200_000,
			RoleSalesDirector:    200_000,
			RoleSalesManager:     200_000,
			RoleGeneralManager:   200_000,
		},
		ClawbackWindowDays: 90,
	}
}

// Validate reports the first way in which r is not a usable rule set,
// wrapped as ErrInvalidRules.
func (r Rules) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w v%d: %s", ErrInvalidRules, r.Version, fmt.Sprintf(format, args...))
	}
	if r.Version <= 0 {
		return bad("version must be positive")
	}
	if len(r.Currency) != 3 {
		return bad("currency %q is not an ISO 4217 code", r.Currency)
	}
	if len(r.KPIs) == 0 {
		return bad("no KPIs")
	}
	var sum domain.Fixed
	seen := map[string]bool{}
	sources := map[string]bool{}
	for _, k := range r.KPIs {
		switch {
		case k.Code == "" || k.Source == "":
			return bad("a KPI without code or source")
		case seen[k.Code]:
			return bad("KPI %q twice", k.Code)
		case sources[k.Source]:
			return bad("source %q counted by two KPIs", k.Source)
		case k.Direction != Higher && k.Direction != Lower:
			return bad("KPI %q: direction %q, want higher or lower", k.Code, k.Direction)
		case k.Weight <= 0:
			return bad("KPI %q: weight must be positive", k.Code)
		case k.Cap <= 0:
			return bad("KPI %q: cap must be positive", k.Code)
		case k.WeeklyNorm <= 0:
			return bad("KPI %q: weekly norm must be positive", k.Code)
		}
		seen[k.Code], sources[k.Source] = true, true
		sum += k.Weight
	}
	if sum != domain.FixedFromInt(1) {
		return bad("KPI weights sum to %s, want 1", sum)
	}
	if r.Alpha < 0 || r.Alpha > domain.FixedFromInt(1) {
		return bad("alpha %s outside [0, 1]", r.Alpha)
	}
	w := r.Weights
	if w.Objective < 0 || w.Rollup < 0 || w.Manager < 0 || w.Objective+w.Rollup+w.Manager != domain.FixedFromInt(1) {
		return bad("evaluation weights must be non-negative and sum to 1")
	}
	if len(r.Bands) == 0 || r.Bands[len(r.Bands)-1].Min != 0 {
		return bad("bands must end with a band at 0")
	}
	for i := 1; i < len(r.Bands); i++ {
		if r.Bands[i].Min >= r.Bands[i-1].Min {
			return bad("bands must be listed highest first")
		}
	}
	if len(r.NormMultipliers) == 0 {
		return bad("no norm multipliers")
	}
	for role, m := range r.NormMultipliers {
		if m <= 0 {
			return bad("norm multiplier of %q must be positive", role)
		}
	}
	for role, b := range r.GoalBonusBase {
		if b < 0 {
			return bad("goal bonus base of %q must not be negative", role)
		}
	}
	for kind, p := range r.ActivityPoints {
		if p < 0 {
			return bad("points of %q must not be negative", kind)
		}
	}
	if r.ClawbackWindowDays < 0 {
		return bad("clawback window must not be negative")
	}
	return nil
}

// KPI returns the KPI with the given code.
func (r Rules) KPI(code string) (KPI, error) {
	i := slices.IndexFunc(r.KPIs, func(k KPI) bool { return k.Code == code })
	if i < 0 {
		return KPI{}, fmt.Errorf("%w %q in rules v%d", ErrUnknownKPI, code, r.Version)
	}
	return r.KPIs[i], nil
}

// KPIForSource returns the KPI fed by an activity kind or by SourceSale;
// false when that source is not scored.
func (r Rules) KPIForSource(source string) (KPI, bool) {
	i := slices.IndexFunc(r.KPIs, func(k KPI) bool { return k.Source == source })
	if i < 0 {
		return KPI{}, false
	}
	return r.KPIs[i], true
}

// RevenueKPI returns the KPI fed by sales (the objective O and the goal bonus
// use its cap); false when the rule set scores no revenue.
func (r Rules) RevenueKPI() (KPI, bool) { return r.KPIForSource(SourceSale) }

// ActivityPointsFor returns the leaderboard points of quantity units of an
// activity kind; kinds without points score 0.
func (r Rules) ActivityPointsFor(kind string, quantity int64) domain.Fixed {
	return r.ActivityPoints[kind] * domain.Fixed(quantity)
}

// Band returns the band of a score: the first band, highest first, whose
// lower bound the exact score reaches.
func (r Rules) Band(score domain.Fixed) Band {
	for _, b := range r.Bands {
		if score >= b.Min {
			return b
		}
	}
	return r.Bands[len(r.Bands)-1] // negative scores do not occur; be total anyway
}

// BonusBase returns B of the goal bonus for a role, in minor units.
func (r Rules) BonusBase(role string) (int64, error) {
	b, ok := r.GoalBonusBase[role]
	if !ok {
		return 0, fmt.Errorf("%w %q: no goal bonus base in rules v%d", ErrUnknownRole, role, r.Version)
	}
	return b, nil
}

// NormMultiplier returns the role's norm multiplier.
func (r Rules) NormMultiplier(role string) (domain.Fixed, error) {
	m, ok := r.NormMultipliers[role]
	if !ok {
		return 0, fmt.Errorf("%w %q: no norm multiplier in rules v%d", ErrUnknownRole, role, r.Version)
	}
	return m, nil
}
