package domain

import (
	"fmt"
	"strconv"
	"time"
)

// PeriodKind is the granularity of a reporting period.
type PeriodKind uint8

const (
	PeriodWeek PeriodKind = iota + 1
	PeriodMonth
	PeriodQuarter
	PeriodYear
)

func (k PeriodKind) String() string {
	switch k {
	case PeriodWeek:
		return "week"
	case PeriodMonth:
		return "month"
	case PeriodQuarter:
		return "quarter"
	case PeriodYear:
		return "year"
	}
	return "unknown"
}

// ParsePeriodKind reads "week", "month", "quarter" or "year".
func ParsePeriodKind(s string) (PeriodKind, error) {
	for k := PeriodWeek; k <= PeriodYear; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("period kind %q: want week, month, quarter or year", s)
}

// Period is an ISO week ("2026-W47"), a month ("2026-11"), a quarter
// ("2026-Q4") or a year ("2026"). All periods are in UTC.
type Period struct {
	Kind PeriodKind
	Year int
	N    int // week 1–53, month 1–12, quarter 1–4; 0 for a year
}

// ParsePeriod reads the four forms above and rejects anything else,
// including weeks that the ISO year does not have.
func ParsePeriod(s string) (Period, error) {
	bad := func() (Period, error) {
		return Period{}, fmt.Errorf("period %q: want YYYY, YYYY-MM, YYYY-Qn or YYYY-Www (e.g. 2026-W47)", s)
	}
	if len(s) < 4 {
		return bad()
	}
	year, err := strconv.Atoi(s[:4])
	if err != nil || year < 1970 || year > 9999 || s[0] == '+' || s[0] == '-' {
		return bad()
	}
	rest := s[4:]
	num := func(t string, lo, hi int) (int, bool) {
		if len(t) != 2 && !(len(t) == 1 && hi < 10) {
			return 0, false
		}
		n, err := strconv.Atoi(t)
		if err != nil || n < lo || n > hi || t[0] == '+' || t[0] == '-' {
			return 0, false
		}
		return n, true
	}
	switch {
	case rest == "":
		return Period{Kind: PeriodYear, Year: year}, nil
	case len(rest) == 3 && rest[0] == '-' && rest[1] != 'Q' && rest[1] != 'W':
		if n, ok := num(rest[1:], 1, 12); ok {
			return Period{Kind: PeriodMonth, Year: year, N: n}, nil
		}
	case len(rest) == 3 && rest[:2] == "-Q":
		if n, ok := num(rest[2:], 1, 4); ok {
			return Period{Kind: PeriodQuarter, Year: year, N: n}, nil
		}
	case len(rest) == 4 && rest[:2] == "-W":
		if n, ok := num(rest[2:], 1, 53); ok && n <= isoWeeksInYear(year) {
			return Period{Kind: PeriodWeek, Year: year, N: n}, nil
		}
	}
	return bad()
}

func isoWeeksInYear(year int) int {
	_, w := time.Date(year, 12, 28, 0, 0, 0, 0, time.UTC).ISOWeek()
	return w
}

// String renders the canonical form parsed by ParsePeriod.
func (p Period) String() string {
	switch p.Kind {
	case PeriodWeek:
		return fmt.Sprintf("%04d-W%02d", p.Year, p.N)
	case PeriodMonth:
		return fmt.Sprintf("%04d-%02d", p.Year, p.N)
	case PeriodQuarter:
		return fmt.Sprintf("%04d-Q%d", p.Year, p.N)
	case PeriodYear:
		return fmt.Sprintf("%04d", p.Year)
	}
	return ""
}

// Start is the first instant of the period (UTC).
func (p Period) Start() time.Time {
	switch p.Kind {
	case PeriodWeek:
		// ISO week 1 contains January 4th.
		jan4 := time.Date(p.Year, 1, 4, 0, 0, 0, 0, time.UTC)
		offset := (int(jan4.Weekday()) + 6) % 7 // days since Monday
		return jan4.AddDate(0, 0, -offset+7*(p.N-1))
	case PeriodMonth:
		return time.Date(p.Year, time.Month(p.N), 1, 0, 0, 0, 0, time.UTC)
	case PeriodQuarter:
		return time.Date(p.Year, time.Month(3*(p.N-1)+1), 1, 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(p.Year, 1, 1, 0, 0, 0, 0, time.UTC)
	}
}

// End is the first instant after the period (exclusive).
func (p Period) End() time.Time {
	s := p.Start()
	switch p.Kind {
	case PeriodWeek:
		return s.AddDate(0, 0, 7)
	case PeriodMonth:
		return s.AddDate(0, 1, 0)
	case PeriodQuarter:
		return s.AddDate(0, 3, 0)
	default:
		return s.AddDate(1, 0, 0)
	}
}

// Contains reports whether t falls inside the period.
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.Start()) && t.Before(p.End())
}

// PeriodOf returns the period of the given kind that contains t.
func PeriodOf(kind PeriodKind, t time.Time) Period {
	t = t.UTC()
	switch kind {
	case PeriodWeek:
		y, w := t.ISOWeek()
		return Period{Kind: PeriodWeek, Year: y, N: w}
	case PeriodMonth:
		return Period{Kind: PeriodMonth, Year: t.Year(), N: int(t.Month())}
	case PeriodQuarter:
		return Period{Kind: PeriodQuarter, Year: t.Year(), N: (int(t.Month())-1)/3 + 1}
	default:
		return Period{Kind: PeriodYear, Year: t.Year()}
	}
}

// WorkingDays counts Monday–Friday days in [from, to).
func WorkingDays(from, to time.Time) int {
	n := 0
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n++
		}
	}
	return n
}

// WorkingDaysIn counts the period's Monday–Friday days.
func (p Period) WorkingDaysIn() int { return WorkingDays(p.Start(), p.End()) }
