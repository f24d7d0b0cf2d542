package projections

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// Leaderboard metrics (DOMAIN.md §4).
const (
	// MetricRevenue: closed sales in the rule set's currency, minor units.
	MetricRevenue = "revenue"
	// MetricActivityPoints: activity points (rule-set points per unit, a
	// domain.Fixed).
	MetricActivityPoints = "activity_points"
	// MetricAttainment: revenue as a percentage of the member's personal
	// revenue target for the period (the cross-role board).
	MetricAttainment = "attainment"
	// MetricWeeklyScore: the weekly total W of the scorecard (weeks only).
	MetricWeeklyScore = "weekly_score"
	// MetricMonthlyScore: the provisional monthly evaluation E of the
	// scorecard, before finalization (months only).
	MetricMonthlyScore = "monthly_score"
	// MetricEvaluation: the finalized monthly evaluation E; a quarter is the
	// mean of its finalized months, a year the mean of its quarters.
	MetricEvaluation = "evaluation"
)

// BoardMetrics are the metrics of the boards the API serves (the weekly and
// monthly scores are read on the cards).
var BoardMetrics = []string{MetricRevenue, MetricActivityPoints, MetricAttainment, MetricEvaluation}

// Leaderboard scopes. The member boards (company, department, region, team)
// rank members by what they did while in that scope; ScopeTeams ranks teams
// against each other (team-vs-team) by what their members did while in them,
// company-wide (scope id "") or among the teams of one department or region
// (scope id "department:<id>" or "region:<id>").
const (
	ScopeCompany    = "company"
	ScopeDepartment = "department"
	ScopeRegion     = "region"
	ScopeTeam       = "team"
	ScopeTeams      = "teams"
)

// attainmentScale: attainment values are stored as percent × 10⁶ (floored;
// kept in step with the SQL of memberAttainment),
// so "104.999999 %" and "105 %" differ; the raw revenue breaks any remaining tie.
const attainmentScale = 1_000_000

// The contributions (activities and sales) are the rows of sc_contrib
// (scoreSchema), shared with the scores: metric is the board they count on
// ("" for none: a sale in another currency), team_id the team credited,
// points the amount on the board (activity points, or revenue in minor
// units); amount is what the scorecard counts (quantity, or minor units).
const leaderboardSchema = `
CREATE TABLE IF NOT EXISTS {p}targets (
	target_id TEXT PRIMARY KEY,
	subject_kind TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	kpi TEXT NOT NULL,
	period TEXT NOT NULL,
	value_minor INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}targets_subject ON {p}targets (subject_id, kpi, period);
CREATE TABLE IF NOT EXISTS {p}evals (
	member_id TEXT NOT NULL,
	month TEXT NOT NULL,
	score INTEGER NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (member_id, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}totals (
	metric TEXT NOT NULL,
	period TEXT NOT NULL,
	scope TEXT NOT NULL,
	scope_id TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	value INTEGER NOT NULL,
	raw INTEGER NOT NULL,
	reached INTEGER NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (metric, period, subject_id, scope, scope_id)
) WITHOUT ROWID
`

// leaderboardIndexes: the boards read each ranking in order from the
// covering index totals_rank; Apply uses neither.
var leaderboardIndexes = []QueryIndex{{"{p}totals_rank", `CREATE INDEX IF NOT EXISTS {p}totals_rank ON {p}totals
	(metric, period, scope, scope_id, value DESC, raw DESC, reached, name, subject_id)`}}

// QueryIndexes implements IndexDeferrer.
func (*Leaderboard) QueryIndexes() []QueryIndex { return leaderboardIndexes }

// Leaderboard is the read model of DOMAIN.md §4: per (metric, period, scope)
// ranked rows, pre-aggregated per member (and per team for team-vs-team
// boards) with the team, department and region the member was in when each
// contribution occurred. Voided activities and reversed sales stop counting
// from the void on; a transfer recorded late re-credits the contributions made
// from its effective day on to the new team.
//
// Activity points and the currency counted are those of the rule set in
// force when the contribution occurred; default targets those in force at the
// start of the period (rule set v1 until a ScoringRulesPublished replaces
// it). Points already credited are not re-weighted by a rule set published
// later with an earlier effective day.
type Leaderboard struct {
	prefix string
	// board, when set, is the one metric, and period the one period, whose
	// boards this instance keeps (an as-of view of LeaderboardBoardScope):
	// contributions are credited to that period alone, the rows of the
	// other metrics that are recomputed at a batch's end (the scores and
	// cards, attainment, evaluations) are not, and its cards must not be
	// read. Its contributions are held in memory (boardContribs).
	board, period string
	// contribs are a board leaderboard's contributions, kept between its
	// batches (see boardContribs).
	contribs *boardContribs
	// org caches the organisation between batches (see orgCache.settle):
	// an as-of build replays in legs (a snapshot after each), and each leg
	// read every member's name and teams again.
	org *orgCache
}

var _ Projector = (*Leaderboard)(nil)

// NewLeaderboard is the Factory of the leaderboard.
func NewLeaderboard(prefix string) Projector {
	return &Leaderboard{prefix: prefix}
}

// boardLeaderboard is the Factory of a leaderboard that keeps only the
// boards of one metric for one period (see Leaderboard.board).
func boardLeaderboard(metric, period string) Factory {
	return func(prefix string) Projector { return &Leaderboard{prefix: prefix, board: metric, period: period} }
}

// Name implements Projector.
func (*Leaderboard) Name() string { return "leaderboard" }

// Version implements Projector.
// Version 9: contributions keyed by member, week and id (v8: member and
// id), so that a live batch writes to each member's current week instead of
// to a random page per contribution (the ids the API makes are random). A
// member's id is counted once per week: the domain refuses it twice
// altogether, so only a log it did not write can repeat it in another week.
//
// Version 10: the weekly and monthly cards are computed when read, from the
// rows they are scored from (sc_weeks keeps each week's total, sc_months
// each scored month), instead of stored as JSON at every batch's end: the
// leaderboard replays about 11 % faster and holds far less.
func (*Leaderboard) Version() int { return 10 }

// Scorecard returns the scorecard queries over this instance's tables: the
// leaderboard keeps every member's weekly and monthly cards.
func (l *Leaderboard) Scorecard() *Scorecard { return &Scorecard{prefix: l.prefix} }

// Setup implements Projector.
func (l *Leaderboard) Setup(ctx context.Context, tx *sql.Tx) error {
	schema := metaSchema + ";" + orgSchema + ";" + rulesSchema + ";" + leaderboardSchema
	if l.board != "" {
		schema += ";" + boardContribsSchema
	}
	if err := setupScores(ctx, tx, l.prefix, schema); err != nil {
		return err
	}
	return execAll(ctx, tx, l.prefix, joinCreates(leaderboardIndexes))
}

type memberPeriod struct{ member, period string }

// lbBatch is the state of one Apply: coalesced deltas and what must be
// recomputed at the end of the batch.
type lbBatch struct {
	l          *Leaderboard
	s          *stmts
	acc        *totalsAcc
	attain     map[memberPeriod]struct{} // member attainment to recompute
	teamAttain map[memberPeriod]struct{} // team attainment to recompute
	evals      map[memberPeriod]struct{} // evaluation rows to recompute
	scores     *scoreKeeper              // weekly and monthly scores
	last       domain.Position           // position of the batch's last event
	org        *orgCache
	book       *rulesBook
	// targets caches, during flush, each member's personal revenue targets
	// by period (the latest written wins).
	targets map[string]map[string]int64
	// pending are contributions not yet written to contrib; each is credited
	// once written, if its source id was new (flushContribs). pendingAt
	// finds a member's pending contribution by source id (-1: more than
	// one), and debits are the voids to credit among them, in event order.
	pending   []pendingContrib
	pendingAt map[memberSource]int32
	debits    []debit
	// sums are the changes to sc_sums, written before the scores are
	// recomputed (flushSums).
	sums map[sumKey]*sumDelta
	// scored are the scores recomputed at the batch's end, for writeScores.
	scored []scoreRow
	// mem, in a board leaderboard, holds the contributions instead of
	// sc_contrib; memAt is the chunk of its journal it reflected at Begin.
	mem   *boardContribs
	memAt int64
}

