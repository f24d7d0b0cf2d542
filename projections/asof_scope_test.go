package projections_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"perfledger/domain"
	"perfledger/projections"
	"perfledger/projections/projectionstest"
)

// demoSliceLog returns the log of runDemo.
func demoSliceLog(tb testing.TB, members, months int, more ...domain.Command) *sliceLog {
	tb.Helper()
	store := runDemo(tb, members, months, more...)
	defer store.Close()
	log := &sliceLog{}
	for e, err := range store.ReadAll(context.Background(), domain.Position{}) {
		if err != nil {
			tb.Fatal(err)
		}
		log.add(e)
	}
	return log
}

// filteringLog is a sliceLog offering domain.FilteringReader (keep sees
// only an event's position, type, times and a copy of its data) and
// domain.PositionReader.
type filteringLog struct{ *sliceLog }

// positionsRead counts the events read through filteringLog.ReadPositions.
var positionsRead atomic.Int64

func (l filteringLog) ReadPositions(ctx context.Context, positions []domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		l.mu.Lock()
		es := l.events // appending never changes the events already there
		l.mu.Unlock()
		for _, p := range positions {
			i, ok := slices.BinarySearchFunc(es, p, func(e domain.Event, p domain.Position) int {
				switch {
				case e.Position.Less(p):
					return -1
				case p.Less(e.Position):
					return 1
				}
				return 0
			})
			if !ok {
				continue
			}
			positionsRead.Add(1)
			if !yield(es[i], nil) {
				return
			}
		}
	}
}

func (l filteringLog) ReadAllWhere(ctx context.Context, after, upTo domain.Position, keep func(domain.Event) bool) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.ReadAll(ctx, after) {
			if err != nil || (!upTo.IsZero() && upTo.Less(e.Position)) {
				if err != nil {
					yield(domain.Event{}, err)
				}
				return
			}
			head := domain.Event{Position: e.Position, Type: e.Type, OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt,
				Data: slices.Clone(e.Data)}
			if keep(head) && !yield(e, nil) {
				return
			}
		}
	}
}

// newLeaderboardAsOf is an as-of engine of the leaderboard alone over log,
// on temporary SQLite files.
func newLeaderboardAsOf(tb testing.TB, log projections.EventLog) *projections.AsOf {
	tb.Helper()
	return newAsOfOf(tb, log, projections.NewLeaderboard)
}

