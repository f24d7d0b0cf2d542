package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"perfledger/domain"
)

// code is a stable, machine-readable error code of the API. Each code has
// exactly one HTTP status (see codeStatus): the one code table of the API.
type code string

const (
	codeInvalid         code = "invalid"
	codeUnauthenticated code = "unauthenticated"
	codeForbidden       code = "forbidden"
	codeNotFound        code = "not_found"
	codeMethod          code = "method_not_allowed"
	codeConflict        code = "conflict"
	codeTooLarge        code = "too_large"
	codeUnsupported     code = "unsupported_media_type"
	codeRuleViolated    code = "rule_violated"
	codeRateLimited     code = "rate_limited"
	codeInternal        code = "internal"
	codeUnavailable     code = "unavailable"
	codeTimeout         code = "timeout"
)

// codeStatus is the one code table: error code → HTTP status.
var codeStatus = map[code]int{
	codeInvalid:         http.StatusBadRequest,
	codeUnauthenticated: http.StatusUnauthorized,
	codeForbidden:       http.StatusForbidden,
	codeNotFound:        http.StatusNotFound,
	codeMethod:          http.StatusMethodNotAllowed,
	codeConflict:        http.StatusConflict,
	codeTooLarge:        http.StatusRequestEntityTooLarge,
	codeUnsupported:     http.StatusUnsupportedMediaType,
	codeRuleViolated:    http.StatusUnprocessableEntity,
	codeRateLimited:     http.StatusTooManyRequests,
	codeInternal:        http.StatusInternalServerError,
	codeUnavailable:     http.StatusServiceUnavailable,
	codeTimeout:         http.StatusGatewayTimeout,
}

// apiError is an error the API answers with. Message is shown to the client
// and must say what to change; it never carries internal details.
type apiError struct {
	Code       code
	Message    string
	RetryAfter int   // seconds, for 429 and 503; 0 = no header
	cause      error // logged, never shown
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.cause.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *apiError) Unwrap() error { return e.cause }

func errInvalid(msg string) error   { return &apiError{Code: codeInvalid, Message: msg} }
func errForbidden(msg string) error { return &apiError{Code: codeForbidden, Message: msg} }
func errNotFound(msg string) error  { return &apiError{Code: codeNotFound, Message: msg} }

// domainCodes maps the domain's sentinel errors to API codes. The first match
// wins; order from the most to the least specific.
var domainCodes = []struct {
	err  error
	code code
}{
	{domain.ErrInvalid, codeInvalid},
	{domain.ErrInvalidAppend, codeInvalid},
	{domain.ErrNotFound, codeNotFound},
	{domain.ErrRuleViolated, codeRuleViolated},
	{domain.ErrAlreadyExists, codeConflict},
	{domain.ErrConflict, codeConflict},
	{domain.ErrForbidden, codeForbidden},
	{domain.ErrKeyNotFound, codeNotFound},
	{domain.ErrKeyDestroyed, codeRuleViolated},
}

// toAPIError translates any error once, at the boundary, into an apiError.
// Domain errors keep their message (the domain writes messages a person can
// act on); anything else becomes an internal error without details.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{Code: codeTooLarge, Message: "request body exceeds " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
	}
	for _, m := range domainCodes {
		if errors.Is(err, m.err) {
			return &apiError{Code: m.code, Message: err.Error(), cause: err}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{Code: codeTimeout, Message: "the request took too long; retry later", cause: err}
	}
	if errors.Is(err, context.Canceled) {
		return &apiError{Code: codeUnavailable, Message: "the request was cancelled", cause: err}
	}
	return &apiError{Code: codeInternal, Message: "internal error; it has been logged", cause: err}
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    code   `json:"code"`
	Message string `json:"message"`
}

// writeError is the one error renderer. It returns the status written.
func writeError(w http.ResponseWriter, ae *apiError) int {
	status, ok := codeStatus[ae.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	if ae.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if ae.Code == codeUnauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="ledger"`)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: ae.Code, Message: ae.Message}})
	return status
}