// sumKey is a row of sc_sums; sumDelta a change to its amount and count.
type sumKey struct{ member, week, month, source, currency string }

type sumDelta struct{ amount, n int64 }

func (b *lbBatch) addSum(k sumKey, amount, n int64) {
	d := b.sums[k]
	if d == nil {
		d = &sumDelta{}
		b.sums[k] = d
	}
	d.amount += amount
	d.n += n
}

// flushSums writes the changes to sc_sums, in the order of its key. Every
// row touched is written, even when its changes cancel out, so that
// batching never changes which rows exist.
func (b *lbBatch) flushSums(ctx context.Context) error {
	keys := make([]sumKey, 0, len(b.sums))
	for k := range b.sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y sumKey) int {
		return cmp.Or(strings.Compare(x.member, y.member), strings.Compare(x.week, y.week), strings.Compare(x.month, y.month),
			strings.Compare(x.source, y.source), strings.Compare(x.currency, y.currency))
	})
	rb := rowBuffer{head: `INSERT INTO {p}sc_sums (member_id, week, month, source, currency, amount, n) VALUES `,
		tail: ` ON CONFLICT (member_id, week, month, source, currency) DO UPDATE SET amount = amount + excluded.amount, n = n + excluded.n`,
		cols: 7}
	for _, k := range keys {
		d := b.sums[k]
		if err := rb.add(ctx, b.s, k.member, k.week, k.month, k.source, k.currency, d.amount, d.n); err != nil {
			return err
		}
	}
	clear(b.sums)
	return rb.flush(ctx, b.s)
}

type pendingContrib struct {
	source, metric, member, name, eventID string
	ti                                    teamInfo
	at                                    time.Time
	amount                                int64 // on the board
	pos                                   uint64
	kind, currency                        string // for the scores: the source (activity kind or "sale") and currency
	quantity                              int64  // for the scores: units, or minor units of a sale
	week, month                           string // of at
	voidedBy                              string // the void of it, while pending
}

// memberSource is a member's activity or sale ("activity:a1", "sale:s1").
type memberSource struct{ member, source string }

// debit is a void's credit of -amount, waiting for the contributions
// pending before it (after: how many there were) to be credited first, so
// that the totals see every change in event order. Its member's name and
// team are those at the void.
type debit struct {
	after          int
	metric, member string
	name           string
	team           teamInfo
	at             time.Time
	amount         int64
	pos            uint64
}

// contribWindow is how many contributions a batch holds before it writes
// them, in the order of sc_contrib's key: a window of the log then writes
// each member's rows together, near the end of the member's range, instead
// of one random page per contribution (the ids the API makes are random).
// Voids of contributions still held are applied to them where they are.
// A variable for tests.
var contribWindow = 32768

var periodKinds = []domain.PeriodKind{domain.PeriodWeek, domain.PeriodMonth, domain.PeriodQuarter, domain.PeriodYear}

// Apply implements Projector.
func (l *Leaderboard) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	b, err := l.Begin(ctx, tx)
	if err != nil {
		return err
	}
	if err := b.Add(ctx, batch); err != nil {
		return err
	}
	return b.Finish(ctx)
}

// Begin implements Batcher: the deltas of the totals and the weeks, months
// and attainments to recompute are coalesced over the whole transaction.
func (l *Leaderboard) Begin(ctx context.Context, tx *sql.Tx) (Batch, error) {
	s := newStmts(tx, l.prefix)
	book, err := loadRules(ctx, s)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	if l.org == nil {
		l.org = newOrgCache()
	}
	org := l.org
	org.settle()
	b := &lbBatch{l: l, s: s, acc: newTotalsAcc(), attain: map[memberPeriod]struct{}{},
		teamAttain: map[memberPeriod]struct{}{}, evals: map[memberPeriod]struct{}{}, scores: newScoreKeeper(book, org), book: book,
		org: org, targets: map[string]map[string]int64{}, sums: map[sumKey]*sumDelta{}, pendingAt: map[memberSource]int32{}}
	if l.board != "" {
		if l.contribs == nil {
			l.contribs = newBoardContribs()
		}
		if b.memAt, err = l.contribs.begin(ctx, s); err != nil {
			s.close()
			return nil, fmt.Errorf("leaderboard: %w", err)
		}
		b.mem = l.contribs
	}
	return b, nil
}

// Add implements Batch.
func (b *lbBatch) Add(ctx context.Context, events []Envelope) error {
	for _, e := range events {
		if err := b.apply(ctx, e); err != nil {
			return fmt.Errorf("leaderboard: event %s (%s at %s): %w", e.ID, e.Type, e.Position, err)
		}
		b.last = e.Position
	}
	return nil
}

// Finish implements Batch: it writes what the batch coalesced and the
// position the leaderboard reflects, and releases the batch's statements.
func (b *lbBatch) Finish(ctx context.Context) error {
	defer b.s.close()
	if !b.last.IsZero() {
		if err := b.flush(ctx); err != nil {
			return fmt.Errorf("leaderboard: %w", err)
		}
	}
	if b.mem != nil { // a board leaderboard's journal
		if err := b.mem.finish(ctx, b.s, b.memAt); err != nil {
			return fmt.Errorf("leaderboard: %w", err)
		}
	}
	if b.last.IsZero() {
		return nil
	}
	return saveAt(ctx, b.s, b.last)
}

