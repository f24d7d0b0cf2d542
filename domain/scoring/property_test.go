package scoring_test

import (
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

func drawActuals(t *rapid.T, r scoring.Rules) map[string]int64 {
	out := map[string]int64{}
	for _, k := range r.KPIs {
		hi := int64(200)
		if k.Money() {
			hi = 10_000_000
		}
		out[k.Code] = rapid.Int64Range(0, hi).Draw(t, k.Code)
	}
	return out
}

func drawTargets(t *rapid.T, r scoring.Rules) map[string]domain.Fixed {
	out := map[string]domain.Fixed{}
	for _, k := range r.KPIs {
		out[k.Code] = domain.Fixed(rapid.Int64Range(1, 10_000*domain.FixedScale).Draw(t, "target_"+k.Code))
	}
	return out
}

func TestPropertyQuantityScoreIsBoundedAndMonotone(t *testing.T) {
	r := scoring.DefaultRules()
	rapid.Check(t, func(t *rapid.T) {
		actuals, targets := drawActuals(t, r), drawTargets(t, r)
		q, err := r.QuantityScore(actuals, targets)
		if err != nil {
			t.Fatal(err)
		}
		if q < 0 || q > domain.FixedFromInt(150) {
			t.Fatalf("Q = %s outside [0, 150]", q)
		}
		k := rapid.SampledFrom(r.KPIs).Draw(t, "kpi")
		more := map[string]int64{}
		for c, v := range actuals {
			more[c] = v
		}
		more[k.Code] += rapid.Int64Range(1, 1000).Draw(t, "more")
		q2, err := r.QuantityScore(more, targets)
		if err != nil {
			t.Fatal(err)
		}
		if q2 < q {
			t.Fatalf("more %s lowered Q from %s to %s", k.Code, q, q2)
		}
	})
}

func TestPropertyWeeklyTotalLiesBetweenItsComponents(t *testing.T) {
	r := scoring.DefaultRules()
	rapid.Check(t, func(t *rapid.T) {
		q := domain.Fixed(rapid.Int64Range(0, 150*domain.FixedScale).Draw(t, "Q"))
		ratings := rapid.SliceOfN(rapid.IntRange(1, 5), 1, 7).Draw(t, "ratings")
		quality, has, err := scoring.Quality(ratings...)
		if err != nil || !has {
			t.Fatalf("Quality(%v) = %v, %v", ratings, has, err)
		}
		w := r.WeeklyTotal(q, quality, true)
		if w < min(q, quality) || w > max(q, quality) {
			t.Fatalf("W = %s outside [%s, %s]", w, min(q, quality), max(q, quality))
		}
	})
}

func TestPropertyEvaluationLiesBetweenPresentComponents(t *testing.T) {
	r := scoring.DefaultRules()
	opt := func(t *rapid.T, name string) *domain.Fixed {
		if !rapid.Bool().Draw(t, name+"_present") {
			return nil
		}
		f := domain.Fixed(rapid.Int64Range(0, 150*domain.FixedScale).Draw(t, name))
		return &f
	}
	rapid.Check(t, func(t *rapid.T) {
		c := scoring.Components{Objective: opt(t, "O"), Rollup: opt(t, "R"), Manager: opt(t, "M")}
		e, ok := r.Evaluation(c)
		var present []domain.Fixed
		for _, p := range []*domain.Fixed{c.Objective, c.Rollup, c.Manager} {
			if p != nil {
				present = append(present, *p)
			}
		}
		if ok != (len(present) > 0) {
			t.Fatalf("ok = %v with %d components", ok, len(present))
		}
		if ok && (e < minOf(present) || e > maxOf(present)) {
			t.Fatalf("E = %s outside its components %v", e, present)
		}
	})
}

func minOf(s []domain.Fixed) domain.Fixed {
	m := s[0]
	for _, v := range s {
		m = min(m, v)
	}
	return m
}

func maxOf(s []domain.Fixed) domain.Fixed {
	m := s[0]
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// referenceBonus computes B × f(a) with integers only: f in 1e-5 units.
func referenceBonus(base int64, a domain.Fixed) int64 {
	var f int64
	switch {
	case a < 8000:
		f = 0
	case a <= 10000:
		f = 50_000 + 25*(int64(a)-8000)
	default:
		f = min(100_000+15*(int64(a)-10000), 200_000)
	}
	n := base * f
	q, rem := n/100_000, n%100_000
	if 2*rem > 100_000 || (2*rem == 100_000 && q%2 == 1) {
		q++
	}
	return q
}

func TestPropertyGoalBonusMatchesIntegerReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := rapid.Int64Range(0, 1_000_000).Draw(t, "base")
		a := domain.Fixed(rapid.Int64Range(0, 30_000).Draw(t, "a"))
		if got, want := scoring.GoalBonus(base, a), referenceBonus(base, a); got != want {
			t.Fatalf("GoalBonus(%d, %s) = %d, want %d", base, a, got, want)
		}
	})
}

func TestPropertyGoalBonusIsMonotoneAndBounded(t *testing.T) {
	r := scoring.DefaultRules()
	roles := []string{scoring.RoleSalesAssistant, scoring.RoleSalesperson, scoring.RoleSalesSupervisor, scoring.RoleGeneralManager}
	rapid.Check(t, func(t *rapid.T) {
		role := rapid.SampledFrom(roles).Draw(t, "role")
		target := domain.Fixed(rapid.Int64Range(1, 50_000_000*domain.FixedScale).Draw(t, "target"))
		revenue := rapid.Int64Range(0, 100_000_000).Draw(t, "revenue")
		sale := rapid.Int64Range(0, 100_000_000).Draw(t, "sale")
		b, err := r.GoalBonusFor(role, revenue, target)
		if err != nil {
			t.Fatal(err)
		}
		more, err := r.GoalBonusFor(role, revenue+sale, target)
		if err != nil {
			t.Fatal(err)
		}
		if more.Amount < b.Amount || more.Amount > 2*more.Base {
			t.Fatalf("bonus %d then %d (base %d)", b.Amount, more.Amount, more.Base)
		}
		claw, err := r.Clawback(role, more.Amount, revenue+sale, target, sale)
		if err != nil {
			t.Fatal(err)
		}
		if claw != more.Amount-b.Amount {
			t.Fatalf("clawback %d, want %d − %d", claw, more.Amount, b.Amount)
		}
	})
}

func TestPropertyRollupLiesBetweenWeeks(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "weeks")
		var weeks []scoring.WeightedScore
		var sum, days big.Rat
		var scores []domain.Fixed
		for range n {
			s := domain.Fixed(rapid.Int64Range(0, 150*domain.FixedScale).Draw(t, "score"))
			d := rapid.IntRange(1, 5).Draw(t, "days")
			weeks = append(weeks, scoring.WeightedScore{Score: s, WorkingDays: d})
			scores = append(scores, s)
			sum.Add(&sum, new(big.Rat).Mul(big.NewRat(int64(s), 1), big.NewRat(int64(d), 1)))
			days.Add(&days, big.NewRat(int64(d), 1))
		}
		got, ok := scoring.Rollup(weeks)
		if !ok || got < minOf(scores) || got > maxOf(scores) {
			t.Fatalf("R = %s, %v outside %v", got, ok, scores)
		}
		// Within half a unit of the exact weighted mean.
		exact := new(big.Rat).Quo(&sum, &days)
		diff := new(big.Rat).Sub(exact, big.NewRat(int64(got), 1))
		if diff.Abs(diff).Cmp(big.NewRat(1, 2)) > 0 {
			t.Fatalf("R = %s, exact %s", got, exact.FloatString(6))
		}
	})
}
