package scoring

import (
	"fmt"
	"math/big"
	"time"

	"perfledger/domain"
)

// TargetKey names a TargetSet for one subject: a KPI and an exact period.
type TargetKey struct {
	KPI    string
	Period domain.Period
}

// Target is the target that applies to a subject, KPI and period.
type Target struct {
	// Value in the KPI's unit (a count; major units for money).
	Value domain.Fixed
	// Set is true when Value comes from a TargetSet for that exact period,
	// false when it is derived from the role norm.
	Set bool
}

// TargetFor returns the target that applies to a member of the given role
// for a KPI and period. A TargetSet for that exact KPI and period (in set,
// which holds the subject's known targets, revisions applied) wins.
// Otherwise the target is the role's weekly norm × the period's working days
// (Mon–Fri) / 5: the norm itself for a week, the norm × working days / 5 for
// a month, and the same rule for a quarter or a year. A derived target is
// rounded half-even to 1e-4. A known target that is zero or negative is
// ErrInvalidTarget.
func (r Rules) TargetFor(role, kpi string, p domain.Period, set map[TargetKey]domain.Fixed) (Target, error) {
	k, err := r.KPI(kpi)
	if err != nil {
		return Target{}, err
	}
	if v, ok := set[TargetKey{KPI: kpi, Period: p}]; ok {
		if v <= 0 {
			return Target{}, fmt.Errorf("%w: %s %s is %s", ErrInvalidTarget, kpi, p, v)
		}
		return Target{Value: v, Set: true}, nil
	}
	m, err := r.NormMultiplier(role)
	if err != nil {
		return Target{}, err
	}
	norm := mul(ratFixed(k.WeeklyNorm), ratFixed(m))
	v := quo(mul(norm, ratInt(int64(p.WorkingDaysIn()))), ratInt(5))
	return Target{Value: fixedHalfEven(v)}, nil
}

// Targets returns the applicable target of every KPI of the rule set, by
// KPI code, as TargetFor does.
func (r Rules) Targets(role string, p domain.Period, set map[TargetKey]domain.Fixed) (map[string]domain.Fixed, error) {
	out := make(map[string]domain.Fixed, len(r.KPIs))
	for _, k := range r.KPIs {
		t, err := r.TargetFor(role, k.Code, p, set)
		if err != nil {
			return nil, err
		}
		out[k.Code] = t.Value
	}
	return out, nil
}

// attainment is the exact capped attainment â = clamp(a, 0, cap), where
// a = x/t for higher-is-better, a = t/x for lower-is-better and a = cap
// when a lower-is-better actual is 0.
func attainment(k KPI, actual int64, target domain.Fixed) (*big.Rat, error) {
	if actual < 0 {
		return nil, fmt.Errorf("%w: %s actual %d", ErrInvalidQuantity, k.Code, actual)
	}
	if target <= 0 {
		return nil, fmt.Errorf("%w: %s target %s", ErrInvalidTarget, k.Code, target)
	}
	x, t, c := ratInt(actual), ratFixed(target), ratFixed(k.Cap)
	if k.Money() {
		x = big.NewRat(actual, MinorPerMajor)
	}
	var a *big.Rat
	switch {
	case k.Direction == Lower && actual == 0:
		a = c
	case k.Direction == Lower:
		a = quo(t, x)
	default:
		a = quo(x, t)
	}
	return clamp(a, ratZero, c), nil
}

// Attainment returns the capped attainment of a KPI (DOMAIN.md §3) for an
// actual (a count; minor units for money) and a target in the KPI's unit (a
// count; major units for money), rounded half-even to 1e-4 for display. Scores are
// computed from the exact value, not from this rounded one.
func Attainment(k KPI, actual int64, target domain.Fixed) (domain.Fixed, error) {
	a, err := attainment(k, actual, target)
	if err != nil {
		return 0, err
	}
	return fixedHalfEven(a), nil
}