// newAsOfOf is an as-of engine of some read models over log, on temporary
// SQLite files, without snapshots.
func newAsOfOf(tb testing.TB, log projections.EventLog, models ...projections.Factory) *projections.AsOf {
	tb.Helper()
	dir := tb.TempDir()
	var n atomic.Int64
	a, err := projections.NewAsOf(projections.AsOfConfig{
		Log: log, Projections: models, CacheSize: 2,
		Open: func(context.Context) (*sql.DB, func(), error) {
			return openTempDB(filepath.Join(dir, fmt.Sprintf("v%d.db", n.Add(1))))
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	return a
}

// periodAnswers is everything the leaderboard answers about one period:
// every board row (every metric and scope) and every member's card.
type periodAnswers struct {
	Rows  map[string][]projections.BoardRow // by metric and scope
	Weeks map[string]projections.ScorecardWeek
	Month map[string]projections.ScorecardMonth
}

// demoOrg is what a log names: its members, and the scopes of its boards.
type demoOrg struct {
	members                     []string
	teams, departments, regions map[string]bool
}

func orgOf(tb testing.TB, log *sliceLog) demoOrg {
	tb.Helper()
	o := demoOrg{teams: map[string]bool{}, departments: map[string]bool{}, regions: map[string]bool{}}
	for _, e := range log.events {
		switch e.Type {
		case domain.TypeMemberJoined, domain.TypeTeamFormed:
		default:
			continue
		}
		p, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			tb.Fatal(err)
		}
		switch ev := p.(type) {
		case *domain.MemberJoined:
			o.members = append(o.members, ev.MemberID)
		case *domain.TeamFormed:
			o.teams[ev.TeamID], o.departments[ev.Department], o.regions[ev.Region] = true, true, true
		}
	}
	return o
}

func answersFor(tb testing.TB, v *projections.AsOfView, period string, org demoOrg) periodAnswers {
	tb.Helper()
	ctx := context.Background()
	lb := v.Current("leaderboard").(*projections.Leaderboard)
	per, err := domain.ParsePeriod(period)
	if err != nil {
		tb.Fatal(err)
	}
	out := periodAnswers{Rows: map[string][]projections.BoardRow{}, Weeks: map[string]projections.ScorecardWeek{},
		Month: map[string]projections.ScorecardMonth{}}
	queries := []projections.BoardQuery{{Scope: projections.ScopeCompany}, {Scope: projections.ScopeTeams}}
	for id := range org.teams {
		queries = append(queries, projections.BoardQuery{Scope: projections.ScopeTeam, ScopeID: id})
	}
	for id := range org.departments {
		queries = append(queries, projections.BoardQuery{Scope: projections.ScopeDepartment, ScopeID: id},
			projections.BoardQuery{Scope: projections.ScopeTeams, ScopeID: "department:" + id})
	}
	for id := range org.regions {
		queries = append(queries, projections.BoardQuery{Scope: projections.ScopeRegion, ScopeID: id},
			projections.BoardQuery{Scope: projections.ScopeTeams, ScopeID: "region:" + id})
	}
	for _, metric := range []string{projections.MetricRevenue, projections.MetricActivityPoints, projections.MetricAttainment,
		projections.MetricEvaluation, projections.MetricWeeklyScore, projections.MetricMonthlyScore} {
		for _, q := range queries {
			q.Metric, q.Period = metric, period
			if rows := board(tb, lb, v.DB(), q); len(rows) > 0 {
				out.Rows[metric+" "+q.Scope+" "+q.ScopeID] = rows
			}
		}
	}
	for _, m := range org.members {
		q := projections.ScorecardQuery{MemberID: m, Period: period}
		switch per.Kind {
		case domain.PeriodWeek:
			if w, err := lb.Scorecard().Week(ctx, v.DB(), q); err == nil {
				out.Weeks[m] = w
			} else if !errors.Is(err, domain.ErrNotFound) {
				tb.Fatal(err)
			}
		case domain.PeriodMonth:
			if mo, err := lb.Scorecard().Month(ctx, v.DB(), q); err == nil {
				out.Month[m] = mo
			} else if !errors.Is(err, domain.ErrNotFound) {
				tb.Fatal(err)
			}
		}
	}
	return out
}

// countKept makes scope count the events it keeps, and returns the count.
func countKept(scope *projections.AsOfScope) *atomic.Int64 {
	var kept atomic.Int64
	keep := scope.Keep
	scope.Keep = func(e domain.Event) bool {
		k := keep(e)
		if k {
			kept.Add(1)
		}
		return k
	}
	return &kept
}

// isMonth reports whether period names a month.
func isMonth(period string) bool {
	p, err := domain.ParsePeriod(period)
	return err == nil && p.Kind == domain.PeriodMonth
}

// boardMetrics are the metrics of the boards the API serves.
var boardMetrics = projections.BoardMetrics

// metricRows returns the boards of one metric from periodAnswers.Rows.
func metricRows(rows map[string][]projections.BoardRow, metric string) map[string][]projections.BoardRow {
	out := map[string][]projections.BoardRow{}
	for k, v := range rows {
		if strings.HasPrefix(k, metric+" ") {
			out[k] = v
		}
	}
	return out
}

// board reads every page of a board.
func board(tb testing.TB, lb *projections.Leaderboard, db *sql.DB, q projections.BoardQuery) []projections.BoardRow {
	tb.Helper()
	var rows []projections.BoardRow
	for {
		b, err := lb.Board(context.Background(), db, q)
		if errors.Is(err, projections.ErrInvalidQuery) {
			return nil // a metric the period's kind has no board of
		}
		if err != nil {
			tb.Fatalf("%+v: %v", q, err)
		}
		rows = append(rows, b.Rows...)
		if b.Next == "" {
			return rows
		}
		q.Cursor = b.Next
	}
}

// TestLeaderboardScopeAnswersAsAFullReplay: for every week, month, quarter
// and year of a demo log (with voids, reversals, ratings, targets and a
// revision, finalized evaluations, two transfers recorded late and a
// promotion), the boards of every metric and scope and every member's card,
// as of a time inside the log and as of its end, are the same from a view
// replayed with LeaderboardScope as from a full replay, while the scoped
// replay applies only part of the log.
func TestLeaderboardScopeAnswersAsAFullReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("replays a demo log once per period")
	}
	log := lateChangesLog(t, 20, 4, "2025-05-05")
	org := orgOf(t, log)
	last := log.events[len(log.events)-1].RecordedAt
	mid := log.events[len(log.events)*3/5].RecordedAt
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var periods []string
	for d := start; d.Before(last); d = d.AddDate(0, 0, 7) {
		periods = append(periods, domain.PeriodOf(domain.PeriodWeek, d).String())
	}
	for d := start; d.Before(last); d = d.AddDate(0, 1, 0) {
		periods = append(periods, domain.PeriodOf(domain.PeriodMonth, d).String())
	}
	periods = append(periods, "2025-Q1", "2025-Q2", "2025")

	ctx := context.Background()
	// The scoped views read through a domain.FilteringReader, as from the
	// SQLite store: the scope sees only each event's head and data; in
	// runs of 500 events, read in parallel.
	defer projections.SetReadChunk(500)()
	full, scoped := newLeaderboardAsOf(t, log), newLeaderboardAsOf(t, filteringLog{log})
	cards := 0 // compared from the card scopes
	// The cards of a few members, and of those who had a sale reversed or
	// an activity voided.
	cardMembers := slices.Clone(org.members[:3])
	for _, e := range log.events {
		if e.Type != domain.TypeSaleReversed && e.Type != domain.TypeActivityVoided {
			continue
		}
		p, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		var m string
		switch ev := p.(type) {
		case *domain.SaleReversed:
			m = ev.MemberID
		case *domain.ActivityVoided:
			m = ev.MemberID
		}
		if !slices.Contains(cardMembers, m) && len(cardMembers) < 6 {
			cardMembers = append(cardMembers, m)
		}
	}
	read := positionsRead.Load()
	defer func() {
		if cards < 20 {
			t.Errorf("%d cards compared from the card scopes", cards)
		}
		// The boards read the sales, or the evaluations, by position.
		if positionsRead.Load() == read {
			t.Error("no event was read by its position")
		}
	}()
	for _, at := range []time.Time{mid, last} {
		whole, release, err := full.At(ctx, at, "leaderboard")
		if err != nil {
			t.Fatal(err)
		}
		for _, period := range periods {
			if at.Equal(mid) && strings.Contains(period, "-W") && !strings.HasSuffix(period, "0") {
				continue // as of the middle: the months, quarters and year, and one week in ten
			}
			scope, err := projections.LeaderboardScope(period)
			if err != nil {
				t.Fatal(err)
			}
			var kept, seen atomic.Int64
			keep := scope.Keep
			scope.Keep = func(e domain.Event) bool {
				seen.Add(1)
				k := keep(e)
				if k {
					kept.Add(1)
				}
				return k
			}
			part, done, err := scoped.AtScope(ctx, at, scope, "leaderboard")
			if err != nil {
				t.Fatal(err)
			}
			want, got := answersFor(t, whole, period, org), answersFor(t, part, period, org)
			// Unexported fields too: what the cards keep of their sources.
			if diff := cmp.Diff(want, got, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
				t.Errorf("%s as of %s: scoped replay differs from the full one (-full +scoped):\n%s", period, at.Format(time.RFC3339), diff)
			}
			if at.Equal(last) && period == "2025-02" {
				// A month of four: about a quarter of the log, plus what is kept whatever its time.
				if len(want.Rows) == 0 || len(want.Month) == 0 {
					t.Errorf("%s: nothing to compare (%d boards, %d cards)", period, len(want.Rows), len(want.Month))
				}
				total := int64(len(log.events))
				if kept.Load() == 0 || kept.Load()*5 > total*2 { // under 40 %
					t.Errorf("%s: the scoped replay kept %d of %d events", period, kept.Load(), total)
				}
				// The activities and sales of other weeks are not even read:
				// the index knows when they occurred.
				if seen.Load()*2 > total {
					t.Errorf("%s: the scoped replay read %d of %d events", period, seen.Load(), total)
				}
				t.Logf("%s as of the end: %d boards and %d cards the same; %d of %d events read, %d replayed", period,
					len(want.Rows), len(want.Month), seen.Load(), total, kept.Load())
			}
			done()
			// Some members' cards from the card scope: the months and two
			// weeks, as of the middle and the end.
			if isMonth(period) || period == "2025-W06" || period == "2025-W10" {
				for _, m := range cardMembers {
					cscope, err := projections.LeaderboardCardScope(m, period)
					if err != nil {
						t.Fatal(err)
					}
					part, done, err := scoped.AtScope(ctx, at, cscope, "leaderboard")
					if err != nil {
						t.Fatal(err)
					}
					got := answersFor(t, part, period, demoOrg{members: []string{m}})
					wantCard := periodAnswers{Rows: map[string][]projections.BoardRow{}, Weeks: map[string]projections.ScorecardWeek{},
						Month: map[string]projections.ScorecardMonth{}}
					if w, ok := want.Weeks[m]; ok {
						wantCard.Weeks[m] = w
					}
					if mo, ok := want.Month[m]; ok {
						wantCard.Month[m] = mo
					}
					got.Rows = wantCard.Rows // a card's view answers no board
					if diff := cmp.Diff(wantCard, got, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
						t.Errorf("%s's card of %s as of %s: replay scoped to it differs from the full one (-full +scoped):\n%s",
							m, period, at.Format(time.RFC3339), diff)
					}
					cards += len(wantCard.Weeks) + len(wantCard.Month)
					done()
				}
			}
			// Each metric's boards from its narrower scope: the months,
			// quarters and year, and one week in three, as of the end; the
			// months as of the middle.
			week := strings.Contains(period, "-W")
			if week && (at.Equal(mid) || (period[len(period)-1]-'0')%3 != 0) || at.Equal(mid) && !isMonth(period) {
				continue
			}
			for _, metric := range boardMetrics {
				bscope, err := projections.LeaderboardBoardScope(metric, period)
				if err != nil {
					t.Fatal(err)
				}
				bkept := countKept(&bscope)
				part, done, err := scoped.AtScope(ctx, at, bscope, "leaderboard")
				if err != nil {
					t.Fatal(err)
				}
				wantRows, gotRows := metricRows(want.Rows, metric), metricRows(answersFor(t, part, period, org).Rows, metric)
				if diff := cmp.Diff(wantRows, gotRows); diff != "" {
					t.Errorf("%s boards of %s as of %s: replay scoped to them differs from the full one (-full +scoped):\n%s",
						metric, period, at.Format(time.RFC3339), diff)
				}
				if at.Equal(last) && period == "2025-02" {
					if len(wantRows) == 0 && metric != projections.MetricEvaluation {
						t.Errorf("%s boards of %s: nothing to compare", metric, period)
					}
					if bkept.Load() >= kept.Load() {
						t.Errorf("%s boards of %s: the board's scope kept %d events, the period's %d", metric, period, bkept.Load(), kept.Load())
					}
					t.Logf("%s boards of %s as of the end: %d boards the same; %d of %d events replayed", metric, period,
						len(wantRows), bkept.Load(), len(log.events))
				}
				done()
			}
		}
		release()
	}
}

