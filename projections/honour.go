package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"perfledger/domain"
)

const honourSchema = `
CREATE TABLE IF NOT EXISTS {p}honour (
	position INTEGER PRIMARY KEY,
	event_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	subject_kind TEXT NOT NULL,
	subject_id TEXT NOT NULL,
	subject_name TEXT NOT NULL,
	from_id TEXT NOT NULL,
	from_name TEXT NOT NULL,
	text TEXT NOT NULL,
	audience TEXT NOT NULL,
	team_id TEXT NOT NULL,
	region TEXT NOT NULL,
	evidence TEXT NOT NULL,
	at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}honour_subject ON {p}honour (subject_id, position)
`

// Honour is the honour roll: praise given and achievements made public,
// newest first, with the names of the people and teams as they were then.
type Honour struct{ prefix string }

var _ Projector = (*Honour)(nil)

// NewHonour is the Factory of the honour roll.
func NewHonour(prefix string) Projector { return &Honour{prefix: prefix} }

// Name implements Projector.
func (*Honour) Name() string { return "honour" }

// Version implements Projector.
func (*Honour) Version() int { return 1 }

// Setup implements Projector.
func (p *Honour) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+orgSchema+";"+honourSchema)
}

// Apply implements Projector.
func (p *Honour) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "honour", batch, p.apply)
}

const insertHonour = `INSERT OR REPLACE INTO {p}honour (position, event_id, kind, subject_kind, subject_id, subject_name, from_id,
	from_name, text, audience, team_id, region, evidence, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (p *Honour) apply(ctx context.Context, s *stmts, e Envelope) error {
	if ok, err := applyOrg(ctx, s, e); ok || err != nil {
		return err
	}
	switch ev := e.Payload.(type) {
	case *domain.PraiseGiven:
		to, err := member(ctx, s, ev.ToID)
		if err != nil {
			return err
		}
		from, err := member(ctx, s, ev.FromID)
		if err != nil {
			return err
		}
		ti, err := teamAt(ctx, s, ev.ToID, e.OccurredAt)
		if err != nil {
			return err
		}
		var evidence []string
		if ev.LinkedEventID != "" {
			evidence = []string{ev.LinkedEventID}
		}
		return s.exec(ctx, insertHonour, int64(e.Position.Commit), e.ID, "praise", domain.SubjectMember, ev.ToID, to.Name,
			ev.FromID, from.Name, ev.Reason, domain.AudienceTeam, ti.ID, ti.Region, jsonText(nonNil(evidence)), fmtTime(e.OccurredAt))
	case *domain.AchievementPublicized:
		var name string
		var ti teamInfo
		var err error
		if ev.SubjectKind == domain.SubjectTeam {
			ti, err = team(ctx, s, ev.SubjectID)
			name = ti.Name
		} else {
			var m memberInfo
			if m, err = member(ctx, s, ev.SubjectID); err == nil {
				name = m.Name
				ti, err = teamAt(ctx, s, ev.SubjectID, e.OccurredAt)
			}
		}
		if err != nil {
			return err
		}
		kind := ev.SubjectKind
		if kind == "" {
			kind = domain.SubjectMember
		}
		return s.exec(ctx, insertHonour, int64(e.Position.Commit), e.ID, "achievement", kind, ev.SubjectID, name,
			ev.PublicizedBy, "", ev.Headline, ev.Audience, ti.ID, ti.Region, jsonText(nonNil(ev.EvidenceEventIDs)), fmtTime(e.OccurredAt))
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// HonourQuery selects entries of the roll: about one member or team
// (SubjectID), shown to one audience (Audience: team, region or company;
// empty for all), newest first.
type HonourQuery struct {
	SubjectID string
	Audience  string
	Limit     int
	Cursor    string
}

// HonourEntry is praise or a publicized achievement.
type HonourEntry struct {
	Kind        string   `json:"kind"` // praise or achievement
	SubjectKind string   `json:"subject_kind"`
	SubjectID   string   `json:"subject_id"`
	SubjectName string   `json:"subject_name"`
	FromID      string   `json:"from_id,omitempty"`
	FromName    string   `json:"from_name,omitempty"`
	Text        string   `json:"text"`
	Audience    string   `json:"audience"`
	TeamID      string   `json:"team_id,omitempty"`
	Region      string   `json:"region,omitempty"`
	Evidence    []string `json:"evidence"`
	At          string   `json:"at"`
	EventID     string   `json:"event_id"`
}

// HonourPage is one page of the roll.
type HonourPage struct {
	Position string        `json:"position"`
	Items    []HonourEntry `json:"items"`
	Next     string        `json:"next,omitempty"`
}

// Roll lists the honour roll. Errors caused by q wrap ErrInvalidQuery.
func (p *Honour) Roll(ctx context.Context, db Queryer, q HonourQuery) (HonourPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return HonourPage{}, err
	}
	var where []string
	var args []any
	if q.SubjectID != "" {
		where, args = append(where, "subject_id = ?"), append(args, q.SubjectID)
	}
	switch q.Audience {
	case "":
	case domain.AudienceTeam, domain.AudienceRegion, domain.AudienceCompany:
		where, args = append(where, "audience = ?"), append(args, q.Audience)
	default:
		return HonourPage{}, fmt.Errorf("%w: audience %q: want team, region or company", ErrInvalidQuery, q.Audience)
	}
	if q.Cursor != "" {
		var c posCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return HonourPage{}, err
		}
		where, args = append(where, "position < ?"), append(args, c.P)
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return HonourPage{}, err
	}
	page := HonourPage{Position: pos.String(), Items: []HonourEntry{}}
	sqlq := `SELECT position, event_id, kind, subject_kind, subject_id, subject_name, from_id, from_name, text, audience,
		team_id, region, evidence, at FROM {p}honour`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq+" ORDER BY position DESC LIMIT ?"), append(args, limit+1)...)
	if err != nil {
		return HonourPage{}, fmt.Errorf("honour: %w", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var h HonourEntry
		var position int64
		var evidence string
		if err := rows.Scan(&position, &h.EventID, &h.Kind, &h.SubjectKind, &h.SubjectID, &h.SubjectName, &h.FromID, &h.FromName,
			&h.Text, &h.Audience, &h.TeamID, &h.Region, &evidence, &h.At); err != nil {
			return HonourPage{}, fmt.Errorf("honour: %w", err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(posCursor{P: last})
			break
		}
		if err := json.Unmarshal([]byte(evidence), &h.Evidence); err != nil {
			return HonourPage{}, fmt.Errorf("honour: %w", err)
		}
		page.Items = append(page.Items, h)
		last = position
	}
	return page, rows.Err()
}
