package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// warmQuiet is how long the head of the log must stay still before a
// server warms its as-of boards: it never competes with a load of writes.
const warmQuiet = 10 * time.Second

// Period words of --asof-warm, besides literal periods (2026, 2026-Q4):
// the current period of a kind (UTC), or the year before the current one.
const (
	warmThisYear = "year"
	warmLastYear = "last-year"
	warmQuarter  = "quarter"
	warmMonth    = "month"
	warmWeek     = "week"
)

// defaultWarm is --asof-warm's default: the boards whose first as_of
// request replays the most events.
const defaultWarm = warmThisYear + "," + warmLastYear + "," + warmQuarter + "," + warmMonth + "," + warmWeek

// warmWords are the period words and the kind of period each names.
var warmWords = map[string]domain.PeriodKind{warmThisYear: domain.PeriodYear, warmLastYear: domain.PeriodYear,
	warmQuarter: domain.PeriodQuarter, warmMonth: domain.PeriodMonth, warmWeek: domain.PeriodWeek}

// parseWarm reads --asof-warm: comma-separated periods, each a period the
// boards take (2026, 2026-Q4, 2026-11, 2026-W47) or a period word; empty or
// "none" means none.
func parseWarm(s string) ([]string, error) {
	var out []string
	if strings.TrimSpace(s) == "none" {
		return nil, nil
	}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, word := warmWords[p]; !word {
			if _, err := projections.LeaderboardBoardScope(projections.MetricRevenue, p); err != nil {
				return nil, fmt.Errorf("--asof-warm: period %q: want a year, quarter, month or week (2026, 2026-Q4, 2026-11, 2026-W47), "+
					"one of %s (the current one) or %s, or none", p, strings.Join([]string{warmThisYear, warmQuarter, warmMonth, warmWeek}, ", "), warmLastYear)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// warmPeriods resolves the period words of periods at now, leaving out a
// period named twice (this week may be this month's, named literally too).
func warmPeriods(periods []string, now time.Time) []string {
	out := make([]string, 0, len(periods))
	for _, p := range periods {
		if kind, word := warmWords[p]; word {
			t := now.UTC()
			if p == warmLastYear {
				t = t.AddDate(-1, 0, 0)
			}
			p = domain.PeriodOf(kind, t).String()
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// warmAsOf readies, in the background, the as-of boards of periods (every
// metric's): it builds each as of now, as a request would, so that the
// snapshots of those builds, spread over the log and kept across restarts,
// leave only a short tail to replay for any later as_of request of those
// boards. A year's boards are the slowest to build from nothing (a year's
// activity points over a million events: 2–3 s on two cores); once warmed,
// a request replays only what follows the nearest snapshot.
//
// It warms only while the server is quiet, when progress (a figure that
// grows while the server works: see app.progress) has not moved for a whole
// interval: first, then again each time the log has grown by a snapshot
// interval since, until ctx ends. Each round runs lean (leanMemory). An as_of
// request stops it (projections.AsOf.Prepare gives way); it goes on from
// the snapshots taken once the server is quiet again. A server whose
// snapshots are kept warms only the events appended since.
func warmAsOf(ctx context.Context, a *projections.AsOf, periods []string, interval time.Duration,
	progress func(context.Context) (uint64, error), now func() time.Time, logger *slog.Logger) {
	if len(periods) == 0 {
		return
	}
	warmed := -1 // events of the log when last warmed
	last, err := progress(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		h, herr := progress(ctx)
		quiet := err == nil && herr == nil && h == last
		last, err = h, herr
		if !quiet {
			continue
		}
		n, ierr := a.Indexed(ctx)
		if ierr != nil {
			if ctx.Err() == nil {
				logger.Warn("as-of warm-up: the log cannot be indexed", "error", ierr)
			}
			continue
		}
		if warmed >= 0 && n-warmed < a.SnapshotEvery() {
			continue
		}
		start := time.Now()
		t := now()
		resolved := warmPeriods(periods, t)
		restore := leanMemory()
		err := warmOnce(ctx, a, resolved, t)
		restore()
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, projections.ErrGaveWay):
				logger.Info("as-of warm-up gave way to a request; it goes on once the server is quiet again")
			default:
				logger.Warn("as-of warm-up failed; as_of requests build what they need", "error", err)
			}
			continue
		}
		warmed = n
		logger.Info("as-of boards warmed", "periods", strings.Join(resolved, ","),
			"events", n, "took", time.Since(start).Round(time.Millisecond))
	}
}

// warmOnce prepares the snapshots of the boards of every metric of periods
// as of t, one after the other; it stops at the first that gives way to a
// request (projections.ErrGaveWay).
func warmOnce(ctx context.Context, a *projections.AsOf, periods []string, t time.Time) error {
	leaderboard := projections.NewLeaderboard("").Name()
	var errs []error
	for _, p := range periods {
		for _, metric := range projections.BoardMetrics {
			scope, err := projections.LeaderboardBoardScope(metric, p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := a.Prepare(ctx, t, scope, leaderboard); err != nil {
				if ctx.Err() != nil || errors.Is(err, projections.ErrGaveWay) {
					return err
				}
				errs = append(errs, fmt.Errorf("%s %s: %w", metric, p, err))
			}
		}
	}
	return errors.Join(errs...)
}