func (b *lbBatch) apply(ctx context.Context, e Envelope) error {
	s := b.s
	if b.l.board == "" {
		if err := b.scores.apply(ctx, s, e); err != nil {
			return err
		}
	} else if p, ok := e.Payload.(*domain.ScoringRulesPublished); ok {
		// A board leaderboard keeps no scores: only the rules they read.
		if _, err := b.book.add(ctx, s, e, p); err != nil {
			return err
		}
	}
	if ok, err := applyOrg(ctx, s, e); ok || err != nil {
		if err != nil {
			return err
		}
		b.org.forget(e.Payload)
		switch p := e.Payload.(type) {
		case *domain.MemberTransferred:
			// Score and evaluation rows are credited to the team of the
			// period's end: recompute them all with the new history.
			if err := b.scores.dirtyAll(ctx, s, p.MemberID); err != nil {
				return err
			}
			if err := b.dirtyEvaluations(ctx, p.MemberID); err != nil {
				return err
			}
			return b.recredit(ctx, e, p)
		case *domain.PromotionEffected:
			return b.dirtyAllAttainment(ctx, p.MemberID)
		case *domain.PromotionRescinded:
			return b.dirtyAllAttainment(ctx, p.MemberID)
		}
		return nil
	}
	switch p := e.Payload.(type) {
	case *domain.ActivityLogged:
		pts := b.book.at(p.OccurredAt).ActivityPointsFor(p.Kind, p.Quantity)
		return b.contribute(ctx, e, pendingContrib{source: "activity:" + p.ActivityID, metric: MetricActivityPoints, member: p.MemberID,
			at: p.OccurredAt, amount: int64(pts), kind: p.Kind, quantity: p.Quantity})
	case *domain.SaleClosed:
		metric := MetricRevenue
		if p.Currency != b.book.at(p.OccurredAt).Currency {
			metric = "" // refused by the domain in v1; never summed across currencies
		}
		return b.contribute(ctx, e, pendingContrib{source: "sale:" + p.SaleID, metric: metric, member: p.MemberID,
			at: p.OccurredAt, amount: p.AmountMinor, kind: scoring.SourceSale, currency: p.Currency, quantity: p.AmountMinor})
	case *domain.ActivityVoided:
		return b.void(ctx, e, p.MemberID, "activity:"+p.ActivityID)
	case *domain.SaleReversed:
		return b.void(ctx, e, p.MemberID, "sale:"+p.SaleID)
	case *domain.TargetSet:
		if p.KPI != scoring.KPIRevenue {
			return nil
		}
		if err := s.exec(ctx, `INSERT OR REPLACE INTO {p}targets (target_id, subject_kind, subject_id, kpi, period, value_minor)
			VALUES (?, ?, ?, ?, ?, ?)`, p.TargetID, p.SubjectKind, p.SubjectID, p.KPI, canonicalPeriod(p.Period), majorToMinor(p.Value)); err != nil {
			return err
		}
		b.dirtyTarget(p.SubjectKind, p.SubjectID, canonicalPeriod(p.Period))
		return nil
	case *domain.TargetRevised:
		var kind, subject, period string
		found, err := s.row(ctx, `SELECT subject_kind, subject_id, period FROM {p}targets WHERE target_id = ?`,
			[]any{p.TargetID}, &kind, &subject, &period)
		if err != nil || !found {
			return err
		}
		if err := s.exec(ctx, `UPDATE {p}targets SET value_minor = ? WHERE target_id = ?`, majorToMinor(p.NewValue), p.TargetID); err != nil {
			return err
		}
		b.dirtyTarget(kind, subject, period)
		return nil
	case *domain.EvaluationFinalized:
		month := canonicalPeriod(p.Month)
		if err := s.exec(ctx, `INSERT OR REPLACE INTO {p}evals (member_id, month, score, position) VALUES (?, ?, ?, ?)`,
			p.MemberID, month, int64(p.Score), int64(e.Position.Commit)); err != nil {
			return err
		}
		if per, err := domain.ParsePeriod(month); err == nil {
			mid := per.Start()
			for _, k := range []domain.PeriodKind{domain.PeriodMonth, domain.PeriodQuarter, domain.PeriodYear} {
				b.evals[memberPeriod{p.MemberID, domain.PeriodOf(k, mid).String()}] = struct{}{}
			}
		}
	}
	return nil
}

// dirtyEvaluations marks every evaluation row of a member for recomputation.
func (b *lbBatch) dirtyEvaluations(ctx context.Context, memberID string) error {
	rows, err := b.s.query(ctx, `SELECT month FROM {p}evals WHERE member_id = ?`, memberID)
	if err != nil {
		return err
	}
	var months []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return err
		}
		months = append(months, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range months {
		if per, err := domain.ParsePeriod(m); err == nil {
			for _, k := range []domain.PeriodKind{domain.PeriodMonth, domain.PeriodQuarter, domain.PeriodYear} {
				b.evals[memberPeriod{memberID, domain.PeriodOf(k, per.Start()).String()}] = struct{}{}
			}
		}
	}
	return nil
}

func (b *lbBatch) dirtyTarget(kind, subject, period string) {
	if kind == domain.SubjectTeam {
		b.teamAttain[memberPeriod{subject, period}] = struct{}{}
		return
	}
	b.attain[memberPeriod{subject, period}] = struct{}{}
}

func (b *lbBatch) dirtyAllAttainment(ctx context.Context, memberID string) error {
	if b.inMem() {
		revenue, _ := metricNum(MetricRevenue)
		for _, i := range b.mem.rowsOf(memberID, func(c *boardContrib) bool { return c.metric == revenue }) {
			at := b.mem.row(i).time()
			for _, k := range periodKinds {
				b.attain[memberPeriod{memberID, domain.PeriodOf(k, at).String()}] = struct{}{}
			}
		}
		return nil
	}
	// The member has a revenue row in exactly the periods of their revenue
	// contributions (voided ones included: their rows stay, at zero). Those
	// still pending need no flush first: crediting them at flushContribs
	// marks their periods (credit marks each revenue row the batch touches).
	rows, err := b.s.query(ctx, `SELECT DISTINCT day FROM {p}sc_contrib WHERE member_id = ? AND metric = 'revenue'`, memberID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var day string
		if err := rows.Scan(&day); err != nil {
			return err
		}
		d, err := domain.ParseDate(day)
		if err != nil {
			continue
		}
		for _, k := range periodKinds {
			b.attain[memberPeriod{memberID, domain.PeriodOf(k, d).String()}] = struct{}{}
		}
	}
	return rows.Err()
}

// contribute records one contribution (c without its team, name, event and
// position) and credits it to every period and scope, with the team the
// member was in at c.at.
func (b *lbBatch) contribute(ctx context.Context, e Envelope, c pendingContrib) error {
	ti, err := b.org.teamAt(ctx, b.s, c.member, c.at)
	if err != nil {
		return err
	}
	m, err := b.org.member(ctx, b.s, c.member)
	if err != nil {
		return err
	}
	c.name = m.Name
	if c.name == "" {
		c.name = c.member
	}
	c.ti, c.eventID, c.pos = ti, e.ID, e.Position.Commit
	if b.inMem() {
		// A board leaderboard keeps no scores: only what its board reads.
		added, held := b.mem.add(c)
		if held {
			if added && c.metric != "" {
				b.credit(c.metric, c.member, c.name, c.ti, c.at, c.amount, c.pos)
			}
			if !b.mem.full() {
				return nil
			}
			return b.mem.spill(ctx, b.s)
		}
		// One that memory cannot hold: from now on, sc_contrib holds them all.
		if err := b.mem.spill(ctx, b.s); err != nil {
			return err
		}
	}
	p := b.acc.periods(c.at) // periodKinds: the week, then the month
	c.week, c.month = b.acc.names[p[0]], b.acc.names[p[1]]
	k := memberSource{c.member, c.source}
	if _, twice := b.pendingAt[k]; twice {
		b.pendingAt[k] = -1
	} else {
		b.pendingAt[k] = int32(len(b.pending))
	}
	b.pending = append(b.pending, c)
	if len(b.pending) >= contribWindow {
		return b.flushContribs(ctx)
	}
	return nil
}

