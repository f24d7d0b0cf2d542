package scoring

import (
	"fmt"
	"math/big"
	"slices"
	"time"

	"perfledger/domain"
)

// Transition is a promotion from one role to another (role codes).
type Transition struct {
	From string `json:"from_role"`
	To   string `json:"to_role"`
}

func (t Transition) String() string { return t.From + " → " + t.To }

// EligibilityRule holds the criteria E1–E4 of DOMAIN.md §5 for one
// transition.
type EligibilityRule struct {
	Transition Transition `json:"transition"`
	// E1: whole months in the current role at the effective date.
	MinMonthsInRole int `json:"min_months_in_role"`
	// E2: the mean of the last Evaluations finalized monthly evaluations is
	// at least MinMeanEvaluation, and, when EvaluationFloor is set, none of
	// them is below it.
	Evaluations       int           `json:"evaluations"`
	MinMeanEvaluation domain.Fixed  `json:"min_mean_evaluation"`
	EvaluationFloor   *domain.Fixed `json:"evaluation_floor,omitempty"`
	// E3: revenue / target over the trailing 12 months is at least
	// MinRevenueAttainment (a ratio: 1 is 100 %); the team's figures when
	// TeamRevenue is set, the member's own otherwise.
	MinRevenueAttainment domain.Fixed `json:"min_revenue_attainment"`
	TeamRevenue          bool         `json:"team_revenue"`
	// E4: adopted suggestions + experience-sharing meetings chaired in the
	// last 12 months reach MinCulture; nil when the criterion does not apply.
	MinCulture *int `json:"min_culture,omitempty"`
}

// EligibilityRules is a versioned eligibility rule set, as data.
type EligibilityRules struct {
	Version int               `json:"version"`
	Rules   []EligibilityRule `json:"rules"`
}

// DefaultEligibility returns eligibility rules v1 of DOMAIN.md §5. The
// "assistant" column applies to both sales assistants and customer
// service. Each call returns a fresh value.
func DefaultEligibility() EligibilityRules {
	fx := func(n int64) *domain.Fixed { f := domain.FixedFromInt(n); return &f }
	n := func(v int) *int { return &v }
	junior := func(from string) EligibilityRule {
		return EligibilityRule{
			Transition:      Transition{From: from, To: RoleSalesperson},
			MinMonthsInRole: 6, Evaluations: 3, MinMeanEvaluation: domain.FixedFromInt(95),
			MinRevenueAttainment: domain.FixedFromFloat(0.9),
		}
	}
	return EligibilityRules{
		Version: 1,
		Rules: []EligibilityRule{
			junior(RoleSalesAssistant),
			junior(RoleCustomerService),
			{
				Transition:      Transition{From: RoleSalesperson, To: RoleSalesSupervisor},
				MinMonthsInRole: 12, Evaluations: 6, MinMeanEvaluation: domain.FixedFromInt(100), EvaluationFloor: fx(90),
				MinRevenueAttainment: domain.FixedFromInt(1), MinCulture: n(1),
			},
			{
				Transition:      Transition{From: RoleSalesSupervisor, To: RoleRegionalDirector},
				MinMonthsInRole: 18, Evaluations: 6, MinMeanEvaluation: domain.FixedFromInt(105), EvaluationFloor: fx(95),
				MinRevenueAttainment: domain.FixedFromInt(1), TeamRevenue: true, MinCulture: n(2),
			},
		},
	}
}

// Validate reports the first way in which e is not a usable eligibility
// rule set, wrapped as ErrInvalidRules.
func (e EligibilityRules) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: eligibility rules v%d: %s", ErrInvalidRules, e.Version, fmt.Sprintf(format, args...))
	}
	if e.Version <= 0 {
		return bad("version must be positive")
	}
	seen := map[Transition]bool{}
	for _, r := range e.Rules {
		t := r.Transition
		switch {
		case t.From == "" || t.To == "" || t.From == t.To:
			return bad("transition %s: want two different roles", t)
		case seen[t]:
			return bad("transition %s twice", t)
		case r.MinMonthsInRole < 0:
			return bad("%s: months in role must not be negative", t)
		case r.Evaluations < 1:
			return bad("%s: at least one evaluation must be looked at", t)
		case r.MinMeanEvaluation < 0 || r.MinRevenueAttainment < 0:
			return bad("%s: thresholds must not be negative", t)
		case r.EvaluationFloor != nil && *r.EvaluationFloor < 0:
			return bad("%s: evaluation floor must not be negative", t)
		case r.MinCulture != nil && *r.MinCulture < 0:
			return bad("%s: culture threshold must not be negative", t)
		}
		seen[t] = true
	}
	return nil
}

