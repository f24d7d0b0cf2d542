package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// Policy reacts to events by issuing commands. A policy decides only; the
// bus adapter executes what it returns through the domain service, with the
// actor "policy:<Name>", the trigger's correlation id and the trigger's id
// as causation id.
//
// Every command a policy issues has a command id derived from the
// triggering event's id (domain.EventID(trigger.ID, k), k fixed per
// policy), so a redelivered trigger re-issues the same command id and the
// service appends nothing new: a redelivery never grants twice.
type Policy interface {
	Name() string
	// Handles reports whether the policy reacts to events of the stored
	// type typ; the others are not decoded for it.
	Handles(typ string) bool
	// Decide returns the commands to issue for e (often none). It may block
	// until the facts it reads have reached e's position, bounded by ctx.
	Decide(ctx context.Context, e Envelope) ([]Issue, error)
}

// Issue is a command a policy issues, with its command id.
type Issue struct {
	CommandID string
	Command   domain.Command
}

// Command-id indexes of the policies (domain.EventID(trigger.ID, index)).
const (
	goalBonusIndex   = 1_000
	eligibilityIndex = 1_001
	clawbackIndex    = 1_002
)

// PolicyFactsName is the name of the projection the policies read.
const PolicyFactsName = "policy_facts"

// PolicyFacts is the Factory of the projection the policies read: what they
// need to know about members, sales, targets, evaluations, goal bonuses and
// culture, each row stamped with the position of the event behind it so that
// a policy reads the facts as they were at its trigger's position (its
// decisions do not depend on how far this projection has got). Register it
// with the runner whenever policies run.
func PolicyFacts(prefix string) Projector { return &facts{p: prefix} }

type facts struct{ p string }

func (f *facts) Name() string { return PolicyFactsName }

// Version 2: sales, goal bonuses and revocations keyed by member and id
// (ids are unique per member; version 1 kept the first member's sale of an
// id and clawed back from that member when another member's sale of the
// same id was reversed).
func (f *facts) Version() int { return 2 }