// flushContribs writes the pending contributions in the order of
// sc_contrib's key, in multi-row statements, then credits those whose
// source id was new (an activity or sale id already counted is ignored) and
// the voids among them, in event order. When every row was new (the domain
// refuses a member's id twice) nothing is read back. Whatever reads
// sc_contrib flushes first.
func (b *lbBatch) flushContribs(ctx context.Context) error {
	if len(b.pending) == 0 {
		b.creditDebits(0)
		return nil
	}
	order := make([]int32, len(b.pending))
	for i := range order {
		order[i] = int32(i)
	}
	// Stable: of two rows with one key, the first in event order is kept.
	slices.SortStableFunc(order, func(x, y int32) int {
		p, q := &b.pending[x], &b.pending[y]
		return cmp.Or(strings.Compare(p.member, q.member), strings.Compare(p.week, q.week), strings.Compare(p.source, q.source))
	})
	const cols = 14
	args := make([]any, 0, cols*rowChunk)
	// doubt marks the rows of statements that ignored some row: which
	// ones were new is read back (an id already counted: a log the domain
	// did not write, rare).
	var doubt []bool
	for len(order) > 0 {
		n := min(len(order), rowChunk)
		args = args[:0]
		for _, i := range order[:n] {
			c := &b.pending[i]
			args = append(args, c.source, c.member, c.week, c.month, c.kind, c.currency, c.quantity, c.eventID, c.voidedBy,
				c.metric, c.ti.ID, fmtTime(c.at), fmtDay(c.at), c.amount)
		}
		chunk := order[:n]
		order = order[n:]
		k, err := b.s.execN(ctx, valuesSQL(`INSERT OR IGNORE INTO {p}sc_contrib (source_id, member_id, week, month, source, currency,
		amount, event_id, voided_by, metric, team_id, occurred_at, day, points) VALUES `, cols, n, ""), args...)
		if err != nil {
			return err
		}
		if k < int64(n) {
			if doubt == nil {
				doubt = make([]bool, len(b.pending))
			}
			for _, i := range chunk {
				doubt[i] = true
			}
		}
	}
	for i := range b.pending {
		c := &b.pending[i]
		b.creditDebits(i)
		if doubt != nil && doubt[i] {
			var first string
			if _, err := b.s.row(ctx, `SELECT event_id FROM {p}sc_contrib WHERE member_id = ? AND week = ? AND source_id = ?`,
				[]any{c.member, c.week, c.source}, &first); err != nil {
				return err
			}
			if first != c.eventID {
				continue // the row holds an earlier event's contribution
			}
		}
		b.addSum(sumKey{c.member, c.week, c.month, c.kind, c.currency}, c.quantity, 1)
		if c.metric != "" {
			b.credit(c.metric, c.member, c.name, c.ti, c.at, c.amount, c.pos)
		}
	}
	b.creditDebits(len(b.pending))
	clear(b.pending)
	b.pending = b.pending[:0]
	clear(b.pendingAt)
	return nil
}

// creditDebits credits the debits queued when at most n contributions
// were pending.
func (b *lbBatch) creditDebits(n int) {
	k := 0
	for ; k < len(b.debits) && b.debits[k].after <= n; k++ {
		d := &b.debits[k]
		b.credit(d.metric, d.member, d.name, d.team, d.at, -d.amount, d.pos)
	}
	b.debits = b.debits[k:]
	if len(b.debits) == 0 {
		b.debits = nil
	}
}

func (b *lbBatch) credit(metric, memberID, name string, ti teamInfo, at time.Time, amount int64, pos uint64) {
	a := b.acc
	m := a.intern(metric)
	subject := a.intern(memberID)
	none := a.intern("")
	var team, dept, region uint32
	tname := ti.Name
	if ti.ID != "" {
		team, dept, region = a.intern(ti.ID), a.intern(ti.Department), a.intern(ti.Region)
		if tname == "" {
			tname = ti.ID
		}
	}
	ck := creditKey{metric: m, subject: subject, team: team, dept: dept, region: region, periods: a.periods(at)}
	if ti.ID == "" {
		ck.team, ck.dept, ck.region = none, none, none
	}
	// Rows found before are not new to the batch: nothing to mark.
	if done, ok := a.credited[ck]; ok {
		for j, i := range done.rows[:done.n] {
			if ti.ID != "" && j%len(accScopes) == len(accScopes)-1 {
				a.addAt(i, amount, pos, tname)
			} else {
				a.addAt(i, amount, pos, name)
			}
		}
		return
	}
	var done creditRows
	keep := func(i int32, isNew bool) bool {
		done.rows[done.n] = i
		done.n++
		return isNew
	}
	revenue := metric == MetricRevenue
	for _, per := range ck.periods {
		if b.l.period != "" && a.names[per] != b.l.period {
			continue // a board leaderboard keeps its period's rows alone
		}
		if keep(a.add(accKey{0, m, per, none, subject}, amount, pos, name)) && revenue {
			b.attain[memberPeriod{memberID, a.names[per]}] = struct{}{}
		}
		if ti.ID == "" {
			continue
		}
		keep(a.add(accKey{1, m, per, dept, subject}, amount, pos, name))
		keep(a.add(accKey{2, m, per, region, subject}, amount, pos, name))
		keep(a.add(accKey{3, m, per, team, subject}, amount, pos, name))
		if keep(a.add(accKey{4, m, per, none, team}, amount, pos, tname)) && revenue {
			b.teamAttain[memberPeriod{ti.ID, a.names[per]}] = struct{}{}
		}
	}
	if len(a.credited) >= creditMemo {
		clear(a.credited) // the log moves on: the members' next week is what counts
	}
	a.credited[ck] = done
}

// creditMemo bounds totalsAcc.credited: a stretch of the log credits each
// member's rows of a week or two, about 4,000 credits' rows in the demo
// log; unbounded, the memo held 20–25 MB more at the peak of a rebuild.
const creditMemo = 8192

// void stops counting a member's contribution from now on.
func (b *lbBatch) void(ctx context.Context, e Envelope, memberID, sourceID string) error {
	if b.inMem() {
		i := b.mem.latest(memberID, sourceID)
		if i < 0 {
			return nil
		}
		c := b.mem.row(i)
		if c.voided() {
			return nil
		}
		c.flags |= contribVoided
		b.mem.touch(i)
		metric := boardMetricNames[c.metric]
		if metric == "" {
			return nil
		}
		return b.recreditOne(ctx, metric, memberID, b.mem.str(c.team), "", c.time(), c.points, e.Position.Commit)
	}
	if i, held := b.pendingAt[memberSource{memberID, sourceID}]; held {
		c := (*pendingContrib)(nil)
		if i >= 0 {
			c = &b.pending[i]
			// The latest week's row is the one voided: one written already
			// in the held one's week or later (a log the domain did not
			// write) is found in sc_contrib.
			later, err := b.s.row(ctx, `SELECT 1 FROM {p}sc_contrib WHERE member_id = ? AND week >= ? AND source_id = ? LIMIT 1`,
				[]any{memberID, c.week, sourceID}, new(int))
			if err != nil {
				return err
			}
			if later {
				c = nil
			}
		}
		if c == nil { // more than one, or one written in a later week: write them and look in sc_contrib
			if err := b.flushContribs(ctx); err != nil {
				return err
			}
		} else {
			if c.voidedBy != "" {
				return nil
			}
			c.voidedBy = e.ID
			b.scores.voided(memberID, c.week, c.month)
			b.addSum(sumKey{memberID, c.week, c.month, c.kind, c.currency}, -c.quantity, -1)
			if c.metric == "" {
				return nil
			}
			return b.queueDebit(ctx, c.metric, memberID, c.ti.ID, c.at, c.amount, e.Position.Commit)
		}
	}
	var metric, teamID, occurred, voidedBy, month, source, currency string
	var points, amount int64
	week, found, err := b.findContrib(ctx, memberID, sourceID, `metric, team_id, occurred_at, points, voided_by, month, source, currency, amount`,
		&metric, &teamID, &occurred, &points, &voidedBy, &month, &source, &currency, &amount)
	if err != nil || !found || voidedBy != "" {
		return err
	}
	b.scores.voided(memberID, week, month)
	if err := b.s.exec(ctx, `UPDATE {p}sc_contrib SET voided_by = ? WHERE member_id = ? AND week = ? AND source_id = ?`,
		e.ID, memberID, week, sourceID); err != nil {
		return err
	}
	b.addSum(sumKey{memberID, week, month, source, currency}, -amount, -1)
	if metric == "" {
		return nil
	}
	return b.queueDebit(ctx, metric, memberID, teamID, parseTime(occurred), points, e.Position.Commit)
}