// Rule returns the rule of a transition; false when the rule set has none.
func (e EligibilityRules) Rule(t Transition) (EligibilityRule, bool) {
	i := slices.IndexFunc(e.Rules, func(r EligibilityRule) bool { return r.Transition == t })
	if i < 0 {
		return EligibilityRule{}, false
	}
	return e.Rules[i], true
}

// Observed is what the ledger knows about a nominee when eligibility is
// evaluated.
type Observed struct {
	RoleSince   time.Time // when the member took the current role
	EffectiveOn time.Time // the nomination's proposed effective date
	// Evaluations are the member's finalized monthly evaluation scores,
	// oldest first; the last ones are used.
	Evaluations []domain.Fixed
	// Revenue (minor units) and target (major units, like TargetSet) over
	// the trailing 12 months: the member's own and those of the team the
	// member leads.
	Revenue           int64
	RevenueTarget     domain.Fixed
	TeamRevenue       int64
	TeamRevenueTarget domain.Fixed
	// Culture over the last 12 months.
	AdoptedSuggestions       int
	ExperienceSharingChaired int
}

// Criterion is one evaluated criterion, as PromotionEligibilityEvaluated
// records it. Required and Observed are for people; RequiredValue and
// ObservedValue are the exact values compared (months for E1, the mean
// score for E2, the attainment ratio for E3, the count for E4). An observed
// value that is not exact at 1e-4 is rounded down, so that comparing the two
// values always agrees with Passed.
type Criterion struct {
	Code          string       `json:"code"`
	Description   string       `json:"description"`
	Required      string       `json:"required"`
	Observed      string       `json:"observed"`
	RequiredValue domain.Fixed `json:"required_value"`
	ObservedValue domain.Fixed `json:"observed_value"`
	Passed        bool         `json:"passed"`
}

// CodeNoRule is the code of the single failed criterion returned for a
// transition the rule set does not cover.
const CodeNoRule = "no_rule"

