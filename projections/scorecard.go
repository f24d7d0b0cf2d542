package projections

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// scoreSchema holds what the weekly and monthly scores are computed from, and
// the computed scores with the events behind them.
const scoreSchema = `
CREATE TABLE IF NOT EXISTS {p}sc_contrib (
	member_id TEXT NOT NULL,
	source_id TEXT NOT NULL,
	week TEXT NOT NULL,
	source TEXT NOT NULL,
	currency TEXT NOT NULL,
	month TEXT NOT NULL,
	amount INTEGER NOT NULL,
	event_id TEXT NOT NULL,
	voided_by TEXT NOT NULL DEFAULT '',
	metric TEXT NOT NULL,
	team_id TEXT NOT NULL,
	occurred_at TEXT NOT NULL,
	day TEXT NOT NULL,
	points INTEGER NOT NULL,
	PRIMARY KEY (member_id, week, source_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}sc_ratings (
	event_id TEXT PRIMARY KEY,
	member_id TEXT NOT NULL,
	period TEXT NOT NULL,
	kind TEXT NOT NULL,
	rating INTEGER NOT NULL,
	position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {p}sc_ratings_member ON {p}sc_ratings (member_id, kind, period);
CREATE TABLE IF NOT EXISTS {p}sc_targets (
	target_id TEXT PRIMARY KEY,
	subject_id TEXT NOT NULL,
	kpi TEXT NOT NULL,
	period TEXT NOT NULL,
	value INTEGER NOT NULL,
	event_ids TEXT NOT NULL,
	position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {p}sc_targets_subject ON {p}sc_targets (subject_id, period);
CREATE TABLE IF NOT EXISTS {p}sc_sums (
	member_id TEXT NOT NULL,
	week TEXT NOT NULL,
	month TEXT NOT NULL,
	source TEXT NOT NULL,
	currency TEXT NOT NULL,
	amount INTEGER NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (member_id, week, month, source, currency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}sc_weeks (
	member_id TEXT NOT NULL,
	week TEXT NOT NULL,
	total INTEGER NOT NULL,
	PRIMARY KEY (member_id, week)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}sc_months (
	member_id TEXT NOT NULL,
	month TEXT NOT NULL,
	PRIMARY KEY (member_id, month)
) WITHOUT ROWID
`

// setupScores creates the score tables. sc_sums holds the running totals
// of the contributions per member, week, month, source and currency, equal
// to the sums over the rows of sc_contrib that are not voided (the
// leaderboard's batches keep them: sumKey): a week or month is then scored
// from a few rows however many contributions it holds. sc_weeks keeps each
// scored week's total W (a monthly card and the weekly-score boards read
// it) and sc_months each scored month. A card itself is computed when it is
// read, by the same code from the same rows, with the events behind each
// figure listed from sc_contrib.
func setupScores(ctx context.Context, tx *sql.Tx, prefix, schema string) error {
	return execAll(ctx, tx, prefix, schema+";"+scoreSchema)
}

// scoreKeeper folds the events that scores are made of and recomputes the
// dirty weeks and months at the end of a batch. It is shared by the
// scorecard and the leaderboard (weekly score), each with its own tables.
//
// Contributions are kept by source (activity kind, or "sale"); a week or
// month is scored with the rule set in force on its first day, which maps
// sources to KPIs.
type scoreKeeper struct {
	book *rulesBook
	org  *orgCache // the caller has it forget what each organisation event changes
	// days caches, by Unix day, the week of the day and the months that
	// week overlaps (dirtyAt).
	days map[int64][3]string
	// weeks and months to recompute, each with the position of the last
	// event that touched it: the "reached" of its score, the same whatever
	// the batching.
	weeks  map[memberPeriod]int64
	months map[memberPeriod]int64
	cur    int64 // position of the event being applied
	// targets caches each member's TargetSets (by position) during recompute.
	targetRows map[string][]scTarget
	// ratings holds the rows of sc_ratings apply added, written in
	// multi-row statements; recompute, which reads them, writes them first.
	ratings rowBuffer
}

type scTarget struct {
	period, kpi string
	value       int64
	events      []string
}

func newScoreKeeper(book *rulesBook, org *orgCache) *scoreKeeper {
	return &scoreKeeper{book: book, org: org, weeks: map[memberPeriod]int64{}, months: map[memberPeriod]int64{},
		targetRows: map[string][]scTarget{}, days: map[int64][3]string{},
		ratings: rowBuffer{head: `INSERT OR IGNORE INTO {p}sc_ratings (event_id, member_id, period, kind, rating, position) VALUES `, cols: 6}}
}

