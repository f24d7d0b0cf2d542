package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// boardsUnderTest are a few boards of the golden leaderboard log's period.
var boardsUnderTest = []struct{ metric, period string }{
	{projections.MetricRevenue, "2026"}, {projections.MetricActivityPoints, "2026-11"},
	{projections.MetricAttainment, "2026-Q4"}, {projections.MetricActivityPoints, "2026-W47"},
}

// TestBoardLeaderboardRereadsItsJournal: a board leaderboard (an as-of
// board view's) keeps its contributions in memory between batches, and a
// journal of them in its tables. A batch that does not commit, rolled back
// after Finish or before it, leaves the memory ahead of the tables: the
// next batch reads the journal back, and the boards are those of the
// batches committed alone. A new instance over the same tables (a build
// continued from a copy) reads it too. With a bound of a few contributions
// in memory, they are spilled into sc_contrib midway, and the same holds.
func TestBoardLeaderboardRereadsItsJournal(t *testing.T) {
	events := goldenEvents(t, "leaderboard")
	// At the end, in a log the domain did not write: the activity and the
	// sale voided again (a row already voided, read back or spilled, stays
	// voided); an activity's id logged again in its week (it is not
	// counted twice), another's a week later, then voided (the latest
	// week's is); and a sale re-credited by a late transfer reversed
	// (it is taken from the team it was moved to).
	again := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for _, p := range []domain.Payload{&domain.ActivityVoided{ActivityID: "a-dan-1", MemberID: "m-dan", Reason: "again"},
		&domain.SaleReversed{SaleID: "s-eve-1", MemberID: "m-eve", Reason: "again"},
		&domain.ActivityLogged{ActivityID: "a-ben-1", MemberID: "m-ben", Kind: "call", Quantity: 7, OccurredAt: again.AddDate(0, 0, -7)},
		&domain.ActivityLogged{ActivityID: "a-ana-1", MemberID: "m-ana", Kind: "demo", Quantity: 1, OccurredAt: again},
		&domain.ActivityVoided{ActivityID: "a-ana-1", MemberID: "m-ana", Reason: "the second one"},
		&domain.SaleReversed{SaleID: "s-dan-1", MemberID: "m-dan", Reason: "after the transfer"}} {
		last := events[len(events)-1].Event
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		e := domain.Event{ID: "again-" + strconv.Itoa(len(events)), Type: p.EventType(), Stream: "member-again", Data: data,
			OccurredAt: last.OccurredAt, RecordedAt: last.RecordedAt, Position: domain.Seq(uint64(len(events) + 1))}
		events = append(events, projections.Envelope{Event: e, Payload: p})
	}
	ctx := context.Background()
	const batch = 3
	// 4: spilled before the first void; 9: after it.
	for _, bound := range []int32{0, 4, 9} {
		for _, board := range boardsUnderTest {
			t.Run(fmt.Sprintf("%s_%s_bound_%d", board.metric, board.period, bound), func(t *testing.T) {
				// The full leaderboard's rows of the board.
				wantDB := goldenDB(t)
				goldenProject(t, wantDB, projections.NewLeaderboard(""), events, 0)
				want := boardRows(projectionstest.Tables(t, wantDB, "")["totals"], board.metric, board.period)
				if len(want) == 0 {
					t.Fatal("no rows to compare")
				}
				if bound > 0 {
					defer projections.SetMaxBoardContribs(bound)()
				}

				db := goldenDB(t)
				p := projections.NewBoardLeaderboard(board.metric, board.period)
				goldenTx(t, db, func(tx *sql.Tx) error { return p.Setup(ctx, tx) })
				for i, n := 0, 0; i < len(events); i, n = i+batch, n+1 {
					run := events[i:min(i+batch, len(events))]
					if n%2 == 1 {
						applyRolledBack(t, db, p, run, true)
					}
					if n%3 == 2 {
						applyRolledBack(t, db, p, run, false)
					}
					if n == 4 { // a new instance over the same tables
						p = projections.NewBoardLeaderboard(board.metric, board.period)
					}
					goldenTx(t, db, func(tx *sql.Tx) error { return p.Apply(ctx, tx, run) })
				}
				got := projectionstest.Tables(t, db, "")
				if diff := cmp.Diff(want, boardRows(got["totals"], board.metric, board.period)); diff != "" {
					t.Errorf("boards after failed batches differ from the full leaderboard's (-full +board):\n%s", diff)
				}
				if spilled := len(got["sc_contrib"]) > 0; spilled != (bound > 0) {
					t.Errorf("contributions spilled into sc_contrib: %v, with a bound of %d", spilled, bound)
				}
			})
		}
	}
}

