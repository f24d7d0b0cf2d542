package domain

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// A fast path for the payloads most of a log is made of, activities and
// sales: their data as json.Marshal writes it (every field in the struct's
// order, strings without escapes, plain integers) is read without
// reflection, about a fifth of encoding/json's time. Anything else (another
// order, an escape, a field unknown or missing, a space) goes to
// encoding/json, so the result is always what json.Unmarshal gives:
// TestFastPayloadsDecodeAsEncodingJSON checks it on random payloads and on
// random changes to their data.

// canonReader reads canonical JSON; ok turns false at the first byte it
// does not expect, and the caller then falls back to encoding/json.
type canonReader struct {
	b  []byte
	ok bool
}

// lit reads the bytes of s.
func (r *canonReader) lit(s string) {
	if r.ok && len(r.b) >= len(s) && string(r.b[:len(s)]) == s {
		r.b = r.b[len(s):]
		return
	}
	r.ok = false
}

// opt reads the bytes of s if what follows starts with them (an optional
// field's key), and reports whether it did.
func (r *canonReader) opt(s string) bool {
	if r.ok && len(r.b) >= len(s) && string(r.b[:len(s)]) == s {
		r.b = r.b[len(s):]
		return true
	}
	return false
}

// token reads a string token, quotes included: one without escapes,
// control characters or invalid UTF-8 (which encoding/json would replace).
func (r *canonReader) token() []byte {
	if !r.ok || len(r.b) == 0 || r.b[0] != '"' {
		r.ok = false
		return nil
	}
	end := bytes.IndexByte(r.b[1:], '"') + 1
	if end == 0 {
		r.ok = false
		return nil
	}
	s := r.b[1:end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			r.ok = false
			return nil
		}
	}
	if !utf8.Valid(s) {
		r.ok = false
		return nil
	}
	tok := r.b[:end+1]
	r.b = r.b[end+1:]
	return tok
}

func (r *canonReader) str() string {
	tok := r.token()
	if !r.ok {
		return ""
	}
	return string(tok[1 : len(tok)-1])
}

// int reads an integer as encoding/json writes an int64: -?(0|[1-9][0-9]*).
func (r *canonReader) int() int64 {
	if !r.ok {
		return 0
	}
	n := 0
	if n < len(r.b) && r.b[n] == '-' {
		n++
	}
	start := n
	for n < len(r.b) && r.b[n] >= '0' && r.b[n] <= '9' {
		n++
	}
	if n == start || r.b[start] == '0' && n > start+1 || n < len(r.b) && (r.b[n] == '.' || r.b[n] == 'e' || r.b[n] == 'E') {
		r.ok = false
		return 0
	}
	v, err := strconv.ParseInt(string(r.b[:n]), 10, 64)
	if err != nil {
		r.ok = false
		return 0
	}
	r.b = r.b[n:]
	return v
}

// time reads a time as encoding/json does: time.Time's UnmarshalJSON of the
// token.
func (r *canonReader) time() time.Time {
	tok := r.token()
	var t time.Time
	if r.ok && t.UnmarshalJSON(tok) != nil {
		r.ok = false
	}
	return t
}

// end reads the closing brace, the last byte.
func (r *canonReader) end() bool {
	r.lit("}")
	return r.ok && len(r.b) == 0
}

// decodeActivityLogged is decodeInto[ActivityLogged] with the fast path.
func decodeActivityLogged(typ string, data []byte) (Payload, error) {
	if p, ok := fastActivityLogged(data); ok {
		return p, nil
	}
	return decodeInto[ActivityLogged](typ, data)
}

// fastActivityLogged reads canonical data; false for any other.
func fastActivityLogged(data []byte) (*ActivityLogged, bool) {
	r := canonReader{b: data, ok: true}
	var p ActivityLogged
	r.lit(`{"activity_id":`)
	p.ActivityID = r.str()
	r.lit(`,"member_id":`)
	p.MemberID = r.str()
	r.lit(`,"kind":`)
	p.Kind = r.str()
	r.lit(`,"quantity":`)
	p.Quantity = r.int()
	if r.opt(`,"customer":`) {
		p.Customer = r.str()
	}
	if r.opt(`,"notes":`) {
		p.Notes = r.str()
	}
	r.lit(`,"occurred_at":`)
	p.OccurredAt = r.time()
	return &p, r.end()
}

// decodeSaleClosed is decodeInto[SaleClosed] with the fast path.
func decodeSaleClosed(typ string, data []byte) (Payload, error) {
	if p, ok := fastSaleClosed(data); ok {
		return p, nil
	}
	return decodeInto[SaleClosed](typ, data)
}

// fastSaleClosed reads canonical data; false for any other.
func fastSaleClosed(data []byte) (*SaleClosed, bool) {
	r := canonReader{b: data, ok: true}
	var p SaleClosed
	r.lit(`{"sale_id":`)
	p.SaleID = r.str()
	r.lit(`,"member_id":`)
	p.MemberID = r.str()
	r.lit(`,"customer":`)
	p.Customer = r.str()
	r.lit(`,"amount_minor":`)
	p.AmountMinor = r.int()
	r.lit(`,"currency":`)
	p.Currency = r.str()
	r.lit(`,"occurred_at":`)
	p.OccurredAt = r.time()
	return &p, r.end()
}