func (f *facts) Setup(ctx context.Context, tx *sql.Tx) error {
	p := f.p
	_, err := tx.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS `+p+`rules (pos INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS `+p+`roles (member_id TEXT NOT NULL, pos INTEGER NOT NULL, role TEXT NOT NULL,
	since TEXT NOT NULL, team_id TEXT NOT NULL, PRIMARY KEY (member_id, pos));
CREATE TABLE IF NOT EXISTS `+p+`sales (sale_id TEXT NOT NULL, member_id TEXT NOT NULL, month TEXT NOT NULL,
	amount INTEGER NOT NULL, currency TEXT NOT NULL, occurred_at TEXT NOT NULL, pos INTEGER NOT NULL,
	reversed_pos INTEGER, PRIMARY KEY (member_id, sale_id));
CREATE INDEX IF NOT EXISTS `+p+`sales_member ON `+p+`sales (member_id, month);
CREATE TABLE IF NOT EXISTS `+p+`targets (target_id TEXT PRIMARY KEY, subject_kind TEXT NOT NULL,
	subject_id TEXT NOT NULL, kpi TEXT NOT NULL, period TEXT NOT NULL, value INTEGER NOT NULL, pos INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS `+p+`targets_subject ON `+p+`targets (subject_kind, subject_id, kpi);
CREATE TABLE IF NOT EXISTS `+p+`evals (member_id TEXT NOT NULL, month TEXT NOT NULL, score INTEGER NOT NULL,
	pos INTEGER NOT NULL, PRIMARY KEY (member_id, month));
CREATE TABLE IF NOT EXISTS `+p+`bonuses (reward_id TEXT NOT NULL, member_id TEXT NOT NULL, month TEXT NOT NULL,
	amount INTEGER NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (member_id, reward_id));
CREATE INDEX IF NOT EXISTS `+p+`bonuses_member ON `+p+`bonuses (member_id, month);
CREATE TABLE IF NOT EXISTS `+p+`revocations (member_id TEXT NOT NULL, reward_id TEXT NOT NULL, pos INTEGER NOT NULL,
	amount INTEGER NOT NULL, PRIMARY KEY (member_id, reward_id, pos));
CREATE TABLE IF NOT EXISTS `+p+`suggestions (suggestion_id TEXT PRIMARY KEY, author_id TEXT NOT NULL,
	adopted_at TEXT, adopted_pos INTEGER);
CREATE TABLE IF NOT EXISTS `+p+`chairs (meeting_id TEXT PRIMARY KEY, chair_id TEXT NOT NULL, kind TEXT NOT NULL,
	held_at TEXT NOT NULL, pos INTEGER NOT NULL);
`)
	return err
}

// dateOf renders t as the date layout facts store (UTC).
func dateOf(t time.Time) string { return t.UTC().Format(domain.DateLayout) }

func (f *facts) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	s := newStmts(tx, f.p)
	defer s.close()
	// Sales, a fifth of a busy log, go in multi-row statements; a reversal
	// writes those before it first.
	sales := &rowBuffer{head: `INSERT OR IGNORE INTO {p}sales (sale_id, member_id, month, amount, currency, occurred_at, pos) VALUES `,
		cols: 7}
	for _, e := range batch {
		pos := int64(e.Position.Commit)
		var err error
		switch pl := e.Payload.(type) {
		case *domain.ScoringRulesPublished:
			var data []byte
			if data, err = json.Marshal(pl); err == nil {
				err = s.exec(ctx, `INSERT OR REPLACE INTO {p}rules (pos, data) VALUES (?, ?)`, pos, string(data))
			}
		case *domain.MemberJoined:
			err = s.exec(ctx, `INSERT OR REPLACE INTO {p}roles (member_id, pos, role, since, team_id) VALUES (?, ?, ?, ?, ?)`,
				pl.MemberID, pos, pl.Role, pl.JoinedOn, pl.TeamID)
		case *domain.MemberTransferred:
			err = s.exec(ctx, `INSERT OR REPLACE INTO {p}roles (member_id, pos, role, since, team_id)
				SELECT member_id, ?, role, since, ? FROM {p}roles WHERE member_id = ? ORDER BY pos DESC LIMIT 1`,
				pos, pl.ToTeamID, pl.MemberID)
		case *domain.PromotionEffected:
			err = s.exec(ctx, `INSERT OR REPLACE INTO {p}roles (member_id, pos, role, since, team_id)
				SELECT member_id, ?, ?, ?, team_id FROM {p}roles WHERE member_id = ? ORDER BY pos DESC LIMIT 1`,
				pos, pl.ToRole, pl.EffectiveOn, pl.MemberID)
		case *domain.PromotionRescinded:
			// Back to the previous role, since when it was last taken.
			err = s.exec(ctx, `INSERT OR REPLACE INTO {p}roles (member_id, pos, role, since, team_id)
				SELECT c.member_id, ?, ?, coalesce((SELECT since FROM {p}roles WHERE member_id = c.member_id AND role = ?
					ORDER BY pos DESC LIMIT 1), c.since), c.team_id
				FROM {p}roles c WHERE c.member_id = ? ORDER BY c.pos DESC LIMIT 1`,
				pos, pl.FromRole, pl.FromRole, pl.MemberID)
		case *domain.SaleClosed:
			err = sales.add(ctx, s, pl.SaleID, pl.MemberID, domain.PeriodOf(domain.PeriodMonth, pl.OccurredAt).String(),
				pl.AmountMinor, pl.Currency, pl.OccurredAt.UTC().Format(time.RFC3339Nano), pos)
		case *domain.SaleReversed:
			if err = sales.flush(ctx, s); err == nil {
				err = s.exec(ctx, `UPDATE {p}sales SET reversed_pos = ? WHERE member_id = ? AND sale_id = ? AND reversed_pos IS NULL`, pos, pl.MemberID, pl.SaleID)
			}
		case *domain.TargetSet:
			err = s.exec(ctx, `INSERT OR REPLACE INTO {p}targets (target_id, subject_kind, subject_id, kpi, period, value, pos)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, pl.TargetID, pl.SubjectKind, pl.SubjectID, pl.KPI, pl.Period, int64(pl.Value), pos)
		case *domain.TargetRevised:
			err = s.exec(ctx, `UPDATE {p}targets SET value = ? WHERE target_id = ?`, int64(pl.NewValue), pl.TargetID)
		case *domain.EvaluationFinalized:
			err = s.exec(ctx, `INSERT OR IGNORE INTO {p}evals (member_id, month, score, pos) VALUES (?, ?, ?, ?)`,
				pl.MemberID, pl.Month, int64(pl.Score), pos)
		case *domain.RewardGranted:
			if pl.Kind == domain.RewardGoalBonus && pl.Basis.Inputs["month"] != "" {
				err = s.exec(ctx, `INSERT OR IGNORE INTO {p}bonuses (reward_id, member_id, month, amount, pos) VALUES (?, ?, ?, ?, ?)`,
					pl.RewardID, pl.MemberID, pl.Basis.Inputs["month"], pl.AmountMinor, pos)
			}
		case *domain.RewardRevoked:
			err = s.exec(ctx, `INSERT OR IGNORE INTO {p}revocations (member_id, reward_id, pos, amount) VALUES (?, ?, ?, ?)`,
				pl.MemberID, pl.RewardID, pos, pl.AmountMinor)
		case *domain.SuggestionSubmitted:
			err = s.exec(ctx, `INSERT OR IGNORE INTO {p}suggestions (suggestion_id, author_id) VALUES (?, ?)`,
				pl.SuggestionID, pl.AuthorID)
		case *domain.SuggestionReviewed:
			if pl.Decision == domain.DecisionAdopt {
				err = s.exec(ctx, `UPDATE {p}suggestions SET adopted_at = ?, adopted_pos = ? WHERE suggestion_id = ? AND adopted_pos IS NULL`,
					dateOf(e.OccurredAt), pos, pl.SuggestionID)
			}
		case *domain.MeetingHeld:
			err = s.exec(ctx, `INSERT OR IGNORE INTO {p}chairs (meeting_id, chair_id, kind, held_at, pos) VALUES (?, ?, ?, ?, ?)`,
				pl.MeetingID, pl.ChairID, pl.Kind, dateOf(pl.HeldAt), pos)
		}
		if err != nil {
			return fmt.Errorf("policy facts: %s at %s: %w", e.Type, e.Position, err)
		}
	}
	if err := sales.flush(ctx, s); err != nil {
		return fmt.Errorf("policy facts: sales: %w", err)
	}
	return nil
}