// QuantityScore returns the weekly quantity score Q = 100 × Σ w_k × â_k over
// every KPI of the rule set, from exact attainments, rounded half-even to
// 1e-4. A KPI missing from actuals counts as 0; a KPI missing from targets
// is ErrInvalidTarget. The result lies in [0, 100 × the largest cap].
func (r Rules) QuantityScore(actuals map[string]int64, targets map[string]domain.Fixed) (domain.Fixed, error) {
	q, _, err := r.quantity(actuals, targets)
	if err != nil {
		return 0, err
	}
	return fixedHalfEven(q), nil
}

func (r Rules) quantity(actuals map[string]int64, targets map[string]domain.Fixed) (*big.Rat, map[string]domain.Fixed, error) {
	sum := new(big.Rat)
	shown := make(map[string]domain.Fixed, len(r.KPIs))
	for _, k := range r.KPIs {
		t, ok := targets[k.Code]
		if !ok {
			return nil, nil, fmt.Errorf("%w: no target for %s", ErrInvalidTarget, k.Code)
		}
		a, err := attainment(k, actuals[k.Code], t)
		if err != nil {
			return nil, nil, err
		}
		shown[k.Code] = fixedHalfEven(a)
		sum.Add(sum, mul(ratFixed(k.Weight), a))
	}
	return mul(sum, ratHundr), shown, nil
}

// ratingScore maps a mean rating on 1–5 to 100 × (r − 1) / 4.
func ratingScore(mean *big.Rat) *big.Rat {
	return quo(mul(sub(mean, ratOne), ratHundr), ratInt(4))
}

// Quality returns the weekly quality score q = 100 × (r − 1) / 4 of the mean
// of the week's ratings (each 1–5), rounded half-even to 1e-4. With no
// rating it returns false: the week has no quality component.
func Quality(ratings ...int) (domain.Fixed, bool, error) {
	if len(ratings) == 0 {
		return 0, false, nil
	}
	var sum int64
	for _, r := range ratings {
		if r < 1 || r > 5 {
			return 0, false, fmt.Errorf("%w: got %d", ErrInvalidRating, r)
		}
		sum += int64(r)
	}
	return fixedHalfEven(ratingScore(big.NewRat(sum, int64(len(ratings))))), true, nil
}

// ManagerScore returns M, the monthly manager rating (1–5) mapped like the
// quality score: 100 × (r − 1) / 4.
func ManagerScore(rating int) (domain.Fixed, error) {
	q, _, err := Quality(rating)
	return q, err
}

// WeeklyTotal returns W = α·Q + (1−α)·q, rounded half-even to 1e-4. Without a
// quality rating (hasQuality false) W = Q: a missing component is never
// averaged in as zero.
func (r Rules) WeeklyTotal(quantity, quality domain.Fixed, hasQuality bool) domain.Fixed {
	if !hasQuality {
		return quantity
	}
	a := ratFixed(r.Alpha)
	w := add(mul(a, ratFixed(quantity)), mul(sub(ratOne, a), ratFixed(quality)))
	return fixedHalfEven(w)
}

// WeekScore is a member's score for one week.
type WeekScore struct {
	// Attainments by KPI code: capped, rounded for display.
	Attainments map[string]domain.Fixed
	Quantity    domain.Fixed // Q
	Quality     domain.Fixed // q; meaningful only when HasQuality
	// HasQuality is false when the week has no quality rating; the
	// scorecard must say so, and Total is then Q alone.
	HasQuality bool
	Total      domain.Fixed // W
}

// Week scores one week from the KPI actuals (by KPI code; a count, minor
// units for money), the applicable targets (see Targets) and the week's
// quality ratings (possibly none). Q and q are rounded as stored and W is
// computed from them.
func (r Rules) Week(actuals map[string]int64, targets map[string]domain.Fixed, ratings []int) (WeekScore, error) {
	qr, shown, err := r.quantity(actuals, targets)
	if err != nil {
		return WeekScore{}, err
	}
	quality, has, err := Quality(ratings...)
	if err != nil {
		return WeekScore{}, err
	}
	s := WeekScore{Attainments: shown, Quantity: fixedHalfEven(qr), Quality: quality, HasQuality: has}
	s.Total = r.WeeklyTotal(s.Quantity, s.Quality, has)
	return s, nil
}

// WeekShare is an ISO week and the number of its working days (Mon–Fri)
// that fall inside a given month.
type WeekShare struct {
	Week        domain.Period
	WorkingDays int
}

