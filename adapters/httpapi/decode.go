package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"perfledger/domain"
)

// MaxBodyBytes is the largest request body accepted (DESIGN.md: ≤ 1 MiB).
const MaxBodyBytes = 1 << 20

// readBody reads the whole request body, refusing more than MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, &apiError{Code: codeTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Code: codeTooLarge, Message: fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)}
		}
		return nil, &apiError{Code: codeInvalid, Message: "could not read the request body", cause: err}
	}
	return body, nil
}

// decodeStrict decodes exactly one JSON value from body into v: unknown
// fields, trailing data, wrong types and malformed JSON are errors with a
// message that says where.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errInvalid("the request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errInvalid("the request body must hold a single JSON value; found data after it")
	}
	return nil
}

// jsonError turns an encoding/json error into a message a person can act on.
func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return errInvalid(fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errInvalid(fmt.Sprintf("the body must be a JSON %s, not %s", typ.Type.Kind(), typ.Value))
		}
		return errInvalid(fmt.Sprintf("field %q: want %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errInvalid("the JSON body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return errInvalid(strings.TrimPrefix(err.Error(), "json: ") + ": remove it (see /v1/openapi.json)")
	}
	// Errors from a field's UnmarshalJSON (dates, decimals, periods …) carry
	// their own message.
	return errInvalid("invalid value: " + err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return k
}

// params reads query parameters, remembering the first problem, so that a
// handler can read them all and then check one error.
type params struct {
	r   *http.Request
	err error
}

func (p *params) fail(name, want string) {
	if p.err == nil {
		p.err = errInvalid(fmt.Sprintf("query parameter %q: want %s", name, want))
	}
}

func (p *params) str(name string) string { return p.r.URL.Query().Get(name) }

func (p *params) period(name string, required bool) string {
	s := p.str(name)
	if s == "" {
		if required {
			p.fail(name, `a period such as "2026-W47", "2026-11", "2026-Q4" or "2026"`)
		}
		return ""
	}
	per, err := domain.ParsePeriod(s)
	if err != nil {
		p.fail(name, `a period such as "2026-W47", "2026-11", "2026-Q4" or "2026"`)
		return ""
	}
	return per.String()
}

func (p *params) date(name string) time.Time {
	s := p.str(name)
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		p.fail(name, "a date YYYY-MM-DD or an RFC 3339 time")
		return time.Time{}
	}
	return t
}

func (p *params) oneOf(name string, def string, allowed ...string) string {
	s := p.str(name)
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	p.fail(name, "one of "+strings.Join(allowed, ", "))
	return def
}

func (p *params) limit() int {
	s := p.str("limit")
	if s == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit {
		p.fail("limit", fmt.Sprintf("an integer from 1 to %d", MaxLimit))
		return DefaultLimit
	}
	return n
}

func (p *params) position(name string) domain.Position {
	s := p.str(name)
	if s == "" {
		return domain.Position{}
	}
	pos, err := domain.ParsePosition(s)
	if err != nil {
		p.fail(name, `a ledger position as returned by a write ("123" or "123/120")`)
	}
	return pos
}

// Pagination bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)