// factsView reads the policy facts as of a position.
type factsView struct {
	db  *sql.DB
	p   string
	pos int64
}

// factsWait bounds how long a policy waits for the policy facts to reach
// its trigger; past it the policy fails and its handler retries later.
const factsWait = 30 * time.Second

// factsAt waits until the policy facts have applied the event at pos and
// returns a view of them as of pos.
func factsAt(ctx context.Context, r *Runner, pos domain.Position) (*factsView, error) {
	wctx, cancel := context.WithTimeout(ctx, factsWait)
	defer cancel()
	if err := r.WaitForProjection(wctx, PolicyFactsName, pos); err != nil {
		return nil, fmt.Errorf("wait for the policy facts to reach %s: %w", pos, err)
	}
	f, ok := r.Current(PolicyFactsName).(*facts)
	if !ok {
		return nil, fmt.Errorf("projection %s is not registered with the runner", PolicyFactsName)
	}
	return &factsView{db: r.DB(), p: f.p, pos: int64(pos.Commit)}, nil
}

// rules returns the scoring rules last published at or before the view's
// position, or the default rule set.
func (v *factsView) rules(ctx context.Context) (scoring.Rules, error) {
	var data string
	err := v.db.QueryRowContext(ctx, `SELECT data FROM `+v.p+`rules WHERE pos <= ? ORDER BY pos DESC LIMIT 1`, v.pos).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return scoring.DefaultRules(), nil
	}
	if err != nil {
		return scoring.Rules{}, err
	}
	var pub domain.ScoringRulesPublished
	if err := json.Unmarshal([]byte(data), &pub); err != nil {
		return scoring.Rules{}, err
	}
	return scoring.FromPublished(pub), nil
}

