package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// TestLeaderboardForgetsTheOrganisationOfBatchesNotCommitted: the
// leaderboard keeps what it read of the organisation (members' names,
// teams and roles, teams' names) between its batches. A batch that renames
// a team, moves a member to another team and credits both there, then is
// rolled back (after Finish or before it), leaves none of that in the
// tables: the batches after it credit the teams and names committed, as a
// leaderboard that never saw that batch does. Both the full leaderboard and
// a board leaderboard (an as-of board view's) are checked.
func TestLeaderboardForgetsTheOrganisationOfBatchesNotCommitted(t *testing.T) {
	events := goldenEvents(t, "leaderboard")
	last := events[len(events)-1].Event
	pos := len(events)
	envelope := func(p domain.Payload, at time.Time) projections.Envelope {
		pos++
		data, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		e := domain.Event{ID: "org-" + strconv.Itoa(pos), Type: p.EventType(), Stream: "org-test", Data: data,
			OccurredAt: at, RecordedAt: last.RecordedAt, Position: domain.Seq(uint64(pos))}
		return projections.Envelope{Event: e, Payload: p}
	}
	day := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	// m-ana and m-ben are in t-north; the batch that is not committed renames
	// t-north and moves m-ana to t-ops from the first of November.
	uncommitted := []projections.Envelope{
		envelope(&domain.TeamFormed{TeamID: "t-north", Name: "Renamed", Department: "sales", Region: "north"}, day),
		envelope(&domain.MemberTransferred{MemberID: "m-ana", FromTeamID: "t-north", ToTeamID: "t-ops", EffectiveOn: "2026-11-01"}, day),
		envelope(&domain.ActivityLogged{ActivityID: "a-org-1", MemberID: "m-ana", Kind: "call", Quantity: 2, OccurredAt: day}, day),
		envelope(&domain.ActivityLogged{ActivityID: "a-org-2", MemberID: "m-ben", Kind: "call", Quantity: 2, OccurredAt: day}, day),
		envelope(&domain.SaleClosed{SaleID: "s-org-1", MemberID: "m-ana", Customer: "ACME", AmountMinor: 1000, Currency: "EUR", OccurredAt: day}, day),
	}
	later := day.Add(time.Hour)
	committed := []projections.Envelope{
		envelope(&domain.ActivityLogged{ActivityID: "a-org-3", MemberID: "m-ana", Kind: "demo", Quantity: 1, OccurredAt: later}, later),
		envelope(&domain.ActivityLogged{ActivityID: "a-org-4", MemberID: "m-ben", Kind: "demo", Quantity: 1, OccurredAt: later}, later),
		envelope(&domain.SaleClosed{SaleID: "s-org-2", MemberID: "m-ana", Customer: "ACME", AmountMinor: 2500, Currency: "EUR", OccurredAt: later}, later),
	}
	ctx := context.Background()
	wantDB := goldenDB(t)
	goldenProject(t, wantDB, projections.NewLeaderboard(""), append(append([]projections.Envelope{}, events...), committed...), 0)
	want := projectionstest.Tables(t, wantDB, "")

	for _, finish := range []bool{true, false} {
		for _, board := range append([]struct{ metric, period string }{{}}, boardsUnderTest...) {
			t.Run(fmt.Sprintf("finished_%v_%s_%s", finish, board.metric, board.period), func(t *testing.T) {
				p := projections.NewLeaderboard("")
				if board.metric != "" {
					p = projections.NewBoardLeaderboard(board.metric, board.period)
				}
				db := goldenDB(t)
				goldenProject(t, db, p, events, 0)
				applyRolledBack(t, db, p, uncommitted, finish)
				goldenTx(t, db, func(tx *sql.Tx) error { return p.Apply(ctx, tx, committed) })
				got := projectionstest.Tables(t, db, "")
				if board.metric == "" {
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("tables after a batch not committed differ from those without it (-want +got):\n%s", diff)
					}
					return
				}
				if diff := cmp.Diff(boardRows(want["totals"], board.metric, board.period),
					boardRows(got["totals"], board.metric, board.period)); diff != "" {
					t.Errorf("board after a batch not committed differs from the full leaderboard's without it (-want +got):\n%s", diff)
				}
			})
		}
	}
}