// queueDebit queues a void's debit of amount from a member's contribution
// credited to team teamID ("" for none), with the member's name and the
// team as they are now; flushContribs credits it after the contributions
// pending now.
func (b *lbBatch) queueDebit(ctx context.Context, metric, memberID, teamID string, at time.Time, amount int64, pos uint64) error {
	m, err := b.org.member(ctx, b.s, memberID)
	if err != nil {
		return err
	}
	d := debit{after: len(b.pending), metric: metric, member: memberID, name: m.Name, at: at, amount: amount, pos: pos}
	if d.name == "" {
		d.name = memberID
	}
	if teamID != "" {
		if d.team, err = team(ctx, b.s, teamID); err != nil {
			return err
		}
	}
	b.debits = append(b.debits, d)
	return nil
}

// findContrib scans cols of a member's contribution by source id into dest
// and returns its week (the latest, should an id repeat in another week).
// Contributions are keyed by member and week, so the member's latest weeks
// are probed from the latest back, one seek each: a void is usually of a
// recent activity. Past recentProbes weeks, one pass over the member's
// older contributions finds it, or that there is none (a void of something
// an as-of scope skipped).
func (b *lbBatch) findContrib(ctx context.Context, memberID, sourceID, cols string, dest ...any) (week string, found bool, err error) {
	const recentProbes = 4
	below := "\uffff" // after every week's name
	for range recentProbes {
		var w sql.NullString
		if _, err := b.s.row(ctx, `SELECT max(week) FROM {p}sc_contrib WHERE member_id = ? AND week < ?`,
			[]any{memberID, below}, &w); err != nil || !w.Valid {
			return "", false, err
		}
		found, err := b.s.row(ctx, `SELECT `+cols+` FROM {p}sc_contrib WHERE member_id = ? AND week = ? AND source_id = ?`,
			[]any{memberID, w.String, sourceID}, dest...)
		if err != nil || found {
			return w.String, found, err
		}
		below = w.String
	}
	found, err = b.s.row(ctx, `SELECT week, `+cols+` FROM {p}sc_contrib WHERE member_id = ? AND week < ? AND source_id = ?
		ORDER BY week DESC LIMIT 1`, []any{memberID, below, sourceID}, append([]any{&week}, dest...)...)
	return week, found, err
}

// recreditOne moves amount of a contribution from team from to team to ("":
// nowhere), i.e. a void (to "") or a late transfer.
func (b *lbBatch) recreditOne(ctx context.Context, metric, memberID, from, to string, at time.Time, amount int64, pos uint64) error {
	m, err := b.org.member(ctx, b.s, memberID)
	if err != nil {
		return err
	}
	name := m.Name
	if name == "" {
		name = memberID
	}
	var fromTeam teamInfo
	if from != "" {
		if fromTeam, err = team(ctx, b.s, from); err != nil {
			return err
		}
	}
	b.credit(metric, memberID, name, fromTeam, at, -amount, pos)
	if to == "" {
		return nil
	}
	toTeam, err := team(ctx, b.s, to)
	if err != nil {
		return err
	}
	b.credit(metric, memberID, name, toTeam, at, amount, pos)
	return nil
}

// recredit moves the contributions a member made on or after a transfer's
// effective day (already projected when the transfer is recorded late) to the
// team they were in then.
func (b *lbBatch) recredit(ctx context.Context, e Envelope, p *domain.MemberTransferred) error {
	if err := b.flushContribs(ctx); err != nil {
		return err
	}
	type row struct {
		source, week, metric, team, occurred string
		amount                               int64
	}
	// Contributions lie in the member's range of the primary key, from the
	// week of the effective day on.
	fromWeek := ""
	if d, err := domain.ParseDate(p.EffectiveOn); err == nil {
		fromWeek = domain.PeriodOf(domain.PeriodWeek, d).String()
	}
	if b.inMem() {
		return b.recreditBoard(ctx, e, p, fromWeek)
	}
	rows, err := b.s.query(ctx, `SELECT source_id, week, metric, team_id, occurred_at, points FROM {p}sc_contrib
		WHERE member_id = ? AND week >= ? AND day >= ? AND voided_by = '' AND metric <> ''`, p.MemberID, fromWeek, p.EffectiveOn)
	if err != nil {
		return err
	}
	var moved []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.source, &r.week, &r.metric, &r.team, &r.occurred, &r.amount); err != nil {
			rows.Close()
			return err
		}
		moved = append(moved, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range moved {
		at := parseTime(r.occurred)
		ti, err := b.org.teamAt(ctx, b.s, p.MemberID, at)
		if err != nil {
			return err
		}
		if ti.ID == r.team {
			continue
		}
		// Net zero at company scope (credited out and back in): only the team
		// scopes change.
		if err := b.recreditOne(ctx, r.metric, p.MemberID, r.team, ti.ID, at, r.amount, e.Position.Commit); err != nil {
			return err
		}
		if err := b.s.exec(ctx, `UPDATE {p}sc_contrib SET team_id = ? WHERE member_id = ? AND week = ? AND source_id = ?`,
			ti.ID, p.MemberID, r.week, r.source); err != nil {
			return err
		}
	}
	return nil
}

// inMem reports whether the batch's contributions are held in memory (a
// board leaderboard's that has not spilled them) rather than in sc_contrib.
func (b *lbBatch) inMem() bool { return b.mem != nil && !b.mem.spilled }

// recreditBoard is recredit in a board leaderboard.
func (b *lbBatch) recreditBoard(ctx context.Context, e Envelope, p *domain.MemberTransferred, fromWeek string) error {
	moved := b.mem.rowsOf(p.MemberID, func(c *boardContrib) bool {
		return !c.voided() && c.metric != 0 && b.mem.weeks[c.week] >= fromWeek && fmtDay(c.time()) >= p.EffectiveOn
	})
	for _, i := range moved {
		c := b.mem.row(i)
		at := c.time()
		ti, err := b.org.teamAt(ctx, b.s, p.MemberID, at)
		if err != nil {
			return err
		}
		if ti.ID == b.mem.str(c.team) {
			continue
		}
		if err := b.recreditOne(ctx, boardMetricNames[c.metric], p.MemberID, b.mem.str(c.team), ti.ID, at, c.points, e.Position.Commit); err != nil {
			return err
		}
		c = b.mem.row(i)
		c.team = b.mem.num(ti.ID)
		b.mem.touch(i)
	}
	return nil
}

func (b *lbBatch) flush(ctx context.Context) error {
	if err := b.flushContribs(ctx); err != nil {
		return err
	}
	if board := b.l.board; board != "" {
		// Only one metric's boards are kept: drop what recomputes the others.
		if board != MetricAttainment {
			clear(b.attain)
			clear(b.teamAttain)
		}
		if board != MetricEvaluation {
			clear(b.evals)
		}
		clear(b.sums)
		b.scores.discard()
	}
	// Every touched row is written, even when its deltas cancel out inside
	// the batch, so that batching never changes which rows exist.
	// Rows go in multi-row upserts of up to upsertChunk rows: one statement
	// per chunk instead of one per row.
	args := make([]any, 0, upsertChunk*9)
	n := 0
	for _, i := range b.acc.sorted() {
		r := &b.acc.rows[i]
		metric, period, scope, scopeID, subject := b.acc.totKey(r.key)
		args = append(args, metric, period, scope, scopeID, subject, r.value, r.value, int64(r.reached), r.name)
		if n++; n == upsertChunk {
			if err := b.s.exec(ctx, upsertTotals(n), args...); err != nil {
				return err
			}
			args, n = args[:0], 0
		}
	}
	if n > 0 {
		if err := b.s.exec(ctx, upsertTotals(n), args...); err != nil {
			return err
		}
	}
	// In the order of the rows of totals (metric, period, subject): each
	// pass then moves through its pages once instead of at random.
	attain := attainmentRows()
	for _, mp := range byPeriod(b.attain) {
		if err := b.memberAttainment(ctx, &attain, mp); err != nil {
			return err
		}
	}
	if err := attain.flush(ctx, b.s); err != nil {
		return err
	}
	for _, mp := range byPeriod(b.teamAttain) {
		if err := b.teamAttainment(ctx, mp); err != nil {
			return err
		}
	}
	for _, mp := range byPeriod(b.evals) {
		if err := b.evaluation(ctx, mp); err != nil {
			return err
		}
	}
	if b.l.board != "" {
		return nil
	}
	if err := b.flushSums(ctx); err != nil {
		return err
	}
	if err := b.scores.recompute(ctx, b.s, scoreHooks{
		week: func(memberID, week string, w *ScorecardWeek, reached int64) error {
			if w == nil {
				return b.scoreRows(ctx, MetricWeeklyScore, memberID, week, 0, 0, reached, false)
			}
			return b.scoreRows(ctx, MetricWeeklyScore, memberID, week, w.Total, w.Quantity, reached, true)
		},
		month: func(memberID, month string, m *ScorecardMonth, reached int64) error {
			if m == nil || m.Evaluation == nil {
				return b.scoreRows(ctx, MetricMonthlyScore, memberID, month, 0, 0, reached, false)
			}
			var o domain.Fixed
			if m.Objective != nil {
				o = *m.Objective
			}
			return b.scoreRows(ctx, MetricMonthlyScore, memberID, month, *m.Evaluation, o, reached, true)
		},
	}); err != nil {
		return err
	}
	return b.writeScores(ctx)
}