// dirtyAt marks the week of t and the months it overlaps, as dirtyWeek
// does (the month of t is one of them).
func (k *scoreKeeper) dirtyAt(memberID string, t time.Time) {
	d := unixDay(t)
	p, ok := k.days[d]
	if !ok {
		w := domain.PeriodOf(domain.PeriodWeek, t)
		p = [3]string{w.String(), domain.PeriodOf(domain.PeriodMonth, w.Start()).String(),
			domain.PeriodOf(domain.PeriodMonth, w.End().AddDate(0, 0, -1)).String()}
		k.days[d] = p
	}
	k.mark(k.weeks, memberPeriod{memberID, p[0]})
	for _, month := range p[1:] {
		k.mark(k.months, memberPeriod{memberID, month})
	}
}

// mark records that the current event touched mp.
func (k *scoreKeeper) mark(m map[memberPeriod]int64, mp memberPeriod) {
	if m[mp] < k.cur {
		m[mp] = k.cur
	}
}

// at sets the event being applied.
func (k *scoreKeeper) at(e Envelope) { k.cur = int64(e.Position.Commit) }

// dirtyWeek marks a week and the months it overlaps.
func (k *scoreKeeper) dirtyWeek(memberID, week string) {
	k.mark(k.weeks, memberPeriod{memberID, week})
	if w, err := domain.ParsePeriod(week); err == nil {
		k.mark(k.months, memberPeriod{memberID, domain.PeriodOf(domain.PeriodMonth, w.Start()).String()})
		k.mark(k.months, memberPeriod{memberID, domain.PeriodOf(domain.PeriodMonth, w.End().AddDate(0, 0, -1)).String()})
	}
}

func (k *scoreKeeper) dirtyPeriod(memberID, period string) {
	p, err := domain.ParsePeriod(period)
	if err != nil {
		return
	}
	switch p.Kind {
	case domain.PeriodWeek:
		k.dirtyWeek(memberID, p.String())
	case domain.PeriodMonth:
		k.mark(k.months, memberPeriod{memberID, p.String()})
	}
}