// role returns the member's role, since when, and team.
func (v *factsView) role(ctx context.Context, member string) (role, since, team string, err error) {
	err = v.db.QueryRowContext(ctx, `SELECT role, since, team_id FROM `+v.p+`roles WHERE member_id = ? AND pos <= ?
		ORDER BY pos DESC LIMIT 1`, member, v.pos).Scan(&role, &since, &team)
	return role, since, team, err
}

// revenue sums the member's sales of the months [from, to] (as "YYYY-MM")
// still counted at the view's position, in the currency.
func (v *factsView) revenue(ctx context.Context, member, from, to, currency string) (int64, error) {
	var n int64
	err := v.db.QueryRowContext(ctx, `SELECT coalesce(sum(amount), 0) FROM `+v.p+`sales
		WHERE member_id = ? AND month >= ? AND month <= ? AND currency = ? AND pos <= ? AND (reversed_pos IS NULL OR reversed_pos > ?)`,
		member, from, to, currency, v.pos, v.pos).Scan(&n)
	return n, err
}

// target returns the revenue target of a member for a month.
func (v *factsView) target(ctx context.Context, rules scoring.Rules, member, role string, month domain.Period) (domain.Fixed, error) {
	set := map[scoring.TargetKey]domain.Fixed{}
	var val int64
	err := v.db.QueryRowContext(ctx, `SELECT value FROM `+v.p+`targets WHERE subject_kind = ? AND subject_id = ? AND kpi = ?
		AND period = ? AND pos <= ? ORDER BY pos DESC LIMIT 1`, domain.SubjectMember, member, scoring.KPIRevenue, month.String(), v.pos).Scan(&val)
	switch {
	case err == nil:
		set[scoring.TargetKey{KPI: scoring.KPIRevenue, Period: month}] = domain.Fixed(val)
	case !errors.Is(err, sql.ErrNoRows):
		return 0, err
	}
	t, err := rules.TargetFor(role, scoring.KPIRevenue, month, set)
	if err != nil {
		return 0, err
	}
	return t.Value, nil
}

// GoalBonus is the policy that grants the goal bonus (DOMAIN.md §6) when a
// month's evaluation is finalized: B(role) × f(revenue / revenue target) of
// that month, from the facts as of the finalization. No grant when the
// amount is zero.
type GoalBonus struct{ r *Runner }

// Clawback is the policy that, when a sale is reversed within the rule
// set's window, revokes the share of the goal bonus of the sale's month that
// the sale produced (scoring.Rules.Clawback), booked now; the grant is never
// changed.
type Clawback struct{ r *Runner }

// Eligibility is the policy that evaluates a nomination against the
// eligibility rules (scoring.DefaultEligibility) and records the criteria
// with their observed values.
//
// Observed values come from the policy facts as of the nomination: time in
// the current role at the proposed effective date; the finalized monthly
// evaluations before it; revenue and revenue targets over the 12 months
// before the effective date (own; for leaders, the team's: the members whose
// team is the nominee's team); adopted suggestions and experience-sharing
// meetings chaired in those 12 months.
type Eligibility struct {
	r     *Runner
	rules scoring.EligibilityRules
}