// scoreRows replaces a member's rows of a score metric for one week or
// month (written by writeScores): credited to the team they were in on the
// period's last day; raw (the first tie-breaker) is Q for a week and O for
// a month. reached (the next tie-breaker) is the position of the last event
// that touched the period, whatever the batching.
func (b *lbBatch) scoreRows(ctx context.Context, metric, memberID, period string, value, raw domain.Fixed, reached int64, present bool) error {
	b.scored = append(b.scored, scoreRow{metric: metric, period: period, member: memberID})
	if !present {
		return nil
	}
	per, err := domain.ParsePeriod(period)
	if err != nil {
		return nil
	}
	m, err := b.org.member(ctx, b.s, memberID)
	if err != nil {
		return err
	}
	r := &b.scored[len(b.scored)-1]
	r.present, r.value, r.raw, r.reached, r.name = true, int64(value), int64(raw), reached, m.Name
	if r.name == "" {
		r.name = memberID
	}
	r.team, err = b.org.teamAt(ctx, b.s, memberID, per.End().AddDate(0, 0, -1))
	return err
}

// scoreRow is a member's score of a week or month, for the rows of totals
// of every scope (the company's, and those of the team the member was in).
type scoreRow struct {
	metric, period, member string
	present                bool // else the rows go
	value, raw, reached    int64
	name                   string
	team                   teamInfo
}

// writeScores replaces the rows of the scores that scoreRows recorded, in
// the order of totals' key: the old rows of a metric and period go in one
// statement for up to rowChunk members, then the new rows are inserted in
// multi-row statements.
func (b *lbBatch) writeScores(ctx context.Context) error {
	rows := b.scored
	b.scored = nil
	slices.SortFunc(rows, func(x, y scoreRow) int {
		return cmp.Or(strings.Compare(x.metric, y.metric), strings.Compare(x.period, y.period), strings.Compare(x.member, y.member))
	})
	args := make([]any, 0, 2+rowChunk)
	for i, r := range rows {
		if len(args) == 0 {
			args = append(args, r.metric, r.period)
		}
		args = append(args, r.member)
		if last := i == len(rows)-1; last || len(args) == 2+rowChunk || rows[i+1].metric != r.metric || rows[i+1].period != r.period {
			if err := b.s.exec(ctx, `DELETE FROM {p}totals WHERE metric = ? AND period = ? AND subject_id IN (?`+
				strings.Repeat(", ?", len(args)-3)+`)`, args...); err != nil {
				return err
			}
			args = args[:0]
		}
	}
	ins := rowBuffer{head: totalsInsert, cols: 9}
	for _, r := range rows {
		if !r.present {
			continue
		}
		// The scopes in the order of their names, as totals' key has them.
		if err := ins.add(ctx, b.s, r.metric, r.period, ScopeCompany, "", r.member, r.value, r.raw, r.reached, r.name); err != nil {
			return err
		}
		if r.team.ID == "" {
			continue
		}
		for _, sc := range [][2]string{{ScopeDepartment, r.team.Department}, {ScopeRegion, r.team.Region}, {ScopeTeam, r.team.ID}} {
			if err := ins.add(ctx, b.s, r.metric, r.period, sc[0], sc[1], r.member, r.value, r.raw, r.reached, r.name); err != nil {
				return err
			}
		}
	}
	return ins.flush(ctx, b.s)
}

const totalsInsert = `INSERT INTO {p}totals (metric, period, scope, scope_id, subject_id, value, raw, reached, name) VALUES `

// insertTotals is the statement inserting n rows into totals.
func insertTotals(n int) string { return valuesSQL(totalsInsert, 9, n, "") }

const upsertChunk = 100

// upsertTotals is the statement adding n rows of deltas to totals.
func upsertTotals(n int) string {
	return valuesSQL(totalsInsert, 9, n, ` ON CONFLICT (metric, period, subject_id, scope, scope_id) DO UPDATE SET
		value = value + excluded.value, raw = raw + excluded.raw, reached = excluded.reached, name = excluded.name`)
}

// memberAttainment recomputes a member's attainment rows of one period from
// their revenue rows and personal revenue target, through rb
// (attainmentRows), which the caller flushes.
func (b *lbBatch) memberAttainment(ctx context.Context, rb *rowBuffer, mp memberPeriod) error {
	per, err := domain.ParsePeriod(mp.period)
	if err != nil {
		return nil // a target for a period we cannot read credits nothing
	}
	target, err := b.memberTarget(ctx, mp.member, per)
	if err != nil {
		return err
	}
	if target <= 0 {
		return b.s.exec(ctx, `DELETE FROM {p}totals WHERE subject_id = ? AND metric = 'attainment' AND period = ? AND scope <> 'teams'`,
			mp.member, mp.period)
	}
	return rb.add(ctx, b.s, mp.member, mp.period, target)
}

// attainmentRows takes (member, period, target) and writes, for up to
// rowChunk of them in one statement, each member's attainment rows of the
// period from their revenue rows of every member scope. value × 10⁸ stays
// exact in SQLite's 64-bit integers while a period's revenue is below
// 92,233,720,368 minor units (922 million euros). CROSS JOIN keeps t the
// outer loop, each of its rows a search of totals' key: left to choose, the
// planner scanned a period's revenue rows for every row of t.
func attainmentRows() rowBuffer {
	return rowBuffer{head: `WITH t (subject_id, period, target) AS (VALUES `,
		tail: `) INSERT INTO {p}totals (metric, period, scope, scope_id, subject_id, value, raw, reached, name)
		SELECT 'attainment', x.period, x.scope, x.scope_id, x.subject_id, x.value * 100000000 / t.target, x.value, x.reached, x.name
		FROM t CROSS JOIN {p}totals x ON x.metric = 'revenue' AND x.period = t.period AND x.subject_id = t.subject_id AND x.scope <> 'teams'
		WHERE true
		ON CONFLICT (metric, period, subject_id, scope, scope_id) DO UPDATE SET
		value = excluded.value, raw = excluded.raw, reached = excluded.reached, name = excluded.name`,
		cols: 3}
}