// boardRows are the rows of totals (projectionstest.Tables) of one metric
// and period.
// applyRolledBack gives run to a batch of p in a transaction it rolls
// back, after the batch's Finish or before it.
func applyRolledBack(t *testing.T, db *sql.DB, p projections.Projector, run []projections.Envelope, finish bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	b, err := p.(projections.Batcher).Begin(ctx, tx)
	if err == nil {
		err = b.Add(ctx, run)
	}
	if err == nil && finish {
		err = b.Finish(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func boardRows(totals []string, metric, period string) []string {
	var out []string
	for _, r := range totals {
		if strings.Contains(r, "metric="+metric+"\t") && strings.Contains(r, "\tperiod="+period+"\t") {
			out = append(out, r)
		}
	}
	return out
}

// countingLog counts the events a log yields.
type countingLog struct {
	filteringLog
	n *atomic.Int64
}

func (l countingLog) ReadAllWhere(ctx context.Context, after, upTo domain.Position, keep func(domain.Event) bool) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.filteringLog.ReadAllWhere(ctx, after, upTo, func(e domain.Event) bool {
			l.n.Add(1)
			return keep(e)
		}) {
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestBoardViewsContinueFromCopies: as-of board views built from a
// snapshot or from a cached view of an earlier time (whose contributions
// are in its journal, or spilled into sc_contrib) answer as a full replay,
// for each metric, over a demo log with voids, late transfers and a
// promotion.
func TestBoardViewsContinueFromCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a demo log many times")
	}
	// The promotion changes the attainment of every period of the
	// member's sales, read back from a copy.
	log := lateChangesLog(t, 20, 3, "2025-04-07")
	org := orgOf(t, log)
	n := len(log.events)
	times := []time.Time{log.events[n*2/5].RecordedAt, log.events[n*7/10].RecordedAt, log.events[n-1].RecordedAt}
	ctx := context.Background()
	full := newLeaderboardAsOf(t, log)
	wants := map[string]periodAnswers{}
	for _, at := range times {
		whole, release, err := full.At(ctx, at, "leaderboard")
		if err != nil {
			t.Fatal(err)
		}
		for _, period := range []string{"2025", "2025-Q1", "2025-02"} {
			wants[period+" "+at.String()] = answersFor(t, whole, period, org)
		}
		release()
	}
	for _, bound := range []int32{0, 25} {
		t.Run("bound_"+strconv.Itoa(int(bound)), func(t *testing.T) {
			if bound > 0 {
				defer projections.SetMaxBoardContribs(bound)()
			}
			var read atomic.Int64
			dir := t.TempDir()
			var files atomic.Int64
			next := func() string { return filepath.Join(dir, fmt.Sprintf("v%d.db", files.Add(1))) }
			scoped, err := projections.NewAsOf(projections.AsOfConfig{
				Log:         countingLog{filteringLog{log}, &read},
				Projections: []projections.Factory{projections.NewLeaderboard},
				Open:        func(context.Context) (*sql.DB, func(), error) { return openTempDB(next()) },
				Copy: func(ctx context.Context, src *sql.DB) (*sql.DB, func(), error) {
					p := next()
					if _, err := src.ExecContext(ctx, "VACUUM INTO ?", p); err != nil {
						return nil, nil, err
					}
					return openTempDB(p)
				},
				SnapshotEvery: n / 7, CacheSize: 3,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = scoped.Close() }()
			continued := 0
			for _, metric := range boardMetrics {
				for _, period := range []string{"2025", "2025-Q1", "2025-02"} {
					for k, at := range times {
						scope, err := projections.LeaderboardBoardScope(metric, period)
						if err != nil {
							t.Fatal(err)
						}
						before := read.Load()
						part, done, err := scoped.AtScope(ctx, at, scope, "leaderboard")
						if err != nil {
							t.Fatal(err)
						}
						if k > 0 && read.Load()-before < int64(part.Events()) {
							continued++
						}
						want := metricRows(wants[period+" "+at.String()].Rows, metric)
						got := metricRows(answersFor(t, part, period, org).Rows, metric)
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("%s boards of %s as of %s: differ from the full replay (-full +board view):\n%s", metric, period,
								at.Format(time.RFC3339), diff)
						}
						done()
					}
				}
			}
			if continued < len(boardMetrics)*3 {
				t.Errorf("%d builds continued from a copy", continued)
			}
		})
	}
}

// TestBoardLeaderboardSpillsWhatMemoryCannotHold: an activity whose time
// memory cannot hold (past 2262, in a log the domain did not write) makes
// a board leaderboard spill its contributions into sc_contrib, and it still
// counts, as in the full leaderboard.
func TestBoardLeaderboardSpillsWhatMemoryCannotHold(t *testing.T) {
	events := goldenEvents(t, "leaderboard")
	last := events[len(events)-1].Event
	far := time.Date(2300, 1, 5, 10, 0, 0, 0, time.UTC)
	for k, id := range []string{"a-late-1", "a-late-2"} {
		p := &domain.ActivityLogged{ActivityID: id, MemberID: "m-ana", Kind: "call", Quantity: int64(3 + k), OccurredAt: far}
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		e := domain.Event{ID: "late-" + id, Type: p.EventType(), Stream: "member-m-ana", Data: data,
			OccurredAt: far, RecordedAt: last.RecordedAt, Position: domain.Seq(uint64(len(events) + 1))}
		events = append(events, projections.Envelope{Event: e, Payload: p})
	}
	fullDB, boardDB := goldenDB(t), goldenDB(t)
	goldenProject(t, fullDB, projections.NewLeaderboard(""), events, 0)
	goldenProject(t, boardDB, projections.NewBoardLeaderboard(projections.MetricActivityPoints, "2300"), events, 0)
	want := boardRows(projectionstest.Tables(t, fullDB, "")["totals"], projections.MetricActivityPoints, "2300")
	got := projectionstest.Tables(t, boardDB, "")
	if len(want) == 0 {
		t.Fatal("the full leaderboard has no rows of 2300")
	}
	if diff := cmp.Diff(want, boardRows(got["totals"], projections.MetricActivityPoints, "2300")); diff != "" {
		t.Errorf("the board of 2300 differs from the full leaderboard's rows (-full +board):\n%s", diff)
	}
	if len(got["sc_contrib"]) == 0 {
		t.Error("nothing was spilled into sc_contrib")
	}
}
