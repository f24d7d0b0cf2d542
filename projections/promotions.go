package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"perfledger/domain"
)

const promotionsSchema = `
CREATE TABLE IF NOT EXISTS {p}promotions (
	promotion_id TEXT PRIMARY KEY,
	member_id TEXT NOT NULL,
	from_role TEXT NOT NULL,
	to_role TEXT NOT NULL,
	nominated_by TEXT NOT NULL,
	justification TEXT NOT NULL,
	proposed_effective_on TEXT NOT NULL,
	nominated_at TEXT NOT NULL,
	nominated_day TEXT NOT NULL,
	nominated_pos INTEGER NOT NULL,
	status TEXT NOT NULL,
	eligible INTEGER,
	eligibility_rules_version INTEGER NOT NULL DEFAULT 0,
	criteria TEXT NOT NULL DEFAULT '[]',
	decision TEXT NOT NULL DEFAULT '',
	approver_id TEXT NOT NULL DEFAULT '',
	decision_comment TEXT NOT NULL DEFAULT '',
	decided_at TEXT NOT NULL DEFAULT '',
	override INTEGER NOT NULL DEFAULT 0,
	exception_justification TEXT NOT NULL DEFAULT '',
	effective_on TEXT NOT NULL DEFAULT '',
	rescinded_at TEXT NOT NULL DEFAULT '',
	rescission_reason TEXT NOT NULL DEFAULT '',
	rescinded_by TEXT NOT NULL DEFAULT '',
	events TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS {p}promotions_member ON {p}promotions (member_id, nominated_day);
CREATE INDEX IF NOT EXISTS {p}promotions_day ON {p}promotions (nominated_day, nominated_pos)
`

// Promotions is the HR promotion record: per promotion its nomination, the
// eligibility criteria with their observed values, the approval or
// rejection with the approver, the override flag and its justification when
// an ineligible nomination was approved, the effective date and any
// rescission, with the ids of the events behind each step.
type Promotions struct{ prefix string }

var _ Projector = (*Promotions)(nil)

// NewPromotions is the Factory of the promotion record.
func NewPromotions(prefix string) Projector { return &Promotions{prefix: prefix} }

// Name implements Projector.
func (*Promotions) Name() string { return "promotions" }

// Version implements Projector.
func (*Promotions) Version() int { return 1 }

// Setup implements Projector.
func (p *Promotions) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+promotionsSchema)
}

// Apply implements Projector.
func (p *Promotions) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "promotions", batch, p.apply)
}

// PromotionStep is an event behind a promotion record.
type PromotionStep struct {
	Type     string `json:"type"`
	EventID  string `json:"event_id"`
	Position string `json:"position"`
	At       string `json:"at"`
	Actor    string `json:"actor"`
}