// memberTarget is the member's revenue target for a period in minor units:
// an exact-period TargetSet wins; otherwise the role's weekly norm for a week
// and weekly norm × working days / 5 for longer periods (role held on the
// period's last day).
func (b *lbBatch) memberTarget(ctx context.Context, memberID string, per domain.Period) (int64, error) {
	set, ok := b.targets[memberID]
	if !ok {
		set = map[string]int64{}
		rows, err := b.s.query(ctx, `SELECT period, value_minor FROM {p}targets WHERE subject_id = ? AND kpi = 'revenue' AND subject_kind = 'member'
			ORDER BY rowid`, memberID)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			var per string
			var v int64
			if err := rows.Scan(&per, &v); err != nil {
				rows.Close()
				return 0, err
			}
			set[per] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, err
		}
		b.targets[memberID] = set
	}
	if v, found := set[per.String()]; found {
		return v, nil
	}
	role, err := b.org.roleAt(ctx, b.s, memberID, per.End().AddDate(0, 0, -1))
	if err != nil {
		return 0, err
	}
	return defaultRevenueTarget(b.book, role, per), nil
}

// defaultRevenueTarget is the revenue target of a role for a period, in
// minor units, under the rule set in force at the period's start (0 when
// that rule set has no revenue KPI).
func defaultRevenueTarget(book *rulesBook, role string, per domain.Period) int64 {
	if _, err := book.at(per.Start()).NormMultiplier(role); err != nil {
		role = scoring.RoleSalesperson // a role the rule set does not know scores like a salesperson
	}
	t, err := book.defaultTargets(role, per)
	if err != nil {
		return 0
	}
	return majorToMinor(t[scoring.KPIRevenue])
}

// attainmentValue is revenue/target as percent × attainmentScale, floored.
func attainmentValue(revenue, target int64) int64 {
	n := new(big.Int).Mul(big.NewInt(revenue), big.NewInt(100*attainmentScale))
	n.Div(n, big.NewInt(target))
	if !n.IsInt64() {
		return 1<<63 - 1
	}
	return n.Int64()
}

func (b *lbBatch) teamAttainment(ctx context.Context, mp memberPeriod) error {
	if err := b.s.exec(ctx, `DELETE FROM {p}totals WHERE metric = 'attainment' AND period = ? AND scope = 'teams' AND subject_id = ?`,
		mp.period, mp.member); err != nil {
		return err
	}
	var target int64
	found, err := b.s.row(ctx, `SELECT value_minor FROM {p}targets WHERE subject_id = ? AND kpi = 'revenue' AND period = ? AND subject_kind = 'team'
		ORDER BY rowid DESC LIMIT 1`, []any{mp.member, mp.period}, &target)
	if err != nil || !found || target <= 0 {
		return err
	}
	var rev, reached int64
	var name string
	found, err = b.s.row(ctx, `SELECT value, reached, name FROM {p}totals WHERE metric = 'revenue' AND period = ? AND scope = 'teams' AND subject_id = ?`,
		[]any{mp.period, mp.member}, &rev, &reached, &name)
	if err != nil || !found {
		return err
	}
	return b.s.exec(ctx, `INSERT INTO {p}totals (metric, period, scope, scope_id, subject_id, value, raw, reached, name)
		VALUES ('attainment', ?, 'teams', '', ?, ?, ?, ?, ?)`, mp.period, mp.member, attainmentValue(rev, target), rev, reached, name)
}