// Evaluate checks a nominee against the rule of the transition and returns
// every criterion that applies (E1–E4, in order) and whether all passed.
// A transition without a rule yields one failed criterion CodeNoRule that
// says so: the nominee is ineligible, with the reason. Evaluate never
// panics on missing data: an absent figure fails its criterion.
func Evaluate(rules EligibilityRules, t Transition, o Observed) ([]Criterion, bool) {
	rule, ok := rules.Rule(t)
	if !ok {
		return []Criterion{{
			Code:        CodeNoRule,
			Description: "a promotion rule for this transition",
			Required:    fmt.Sprintf("a rule for %s", t),
			Observed:    fmt.Sprintf("no rule for this transition in eligibility rules v%d", rules.Version),
		}}, false
	}
	cs := []Criterion{timeInRole(rule, o), evaluations(rule, o), revenue(rule, o)}
	if rule.MinCulture != nil {
		cs = append(cs, culture(*rule.MinCulture, o))
	}
	eligible := true
	for _, c := range cs {
		eligible = eligible && c.Passed
	}
	return cs, eligible
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// MonthsBetween counts whole calendar months from since to at: a month is
// complete on the same day of a later month. It is 0 when at is not after
// since.
func MonthsBetween(since, at time.Time) int {
	y1, m1, d1 := since.UTC().Date()
	y2, m2, d2 := at.UTC().Date()
	n := (y2-y1)*12 + int(m2) - int(m1)
	if d2 < d1 {
		n--
	}
	return max(n, 0)
}

func timeInRole(rule EligibilityRule, o Observed) Criterion {
	c := Criterion{
		Code:          "E1",
		Description:   "time in current role at the effective date",
		Required:      fmt.Sprintf("≥ %s as %s", plural(rule.MinMonthsInRole, "month"), rule.Transition.From),
		RequiredValue: domain.FixedFromInt(int64(rule.MinMonthsInRole)),
	}
	if o.RoleSince.IsZero() || o.EffectiveOn.IsZero() {
		c.Observed = "unknown: no role start or no effective date"
		return c
	}
	m := MonthsBetween(o.RoleSince, o.EffectiveOn)
	c.ObservedValue = domain.FixedFromInt(int64(m))
	c.Observed = fmt.Sprintf("%s (in role since %s, effective %s)", plural(m, "month"),
		o.RoleSince.UTC().Format(time.DateOnly), o.EffectiveOn.UTC().Format(time.DateOnly))
	c.Passed = m >= rule.MinMonthsInRole
	return c
}

func evaluations(rule EligibilityRule, o Observed) Criterion {
	c := Criterion{
		Code:          "E2",
		Description:   "mean of the last finalized monthly evaluations",
		Required:      fmt.Sprintf("mean of the last %s ≥ %s", plural(rule.Evaluations, "evaluation"), floor2(rule.MinMeanEvaluation)),
		RequiredValue: rule.MinMeanEvaluation,
	}
	if rule.EvaluationFloor != nil {
		c.Required += fmt.Sprintf(", none < %s", floor2(*rule.EvaluationFloor))
	}
	n := rule.Evaluations
	if len(o.Evaluations) < n || n <= 0 {
		c.Observed = fmt.Sprintf("only %d of %d finalized", len(o.Evaluations), n)
		return c
	}
	last := o.Evaluations[len(o.Evaluations)-n:]
	sum := new(big.Rat)
	lowest := last[0]
	for _, e := range last {
		sum.Add(sum, ratFixed(e))
		lowest = min(lowest, e)
	}
	mean := quo(sum, ratInt(int64(n)))
	c.ObservedValue = fixedFloor(mean)
	c.Observed = fmt.Sprintf("mean %s of %s, lowest %s", floor2(c.ObservedValue), plural(n, "evaluation"), floor2(lowest))
	c.Passed = mean.Cmp(ratFixed(rule.MinMeanEvaluation)) >= 0 &&
		(rule.EvaluationFloor == nil || lowest >= *rule.EvaluationFloor)
	return c
}

func revenue(rule EligibilityRule, o Observed) Criterion {
	whose, rev, target := "own", o.Revenue, o.RevenueTarget
	if rule.TeamRevenue {
		whose, rev, target = "team", o.TeamRevenue, o.TeamRevenueTarget
	}
	c := Criterion{
		Code:          "E3",
		Description:   whose + " revenue attainment over the trailing 12 months",
		Required:      fmt.Sprintf("%s revenue attainment ≥ %s %%", whose, percent(rule.MinRevenueAttainment)),
		RequiredValue: rule.MinRevenueAttainment,
	}
	a, err := revenueRatio(rev, target)
	if err != nil {
		c.Observed = fmt.Sprintf("unknown: %s revenue %s against target %s", whose, minor(rev), floor2(target))
		return c
	}
	c.ObservedValue = fixedFloor(a)
	c.Observed = fmt.Sprintf("%s %% (%s of %s)", percent(c.ObservedValue), minor(rev), floor2(target))
	c.Passed = a.Cmp(ratFixed(rule.MinRevenueAttainment)) >= 0
	return c
}

func culture(need int, o Observed) Criterion {
	got := o.AdoptedSuggestions + o.ExperienceSharingChaired
	return Criterion{
		Code:          "E4",
		Description:   "adopted suggestions + experience-sharing meetings chaired in 12 months",
		Required:      fmt.Sprintf("≥ %d", need),
		Observed:      fmt.Sprintf("%d (%s adopted, %s chaired)", got, plural(o.AdoptedSuggestions, "suggestion"), plural(o.ExperienceSharingChaired, "meeting")),
		RequiredValue: domain.FixedFromInt(int64(need)),
		ObservedValue: domain.FixedFromInt(int64(got)),
		Passed:        got >= need,
	}
}

// floor2 renders f rounded down to two decimals ("99.99" for 99.9999), so a
// displayed value never seems to pass a threshold it fails.
func floor2(f domain.Fixed) string {
	v := int64(f)
	q := v / 100
	if v%100 < 0 {
		q--
	}
	sign := ""
	if q < 0 {
		sign, q = "-", -q
	}
	return fmt.Sprintf("%s%d.%02d", sign, q/100, q%100)
}

// percent renders a ratio at 1e-4 as a percentage with two decimals.
func percent(ratio domain.Fixed) string { return floor2(ratio * 100) }

// minor renders minor units as a major amount with two decimals.
func minor(v int64) string { return floor2(domain.Fixed(v * (domain.FixedScale / MinorPerMajor))) }
