package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"perfledger/domain"
)

const suggestionsSchema = `
CREATE TABLE IF NOT EXISTS {p}suggestions (
	suggestion_id TEXT PRIMARY KEY,
	position INTEGER NOT NULL,
	author_id TEXT NOT NULL,
	author_name TEXT NOT NULL,
	title TEXT NOT NULL,
	body TEXT NOT NULL,
	category TEXT NOT NULL,
	submitted_at TEXT NOT NULL,
	status TEXT NOT NULL,
	reviewer_id TEXT NOT NULL DEFAULT '',
	rationale TEXT NOT NULL DEFAULT '',
	reviewed_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS {p}suggestions_status ON {p}suggestions (status, position);
CREATE INDEX IF NOT EXISTS {p}suggestions_author ON {p}suggestions (author_id, position)
`

// Suggestion statuses.
const (
	SuggestionOpen     = "open"
	SuggestionAdopted  = "adopted"
	SuggestionRejected = "rejected"
)

// Suggestions is the suggestion board: every suggestion with its author and,
// once reviewed, the decision, reviewer and rationale.
type Suggestions struct{ prefix string }

var _ Projector = (*Suggestions)(nil)

// NewSuggestions is the Factory of the suggestion board.
func NewSuggestions(prefix string) Projector { return &Suggestions{prefix: prefix} }

// Name implements Projector.
func (*Suggestions) Name() string { return "suggestions" }

// Version implements Projector.
func (*Suggestions) Version() int { return 1 }

// Setup implements Projector.
func (p *Suggestions) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+orgSchema+";"+suggestionsSchema)
}

// Apply implements Projector.
func (p *Suggestions) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "suggestions", batch, p.apply)
}

func (p *Suggestions) apply(ctx context.Context, s *stmts, e Envelope) error {
	if ok, err := applyOrg(ctx, s, e); ok || err != nil {
		return err
	}
	switch ev := e.Payload.(type) {
	case *domain.SuggestionSubmitted:
		m, err := member(ctx, s, ev.AuthorID)
		if err != nil {
			return err
		}
		return s.exec(ctx, `INSERT OR IGNORE INTO {p}suggestions (suggestion_id, position, author_id, author_name, title, body,
			category, submitted_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.SuggestionID, int64(e.Position.Commit),
			ev.AuthorID, m.Name, ev.Title, ev.Body, ev.Category, fmtTime(e.OccurredAt), SuggestionOpen)
	case *domain.SuggestionReviewed:
		status := SuggestionRejected
		if ev.Decision == domain.DecisionAdopt {
			status = SuggestionAdopted
		}
		return s.exec(ctx, `UPDATE {p}suggestions SET status = ?, reviewer_id = ?, rationale = ?, reviewed_at = ?
			WHERE suggestion_id = ?`, status, ev.ReviewerID, ev.Rationale, fmtTime(e.OccurredAt), ev.SuggestionID)
	}
	return nil
}

// SuggestionQuery filters the board (Status: open, adopted or rejected;
// AuthorID; Category), newest first.
type SuggestionQuery struct {
	Status   string
	AuthorID string
	Category string
	Limit    int
	Cursor   string
}

// SuggestionItem is one suggestion on the board.
type SuggestionItem struct {
	SuggestionID string `json:"suggestion_id"`
	AuthorID     string `json:"author_id"`
	AuthorName   string `json:"author_name"`
	Title        string `json:"title"`
	Body         string `json:"body"`
	Category     string `json:"category,omitempty"`
	SubmittedAt  string `json:"submitted_at"`
	Status       string `json:"status"`
	ReviewerID   string `json:"reviewer_id,omitempty"`
	Rationale    string `json:"rationale,omitempty"`
	ReviewedAt   string `json:"reviewed_at,omitempty"`
}

// SuggestionPage is one page of the board.
type SuggestionPage struct {
	Position string           `json:"position"`
	Items    []SuggestionItem `json:"items"`
	Next     string           `json:"next,omitempty"`
}

// Board lists suggestions. Errors caused by q wrap ErrInvalidQuery.
func (p *Suggestions) Board(ctx context.Context, db Queryer, q SuggestionQuery) (SuggestionPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return SuggestionPage{}, err
	}
	var where []string
	var args []any
	switch q.Status {
	case "":
	case SuggestionOpen, SuggestionAdopted, SuggestionRejected:
		where, args = append(where, "status = ?"), append(args, q.Status)
	default:
		return SuggestionPage{}, fmt.Errorf("%w: status %q: want open, adopted or rejected", ErrInvalidQuery, q.Status)
	}
	if q.AuthorID != "" {
		where, args = append(where, "author_id = ?"), append(args, q.AuthorID)
	}
	if q.Category != "" {
		where, args = append(where, "category = ?"), append(args, q.Category)
	}
	if q.Cursor != "" {
		var c posCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return SuggestionPage{}, err
		}
		where, args = append(where, "position < ?"), append(args, c.P)
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return SuggestionPage{}, err
	}
	page := SuggestionPage{Position: pos.String(), Items: []SuggestionItem{}}
	sqlq := `SELECT position, suggestion_id, author_id, author_name, title, body, category, submitted_at, status, reviewer_id,
		rationale, reviewed_at FROM {p}suggestions`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq+" ORDER BY position DESC LIMIT ?"), append(args, limit+1)...)
	if err != nil {
		return SuggestionPage{}, fmt.Errorf("suggestions: %w", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var it SuggestionItem
		var position int64
		if err := rows.Scan(&position, &it.SuggestionID, &it.AuthorID, &it.AuthorName, &it.Title, &it.Body, &it.Category,
			&it.SubmittedAt, &it.Status, &it.ReviewerID, &it.Rationale, &it.ReviewedAt); err != nil {
			return SuggestionPage{}, fmt.Errorf("suggestions: %w", err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(posCursor{P: last})
			break
		}
		page.Items = append(page.Items, it)
		last = position
	}
	return page, rows.Err()
}