var (
	_ Policy = (*GoalBonus)(nil)
	_ Policy = (*Clawback)(nil)
	_ Policy = (*Eligibility)(nil)
)

// NewPolicies returns the goal-bonus, eligibility and clawback policies,
// reading the runner's PolicyFacts projection (which must be registered).
func NewPolicies(r *Runner) ([]Policy, error) {
	if r.byName[PolicyFactsName] == nil {
		return nil, fmt.Errorf("projections: policies need the %s projection: %w", PolicyFactsName, ErrUnknownProjection)
	}
	return []Policy{&GoalBonus{r: r}, &Eligibility{r: r, rules: scoring.DefaultEligibility()}, &Clawback{r: r}}, nil
}

func (*GoalBonus) Name() string            { return "goal_bonus" }
func (*GoalBonus) Handles(typ string) bool { return typ == domain.TypeEvaluationFinalized }

// GoalBonusRewardID is the reward id of the goal bonus of a member's month.
func GoalBonusRewardID(member, month string) string { return "goal_bonus:" + member + ":" + month }

func (g *GoalBonus) Decide(ctx context.Context, e Envelope) ([]Issue, error) {
	ev, ok := e.Payload.(*domain.EvaluationFinalized)
	if !ok {
		return nil, nil
	}
	month, err := domain.ParsePeriod(ev.Month)
	if err != nil {
		return nil, fmt.Errorf("goal bonus: month %q: %w", ev.Month, err)
	}
	v, err := factsAt(ctx, g.r, e.Position)
	if err != nil {
		return nil, err
	}
	rules, err := v.rules(ctx)
	if err != nil {
		return nil, err
	}
	role, _, _, err := v.role(ctx, ev.MemberID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // not a known member: nothing to grant
	}
	if err != nil {
		return nil, err
	}
	target, err := v.target(ctx, rules, ev.MemberID, role, month)
	if err != nil {
		return nil, err
	}
	revenue, err := v.revenue(ctx, ev.MemberID, ev.Month, ev.Month, rules.Currency)
	if err != nil {
		return nil, err
	}
	b, err := rules.GoalBonusFor(role, revenue, target)
	if err != nil {
		return nil, fmt.Errorf("goal bonus of %s for %s: %w", ev.MemberID, ev.Month, err)
	}
	if b.Amount <= 0 {
		return nil, nil
	}
	return []Issue{{
		CommandID: domain.EventID(e.ID, goalBonusIndex),
		Command: domain.GrantReward{
			RewardID: GoalBonusRewardID(ev.MemberID, ev.Month), MemberID: ev.MemberID, Kind: domain.RewardGoalBonus,
			AmountMinor: b.Amount, Currency: rules.Currency,
			Reason: fmt.Sprintf("goal bonus %s: revenue attainment %s", ev.Month, b.Attainment),
			Basis: domain.RewardBasis{RuleID: "goal_bonus/v" + strconv.Itoa(b.RulesVersion), LinkedEventID: e.ID, Inputs: map[string]string{
				"month": ev.Month, "role": role, "base_minor": strconv.FormatInt(b.Base, 10),
				"revenue_minor": strconv.FormatInt(revenue, 10), "target": target.String(),
				"attainment": b.Attainment.String(),
			}},
			GrantedBy: "policy:goal_bonus",
		},
	}}, nil
}

func (*Clawback) Name() string            { return "clawback" }
func (*Clawback) Handles(typ string) bool { return typ == domain.TypeSaleReversed }

