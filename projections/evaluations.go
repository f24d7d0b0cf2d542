package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"perfledger/domain"
)

const evaluationsSchema = `
CREATE TABLE IF NOT EXISTS {p}evaluations (
	member_id TEXT NOT NULL,
	month TEXT NOT NULL,
	display_name TEXT NOT NULL,
	team_id TEXT NOT NULL,
	score INTEGER NOT NULL,
	band INTEGER NOT NULL,
	band_label TEXT NOT NULL,
	objective INTEGER,
	rollup INTEGER,
	manager INTEGER,
	rules_version INTEGER NOT NULL,
	inputs_digest TEXT NOT NULL,
	finalized_by TEXT NOT NULL,
	finalized_at TEXT NOT NULL,
	event_id TEXT NOT NULL,
	position TEXT NOT NULL,
	PRIMARY KEY (month, member_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {p}evaluations_member ON {p}evaluations (member_id, month);
CREATE INDEX IF NOT EXISTS {p}evaluations_team ON {p}evaluations (team_id, month, member_id)
`

// Evaluations is the evaluation register: every finalized monthly evaluation
// (the locked snapshot of EvaluationFinalized) with the team the member was
// in at the end of that month.
type Evaluations struct{ prefix string }

var _ Projector = (*Evaluations)(nil)

// NewEvaluations is the Factory of the evaluation register.
func NewEvaluations(prefix string) Projector { return &Evaluations{prefix: prefix} }

// Name implements Projector.
func (*Evaluations) Name() string { return "evaluations" }

// Version implements Projector.
func (*Evaluations) Version() int { return 1 }

// Setup implements Projector.
func (p *Evaluations) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+orgSchema+";"+evaluationsSchema)
}

// Apply implements Projector.
func (p *Evaluations) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "evaluations", batch, p.apply)
}

func (p *Evaluations) apply(ctx context.Context, s *stmts, e Envelope) error {
	if ok, err := applyOrg(ctx, s, e); ok || err != nil {
		return err
	}
	ev, ok := e.Payload.(*domain.EvaluationFinalized)
	if !ok {
		return nil
	}
	month := canonicalPeriod(ev.Month)
	var teamID string
	if per, err := domain.ParsePeriod(month); err == nil {
		ti, err := teamAt(ctx, s, ev.MemberID, per.End().AddDate(0, 0, -1))
		if err != nil {
			return err
		}
		teamID = ti.ID
	}
	m, err := member(ctx, s, ev.MemberID)
	if err != nil {
		return err
	}
	return s.exec(ctx, `INSERT OR REPLACE INTO {p}evaluations (member_id, month, display_name, team_id, score, band, band_label,
		objective, rollup, manager, rules_version, inputs_digest, finalized_by, finalized_at, event_id, position)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.MemberID, month, m.Name, teamID, int64(ev.Score), ev.Band, ev.BandLabel,
		fixedPtr(ev.Components.Objective), fixedPtr(ev.Components.Rollup), fixedPtr(ev.Components.Manager),
		ev.RulesVersion, ev.InputsDigest, ev.FinalizedBy, fmtTime(e.OccurredAt), e.ID, e.Position.String())
}

func fixedPtr(f *domain.Fixed) any {
	if f == nil {
		return nil
	}
	return int64(*f)
}

func scanFixedPtr(n sql.NullInt64) *domain.Fixed {
	if !n.Valid {
		return nil
	}
	f := domain.Fixed(n.Int64)
	return &f
}

// EvaluationQuery filters the register; every non-empty field must match.
// Month is a month ("2026-11"); results are ordered by month, then member.
type EvaluationQuery struct {
	MemberID string
	TeamID   string
	Month    string
	Limit    int
	Cursor   string
}

// Evaluation is one finalized evaluation as locked. Components missing at
// finalization are null.
type Evaluation struct {
	MemberID     string        `json:"member_id"`
	DisplayName  string        `json:"display_name"`
	TeamID       string        `json:"team_id"`
	Month        string        `json:"month"`
	Objective    *domain.Fixed `json:"objective"`
	Rollup       *domain.Fixed `json:"rollup"`
	Manager      *domain.Fixed `json:"manager"`
	Score        domain.Fixed  `json:"score"`
	Display      string        `json:"display"`
	Band         int           `json:"band"`
	BandLabel    string        `json:"band_label"`
	RulesVersion int           `json:"rules_version"`
	InputsDigest string        `json:"inputs_digest"`
	FinalizedBy  string        `json:"finalized_by"`
	FinalizedAt  string        `json:"finalized_at"`
	EventID      string        `json:"event_id"`
	EventPos     string        `json:"event_position"`
}

// EvaluationPage is one page of the register.
type EvaluationPage struct {
	Position string       `json:"position"`
	Items    []Evaluation `json:"items"`
	Next     string       `json:"next,omitempty"`
}

type keyCursor struct {
	A string `json:"a"`
	B string `json:"b"`
}

// Evaluations lists finalized evaluations. Errors caused by q wrap
// ErrInvalidQuery.
func (p *Evaluations) Evaluations(ctx context.Context, db Queryer, q EvaluationQuery) (EvaluationPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return EvaluationPage{}, err
	}
	var where []string
	var args []any
	if q.MemberID != "" {
		where, args = append(where, "member_id = ?"), append(args, q.MemberID)
	}
	if q.TeamID != "" {
		where, args = append(where, "team_id = ?"), append(args, q.TeamID)
	}
	if q.Month != "" {
		per, err := domain.ParsePeriod(q.Month)
		if err != nil || per.Kind != domain.PeriodMonth {
			return EvaluationPage{}, fmt.Errorf("%w: month %q: want YYYY-MM", ErrInvalidQuery, q.Month)
		}
		where, args = append(where, "month = ?"), append(args, per.String())
	}
	if q.Cursor != "" {
		var c keyCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return EvaluationPage{}, err
		}
		where, args = append(where, "(month, member_id) > (?, ?)"), append(args, c.A, c.B)
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return EvaluationPage{}, err
	}
	page := EvaluationPage{Position: pos.String(), Items: []Evaluation{}}
	sqlq := `SELECT member_id, display_name, team_id, month, objective, rollup, manager, score, band, band_label,
		rules_version, inputs_digest, finalized_by, finalized_at, event_id, position FROM {p}evaluations`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY month, member_id LIMIT ?"
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq), append(args, limit+1)...)
	if err != nil {
		return EvaluationPage{}, fmt.Errorf("evaluations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ev Evaluation
		var o, r, m sql.NullInt64
		var score int64
		if err := rows.Scan(&ev.MemberID, &ev.DisplayName, &ev.TeamID, &ev.Month, &o, &r, &m, &score, &ev.Band, &ev.BandLabel,
			&ev.RulesVersion, &ev.InputsDigest, &ev.FinalizedBy, &ev.FinalizedAt, &ev.EventID, &ev.EventPos); err != nil {
			return EvaluationPage{}, fmt.Errorf("evaluations: %w", err)
		}
		if len(page.Items) == limit {
			last := page.Items[limit-1]
			page.Next = encodeCursor(keyCursor{A: last.Month, B: last.MemberID})
			break
		}
		ev.Objective, ev.Rollup, ev.Manager = scanFixedPtr(o), scanFixedPtr(r), scanFixedPtr(m)
		ev.Score = domain.Fixed(score)
		ev.Display = ev.Score.Round2()
		page.Items = append(page.Items, ev)
	}
	return page, rows.Err()
}
