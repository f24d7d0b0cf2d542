package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"perfledger/domain"
)

const auditSchema = `
CREATE TABLE IF NOT EXISTS {p}audit (
	position_commit INTEGER NOT NULL,
	position_prepare INTEGER NOT NULL,
	event_id TEXT NOT NULL,
	type TEXT NOT NULL,
	stream TEXT NOT NULL,
	revision INTEGER NOT NULL,
	occurred_at TEXT NOT NULL,
	recorded_at TEXT NOT NULL,
	actor TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	causation_id TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL,
	data TEXT NOT NULL,
	member_id TEXT NOT NULL,
	source_id TEXT NOT NULL,
	voids TEXT NOT NULL DEFAULT '',
	voided_by TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (position_commit, position_prepare)
);
CREATE INDEX IF NOT EXISTS {p}audit_source ON {p}audit (source_id) WHERE source_id <> ''
`

// auditIndexes serve the trail's filters; Apply does not use them.
var auditIndexes = []QueryIndex{
	{"{p}audit_stream", `CREATE INDEX IF NOT EXISTS {p}audit_stream ON {p}audit (stream, position_commit)`},
	{"{p}audit_member", `CREATE INDEX IF NOT EXISTS {p}audit_member ON {p}audit (member_id, position_commit)`},
	{"{p}audit_actor", `CREATE INDEX IF NOT EXISTS {p}audit_actor ON {p}audit (actor, position_commit)`},
	{"{p}audit_type", `CREATE INDEX IF NOT EXISTS {p}audit_type ON {p}audit (type, position_commit)`},
	{"{p}audit_recorded", `CREATE INDEX IF NOT EXISTS {p}audit_recorded ON {p}audit (recorded_at)`},
}

// QueryIndexes implements IndexDeferrer.
func (*Audit) QueryIndexes() []QueryIndex { return auditIndexes }

// Audit is the audit trail: every event with its full envelope and data,
// filterable by stream, member, actor, type and recorded-at range. Voided
// activities, reversed sales and revoked rewards stay in it, marked with the
// event that voided them; the voiding event names what it voided.
type Audit struct{ prefix string }

var _ Projector = (*Audit)(nil)

// NewAudit is the Factory of the audit trail.
func NewAudit(prefix string) Projector { return &Audit{prefix: prefix} }

// Name implements Projector.
func (*Audit) Name() string { return "audit" }

// Version implements Projector. Version 2: a void marks the voiding
// member's own activity, sale or reward (version 1 marked the first row
// with that id, whichever member's).
func (*Audit) Version() int { return 2 }

// Setup implements Projector.
func (p *Audit) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+auditSchema+";"+joinCreates(auditIndexes))
}

// Apply implements Projector.
func (p *Audit) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	s := newStmts(tx, p.prefix)
	defer s.close()
	rows := &rowBuffer{head: `INSERT OR IGNORE INTO {p}audit (position_commit, position_prepare, event_id, type, stream, revision,
		occurred_at, recorded_at, actor, correlation_id, causation_id, prev_hash, hash, data, member_id, source_id, voids) VALUES `, cols: 17}
	for _, e := range batch {
		if err := p.apply(ctx, s, rows, e); err != nil {
			return fmt.Errorf("audit: event %s (%s): %w", e.ID, e.Type, err)
		}
	}
	if err := rows.flush(ctx, s); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return savePosition(ctx, s, batch)
}