// evaluation recomputes a member's evaluation rows of one period: a month's
// finalized score; a quarter's mean of its finalized months; a year's mean
// of its quarters (each rounded half-even to 1e-4). The rows are credited to
// the team the member was in at the end of the latest finalized month.
func (b *lbBatch) evaluation(ctx context.Context, mp memberPeriod) error {
	per, err := domain.ParsePeriod(mp.period)
	if err != nil {
		return nil
	}
	if err := b.s.exec(ctx, `DELETE FROM {p}totals WHERE metric = 'evaluation' AND period = ? AND subject_id = ?`, mp.period, mp.member); err != nil {
		return err
	}
	rows, err := b.s.query(ctx, `SELECT month, score, position FROM {p}evals WHERE member_id = ? AND month >= ? AND month < ? ORDER BY month`,
		mp.member, domain.PeriodOf(domain.PeriodMonth, per.Start()).String(), domain.PeriodOf(domain.PeriodMonth, per.End()).String())
	if err != nil {
		return err
	}
	type ev struct {
		month string
		score int64
		pos   int64
	}
	var evs []ev
	for rows.Next() {
		var x ev
		if err := rows.Scan(&x.month, &x.score, &x.pos); err != nil {
			rows.Close()
			return err
		}
		evs = append(evs, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(evs) == 0 {
		return err
	}
	var score, reached int64
	lastMonth := evs[len(evs)-1].month
	for _, x := range evs {
		reached = max(reached, x.pos)
	}
	switch per.Kind {
	case domain.PeriodYear:
		byQuarter := map[int][]domain.Fixed{}
		for _, x := range evs {
			mp, _ := domain.ParsePeriod(x.month)
			byQuarter[(mp.N-1)/3] = append(byQuarter[(mp.N-1)/3], domain.Fixed(x.score))
		}
		var qs []domain.Fixed
		for q := range 4 {
			if v, ok := scoring.Quarter(byQuarter[q]); ok {
				qs = append(qs, v)
			}
		}
		v, _ := scoring.Year(qs)
		score = int64(v)
	default:
		var all []domain.Fixed
		for _, x := range evs {
			all = append(all, domain.Fixed(x.score))
		}
		v, _ := scoring.Mean(all)
		score = int64(v)
	}
	m, err := b.org.member(ctx, b.s, mp.member)
	if err != nil {
		return err
	}
	name := m.Name
	if name == "" {
		name = mp.member
	}
	lm, _ := domain.ParsePeriod(lastMonth)
	ti, err := b.org.teamAt(ctx, b.s, mp.member, lm.End().AddDate(0, 0, -1))
	if err != nil {
		return err
	}
	scopes := [][2]string{{ScopeCompany, ""}}
	if ti.ID != "" {
		scopes = append(scopes, [2]string{ScopeDepartment, ti.Department}, [2]string{ScopeRegion, ti.Region}, [2]string{ScopeTeam, ti.ID})
	}
	args := make([]any, 0, 9*len(scopes))
	for _, sc := range scopes {
		args = append(args, MetricEvaluation, mp.period, sc[0], sc[1], mp.member, score, score, reached, name)
	}
	return b.s.exec(ctx, insertTotals(len(scopes)), args...)
}

func majorToMinor(v domain.Fixed) int64 { return int64(v) / (domain.FixedScale / 100) }

func canonicalPeriod(s string) string {
	p, err := domain.ParsePeriod(s)
	if err != nil {
		return s
	}
	return p.String()
}

// BoardQuery selects a leaderboard. Metric is one of the Metric constants;
// Period a canonical period ("2026-W47", "2026-11", "2026-Q4", "2026");
// Scope one of the Scope constants with ScopeID the department, region or
// team id (empty for company; for teams, empty or "department:<id>" or
// "region:<id>"). Cursor is the Next of the previous
// page ("" for the first); Limit 0 means DefaultLimit.
type BoardQuery struct {
	Metric  string
	Period  string
	Scope   string
	ScopeID string
	Limit   int
	Cursor  string
}

// Board is one page of a leaderboard. Position is the ledger position the
// board reflects; Next is "" on the last page.
type Board struct {
	Metric   string     `json:"metric"`
	Period   string     `json:"period"`
	Scope    string     `json:"scope"`
	ScopeID  string     `json:"scope_id,omitempty"`
	Unit     string     `json:"unit"`
	Position string     `json:"position"` // domain.Position.String(); ParsePosition reads it
	Rows     []BoardRow `json:"rows"`
	Next     string     `json:"next,omitempty"`
}

// BoardRow is a ranked member (or team on a team-vs-team board). Rank is the
// standard competition rank (1, 2, 2, 4) on the exact Value; rows of equal
// value are ordered by Raw descending, then who reached it first (the
// earlier ledger position), then name, then id. Value is exact; Display is
// rounded for people.
type BoardRow struct {
	Rank      int    `json:"rank"`
	SubjectID string `json:"subject_id"`
	Name      string `json:"name"`
	Value     string `json:"value"`
	Display   string `json:"display"`
	Raw       int64  `json:"raw"`
}

type boardCursor struct {
	Value   int64  `json:"v"`
	Raw     int64  `json:"r"`
	Reached int64  `json:"t"`
	Name    string `json:"n"`
	Subject string `json:"s"`
	Rank    int    `json:"k"`
	Seen    int    `json:"i"`
}

// Board returns one page of a leaderboard, read from db (the read-model
// database). Errors caused by q wrap ErrInvalidQuery.
func (l *Leaderboard) Board(ctx context.Context, db Queryer, q BoardQuery) (Board, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return Board{}, err
	}
	var unit string
	switch q.Metric {
	case MetricRevenue:
		unit = currentCurrency(ctx, db, l.prefix)
	case MetricActivityPoints:
		unit = "points"
	case MetricAttainment:
		unit = "percent"
	case MetricEvaluation, MetricWeeklyScore, MetricMonthlyScore:
		unit = "score"
	default:
		return Board{}, fmt.Errorf("%w: metric %q: want revenue, activity_points, attainment, weekly_score, monthly_score or evaluation",
			ErrInvalidQuery, q.Metric)
	}
	per, err := domain.ParsePeriod(q.Period)
	if err != nil {
		return Board{}, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
	}
	switch {
	case q.Metric == MetricEvaluation && per.Kind == domain.PeriodWeek:
		return Board{}, fmt.Errorf("%w: evaluations are monthly: want a month, quarter or year", ErrInvalidQuery)
	case q.Metric == MetricWeeklyScore && per.Kind != domain.PeriodWeek:
		return Board{}, fmt.Errorf("%w: weekly_score wants a week (YYYY-Www)", ErrInvalidQuery)
	case q.Metric == MetricMonthlyScore && per.Kind != domain.PeriodMonth:
		return Board{}, fmt.Errorf("%w: monthly_score wants a month (YYYY-MM)", ErrInvalidQuery)
	}
	switch q.Scope {
	case ScopeCompany:
		if q.ScopeID != "" {
			return Board{}, fmt.Errorf("%w: scope %s takes no scope id", ErrInvalidQuery, q.Scope)
		}
	case ScopeTeams:
		if k, v, _ := strings.Cut(q.ScopeID, ":"); q.ScopeID != "" && (v == "" || (k != ScopeDepartment && k != ScopeRegion)) {
			return Board{}, fmt.Errorf("%w: scope teams takes no scope id, or department:<id> or region:<id>", ErrInvalidQuery)
		}
	case ScopeDepartment, ScopeRegion, ScopeTeam:
		if q.ScopeID == "" {
			return Board{}, fmt.Errorf("%w: scope %s needs a scope id", ErrInvalidQuery, q.Scope)
		}
	default:
		return Board{}, fmt.Errorf("%w: scope %q: want company, department, region, team or teams", ErrInvalidQuery, q.Scope)
	}
	var cur boardCursor
	if q.Cursor != "" {
		if err := decodeCursor(q.Cursor, &cur); err != nil {
			return Board{}, err
		}
	}
	pos, err := loadPosition(ctx, db, l.prefix)
	if err != nil {
		return Board{}, err
	}
	board := Board{Metric: q.Metric, Period: per.String(), Scope: q.Scope, ScopeID: q.ScopeID, Unit: unit, Position: pos.String(), Rows: []BoardRow{}}
	args := []any{q.Metric, per.String(), q.Scope, q.ScopeID}
	filter := ""
	if q.Scope == ScopeTeams && q.ScopeID != "" {
		// Team-vs-team inside a department or region: the company-wide team
		// rows of the teams formed there.
		k, v, _ := strings.Cut(q.ScopeID, ":")
		args[3] = ""
		filter = ` AND subject_id IN (SELECT team_id FROM {p}org_teams WHERE ` + k + ` = ?)`
		args = append(args, v)
	}
	keyset := ""
	if q.Cursor != "" {
		keyset = ` AND value <= ? AND (value < ? OR (value = ? AND (raw < ? OR (raw = ? AND (reached > ? OR (reached = ? AND (name > ? OR (name = ? AND subject_id > ?))))))))`
		args = append(args, cur.Value, cur.Value, cur.Value, cur.Raw, cur.Raw, cur.Reached, cur.Reached, cur.Name, cur.Name, cur.Subject)
	}
	args = append(args, limit+1)
	rows, err := db.QueryContext(ctx, withPrefix(l.prefix, `SELECT subject_id, name, value, raw, reached FROM {p}totals
		WHERE metric = ? AND period = ? AND scope = ? AND scope_id = ?`+filter+keyset+`
		ORDER BY value DESC, raw DESC, reached, name, subject_id LIMIT ?`), args...)
	if err != nil {
		return Board{}, fmt.Errorf("leaderboard: %w", err)
	}
	defer rows.Close()
	rank, seen, prev, havePrev := cur.Rank, cur.Seen, cur.Value, q.Cursor != ""
	var last boardCursor
	for rows.Next() {
		var r BoardRow
		var value, reached int64
		if err := rows.Scan(&r.SubjectID, &r.Name, &value, &r.Raw, &reached); err != nil {
			return Board{}, fmt.Errorf("leaderboard: %w", err)
		}
		if len(board.Rows) == limit {
			board.Next = encodeCursor(last)
			break
		}
		seen++
		if !havePrev || value != prev {
			rank = seen
		}
		prev, havePrev = value, true
		r.Rank = rank
		r.Value, r.Display = formatMetric(q.Metric, value)
		board.Rows = append(board.Rows, r)
		last = boardCursor{Value: value, Raw: r.Raw, Reached: reached, Name: r.Name, Subject: r.SubjectID, Rank: rank, Seen: seen}
	}
	if err := rows.Err(); err != nil {
		return Board{}, fmt.Errorf("leaderboard: %w", err)
	}
	return board, nil
}

// currentCurrency is the currency of the latest rule set published (EUR
// under rule set v1): revenue values are in its major units.
func currentCurrency(ctx context.Context, db Queryer, prefix string) string {
	var payload string
	err := db.QueryRowContext(ctx, withPrefix(prefix, `SELECT payload FROM {p}rules ORDER BY effective_from DESC, position DESC LIMIT 1`)).Scan(&payload)
	var ev domain.ScoringRulesPublished
	if err != nil || json.Unmarshal([]byte(payload), &ev) != nil || ev.Currency == "" {
		return scoring.DefaultRules().Currency
	}
	return ev.Currency
}

// formatMetric renders a stored value exactly and for display.
func formatMetric(metric string, v int64) (exact, display string) {
	switch metric {
	case MetricRevenue:
		s := minorString(v)
		return s, s
	case MetricAttainment:
		exact = decimalString(v, attainmentScale, 6)
		return exact, domain.Fixed(v / 100).Round2()
	default:
		return domain.Fixed(v).String(), domain.Fixed(v).Round2()
	}
}

// minorString renders minor units with two decimals ("1234.50").
func minorString(v int64) string { return decimalString(v, 100, 2) }

func decimalString(v, scale int64, digits int) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%0*d", sign, v/scale, digits, v%scale)
}
