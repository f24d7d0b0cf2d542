package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Fixed is an exact decimal with four fractional digits (ten-thousandths),
// used for scores, weights, caps and rates in stored events so that no binary
// float is ever persisted. It encodes in JSON as a decimal string ("100.2170").
type Fixed int64

// FixedScale is the number of Fixed units in 1.
const FixedScale = 10000

// FixedFromFloat rounds f half-to-even to four decimals.
func FixedFromFloat(f float64) Fixed {
	return Fixed(math.RoundToEven(f * FixedScale))
}

// FixedFromInt returns n as a Fixed.
func FixedFromInt(n int64) Fixed { return Fixed(n * FixedScale) }

// Float64 returns f as a float64 for computation.
func (f Fixed) Float64() float64 { return float64(f) / FixedScale }

// String renders f with four decimals, e.g. "100.2170", "-0.5000".
func (f Fixed) String() string {
	v := int64(f)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%04d", sign, v/FixedScale, v%FixedScale)
}

// Round2 renders f rounded half-to-even to two decimals, for display
// ("100.22"). Ranking always compares the exact value.
func (f Fixed) Round2() string {
	v := int64(f)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	q, r := v/100, v%100
	if r > 50 || (r == 50 && q%2 == 1) {
		q++
	}
	return fmt.Sprintf("%s%d.%02d", sign, q/100, q%100)
}

// ParseFixed reads a decimal such as "100.217", "-3" or "0.2" with at most
// four fractional digits.
func ParseFixed(s string) (Fixed, error) {
	t := strings.TrimSpace(s)
	neg := strings.HasPrefix(t, "-")
	t = strings.TrimPrefix(t, "-")
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" || len(frac) > 4 || strings.ContainsAny(whole+frac, "+-") {
		return 0, fmt.Errorf("decimal %q: want digits with at most 4 decimals", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/FixedScale-1 {
		return 0, fmt.Errorf("decimal %q: want digits with at most 4 decimals", s)
	}
	var fr int64
	if frac != "" {
		fr, err = strconv.ParseInt((frac + "0000")[:4], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("decimal %q: want digits with at most 4 decimals", s)
		}
	}
	v := w*FixedScale + fr
	if neg {
		v = -v
	}
	return Fixed(v), nil
}

// MarshalJSON encodes f as a JSON string.
func (f Fixed) MarshalJSON() ([]byte, error) { return []byte(`"` + f.String() + `"`), nil }

// UnmarshalJSON accepts a JSON string or number with at most four decimals.
func (f *Fixed) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := ParseFixed(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}