// apply folds one event (the org events are applied by the caller).
func (k *scoreKeeper) apply(ctx context.Context, s *stmts, e Envelope) error {
	k.at(e)
	switch ev := e.Payload.(type) {
	case *domain.ScoringRulesPublished:
		ok, err := k.book.add(ctx, s, e, ev)
		if err != nil || !ok {
			return err
		}
		return k.dirtyFrom(ctx, s, ev.EffectiveFrom)
	case *domain.ActivityLogged:
		// The caller writes the contribution (contributionRow) and reports
		// voids (voided).
		k.dirtyAt(ev.MemberID, ev.OccurredAt)
	case *domain.SaleClosed:
		k.dirtyAt(ev.MemberID, ev.OccurredAt)
	case *domain.QualityAssessed:
		week := ev.Week
		if ev.Day != "" {
			d, err := domain.ParseDate(ev.Day)
			if err != nil {
				return nil
			}
			week = domain.PeriodOf(domain.PeriodWeek, d).String()
		}
		week = canonicalPeriod(week)
		k.dirtyWeek(ev.MemberID, week)
		return k.ratings.add(ctx, s, e.ID, ev.MemberID, week, "quality", ev.Rating, int64(e.Position.Commit))
	case *domain.ManagerRatingRecorded:
		month := canonicalPeriod(ev.Month)
		k.mark(k.months, memberPeriod{ev.MemberID, month})
		return k.ratings.add(ctx, s, e.ID, ev.MemberID, month, "manager", ev.Rating, int64(e.Position.Commit))
	case *domain.EvaluationFinalized:
		month := canonicalPeriod(ev.Month)
		k.mark(k.months, memberPeriod{ev.MemberID, month})
		return k.ratings.add(ctx, s, e.ID, ev.MemberID, month, "final", ev.Band, int64(e.Position.Commit))
	case *domain.TargetSet:
		if ev.SubjectKind != domain.SubjectMember {
			return nil
		}
		period := canonicalPeriod(ev.Period)
		k.dirtyPeriod(ev.SubjectID, period)
		return s.exec(ctx, `INSERT OR REPLACE INTO {p}sc_targets (target_id, subject_id, kpi, period, value, event_ids, position)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, ev.TargetID, ev.SubjectID, ev.KPI, period, int64(ev.Value), jsonText([]string{e.ID}), int64(e.Position.Commit))
	case *domain.TargetRevised:
		var subject, period, ids string
		found, err := s.row(ctx, `SELECT subject_id, period, event_ids FROM {p}sc_targets WHERE target_id = ?`, []any{ev.TargetID}, &subject, &period, &ids)
		if err != nil || !found {
			return err
		}
		var list []string
		_ = json.Unmarshal([]byte(ids), &list)
		k.dirtyPeriod(subject, period)
		return s.exec(ctx, `UPDATE {p}sc_targets SET value = ?, event_ids = ? WHERE target_id = ?`,
			int64(ev.NewValue), jsonText(append(list, e.ID)), ev.TargetID)
	case *domain.PromotionEffected:
		return k.dirtyAll(ctx, s, ev.MemberID)
	case *domain.PromotionRescinded:
		return k.dirtyAll(ctx, s, ev.MemberID)
	}
	return nil
}

// dirtyFrom marks every scored week and month that starts on or after a
// rule set's effective day.
func (k *scoreKeeper) dirtyFrom(ctx context.Context, s *stmts, effectiveFrom string) error {
	day, err := domain.ParseDate(effectiveFrom)
	if err != nil {
		return nil
	}
	for _, q := range []struct{ sql, from string }{
		{`SELECT member_id, week FROM {p}sc_weeks WHERE week >= ?`, domain.PeriodOf(domain.PeriodWeek, day).String()},
		{`SELECT member_id, month FROM {p}sc_months WHERE month >= ?`, domain.PeriodOf(domain.PeriodMonth, day).String()},
	} {
		rows, err := s.query(ctx, q.sql, q.from)
		if err != nil {
			return err
		}
		var mps []memberPeriod
		for rows.Next() {
			var mp memberPeriod
			if err := rows.Scan(&mp.member, &mp.period); err != nil {
				rows.Close()
				return err
			}
			mps = append(mps, mp)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, mp := range mps {
			k.dirtyPeriod(mp.member, mp.period)
		}
	}
	return nil
}

// voided marks the week and month of a contribution just voided (the
// current event).
func (k *scoreKeeper) voided(memberID, week, month string) {
	k.dirtyWeek(memberID, week)
	k.mark(k.months, memberPeriod{memberID, month})
}

// dirtyAll marks every scored week and month of a member (a role change
// changes the default targets).
func (k *scoreKeeper) dirtyAll(ctx context.Context, s *stmts, memberID string) error {
	for _, q := range []string{`SELECT week FROM {p}sc_weeks WHERE member_id = ?`, `SELECT month FROM {p}sc_months WHERE member_id = ?`} {
		rows, err := s.query(ctx, q, memberID)
		if err != nil {
			return err
		}
		var ps []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return err
			}
			ps = append(ps, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range ps {
			k.dirtyPeriod(memberID, p)
		}
	}
	return nil
}

// KPILine is one KPI of a weekly scorecard. Actual is a count, or minor
// units for money (ActualText renders it); Target is in the KPI's unit (major
// units for money); Contribution is 100 × weight × attainment, its share of Q.
type KPILine struct {
	KPI          string       `json:"kpi"`
	Actual       int64        `json:"actual"`
	ActualText   string       `json:"actual_text"`
	Target       domain.Fixed `json:"target"`
	TargetSet    bool         `json:"target_set"` // false: derived from the role norm
	Attainment   domain.Fixed `json:"attainment"`
	Weight       domain.Fixed `json:"weight"`
	Contribution domain.Fixed `json:"contribution"`
	Events       []string     `json:"events"`
}

// Rating is a rating and the event that recorded it.
type Rating struct {
	Rating  int    `json:"rating"`
	EventID string `json:"event_id"`
}

// ScorecardWeek is a member's week: each KPI and Q, q and W. When no
// quality rating was recorded HasQuality is false, Quality is null and
// W = Q (Note says so).
type ScorecardWeek struct {
	Position   string        `json:"position"`
	MemberID   string        `json:"member_id"`
	Week       string        `json:"week"`
	Role       string        `json:"role"`
	KPIs       []KPILine     `json:"kpis"`
	Quantity   domain.Fixed  `json:"quantity"`
	Quality    *domain.Fixed `json:"quality"`
	HasQuality bool          `json:"has_quality"`
	Ratings    []Rating      `json:"ratings"`
	Total      domain.Fixed  `json:"total"`
	Display    string        `json:"display"`
	Note       string        `json:"note,omitempty"`
	Targets    []string      `json:"target_events"`

	// sources maps each source counted by a KPI to the KPI and, for money,
	// the one currency counted: what lists the events behind each KPI.
	sources map[string]kpiSource
}

type kpiSource struct {
	KPI      string `json:"kpi"`
	Currency string `json:"currency,omitempty"` // "" : any
}

// MonthWeek is a week's share of a monthly roll-up.
type MonthWeek struct {
	Week        string       `json:"week"`
	WorkingDays int          `json:"working_days"`
	Total       domain.Fixed `json:"total"`
}

// ScorecardMonth is a member's month: R, O, M and the provisional E and band
// as computed now. Once an EvaluationFinalized locks the month, Provisional
// is false and FinalizedEvent names it (the locked figures are in the
// evaluation register). A missing component is null and left out of E.
type ScorecardMonth struct {
	Position       string        `json:"position"`
	MemberID       string        `json:"member_id"`
	Month          string        `json:"month"`
	Role           string        `json:"role"`
	Weeks          []MonthWeek   `json:"weeks"`
	Rollup         *domain.Fixed `json:"rollup"`
	Revenue        int64         `json:"revenue_minor"`
	RevenueTarget  domain.Fixed  `json:"revenue_target"`
	Objective      *domain.Fixed `json:"objective"`
	ManagerRating  *Rating       `json:"manager_rating"`
	Manager        *domain.Fixed `json:"manager"`
	Evaluation     *domain.Fixed `json:"evaluation"`
	Display        string        `json:"display,omitempty"`
	Band           int           `json:"band,omitempty"`
	BandLabel      string        `json:"band_label,omitempty"`
	Provisional    bool          `json:"provisional"`
	FinalizedEvent string        `json:"finalized_event,omitempty"` // the EvaluationFinalized that locked the month
	RevenueEvents  []string      `json:"revenue_events"`
	TargetEvents   []string      `json:"target_events"`
	RulesVersion   int           `json:"rules_version"`
	Note           string        `json:"note,omitempty"`

	// The source and currency of the revenue counted ("": no revenue KPI):
	// what lists RevenueEvents.
	revenueSource, revenueCurrency string
}

// scoreHooks are told of every week and month recomputed (nil: nothing is
// scored for it any more).
type scoreHooks struct {
	// reached is the position of the last event that touched the period.
	week  func(memberID, week string, w *ScorecardWeek, reached int64) error
	month func(memberID, month string, m *ScorecardMonth, reached int64) error
}

// recompute scores every dirty week, then every dirty month, telling hooks.
func (k *scoreKeeper) recompute(ctx context.Context, s *stmts, hooks scoreHooks) error {
	if err := k.ratings.flush(ctx, s); err != nil {
		return err
	}
	clear(k.targetRows)
	defer clear(k.targetRows)
	weeks := sortedKeys(k.weeks)
	for _, mp := range weeks {
		w, ok, err := k.week(ctx, s, mp.member, mp.period)
		if err != nil {
			return fmt.Errorf("week %s of %s: %w", mp.period, mp.member, err)
		}
		if !ok {
			if err := s.exec(ctx, `DELETE FROM {p}sc_weeks WHERE member_id = ? AND week = ?`, mp.member, mp.period); err != nil {
				return err
			}
		} else if err := s.exec(ctx, `INSERT OR REPLACE INTO {p}sc_weeks (member_id, week, total) VALUES (?, ?, ?)`,
			mp.member, mp.period, int64(w.Total)); err != nil {
			return err
		}
		if hooks.week != nil {
			var wp *ScorecardWeek
			if ok {
				wp = &w
			}
			if err := hooks.week(mp.member, mp.period, wp, k.weeks[mp]); err != nil {
				return err
			}
		}
	}
	for _, mp := range sortedKeys(k.months) {
		m, err := k.month(ctx, s, mp.member, mp.period)
		if err != nil {
			return fmt.Errorf("month %s of %s: %w", mp.period, mp.member, err)
		}
		if err := s.exec(ctx, `INSERT OR IGNORE INTO {p}sc_months (member_id, month) VALUES (?, ?)`, mp.member, mp.period); err != nil {
			return err
		}
		if hooks.month != nil {
			if err := hooks.month(mp.member, mp.period, &m, k.months[mp]); err != nil {
				return err
			}
		}
	}
	clear(k.weeks)
	clear(k.months)
	return nil
}

// discard forgets the weeks and months to recompute.
func (k *scoreKeeper) discard() {
	clear(k.weeks)
	clear(k.months)
}

func sortedKeys[V any](m map[memberPeriod]V) []memberPeriod {
	return keysBy(m, func(a, b memberPeriod) int {
		return cmp.Or(strings.Compare(a.member, b.member), strings.Compare(a.period, b.period))
	})
}

// byPeriod returns the keys of m ordered by period, then member: the order
// of the leaderboard's totals rows of one metric.
func byPeriod[V any](m map[memberPeriod]V) []memberPeriod {
	return keysBy(m, func(a, b memberPeriod) int {
		return cmp.Or(strings.Compare(a.period, b.period), strings.Compare(a.member, b.member))
	})
}

// keysBy returns the keys of m sorted by compare.
func keysBy[V any](m map[memberPeriod]V, compare func(a, b memberPeriod) int) []memberPeriod {
	out := make([]memberPeriod, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, compare)
	return out
}

// scoringRole returns the role a member held on day t, falling back to a
// salesperson for a role the rule set has no norm for.
func scoringRole(ctx context.Context, s *stmts, org *orgCache, rules scoring.Rules, memberID string, t time.Time) (string, error) {
	role, err := org.roleAt(ctx, s, memberID, t)
	if err != nil {
		return "", err
	}
	if _, err := rules.NormMultiplier(role); err != nil {
		return scoring.RoleSalesperson, nil
	}
	return role, nil
}

// targets returns the member's TargetSets for a period and their events.
// The member's targets of every period are read once per recompute.
func (k *scoreKeeper) targets(ctx context.Context, s *stmts, memberID string, per domain.Period) (map[scoring.TargetKey]domain.Fixed, []string, error) {
	all, ok := k.targetRows[memberID]
	if !ok {
		rows, err := s.query(ctx, `SELECT period, kpi, value, event_ids FROM {p}sc_targets WHERE subject_id = ? ORDER BY position`, memberID)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var t scTarget
			var ids string
			if err := rows.Scan(&t.period, &t.kpi, &t.value, &ids); err != nil {
				rows.Close()
				return nil, nil, err
			}
			_ = json.Unmarshal([]byte(ids), &t.events)
			all = append(all, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		k.targetRows[memberID] = all
	}
	set := map[scoring.TargetKey]domain.Fixed{}
	events := []string{}
	name := per.String()
	for _, t := range all {
		if t.period != name {
			continue
		}
		set[scoring.TargetKey{KPI: t.kpi, Period: per}] = domain.Fixed(t.value)
		events = append(events, t.events...)
	}
	return set, events, nil
}

// week scores one member-week; ok is false when nothing was recorded for it.
func (k *scoreKeeper) week(ctx context.Context, s *stmts, memberID, week string) (ScorecardWeek, bool, error) {
	per, err := domain.ParsePeriod(week)
	if err != nil {
		return ScorecardWeek{}, false, nil
	}
	rules := k.book.at(per.Start())
	actuals := map[string]int64{}
	rows, err := s.query(ctx, `SELECT source, currency, amount, n FROM {p}sc_sums WHERE member_id = ? AND week = ?`, memberID, week)
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	n := int64(0)
	for rows.Next() {
		var source, currency string
		var amount, count int64
		if err := rows.Scan(&source, &currency, &amount, &count); err != nil {
			rows.Close()
			return ScorecardWeek{}, false, err
		}
		kpi, ok := rules.KPIForSource(source)
		if !ok || (kpi.Money() && currency != rules.Currency) {
			continue
		}
		actuals[kpi.Code] += amount
		n += count
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ScorecardWeek{}, false, err
	}
	var ratings []Rating
	rrows, err := s.query(ctx, `SELECT rating, event_id FROM {p}sc_ratings WHERE member_id = ? AND kind = 'quality' AND period = ? ORDER BY position`, memberID, week)
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	for rrows.Next() {
		var r Rating
		if err := rrows.Scan(&r.Rating, &r.EventID); err != nil {
			rrows.Close()
			return ScorecardWeek{}, false, err
		}
		ratings = append(ratings, r)
	}
	rrows.Close()
	if err := rrows.Err(); err != nil {
		return ScorecardWeek{}, false, err
	}
	if n == 0 && len(ratings) == 0 {
		return ScorecardWeek{}, false, nil
	}
	role, err := scoringRole(ctx, s, k.org, rules, memberID, per.End().AddDate(0, 0, -1))
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	set, targetEvents, err := k.targets(ctx, s, memberID, per)
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	var targets map[string]domain.Fixed
	if len(set) == 0 {
		targets, err = k.book.defaultTargets(role, per)
	} else {
		targets, err = rules.Targets(role, per, set)
	}
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	ints := make([]int, len(ratings))
	for i, r := range ratings {
		ints[i] = r.Rating
	}
	ws, err := rules.Week(actuals, targets, ints)
	if err != nil {
		return ScorecardWeek{}, false, err
	}
	card := ScorecardWeek{MemberID: memberID, Week: week, Role: role, Quantity: ws.Quantity, HasQuality: ws.HasQuality,
		Ratings: nonNilRatings(ratings), Total: ws.Total, Display: ws.Total.Round2(), Targets: targetEvents, KPIs: []KPILine{}}
	if ws.HasQuality {
		q := ws.Quality
		card.Quality = &q
	} else {
		card.Note = "no quality rating this week: W = Q"
	}
	for _, kp := range rules.KPIs {
		a := ws.Attainments[kp.Code]
		line := KPILine{KPI: kp.Code, Actual: actuals[kp.Code], Target: targets[kp.Code],
			TargetSet: hasKey(set, scoring.TargetKey{KPI: kp.Code, Period: per}), Attainment: a, Weight: kp.Weight,
			Contribution: fixedProduct100(kp.Weight, a), Events: []string{}}
		line.ActualText = fmt.Sprint(line.Actual)
		if kp.Money() {
			line.ActualText = minorString(line.Actual)
		}
		card.KPIs = append(card.KPIs, line)
	}
	card.sources = map[string]kpiSource{}
	for _, kp := range rules.KPIs {
		if _, taken := card.sources[kp.Source]; taken {
			continue // the first KPI of a source counts it (KPIForSource)
		}
		ks := kpiSource{KPI: kp.Code}
		if kp.Money() {
			ks.Currency = rules.Currency
		}
		card.sources[kp.Source] = ks
	}
	return card, true, nil
}

func hasKey(m map[scoring.TargetKey]domain.Fixed, k scoring.TargetKey) bool {
	_, ok := m[k]
	return ok
}

func nonNilRatings(r []Rating) []Rating {
	if r == nil {
		return []Rating{}
	}
	return r
}

// fixedProduct100 is 100 × w × a rounded half-even to 1e-4 (for display: Q
// itself is computed from the exact attainments).
func fixedProduct100(w, a domain.Fixed) domain.Fixed {
	r := big.NewRat(int64(w)*int64(a)*100, domain.FixedScale*domain.FixedScale)
	r.Mul(r, big.NewRat(domain.FixedScale, 1))
	q, m := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	switch new(big.Int).Lsh(m, 1).Cmp(r.Denom()) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return domain.Fixed(q.Int64())
}

// month scores one member-month: R over the weeks that have a score
// (weighted by their working days inside the month), O from the month's
// revenue and revenue target, M from the latest manager rating, and the
// provisional E and band.
func (k *scoreKeeper) month(ctx context.Context, s *stmts, memberID, month string) (ScorecardMonth, error) {
	per, err := domain.ParsePeriod(month)
	if err != nil {
		return ScorecardMonth{}, err
	}
	rules := k.book.at(per.Start())
	card := ScorecardMonth{MemberID: memberID, Month: month, Weeks: []MonthWeek{}, Provisional: true, RulesVersion: rules.Version,
		RevenueEvents: []string{}}
	var weighted []scoring.WeightedScore
	shares := scoring.MonthWeeks(per)
	totals := map[string]int64{}
	if len(shares) > 0 {
		// Week names sort chronologically ("2026-W05" < "2026-W53" < "2027-W01").
		rows, err := s.query(ctx, `SELECT week, total FROM {p}sc_weeks WHERE member_id = ? AND week >= ? AND week <= ?`,
			memberID, shares[0].Week.String(), shares[len(shares)-1].Week.String())
		if err != nil {
			return ScorecardMonth{}, err
		}
		for rows.Next() {
			var w string
			var t int64
			if err := rows.Scan(&w, &t); err != nil {
				rows.Close()
				return ScorecardMonth{}, err
			}
			totals[w] = t
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return ScorecardMonth{}, err
		}
	}
	for _, share := range shares {
		total, found := totals[share.Week.String()]
		if !found {
			continue
		}
		card.Weeks = append(card.Weeks, MonthWeek{Week: share.Week.String(), WorkingDays: share.WorkingDays, Total: domain.Fixed(total)})
		weighted = append(weighted, scoring.WeightedScore{Score: domain.Fixed(total), WorkingDays: share.WorkingDays})
	}
	if r, ok := scoring.Rollup(weighted); ok {
		card.Rollup = &r
	}
	card.Note = "weeks with nothing recorded are left out of R"
	role, err := scoringRole(ctx, s, k.org, rules, memberID, per.End().AddDate(0, 0, -1))
	if err != nil {
		return ScorecardMonth{}, err
	}
	card.Role = role
	if kpi, ok := rules.RevenueKPI(); ok {
		// The month's contributions lie in the weeks it overlaps: a range
		// of the primary key.
		card.revenueSource, card.revenueCurrency = kpi.Source, rules.Currency
		if _, err := s.row(ctx, `SELECT COALESCE(SUM(amount), 0) FROM {p}sc_sums WHERE member_id = ? AND week >= ? AND week <= ?
			AND month = ? AND source = ? AND currency = ?`, []any{memberID,
			domain.PeriodOf(domain.PeriodWeek, per.Start()).String(), domain.PeriodOf(domain.PeriodWeek, per.End().AddDate(0, 0, -1)).String(),
			month, kpi.Source, rules.Currency}, &card.Revenue); err != nil {
			return ScorecardMonth{}, err
		}
		set, targetEvents, err := k.targets(ctx, s, memberID, per)
		if err != nil {
			return ScorecardMonth{}, err
		}
		card.TargetEvents = targetEvents
		t, err := rules.TargetFor(role, kpi.Code, per, set)
		if err != nil {
			return ScorecardMonth{}, err
		}
		card.RevenueTarget = t.Value
		if len(card.Weeks) > 0 || card.Revenue > 0 {
			o, err := rules.Objective(card.Revenue, t.Value)
			if err != nil {
				return ScorecardMonth{}, err
			}
			card.Objective = &o
		}
	}
	var mr Rating
	found, err := s.row(ctx, `SELECT rating, event_id FROM {p}sc_ratings WHERE member_id = ? AND kind = 'manager' AND period = ?
		ORDER BY position DESC LIMIT 1`, []any{memberID, month}, &mr.Rating, &mr.EventID)
	if err != nil {
		return ScorecardMonth{}, err
	}
	if found {
		m, err := scoring.ManagerScore(mr.Rating)
		if err != nil {
			return ScorecardMonth{}, err
		}
		card.ManagerRating, card.Manager = &mr, &m
	}
	var final string
	found, err = s.row(ctx, `SELECT event_id FROM {p}sc_ratings WHERE member_id = ? AND kind = 'final' AND period = ? LIMIT 1`,
		[]any{memberID, month}, &final)
	if err != nil {
		return ScorecardMonth{}, err
	}
	if found {
		card.Provisional, card.FinalizedEvent = false, final
	}
	if e, ok := rules.Evaluation(scoring.Components{Objective: card.Objective, Rollup: card.Rollup, Manager: card.Manager}); ok {
		card.Evaluation = &e
		card.Display = e.Round2()
		b := rules.Band(e)
		card.Band, card.BandLabel = b.Level, b.Label
	}
	return card, nil
}

// Scorecard answers the queries of each member's weekly and monthly scores
// (DOMAIN.md §3), computed with the rule set in force at the start of the
// week or month (rule set v1 until a ScoringRulesPublished replaces it), each
// figure listing the events behind it. The scores are folded by the
// leaderboard, which needs them for its weekly and monthly boards: a
// Scorecard reads the tables of a Leaderboard instance (see
// Leaderboard.Scorecard), so that each event is scored once.
type Scorecard struct {
	prefix string
}

// ScorecardQuery names a member and a period: an ISO week for Week, a month
// for Month.
type ScorecardQuery struct {
	MemberID string
	Period   string
}

// Week returns a member's weekly scorecard. A week with nothing recorded is
// domain.ErrNotFound; errors caused by q wrap ErrInvalidQuery.
func (p *Scorecard) Week(ctx context.Context, db Queryer, q ScorecardQuery) (ScorecardWeek, error) {
	per, err := domain.ParsePeriod(q.Period)
	if err != nil || per.Kind != domain.PeriodWeek {
		return ScorecardWeek{}, fmt.Errorf("%w: week %q: want YYYY-Www", ErrInvalidQuery, q.Period)
	}
	var card ScorecardWeek
	err = p.compute(ctx, db, `SELECT total FROM {p}sc_weeks WHERE member_id = ? AND week = ?`, q.MemberID, per.String(),
		func(s *stmts, k *scoreKeeper) error {
			w, ok, err := k.week(ctx, s, q.MemberID, per.String())
			if err != nil {
				return err
			}
			if !ok { // not in a committed state (the row goes with the week's last figure); not found all the same
				return fmt.Errorf("scorecard of %s for %s: %w", q.MemberID, per, domain.ErrNotFound)
			}
			card = w
			events, err := p.events(ctx, s.tx, `SELECT source, currency, event_id FROM {p}sc_contrib WHERE member_id = ? AND week = ? AND voided_by = ''
				ORDER BY event_id`, []any{q.MemberID, per.String()}, func(source, currency string) (string, bool) {
				ks, ok := w.sources[source]
				return ks.KPI, ok && (ks.Currency == "" || ks.Currency == currency)
			})
			if err != nil {
				return err
			}
			for i := range card.KPIs {
				card.KPIs[i].Events = nonNil(events[card.KPIs[i].KPI])
			}
			pos, err := loadPosition(ctx, s.tx, p.prefix)
			card.Position = pos.String()
			return err
		})
	return card, err
}

// Month returns a member's monthly scorecard. A month with nothing recorded
// is domain.ErrNotFound; errors caused by q wrap ErrInvalidQuery.
func (p *Scorecard) Month(ctx context.Context, db Queryer, q ScorecardQuery) (ScorecardMonth, error) {
	per, err := domain.ParsePeriod(q.Period)
	if err != nil || per.Kind != domain.PeriodMonth {
		return ScorecardMonth{}, fmt.Errorf("%w: month %q: want YYYY-MM", ErrInvalidQuery, q.Period)
	}
	var card ScorecardMonth
	err = p.compute(ctx, db, `SELECT 1 FROM {p}sc_months WHERE member_id = ? AND month = ?`, q.MemberID, per.String(),
		func(s *stmts, k *scoreKeeper) error {
			m, err := k.month(ctx, s, q.MemberID, per.String())
			if err != nil {
				return err
			}
			card = m
			card.RevenueEvents = []string{}
			if m.revenueSource != "" {
				events, err := p.events(ctx, s.tx, `SELECT source, currency, event_id FROM {p}sc_contrib WHERE member_id = ? AND week >= ? AND week <= ?
					AND month = ? AND source = ? AND currency = ? AND voided_by = '' ORDER BY event_id`, []any{q.MemberID,
					domain.PeriodOf(domain.PeriodWeek, per.Start()).String(), domain.PeriodOf(domain.PeriodWeek, per.End().AddDate(0, 0, -1)).String(),
					per.String(), m.revenueSource, m.revenueCurrency}, func(string, string) (string, bool) { return "", true })
				if err != nil {
					return err
				}
				card.RevenueEvents = nonNil(events[""])
			}
			pos, err := loadPosition(ctx, s.tx, p.prefix)
			card.Position = pos.String()
			return err
		})
	return card, err
}

// compute runs f, in one read transaction on db, with a score keeper over
// the leaderboard's tables, once exists (a query of one row by member and
// period) has found the card scored: a card is computed when read, by the
// code that scores it at each batch's end, so that it is the one the boards
// count.
func (p *Scorecard) compute(ctx context.Context, db Queryer, exists, memberID, period string, f func(*stmts, *scoreKeeper) error) error {
	return readTx(ctx, db, func(tx *sql.Tx) error {
		var one int64
		err := tx.QueryRowContext(ctx, withPrefix(p.prefix, exists), memberID, period).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("scorecard of %s for %s: %w", memberID, period, domain.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("scorecard: %w", err)
		}
		s := newQueryStmts(tx, p.prefix)
		defer s.close()
		book, err := loadRules(ctx, s)
		if err != nil {
			return fmt.Errorf("scorecard: %w", err)
		}
		if err := f(s, newScoreKeeper(book, newOrgCache())); err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				return err
			}
			return fmt.Errorf("scorecard: %w", err)
		}
		return nil
	})
}

// readTx runs f in a read transaction: db itself when it is one, else one
// begun on it (a card reads several tables, which must be seen at one
// instant).
func readTx(ctx context.Context, db Queryer, f func(*sql.Tx) error) error {
	switch d := db.(type) {
	case *sql.Tx:
		return f(d)
	case interface {
		BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
	}:
		tx, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("scorecard: %w", err)
		}
		defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
		return f(tx)
	}
	return fmt.Errorf("scorecard: %T cannot begin a read transaction", db)
}

// events lists the event ids of the contributions a query returns (rows of
// source, currency, event id), grouped by the KPI that kpiOf maps each to.
func (p *Scorecard) events(ctx context.Context, db Queryer, q string, args []any,
	kpiOf func(source, currency string) (string, bool)) (map[string][]string, error) {
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, q), args...)
	if err != nil {
		return nil, fmt.Errorf("scorecard: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var source, currency, id string
		if err := rows.Scan(&source, &currency, &id); err != nil {
			return nil, fmt.Errorf("scorecard: %w", err)
		}
		if kpi, ok := kpiOf(source, currency); ok {
			out[kpi] = append(out[kpi], id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scorecard: %w", err)
	}
	return out, nil
}
