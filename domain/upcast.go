package domain

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"
)

// An upcaster turns the JSON of an old stored version into the JSON of the
// next version (to). DecodePayload follows the chain to the current version.
// Every stored version keeps a golden file in testdata/<Type>.vN.json whose
// decoding is tested, so old events stay readable for good.
type upcaster struct {
	to string
	fn func(data []byte) ([]byte, error)
}

// upcasters maps an OLD stored name to its upcaster.
var upcasters = map[string]upcaster{
	"SaleClosed.v1": {to: "SaleClosed.v2", fn: upcastSaleClosedV1},
}

// saleClosedV1 is the stored form of SaleClosed.v1: the amount was a JSON
// number in major units ("amount": 1234.5).
type saleClosedV1 struct {
	SaleID     string      `json:"sale_id"`
	MemberID   string      `json:"member_id"`
	Customer   string      `json:"customer"`
	Amount     json.Number `json:"amount"`
	Currency   string      `json:"currency"`
	OccurredAt time.Time   `json:"occurred_at"`
}

// upcastSaleClosedV1 converts the decimal amount into minor units of the
// currency (ISO 4217 exponent), exactly from the decimal text, rounding
// half to even when v1 stored more digits than the currency has.
func upcastSaleClosedV1(data []byte) ([]byte, error) {
	var v1 saleClosedV1
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, err
	}
	minor, err := majorToMinor(string(v1.Amount), v1.Currency)
	if err != nil {
		return nil, err
	}
	return json.Marshal(SaleClosed{
		SaleID:      v1.SaleID,
		MemberID:    v1.MemberID,
		Customer:    v1.Customer,
		AmountMinor: minor,
		Currency:    v1.Currency,
		OccurredAt:  v1.OccurredAt,
	})
}

// majorToMinor converts a decimal amount in major units to minor units of
// currency, rounding half to even.
func majorToMinor(amount, currency string) (int64, error) {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return 0, fmt.Errorf("currency %q is not an ISO 4217 code", currency)
	}
	r, ok := new(big.Rat).SetString(amount)
	if !ok {
		return 0, fmt.Errorf("amount %q is not a number", amount)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil)))
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	// Round half to even on the remainder m/denom (sign follows the numerator).
	twice := new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2))
	switch c := twice.Cmp(r.Denom()); {
	case c > 0 || (c == 0 && q.Bit(0) == 1):
		if r.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("amount %q out of range", amount)
	}
	return q.Int64(), nil
}