// MonthWeeks returns the ISO weeks that have at least one working day inside
// the month, in order, with those working days counted. The counts sum to
// the month's working days.
func MonthWeeks(month domain.Period) []WeekShare {
	start, end := month.Start(), month.End()
	var out []WeekShare
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
			continue
		}
		w := domain.PeriodOf(domain.PeriodWeek, d)
		if n := len(out); n > 0 && out[n-1].Week == w {
			out[n-1].WorkingDays++
			continue
		}
		out = append(out, WeekShare{Week: w, WorkingDays: 1})
	}
	return out
}

// WeightedScore is a weekly total and its weight in a roll-up: the week's
// working days inside the month.
type WeightedScore struct {
	Score       domain.Fixed
	WorkingDays int
}

// Rollup returns the monthly roll-up R: the weekly totals weighted by their
// working days inside the month, rounded half-even to 1e-4. Weeks without a
// score are simply not passed (they are left out, not counted as zero).
// It returns false when no week carries a positive weight.
func Rollup(weeks []WeightedScore) (domain.Fixed, bool) {
	sum, days := new(big.Rat), int64(0)
	for _, w := range weeks {
		if w.WorkingDays <= 0 {
			continue
		}
		sum.Add(sum, mul(ratFixed(w.Score), ratInt(int64(w.WorkingDays))))
		days += int64(w.WorkingDays)
	}
	if days == 0 {
		return 0, false
	}
	return fixedHalfEven(quo(sum, ratInt(days))), true
}

// Objective returns O = 100 × clamp(revenue / target, 0, cap) with the cap
// of the revenue KPI, revenue in minor units and the target in major units,
// rounded half-even to 1e-4.
func (r Rules) Objective(revenue int64, target domain.Fixed) (domain.Fixed, error) {
	k, ok := r.RevenueKPI()
	if !ok {
		return 0, fmt.Errorf("%w: rules v%d score no revenue", ErrUnknownKPI, r.Version)
	}
	a, err := attainment(k, revenue, target)
	if err != nil {
		return 0, err
	}
	return fixedHalfEven(mul(a, ratHundr)), nil
}

// Components are the components of a monthly evaluation (O, R, M) as
// EvaluationFinalized stores them; a nil component is missing.
type Components = domain.EvaluationComponents

// Evaluation returns the monthly evaluation E = w_O·O + w_R·R + w_M·M,
// rounded half-even to 1e-4. Missing components are left out and the
// weights of the present ones renormalised to sum to 1. It returns false
// when no component (of positive weight) is present.
func (r Rules) Evaluation(c Components) (domain.Fixed, bool) {
	sum, weights := new(big.Rat), new(big.Rat)
	for _, p := range []struct {
		v *domain.Fixed
		w domain.Fixed
	}{{c.Objective, r.Weights.Objective}, {c.Rollup, r.Weights.Rollup}, {c.Manager, r.Weights.Manager}} {
		if p.v == nil || p.w <= 0 {
			continue
		}
		sum.Add(sum, mul(ratFixed(p.w), ratFixed(*p.v)))
		weights.Add(weights, ratFixed(p.w))
	}
	if weights.Sign() == 0 {
		return 0, false
	}
	return fixedHalfEven(quo(sum, weights)), true
}

// Mean returns the mean of scores, rounded half-even to 1e-4, or false for
// none. A quarter is the mean of its months' evaluations and a year the mean
// of its quarters (Quarter, Year).
func Mean(scores []domain.Fixed) (domain.Fixed, bool) {
	if len(scores) == 0 {
		return 0, false
	}
	sum := new(big.Rat)
	for _, s := range scores {
		sum.Add(sum, ratFixed(s))
	}
	return fixedHalfEven(quo(sum, ratInt(int64(len(scores))))), true
}

// Quarter returns the mean of the evaluated months of a quarter.
func Quarter(months []domain.Fixed) (domain.Fixed, bool) { return Mean(months) }

// Year returns the mean of the scored quarters of a year.
func Year(quarters []domain.Fixed) (domain.Fixed, bool) { return Mean(quarters) }
