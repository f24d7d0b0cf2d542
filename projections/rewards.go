package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"perfledger/domain"
)

const rewardsSchema = `
CREATE TABLE IF NOT EXISTS {p}rewards (
	member_id TEXT NOT NULL,
	reward_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	currency TEXT NOT NULL,
	PRIMARY KEY (member_id, reward_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}reward_entries (
	position INTEGER PRIMARY KEY,
	position_text TEXT NOT NULL,
	event_id TEXT NOT NULL,
	member_id TEXT NOT NULL,
	reward_id TEXT NOT NULL,
	entry TEXT NOT NULL,
	kind TEXT NOT NULL,
	reason TEXT NOT NULL,
	amount_minor INTEGER NOT NULL,
	currency TEXT NOT NULL,
	basis TEXT NOT NULL,
	actor TEXT NOT NULL,
	occurred_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}reward_entries_member ON {p}reward_entries (member_id, occurred_at, position)
`

// Rewards is the reward ledger: every grant, revocation and clawback of a
// member, booked at the time it was recorded as occurring (a clawback lands
// in the period of the reversal, the original grant never changes).
type Rewards struct{ prefix string }

var _ Projector = (*Rewards)(nil)

// NewRewards is the Factory of the reward ledger.
func NewRewards(prefix string) Projector { return &Rewards{prefix: prefix} }

// Name implements Projector.
func (*Rewards) Name() string { return "rewards" }

// Version implements Projector. Version 2: rewards keyed by member and id
// (ids are unique per member; version 1 took a revoked reward's kind and
// currency from whichever member's reward had that id).
func (*Rewards) Version() int { return 2 }

// Setup implements Projector.
func (p *Rewards) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+rewardsSchema)
}

// Apply implements Projector.
func (p *Rewards) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "rewards", batch, p.apply)
}