// lateChangesLog is a demo log of members and months (at least 20 and 3)
// that ends with two transfers recorded late, effective weeks before (the
// leaderboard moves what the members did since then to their new teams,
// and for the first to another department), and a promotion effected on
// effectiveOn, the demo's last day (the member's default targets of the
// periods ending after it change).
func lateChangesLog(tb testing.TB, members, months int, effectiveOn string) *sliceLog {
	tb.Helper()
	return demoSliceLog(tb, members, months,
		domain.TransferMember{MemberID: "m0007", ToTeamID: "t-mad-2", EffectiveOn: "2025-02-10"},
		domain.TransferMember{MemberID: "m0016", ToTeamID: "t-mad-1", EffectiveOn: "2025-03-03"},
		domain.NominatePromotion{PromotionID: "p-late", MemberID: "m0004", ToRole: "sales_supervisor", NominatedBy: "m0003",
			Justification: "late changes", ProposedEffectiveOn: effectiveOn},
		domain.RecordEligibility{PromotionID: "p-late", RulesVersion: 1,
			Criteria: []domain.Criterion{{Code: "E1", Required: "3 months", Observed: "1 month"}}},
		domain.ApprovePromotion{PromotionID: "p-late", ApproverID: "hr-1", ApproverRole: domain.RoleHR, ExceptionJustification: "late changes"},
		domain.EffectPromotion{PromotionID: "p-late"})
}

