package domain

import (
	"errors"
	"fmt"
)

// Domain errors returned by decisions and by the Service. Every error the
// Service returns for a refused command wraps exactly one of them (test with
// errors.Is); the message says what to change. The HTTP layer maps them:
// ErrInvalid 400, ErrNotFound 404, ErrRuleViolated 422, ErrAlreadyExists 409,
// ErrForbidden 403 (and ErrConflict 409 when retries are exhausted).
var (
	// ErrInvalid: the input is malformed (bad period, date or currency code,
	// non-positive quantity or amount, rating outside 1–5, missing field).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: a referenced member, team, target, activity, sale,
	// promotion, suggestion or reward does not exist.
	ErrNotFound = errors.New("not found")
	// ErrRuleViolated: well-formed, but a business rule forbids it (member not
	// joined or left, promotion not upward on the ladder, evaluation month not
	// ended, currency not the rule set's …).
	ErrRuleViolated = errors.New("rule violated")
	// ErrAlreadyExists: the thing already exists or was already done (second
	// finalization of a month, voiding an already voided activity …).
	ErrAlreadyExists = errors.New("already exists")
	// ErrForbidden: separation of duties (DOMAIN.md §5) forbids this actor.
	ErrForbidden = errors.New("forbidden")
)

// ErrUnknownEventType is wrapped by DecodePayload for a type it cannot decode.
var ErrUnknownEventType = errors.New("unknown event type")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func notFoundf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotFound}, args...)...)
}

func violatedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRuleViolated}, args...)...)
}

func existsf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrAlreadyExists}, args...)...)
}

func forbiddenf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrForbidden}, args...)...)
}