// subjectOf returns the member an event is about ("" for none) and, for
// what can be voided, its source id ("activity:a1", "sale:s1", "reward:r1").
func subjectOf(p domain.Payload) (member, source string) {
	switch ev := p.(type) {
	case *domain.MemberJoined:
		return ev.MemberID, ""
	case *domain.MemberTransferred:
		return ev.MemberID, ""
	case *domain.MemberLeft:
		return ev.MemberID, ""
	case *domain.MemberProfileRecorded:
		return ev.MemberID, ""
	case *domain.MemberForgotten:
		return ev.MemberID, ""
	case *domain.TargetSet:
		if ev.SubjectKind == domain.SubjectMember {
			return ev.SubjectID, ""
		}
	case *domain.ActivityLogged:
		return ev.MemberID, "activity:" + ev.ActivityID
	case *domain.SaleClosed:
		return ev.MemberID, "sale:" + ev.SaleID
	case *domain.ActivityVoided:
		return ev.MemberID, ""
	case *domain.SaleReversed:
		return ev.MemberID, ""
	case *domain.QualityAssessed:
		return ev.MemberID, ""
	case *domain.ManagerRatingRecorded:
		return ev.MemberID, ""
	case *domain.EvaluationFinalized:
		return ev.MemberID, ""
	case *domain.PraiseGiven:
		return ev.ToID, ""
	case *domain.AchievementPublicized:
		if ev.SubjectKind != domain.SubjectTeam {
			return ev.SubjectID, ""
		}
	case *domain.SuggestionSubmitted:
		return ev.AuthorID, ""
	case *domain.PromotionNominated:
		return ev.MemberID, ""
	case *domain.PromotionEligibilityEvaluated:
		return ev.MemberID, ""
	case *domain.PromotionApproved:
		return ev.MemberID, ""
	case *domain.PromotionRejected:
		return ev.MemberID, ""
	case *domain.PromotionEffected:
		return ev.MemberID, ""
	case *domain.PromotionRescinded:
		return ev.MemberID, ""
	case *domain.RewardGranted:
		return ev.MemberID, "reward:" + ev.RewardID
	case *domain.RewardRevoked:
		return ev.MemberID, ""
	}
	return "", ""
}

// voidTarget returns the source id an event voids ("" for none).
func voidTarget(p domain.Payload) string {
	switch ev := p.(type) {
	case *domain.ActivityVoided:
		return "activity:" + ev.ActivityID
	case *domain.SaleReversed:
		return "sale:" + ev.SaleID
	case *domain.RewardRevoked:
		return "reward:" + ev.RewardID
	}
	return ""
}

func (p *Audit) apply(ctx context.Context, s *stmts, rows *rowBuffer, e Envelope) error {
	memberID, source := subjectOf(e.Payload)
	voids := ""
	if t := voidTarget(e.Payload); t != "" {
		if err := rows.flush(ctx, s); err != nil { // the voided event may be among them
			return err
		}
		// "source_id <> ''" lets SQLite use the partial index audit_source;
		// the row is then updated through its primary key. Ids are unique
		// per member only: the member's own row is the one voided.
		var orig string
		var oc, op int64
		found, err := s.row(ctx, `SELECT event_id, position_commit, position_prepare FROM {p}audit
			WHERE source_id = ? AND source_id <> '' AND member_id = ? ORDER BY position_commit LIMIT 1`, []any{t, memberID}, &orig, &oc, &op)
		if err != nil {
			return err
		}
		if found {
			voids = orig
			if err := s.exec(ctx, `UPDATE {p}audit SET voided_by = CASE WHEN voided_by = '' THEN ? ELSE voided_by || ',' || ? END
				WHERE position_commit = ? AND position_prepare = ?`, e.ID, e.ID, oc, op); err != nil {
				return err
			}
		}
	}
	return rows.add(ctx, s, int64(e.Position.Commit), int64(e.Position.Prepare), e.ID, e.Type, e.Stream, int64(e.Revision),
		fmtTime(e.OccurredAt), fmtTime(e.RecordedAt), e.Actor, e.CorrelationID, e.CausationID, e.PrevHash, e.Hash,
		string(e.Data), memberID, source, voids)
}

// AuditQuery filters the trail; every non-empty field must match. Type
// matches the stored name with or without its version ("SaleClosed" or
// "SaleClosed.v2"). RecordedFrom (inclusive) and RecordedTo (exclusive) cut
// on recorded_at, the time the ledger learned of the event. Results are in
// global order.
type AuditQuery struct {
	Stream       string
	MemberID     string
	Actor        string
	Type         string
	RecordedFrom time.Time
	RecordedTo   time.Time
	Limit        int
	Cursor       string
}