func (c *Clawback) Decide(ctx context.Context, e Envelope) ([]Issue, error) {
	ev, ok := e.Payload.(*domain.SaleReversed)
	if !ok {
		return nil, nil
	}
	v, err := factsAt(ctx, c.r, e.Position)
	if err != nil {
		return nil, err
	}
	var (
		member, month, currency, occurred string
		amount                            int64
	)
	err = v.db.QueryRowContext(ctx, `SELECT member_id, month, currency, occurred_at, amount FROM `+v.p+`sales
		WHERE member_id = ? AND sale_id = ? AND pos < ?`, ev.MemberID, ev.SaleID, v.pos).Scan(&member, &month, &currency, &occurred, &amount)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	closedAt, err := time.Parse(time.RFC3339Nano, occurred)
	if err != nil {
		return nil, err
	}
	rules, err := v.rules(ctx)
	if err != nil {
		return nil, err
	}
	if currency != rules.Currency || !rules.ClawbackApplies(closedAt, e.OccurredAt) {
		return nil, nil
	}
	var (
		reward  string
		granted int64
	)
	err = v.db.QueryRowContext(ctx, `SELECT b.reward_id, b.amount - coalesce((SELECT sum(amount) FROM `+v.p+`revocations r
			WHERE r.member_id = b.member_id AND r.reward_id = b.reward_id AND r.pos < ?), 0)
		FROM `+v.p+`bonuses b WHERE b.member_id = ? AND b.month = ? AND b.pos < ? ORDER BY b.pos LIMIT 1`,
		v.pos, member, month, v.pos).Scan(&reward, &granted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil // no bonus came from that month
	}
	if err != nil {
		return nil, err
	}
	role, _, _, err := v.role(ctx, member)
	if err != nil {
		return nil, err
	}
	p, err := domain.ParsePeriod(month)
	if err != nil {
		return nil, err
	}
	target, err := v.target(ctx, rules, member, role, p)
	if err != nil {
		return nil, err
	}
	// The month's revenue still counted before this reversal.
	before := &factsView{db: v.db, p: v.p, pos: v.pos - 1}
	revenue, err := before.revenue(ctx, member, month, month, rules.Currency)
	if err != nil {
		return nil, err
	}
	back, err := rules.Clawback(role, granted, revenue, target, amount)
	if err != nil {
		return nil, fmt.Errorf("clawback of sale %s: %w", ev.SaleID, err)
	}
	if back <= 0 {
		return nil, nil
	}
	return []Issue{{
		CommandID: domain.EventID(e.ID, clawbackIndex),
		Command: domain.RevokeReward{MemberID: member, RewardID: reward, Reason: domain.RevokeClawback, AmountMinor: back,
			RevocationID: "clawback:" + ev.SaleID,
			Note:         fmt.Sprintf("sale %s reversed (event %s)", ev.SaleID, e.ID)},
	}}, nil
}

func (*Eligibility) Name() string            { return "eligibility" }
func (*Eligibility) Handles(typ string) bool { return typ == domain.TypePromotionNominated }

func (el *Eligibility) Decide(ctx context.Context, e Envelope) ([]Issue, error) {
	ev, ok := e.Payload.(*domain.PromotionNominated)
	if !ok {
		return nil, nil
	}
	v, err := factsAt(ctx, el.r, e.Position)
	if err != nil {
		return nil, err
	}
	o, err := v.observe(ctx, ev)
	if err != nil {
		return nil, err
	}
	cs, eligible := scoring.Evaluate(el.rules, scoring.Transition{From: ev.FromRole, To: ev.ToRole}, o)
	return []Issue{{
		CommandID: domain.EventID(e.ID, eligibilityIndex),
		Command: domain.RecordEligibility{PromotionID: ev.PromotionID, RulesVersion: el.rules.Version,
			Criteria: scoring.Records(cs), Eligible: eligible},
	}}, nil
}

// leaderRoles are the roles whose revenue criterion counts their team's.
var leaderRoles = map[string]bool{
	scoring.RoleSalesSupervisor: true, scoring.RoleRegionalDirector: true, scoring.RoleSalesDirector: true,
	scoring.RoleSalesManager: true, scoring.RoleGeneralManager: true,
}