func (p *Promotions) apply(ctx context.Context, s *stmts, e Envelope) error {
	var id string
	switch ev := e.Payload.(type) {
	case *domain.PromotionNominated:
		id = ev.PromotionID
		if err := s.exec(ctx, `INSERT OR IGNORE INTO {p}promotions (promotion_id, member_id, from_role, to_role, nominated_by,
			justification, proposed_effective_on, nominated_at, nominated_day, nominated_pos, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.PromotionID, ev.MemberID, ev.FromRole, ev.ToRole, ev.NominatedBy,
			ev.Justification, ev.ProposedEffectiveOn, fmtTime(e.OccurredAt), fmtDay(e.OccurredAt), int64(e.Position.Commit), "nominated"); err != nil {
			return err
		}
	case *domain.PromotionEligibilityEvaluated:
		id = ev.PromotionID
		crit := ev.Criteria
		if crit == nil {
			crit = []domain.Criterion{}
		}
		if err := s.exec(ctx, `UPDATE {p}promotions SET eligible = ?, eligibility_rules_version = ?, criteria = ?,
			status = CASE WHEN status = 'nominated' THEN 'evaluated' ELSE status END WHERE promotion_id = ?`,
			ev.Eligible, ev.RulesVersion, jsonText(crit), ev.PromotionID); err != nil {
			return err
		}
	case *domain.PromotionApproved:
		id = ev.PromotionID
		// An approval that overrides a failed criterion (or one given before
		// any eligibility was recorded with an exception) is flagged.
		if err := s.exec(ctx, `UPDATE {p}promotions SET decision = 'approved', status = 'approved', approver_id = ?,
			decision_comment = ?, decided_at = ?, exception_justification = ?,
			override = CASE WHEN eligible = 0 OR ? <> '' THEN 1 ELSE 0 END WHERE promotion_id = ?`,
			ev.ApproverID, ev.Comment, fmtTime(e.OccurredAt), ev.ExceptionJustification, ev.ExceptionJustification, ev.PromotionID); err != nil {
			return err
		}
	case *domain.PromotionRejected:
		id = ev.PromotionID
		if err := s.exec(ctx, `UPDATE {p}promotions SET decision = 'rejected', status = 'rejected', approver_id = ?,
			decision_comment = ?, decided_at = ? WHERE promotion_id = ?`,
			ev.ApproverID, ev.Comment, fmtTime(e.OccurredAt), ev.PromotionID); err != nil {
			return err
		}
	case *domain.PromotionEffected:
		id = ev.PromotionID
		if err := s.exec(ctx, `UPDATE {p}promotions SET status = 'effected', effective_on = ? WHERE promotion_id = ?`,
			ev.EffectiveOn, ev.PromotionID); err != nil {
			return err
		}
	case *domain.PromotionRescinded:
		id = ev.PromotionID
		if err := s.exec(ctx, `UPDATE {p}promotions SET status = 'rescinded', rescinded_at = ?, rescission_reason = ?,
			rescinded_by = ? WHERE promotion_id = ?`, fmtTime(e.OccurredAt), ev.Reason, ev.ApprovedBy, ev.PromotionID); err != nil {
			return err
		}
	default:
		return nil
	}
	var raw string
	found, err := s.row(ctx, `SELECT events FROM {p}promotions WHERE promotion_id = ?`, []any{id}, &raw)
	if err != nil || !found {
		return err
	}
	var steps []PromotionStep
	if err := json.Unmarshal([]byte(raw), &steps); err != nil {
		return err
	}
	steps = append(steps, PromotionStep{Type: e.Type, EventID: e.ID, Position: e.Position.String(), At: fmtTime(e.OccurredAt), Actor: e.Actor})
	return s.exec(ctx, `UPDATE {p}promotions SET events = ? WHERE promotion_id = ?`, jsonText(steps), id)
}

// PromotionQuery selects promotion records: of one member (MemberID, may be
// empty for all) nominated between From and To inclusive (dates
// "YYYY-MM-DD", either may be empty), ordered by nomination.
type PromotionQuery struct {
	MemberID string
	From, To string
	Limit    int
	Cursor   string
}

// PromotionRecord is one promotion as HR sees it.
type PromotionRecord struct {
	PromotionID            string             `json:"promotion_id"`
	MemberID               string             `json:"member_id"`
	FromRole               string             `json:"from_role"`
	ToRole                 string             `json:"to_role"`
	Status                 string             `json:"status"` // nominated, evaluated, approved, rejected, effected, rescinded
	NominatedBy            string             `json:"nominated_by"`
	NominatedAt            string             `json:"nominated_at"`
	Justification          string             `json:"justification"`
	ProposedEffectiveOn    string             `json:"proposed_effective_on"`
	Eligible               *bool              `json:"eligible"` // null until evaluated
	RulesVersion           int                `json:"eligibility_rules_version,omitempty"`
	Criteria               []domain.Criterion `json:"criteria"`
	Decision               string             `json:"decision,omitempty"`
	ApproverID             string             `json:"approver_id,omitempty"`
	DecisionComment        string             `json:"decision_comment,omitempty"`
	DecidedAt              string             `json:"decided_at,omitempty"`
	Override               bool               `json:"override"`
	ExceptionJustification string             `json:"exception_justification,omitempty"`
	EffectiveOn            string             `json:"effective_on,omitempty"`
	RescindedAt            string             `json:"rescinded_at,omitempty"`
	RescissionReason       string             `json:"rescission_reason,omitempty"`
	RescindedBy            string             `json:"rescinded_by,omitempty"`
	Events                 []PromotionStep    `json:"events"`
}

// PromotionPage is one page of promotion records.
type PromotionPage struct {
	Position string            `json:"position"`
	Items    []PromotionRecord `json:"items"`
	Next     string            `json:"next,omitempty"`
}

type posCursor struct {
	A string `json:"a"`
	P int64  `json:"p"`
}

// Promotions lists promotion records. Errors caused by q wrap ErrInvalidQuery.
func (p *Promotions) Promotions(ctx context.Context, db Queryer, q PromotionQuery) (PromotionPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return PromotionPage{}, err
	}
	var where []string
	var args []any
	if q.MemberID != "" {
		where, args = append(where, "member_id = ?"), append(args, q.MemberID)
	}
	for _, d := range []struct {
		v, op string
	}{{q.From, ">="}, {q.To, "<="}} {
		if d.v == "" {
			continue
		}
		if _, err := domain.ParseDate(d.v); err != nil {
			return PromotionPage{}, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
		}
		where, args = append(where, "nominated_day "+d.op+" ?"), append(args, d.v)
	}
	if q.Cursor != "" {
		var c posCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return PromotionPage{}, err
		}
		where, args = append(where, "(nominated_day, nominated_pos) > (?, ?)"), append(args, c.A, c.P)
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return PromotionPage{}, err
	}
	page := PromotionPage{Position: pos.String(), Items: []PromotionRecord{}}
	sqlq := `SELECT promotion_id, member_id, from_role, to_role, status, nominated_by, nominated_at, justification,
		proposed_effective_on, eligible, eligibility_rules_version, criteria, decision, approver_id, decision_comment,
		decided_at, override, exception_justification, effective_on, rescinded_at, rescission_reason, rescinded_by, events,
		nominated_day, nominated_pos FROM {p}promotions`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY nominated_day, nominated_pos LIMIT ?"
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq), append(args, limit+1)...)
	if err != nil {
		return PromotionPage{}, fmt.Errorf("promotions: %w", err)
	}
	defer rows.Close()
	var last posCursor
	for rows.Next() {
		var r PromotionRecord
		var eligible sql.NullBool
		var crit, events, day string
		var npos int64
		if err := rows.Scan(&r.PromotionID, &r.MemberID, &r.FromRole, &r.ToRole, &r.Status, &r.NominatedBy, &r.NominatedAt,
			&r.Justification, &r.ProposedEffectiveOn, &eligible, &r.RulesVersion, &crit, &r.Decision, &r.ApproverID,
			&r.DecisionComment, &r.DecidedAt, &r.Override, &r.ExceptionJustification, &r.EffectiveOn, &r.RescindedAt,
			&r.RescissionReason, &r.RescindedBy, &events, &day, &npos); err != nil {
			return PromotionPage{}, fmt.Errorf("promotions: %w", err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(last)
			break
		}
		if eligible.Valid {
			r.Eligible = &eligible.Bool
		}
		if err := json.Unmarshal([]byte(crit), &r.Criteria); err != nil {
			return PromotionPage{}, fmt.Errorf("promotions: criteria: %w", err)
		}
		if err := json.Unmarshal([]byte(events), &r.Events); err != nil {
			return PromotionPage{}, fmt.Errorf("promotions: events: %w", err)
		}
		page.Items = append(page.Items, r)
		last = posCursor{A: day, P: npos}
	}
	return page, rows.Err()
}