const insertRewardEntry = `INSERT OR REPLACE INTO {p}reward_entries (position, position_text, event_id, member_id, reward_id, entry,
	kind, reason, amount_minor, currency, basis, actor, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (p *Rewards) apply(ctx context.Context, s *stmts, e Envelope) error {
	switch ev := e.Payload.(type) {
	case *domain.RewardGranted:
		if err := s.exec(ctx, `INSERT OR REPLACE INTO {p}rewards (reward_id, member_id, kind, currency) VALUES (?, ?, ?, ?)`,
			ev.RewardID, ev.MemberID, ev.Kind, ev.Currency); err != nil {
			return err
		}
		basis := jsonText(ev.Basis)
		return s.exec(ctx, insertRewardEntry, int64(e.Position.Commit), e.Position.String(), e.ID, ev.MemberID, ev.RewardID,
			"grant", ev.Kind, ev.Reason, ev.AmountMinor, ev.Currency, basis, ev.GrantedBy, fmtTime(e.OccurredAt))
	case *domain.RewardRevoked:
		var kind, currency string
		if _, err := s.row(ctx, `SELECT kind, currency FROM {p}rewards WHERE member_id = ? AND reward_id = ?`, []any{ev.MemberID, ev.RewardID}, &kind, &currency); err != nil {
			return err
		}
		if ev.Currency != "" {
			currency = ev.Currency
		}
		entry := "revocation"
		if ev.Reason == domain.RevokeClawback {
			entry = "clawback"
		}
		return s.exec(ctx, insertRewardEntry, int64(e.Position.Commit), e.Position.String(), e.ID, ev.MemberID, ev.RewardID,
			entry, kind, ev.Reason+noteSuffix(ev.Note), -ev.AmountMinor, currency, "{}", e.Actor, fmtTime(e.OccurredAt))
	}
	return nil
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return ": " + n
}

// RewardQuery selects a member's ledger entries (MemberID may be empty for
// everyone) within a period ("2026-W47", "2026-11", "2026-Q4", "2026"; empty
// for all time), in ledger order.
type RewardQuery struct {
	MemberID string
	Period   string
	Limit    int
	Cursor   string
}

// RewardEntry is one line of the ledger. AmountMinor is negative for
// revocations and clawbacks.
type RewardEntry struct {
	EventID     string          `json:"event_id"`
	Position    string          `json:"position"`
	MemberID    string          `json:"member_id"`
	RewardID    string          `json:"reward_id"`
	Entry       string          `json:"entry"` // grant, revocation or clawback
	Kind        string          `json:"kind"`
	Reason      string          `json:"reason"`
	AmountMinor int64           `json:"amount_minor"`
	Amount      string          `json:"amount"`
	Currency    string          `json:"currency,omitempty"`
	Basis       json.RawMessage `json:"basis"`
	By          string          `json:"by"`
	OccurredAt  string          `json:"occurred_at"`
}

// RewardTotal sums the selected entries (all pages) of one kind and currency.
type RewardTotal struct {
	Kind         string `json:"kind"`
	Currency     string `json:"currency,omitempty"`
	Count        int    `json:"count"`
	GrantedMinor int64  `json:"granted_minor"`
	RevokedMinor int64  `json:"revoked_minor"` // revocations and clawbacks, positive
	NetMinor     int64  `json:"net_minor"`
	Net          string `json:"net"`
}

// RewardPage is one page of the ledger with the totals of the whole selection.
type RewardPage struct {
	Position string        `json:"position"`
	Totals   []RewardTotal `json:"totals"`
	Items    []RewardEntry `json:"items"`
	Next     string        `json:"next,omitempty"`
}

// Rewards lists ledger entries and totals. Errors caused by q wrap ErrInvalidQuery.
func (p *Rewards) Rewards(ctx context.Context, db Queryer, q RewardQuery) (RewardPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return RewardPage{}, err
	}
	var where []string
	var args []any
	if q.MemberID != "" {
		where, args = append(where, "member_id = ?"), append(args, q.MemberID)
	}
	if q.Period != "" {
		per, err := domain.ParsePeriod(q.Period)
		if err != nil {
			return RewardPage{}, fmt.Errorf("%w: %w", ErrInvalidQuery, err)
		}
		where, args = append(where, "occurred_at >= ? AND occurred_at < ?"), append(args, fmtTime(per.Start()), fmtTime(per.End()))
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return RewardPage{}, err
	}
	page := RewardPage{Position: pos.String(), Totals: []RewardTotal{}, Items: []RewardEntry{}}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}
	trows, err := db.QueryContext(ctx, withPrefix(p.prefix, `SELECT kind, currency, COUNT(*),
		COALESCE(SUM(CASE WHEN amount_minor > 0 THEN amount_minor END), 0),
		COALESCE(SUM(CASE WHEN amount_minor < 0 THEN -amount_minor END), 0)
		FROM {p}reward_entries`+filter+` GROUP BY kind, currency ORDER BY kind, currency`), args...)
	if err != nil {
		return RewardPage{}, fmt.Errorf("rewards: %w", err)
	}
	for trows.Next() {
		var t RewardTotal
		if err := trows.Scan(&t.Kind, &t.Currency, &t.Count, &t.GrantedMinor, &t.RevokedMinor); err != nil {
			trows.Close()
			return RewardPage{}, fmt.Errorf("rewards: %w", err)
		}
		t.NetMinor = t.GrantedMinor - t.RevokedMinor
		t.Net = minorString(t.NetMinor)
		page.Totals = append(page.Totals, t)
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return RewardPage{}, fmt.Errorf("rewards: %w", err)
	}
	if q.Cursor != "" {
		var c posCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return RewardPage{}, err
		}
		where, args = append(where, "position > ?"), append(args, c.P)
	}
	sqlq := `SELECT event_id, position_text, member_id, reward_id, entry, kind, reason, amount_minor, currency, basis, actor,
		occurred_at, position FROM {p}reward_entries`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq+" ORDER BY position LIMIT ?"), append(args, limit+1)...)
	if err != nil {
		return RewardPage{}, fmt.Errorf("rewards: %w", err)
	}
	defer rows.Close()
	var last int64
	for rows.Next() {
		var r RewardEntry
		var basis string
		var p int64
		if err := rows.Scan(&r.EventID, &r.Position, &r.MemberID, &r.RewardID, &r.Entry, &r.Kind, &r.Reason, &r.AmountMinor,
			&r.Currency, &basis, &r.By, &r.OccurredAt, &p); err != nil {
			return RewardPage{}, fmt.Errorf("rewards: %w", err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(posCursor{P: last})
			break
		}
		r.Basis = json.RawMessage(basis)
		r.Amount = minorString(r.AmountMinor)
		page.Items = append(page.Items, r)
		last = p
	}
	return page, rows.Err()
}