// observe gathers what eligibility looks at (see Eligibility).
func (v *factsView) observe(ctx context.Context, n *domain.PromotionNominated) (scoring.Observed, error) {
	var o scoring.Observed
	eff, err := domain.ParseDate(n.ProposedEffectiveOn)
	if err != nil {
		return o, nil // nothing observable: every criterion fails with its reason
	}
	o.EffectiveOn = eff
	role, since, team, err := v.role(ctx, n.MemberID)
	if errors.Is(err, sql.ErrNoRows) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	if t, err := domain.ParseDate(since); err == nil {
		o.RoleSince = t
	}
	rules, err := v.rules(ctx)
	if err != nil {
		return o, err
	}
	// Evaluations: finalized months before the effective month, oldest first.
	effMonth := domain.PeriodOf(domain.PeriodMonth, eff)
	rows, err := v.db.QueryContext(ctx, `SELECT score FROM `+v.p+`evals WHERE member_id = ? AND month < ? AND pos <= ?
		ORDER BY month`, n.MemberID, effMonth.String(), v.pos)
	if err != nil {
		return o, err
	}
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return o, err
		}
		o.Evaluations = append(o.Evaluations, domain.Fixed(s))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return o, err
	}
	// The 12 months before the effective month.
	var months []domain.Period
	m := effMonth
	for range 12 {
		m = domain.PeriodOf(domain.PeriodMonth, m.Start().AddDate(0, 0, -1))
		months = append(months, m)
	}
	first, last := months[len(months)-1].String(), months[0].String()
	members := []string{n.MemberID}
	if leaderRoles[role] {
		rs, err := v.db.QueryContext(ctx, `SELECT member_id FROM `+v.p+`roles r WHERE pos = (SELECT max(pos) FROM `+v.p+`roles
			WHERE member_id = r.member_id AND pos <= ?) AND team_id = ?`, v.pos, team)
		if err != nil {
			return o, err
		}
		members = members[:0]
		for rs.Next() {
			var id string
			if err := rs.Scan(&id); err != nil {
				rs.Close()
				return o, err
			}
			members = append(members, id)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return o, err
		}
	}
	var revenue int64
	var target domain.Fixed
	for _, id := range members {
		r, err := v.revenue(ctx, id, first, last, rules.Currency)
		if err != nil {
			return o, err
		}
		revenue += r
		mrole, _, _, err := v.role(ctx, id)
		if err != nil {
			return o, err
		}
		for _, p := range months {
			t, err := v.target(ctx, rules, id, mrole, p)
			if err != nil {
				return o, err
			}
			target += t
		}
	}
	if leaderRoles[role] {
		o.TeamRevenue, o.TeamRevenueTarget = revenue, target
	}
	own, err := v.revenue(ctx, n.MemberID, first, last, rules.Currency)
	if err != nil {
		return o, err
	}
	o.Revenue = own
	for _, p := range months {
		t, err := v.target(ctx, rules, n.MemberID, role, p)
		if err != nil {
			return o, err
		}
		o.RevenueTarget += t
	}
	// Culture over the same 12 months.
	from, to := months[len(months)-1].Start().Format(domain.DateLayout), effMonth.Start().Format(domain.DateLayout)
	if err := v.db.QueryRowContext(ctx, `SELECT count(*) FROM `+v.p+`suggestions WHERE author_id = ? AND adopted_pos <= ?
		AND adopted_at >= ? AND adopted_at < ?`, n.MemberID, v.pos, from, to).Scan(&o.AdoptedSuggestions); err != nil {
		return o, err
	}
	if err := v.db.QueryRowContext(ctx, `SELECT count(*) FROM `+v.p+`chairs WHERE chair_id = ? AND kind = ? AND pos <= ?
		AND held_at >= ? AND held_at < ?`, n.MemberID, domain.MeetingExperienceSharing, v.pos, from, to).Scan(&o.ExperienceSharingChaired); err != nil {
		return o, err
	}
	return o, nil
}
