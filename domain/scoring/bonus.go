package scoring

import (
	"fmt"
	"math/big"
	"time"

	"perfledger/domain"
)

var (
	ratFourFifths = big.NewRat(4, 5)
	ratHalf       = big.NewRat(1, 2)
	ratFiveHalves = big.NewRat(5, 2)
	ratThreeHalf  = big.NewRat(3, 2)
	ratTwo        = big.NewRat(2, 1)
)

// bonusFactor is f(a) of DOMAIN.md §6: 0 below 0.80; 0.5 + 2.5·(a − 0.80)
// from 0.80 up to 1.00; 1.0 + 1.5·(a − 1.00) above, capped at 2.0.
func bonusFactor(a *big.Rat) *big.Rat {
	switch {
	case a.Cmp(ratFourFifths) < 0:
		return new(big.Rat)
	case a.Cmp(ratOne) <= 0:
		return add(ratHalf, mul(ratFiveHalves, sub(a, ratFourFifths)))
	default:
		f := add(ratOne, mul(ratThreeHalf, sub(a, ratOne)))
		if f.Cmp(ratTwo) > 0 {
			return new(big.Rat).Set(ratTwo)
		}
		return f
	}
}

// bonusAmount is base × f(a) rounded half-even to the minor unit.
func bonusAmount(base int64, a *big.Rat) int64 {
	return roundHalfEven(mul(ratInt(base), bonusFactor(a))).Int64()
}

// GoalBonus returns the goal bonus B × f(a) in minor units for a base B in
// minor units and a revenue attainment a given as a decimal (1.05 for
// 105 %), computed exactly and rounded half-even to the minor unit.
// Example: GoalBonus(100_000, 1.05) = 107_500 (1 000.00 → 1 075.00).
func GoalBonus(base int64, attainment domain.Fixed) int64 {
	return bonusAmount(base, ratFixed(attainment))
}

// Bonus is a computed goal bonus and the inputs it came from (the basis a
// RewardGranted records).
type Bonus struct {
	RulesVersion int
	Role         string
	Base         int64        // B, minor units
	Revenue      int64        // the month's revenue, minor units
	Target       domain.Fixed // the month's revenue target, major units
	// Attainment is revenue / target rounded half-even to 1e-4, for
	// display; Amount is computed from the exact ratio.
	Attainment domain.Fixed
	Amount     int64 // minor units; 0 when attainment is below 0.80
}

// GoalBonusFor returns the goal bonus of a member of the given role whose
// month closed with revenue (minor units) against target (major units):
// B(role) × f(revenue / target), exact, rounded half-even to the minor unit.
// f has its own cap (2.0); the KPI cap does not apply. A non-positive
// target is ErrInvalidTarget, a negative revenue ErrInvalidQuantity.
func (r Rules) GoalBonusFor(role string, revenue int64, target domain.Fixed) (Bonus, error) {
	base, err := r.BonusBase(role)
	if err != nil {
		return Bonus{}, err
	}
	a, err := revenueRatio(revenue, target)
	if err != nil {
		return Bonus{}, err
	}
	return Bonus{
		RulesVersion: r.Version, Role: role, Base: base, Revenue: revenue, Target: target,
		Attainment: fixedHalfEven(a), Amount: bonusAmount(base, a),
	}, nil
}

func revenueRatio(revenue int64, target domain.Fixed) (*big.Rat, error) {
	if revenue < 0 {
		return nil, fmt.Errorf("%w: revenue %d", ErrInvalidQuantity, revenue)
	}
	if target <= 0 {
		return nil, fmt.Errorf("%w: revenue target %s", ErrInvalidTarget, target)
	}
	return quo(big.NewRat(revenue, MinorPerMajor), ratFixed(target)), nil
}

// Clawback returns the share of a granted goal bonus that a reversed sale
// produced, in minor units: granted − the bonus recomputed without the sale
// (revenue − sale, floored at 0), limited to [0, granted]. granted is the
// bonus still standing (after earlier clawbacks) and revenue the month's
// revenue still counted before this reversal, so that successive reversals
// of the same month claw back exactly down to the bonus of what remains.
func (r Rules) Clawback(role string, granted, revenue int64, target domain.Fixed, sale int64) (int64, error) {
	if sale < 0 || granted < 0 {
		return 0, fmt.Errorf("%w: sale %d, granted %d", ErrInvalidQuantity, sale, granted)
	}
	rest := max(revenue-sale, 0)
	b, err := r.GoalBonusFor(role, rest, target)
	if err != nil {
		return 0, err
	}
	return min(max(granted-b.Amount, 0), granted), nil
}

// ClawbackApplies reports whether a sale closed at closedAt and reversed at
// reversedAt falls inside the rule set's clawback window (the reversal is at
// most ClawbackWindowDays × 24 h after the sale).
func (r Rules) ClawbackApplies(closedAt, reversedAt time.Time) bool {
	d := reversedAt.Sub(closedAt)
	return d >= 0 && d <= time.Duration(r.ClawbackWindowDays)*24*time.Hour
}
