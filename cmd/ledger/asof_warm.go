package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// warmQuiet is how long the head of the log must stay still before a
// server warms its as-of boards: it never competes with a load of writes.
const warmQuiet = 10 * time.Second

// Period words of --asof-warm, besides literal periods (2026, 2026-Q4).
const (
	warmThisYear = "year"      // the current year (UTC)
	warmLastYear = "last-year" // the year before it
)

// parseWarm reads --asof-warm: comma-separated periods, each a period the
// boards take (2026, 2026-Q4, 2026-11, 2026-W47) or "year" or "last-year";
// empty means none.
func parseWarm(s string) ([]string, error) {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if p != warmThisYear && p != warmLastYear {
			if _, err := projections.LeaderboardBoardScope(projections.MetricRevenue, p); err != nil {
				return nil, fmt.Errorf("--asof-warm: period %q: want a year, quarter, month or week (2026, 2026-Q4, 2026-11, 2026-W47), %s or %s",
					p, warmThisYear, warmLastYear)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// warmPeriods resolves the period words of periods at now.
func warmPeriods(periods []string, now time.Time) []string {
	out := make([]string, 0, len(periods))
	for _, p := range periods {
		switch p {
		case warmThisYear:
			p = strconv.Itoa(now.UTC().Year())
		case warmLastYear:
			p = strconv.Itoa(now.UTC().Year() - 1)
		}
		out = append(out, p)
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
// It warms only while the server is quiet, when head (the last position of
// the log) has not moved for a whole interval: first, then again each time
// the log has grown by a snapshot interval since, until ctx ends. An as_of
// request stops it (projections.AsOf.Prepare gives way); it goes on from
// the snapshots taken once the server is quiet again. A server whose
// snapshots are kept warms only the events appended since.
func warmAsOf(ctx context.Context, a *projections.AsOf, periods []string, interval time.Duration,
	head func(context.Context) (domain.Position, error), now func() time.Time, logger *slog.Logger) {
	if len(periods) == 0 {
		return
	}
	warmed := -1 // events of the log when last warmed
	last, err := head(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		h, herr := head(ctx)
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
		if err := warmOnce(ctx, a, resolved, t); err != nil {
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
