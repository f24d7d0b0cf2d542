package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of free text in commands (bytes).
const (
	maxName   = 200
	maxText   = 4000
	maxList   = 500
	futureTol = 24 * time.Hour // how far in the future a business time may be
)

func requireText(field, v string, max int) error {
	if strings.TrimSpace(v) == "" {
		return invalidf("%s is required", field)
	}
	return optText(field, v, max)
}

func optText(field, v string, max int) error {
	if len(v) > max {
		return invalidf("%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(v) {
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

func requireDate(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, invalidf("%s is required (YYYY-MM-DD)", field)
	}
	t, err := time.Parse(DateLayout, v)
	if err != nil {
		return time.Time{}, invalidf("%s %q: want a date YYYY-MM-DD", field, v)
	}
	return t, nil
}

func requireRating(r int) error {
	if r < 1 || r > 5 {
		return invalidf("rating %d: want a whole number from 1 to 5", r)
	}
	return nil
}

func requirePeriod(field, v string, kind PeriodKind) (Period, error) {
	p, err := ParsePeriod(v)
	if err != nil {
		return Period{}, fmt.Errorf("%w: %s: %w", ErrInvalid, field, err)
	}
	if kind != 0 && p.Kind != kind {
		return Period{}, invalidf("%s %q: want a %s (e.g. %s)", field, v, kind, PeriodOf(kind, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)))
	}
	return p, nil
}

// businessTime returns t in UTC (now when zero), refusing a time more than a
// day in the future.
func businessTime(field string, t, now time.Time) (time.Time, error) {
	if t.IsZero() {
		return now.UTC(), nil
	}
	if t.After(now.Add(futureTol)) {
		return time.Time{}, invalidf("%s %s is in the future", field, t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

// stateOf asserts the state kind a command needs.
func stateOf[T State](s State, cmd string) (T, error) {
	t, ok := s.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s: state %T is not %T", cmd, s, zero)
	}
	return t, nil
}

// activeSelf checks the command's own member stream: the member joined and
// has not left.
func activeSelf(s *MemberState, id string) error {
	if !s.Joined {
		return notFoundf("member %q is not a member (never joined)", id)
	}
	if s.Left {
		return violatedf("member %q left on %s; nothing more is recorded for them", id, s.LeftOn)
	}
	return nil
}

// joinedSelf checks that the member joined (corrections remain possible
// after a member left: they fix what was recorded while they were a member).
func joinedSelf(s *MemberState, id string) error {
	if !s.Joined {
		return notFoundf("member %q is not a member (never joined)", id)
	}
	return nil
}

func dateOf(t time.Time) string { return t.UTC().Format(DateLayout) }