// AuditEntry is one stored event with its whole envelope. VoidedBy lists the
// events that voided (or revoked) it; Voids names the event this one voided.
type AuditEntry struct {
	Position      string          `json:"position"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Stream        string          `json:"stream"`
	Revision      uint64          `json:"revision"`
	OccurredAt    string          `json:"occurred_at"`
	RecordedAt    string          `json:"recorded_at"`
	Actor         string          `json:"actor"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	PrevHash      string          `json:"prev_hash"`
	Hash          string          `json:"hash"`
	MemberID      string          `json:"member_id,omitempty"`
	Data          json.RawMessage `json:"data"`
	Voids         string          `json:"voids,omitempty"`
	VoidedBy      []string        `json:"voided_by,omitempty"`
}

// AuditPage is one page of the trail.
type AuditPage struct {
	Position string       `json:"position"`
	Items    []AuditEntry `json:"items"`
	Next     string       `json:"next,omitempty"`
}

type auditCursor struct {
	C int64 `json:"c"`
	P int64 `json:"p"`
}

// Trail lists audit entries. Errors caused by q wrap ErrInvalidQuery.
func (p *Audit) Trail(ctx context.Context, db Queryer, q AuditQuery) (AuditPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return AuditPage{}, err
	}
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where, args = append(where, col+" = ?"), append(args, v)
		}
	}
	eq("stream", q.Stream)
	eq("member_id", q.MemberID)
	eq("actor", q.Actor)
	if q.Type != "" {
		if strings.Contains(q.Type, ".") {
			eq("type", q.Type)
		} else {
			where, args = append(where, "type >= ? AND type < ?"), append(args, q.Type+".", q.Type+"/") // '/' follows '.'
		}
	}
	if !q.RecordedFrom.IsZero() {
		where, args = append(where, "recorded_at >= ?"), append(args, fmtTime(q.RecordedFrom))
	}
	if !q.RecordedTo.IsZero() {
		if !q.RecordedFrom.IsZero() && !q.RecordedTo.After(q.RecordedFrom) {
			return AuditPage{}, fmt.Errorf("%w: recorded_to must be after recorded_from", ErrInvalidQuery)
		}
		where, args = append(where, "recorded_at < ?"), append(args, fmtTime(q.RecordedTo))
	}
	if q.Cursor != "" {
		var c auditCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return AuditPage{}, err
		}
		where, args = append(where, "(position_commit, position_prepare) > (?, ?)"), append(args, c.C, c.P)
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return AuditPage{}, err
	}
	page := AuditPage{Position: pos.String(), Items: []AuditEntry{}}
	sqlq := `SELECT position_commit, position_prepare, event_id, type, stream, revision, occurred_at, recorded_at, actor,
		correlation_id, causation_id, prev_hash, hash, data, member_id, voids, voided_by FROM {p}audit`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, sqlq+" ORDER BY position_commit, position_prepare LIMIT ?"), append(args, limit+1)...)
	if err != nil {
		return AuditPage{}, fmt.Errorf("audit: %w", err)
	}
	defer rows.Close()
	var last auditCursor
	for rows.Next() {
		var a AuditEntry
		var c, pr int64
		var data, voidedBy string
		var rev int64
		if err := rows.Scan(&c, &pr, &a.ID, &a.Type, &a.Stream, &rev, &a.OccurredAt, &a.RecordedAt, &a.Actor,
			&a.CorrelationID, &a.CausationID, &a.PrevHash, &a.Hash, &data, &a.MemberID, &a.Voids, &voidedBy); err != nil {
			return AuditPage{}, fmt.Errorf("audit: %w", err)
		}
		if len(page.Items) == limit {
			page.Next = encodeCursor(last)
			break
		}
		a.Position = domain.Position{Commit: uint64(c), Prepare: uint64(pr)}.String()
		a.Revision = uint64(rev)
		a.Data = json.RawMessage(data)
		if voidedBy != "" {
			a.VoidedBy = strings.Split(voidedBy, ",")
		}
		page.Items = append(page.Items, a)
		last = auditCursor{C: c, P: pr}
	}
	return page, rows.Err()
}