// recordedBy is a log cut to the events recorded at or before a time.
type recordedBy struct {
	log   *sliceLog
	until time.Time
}

func (l recordedBy) ReadAll(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		for e, err := range l.log.ReadAll(ctx, after) {
			if err == nil && e.RecordedAt.After(l.until) {
				continue
			}
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// TestAsOfViewsOfTypeFilteredReadModelsAreFullReplays: an as-of view of a
// read model that declares the event types it reads (projections.TypeFilter)
// skips the others, unbuilt, in runs read in parallel; its tables are those
// of a replay of every event recorded by then, for every such read model,
// as of the middle and the end of a demo log with a promotion.
func TestAsOfViewsOfTypeFilteredReadModelsAreFullReplays(t *testing.T) {
	log := demoSliceLog(t, 12, 3,
		domain.NominatePromotion{PromotionID: "p-scope", MemberID: "m0004", ToRole: "sales_supervisor", NominatedBy: "m0003",
			Justification: "as-of test", ProposedEffectiveOn: "2025-04-05"},
		domain.RecordEligibility{PromotionID: "p-scope", RulesVersion: 1,
			Criteria: []domain.Criterion{{Code: "E1", Required: "3 months", Observed: "1 month"}}},
		domain.ApprovePromotion{PromotionID: "p-scope", ApproverID: "hr-1", ApproverRole: domain.RoleHR, ExceptionJustification: "as-of test"})
	defer projections.SetReadChunk(300)()
	ctx := context.Background()
	dir := t.TempDir()
	a := newAsOfOf(t, filteringLog{log}, projections.All()...)
	compared := 0
	for _, at := range []time.Time{log.events[len(log.events)/2].RecordedAt, log.events[len(log.events)-1].RecordedAt} {
		for _, f := range projections.All() {
			name := f("").Name()
			if _, ok := f("").(projections.TypeFilter); !ok {
				continue
			}
			v, release, err := a.At(ctx, at, name)
			if err != nil {
				t.Fatal(err)
			}
			db, done, err := openTempDB(filepath.Join(dir, fmt.Sprintf("full-%s-%d.db", name, at.Unix())))
			if err != nil {
				t.Fatal(err)
			}
			r := newRunnerBatch(t, db, 500, f)
			if err := r.CatchUp(ctx, recordedBy{log, at}); err != nil {
				t.Fatal(err)
			}
			want := projectionstest.Tables(t, db, projectionstest.Prefix(t, db, name))
			got := projectionstest.Tables(t, v.DB(), projectionstest.Prefix(t, v.DB(), name))
			if len(want) == 0 {
				t.Fatalf("%s: no table", name)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s as of %s: the view differs from a full replay (-full +view):\n%s", name, at.Format(time.RFC3339), diff)
			}
			compared++
			release()
			done()
		}
	}
	if compared < 2*7 {
		t.Errorf("%d views compared, want at least 14", compared)
	}
}

// TestAuditScopeAnswersAsAFullReplay: the audit trail of every member, of
// every type the log holds (voids, reversals, revocations, what they name and
// what names them included), and of some members and types together, as of
// the middle and the end of a demo log, is the same from a view replayed
// with AuditScope as from a full replay, while the scope reads a part of it.
func TestAuditScopeAnswersAsAFullReplay(t *testing.T) {
	log := demoSliceLog(t, 12, 3)
	org := orgOf(t, log)
	defer projections.SetReadChunk(300)()
	ctx := context.Background()
	full, scoped := newAsOfOf(t, log, projections.All()...), newAsOfOf(t, filteringLog{log}, projections.All()...)
	trail := func(v *projections.AsOfView, q projections.AuditQuery) []projections.AuditEntry {
		a := v.Current("audit").(*projections.Audit)
		var out []projections.AuditEntry
		q.Limit = 100
		for {
			p, err := a.Trail(ctx, v.DB(), q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Items...)
			if p.Next == "" {
				return out
			}
			q.Cursor = p.Next
		}
	}
	var queries []projections.AuditQuery
	for _, m := range org.members {
		queries = append(queries, projections.AuditQuery{MemberID: m})
	}
	types := map[string]bool{}
	for _, e := range log.events {
		types[e.Type] = true
	}
	for typ := range types {
		queries = append(queries, projections.AuditQuery{Type: strings.Split(typ, ".")[0]})
	}
	queries = append(queries, projections.AuditQuery{Type: domain.TypeSaleClosed}, // with its version
		projections.AuditQuery{MemberID: org.members[3], Type: "ActivityLogged"},
		projections.AuditQuery{MemberID: org.members[5], Type: "ActivityVoided"},
		projections.AuditQuery{MemberID: org.members[7], Type: "SaleReversed"})
	voided, voids := 0, 0
	for _, at := range []time.Time{log.events[len(log.events)/2].RecordedAt, log.events[len(log.events)-1].RecordedAt} {
		whole, release, err := full.At(ctx, at, "audit")
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			scope := projections.AuditScope(q)
			kept := countKept(&scope)
			part, done, err := scoped.AtScope(ctx, at, scope, "audit")
			if err != nil {
				t.Fatal(err)
			}
			want, got := trail(whole, q), trail(part, q)
			for _, e := range want {
				if len(e.VoidedBy) > 0 {
					voided++
				}
				if e.Voids != "" {
					voids++
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%+v as of %s: scoped trail differs from the full one (-full +scoped):\n%s", q, at.Format(time.RFC3339), diff)
			}
			if q.MemberID != "" && kept.Load()*4 > int64(len(log.events)) {
				t.Errorf("%+v: the scope kept %d of %d events", q, kept.Load(), len(log.events))
			}
			done()
		}
		release()
	}
	if voided == 0 || voids == 0 {
		t.Errorf("%d voided rows and %d voids in the trails compared: the test shows nothing of the marks", voided, voids)
	}
}
