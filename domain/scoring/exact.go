package scoring

import (
	"math/big"

	"perfledger/domain"
)

// Exact arithmetic helpers. Every formula of this package is evaluated on
// rationals (math/big.Rat) and rounded once, at the end, to the unit that is
// stored: 1e-4 for scores (domain.Fixed) and one minor unit for money.

var (
	ratScale = big.NewRat(domain.FixedScale, 1)
	ratZero  = new(big.Rat)
	ratOne   = big.NewRat(1, 1)
	ratHundr = big.NewRat(100, 1)
)

// ratFixed returns f as an exact rational.
func ratFixed(f domain.Fixed) *big.Rat { return big.NewRat(int64(f), domain.FixedScale) }

// ratInt returns n as an exact rational.
func ratInt(n int64) *big.Rat { return new(big.Rat).SetInt64(n) }

// mul, quo, add, sub return new rationals and leave their operands alone.
func mul(a, b *big.Rat) *big.Rat { return new(big.Rat).Mul(a, b) }
func quo(a, b *big.Rat) *big.Rat { return new(big.Rat).Quo(a, b) }
func add(a, b *big.Rat) *big.Rat { return new(big.Rat).Add(a, b) }
func sub(a, b *big.Rat) *big.Rat { return new(big.Rat).Sub(a, b) }

// clamp limits r to [lo, hi].
func clamp(r, lo, hi *big.Rat) *big.Rat {
	switch {
	case r.Cmp(lo) < 0:
		return new(big.Rat).Set(lo)
	case r.Cmp(hi) > 0:
		return new(big.Rat).Set(hi)
	}
	return new(big.Rat).Set(r)
}

// roundHalfEven rounds r to the nearest integer, ties to even.
func roundHalfEven(r *big.Rat) *big.Int {
	q, m := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int)) // floor, 0 <= m < den
	switch new(big.Int).Lsh(m, 1).Cmp(r.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// floorInt rounds r toward negative infinity.
func floorInt(r *big.Rat) *big.Int {
	q, _ := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	return q
}

// fixedHalfEven rounds r half-to-even to 1e-4.
func fixedHalfEven(r *big.Rat) domain.Fixed {
	return domain.Fixed(roundHalfEven(mul(r, ratScale)).Int64())
}

// fixedFloor rounds r down to 1e-4. Flooring keeps every comparison with a
// threshold that is itself a domain.Fixed exactly as it was on r.
func fixedFloor(r *big.Rat) domain.Fixed {
	return domain.Fixed(floorInt(mul(r, ratScale)).Int64())
}
