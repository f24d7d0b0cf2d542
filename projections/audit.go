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
	voids_source TEXT NOT NULL,
	PRIMARY KEY (position_commit, position_prepare)
);
CREATE INDEX IF NOT EXISTS {p}audit_voids ON {p}audit (voids_source, member_id) WHERE voids_source <> ''
`

// auditIndexes serve the trail's filters; Apply does not use them.
var auditIndexes = []QueryIndex{
	{"{p}audit_stream", `CREATE INDEX IF NOT EXISTS {p}audit_stream ON {p}audit (stream, position_commit)`},
	{"{p}audit_member", `CREATE INDEX IF NOT EXISTS {p}audit_member ON {p}audit (member_id, position_commit)`},
	{"{p}audit_actor", `CREATE INDEX IF NOT EXISTS {p}audit_actor ON {p}audit (actor, position_commit)`},
	{"{p}audit_type", `CREATE INDEX IF NOT EXISTS {p}audit_type ON {p}audit (` + auditBaseType + `, position_commit)`},
	{"{p}audit_recorded", `CREATE INDEX IF NOT EXISTS {p}audit_recorded ON {p}audit (recorded_at)`},
	{"{p}audit_source", `CREATE INDEX IF NOT EXISTS {p}audit_source ON {p}audit (source_id, member_id, position_commit)
		WHERE source_id <> ''`},
}

// auditBaseType is a row's type without its version ("SaleClosed" of
// "SaleClosed.v2"), as baseType. The type filter goes through an index on
// it, so that a page of one type, whatever its versions, is read in global
// order: with the index on the stored name, a filter without a version
// sorted every event of the type first (0.9 s for ActivityLogged in the
// 1M-event demo ledger).
const auditBaseType = `CASE WHEN instr(type, '.') > 0 THEN substr(type, 1, instr(type, '.') - 1) ELSE type END`

// QueryIndexes implements IndexDeferrer.
func (*Audit) QueryIndexes() []QueryIndex { return auditIndexes }

// Audit is the audit trail: every event with its full envelope and data,
// filterable by stream, member, actor, type and recorded-at range. Voided
// activities, reversed sales and revoked rewards stay in it, marked with the
// event that voided them; the voiding event names what it voided.
//
// Those marks are found when the trail is read, not written into the rows
// they mark: a row keeps the source id of what it can be voided as
// (source_id, "activity:a1") or of what it voids (voids_source), and a page
// joins the two through indexes. Writing them cost, for every void, a
// look-up and the rewrite of an old row, and the index on the source ids
// was kept up through the whole replay (random inserts among a million
// rows); it is now a query index, built once after a replay. The 1M-event
// rebuild took 32.6 s instead of 32.0 (BENCHMARKS.md).
type Audit struct{ prefix string }

var _ Projector = (*Audit)(nil)

// NewAudit is the Factory of the audit trail.
func NewAudit(prefix string) Projector { return &Audit{prefix: prefix} }

// Name implements Projector.
func (*Audit) Name() string { return "audit" }

// Version implements Projector. Version 2: a void marks the voiding
// member's own activity, sale or reward (version 1 marked the first row
// with that id, whichever member's). Version 3: voids are matched when the
// trail is read (voids_source replaces voids and voided_by).
func (*Audit) Version() int { return 3 }

// Setup implements Projector.
func (p *Audit) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+auditSchema+";"+joinCreates(auditIndexes))
}

// Apply implements Projector.
func (p *Audit) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	s := newStmts(tx, p.prefix)
	defer s.close()
	rows := &rowBuffer{head: `INSERT OR IGNORE INTO {p}audit (position_commit, position_prepare, event_id, type, stream, revision,
		occurred_at, recorded_at, actor, correlation_id, causation_id, prev_hash, hash, data, member_id, source_id, voids_source) VALUES `, cols: 17}
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
	return rows.add(ctx, s, int64(e.Position.Commit), int64(e.Position.Prepare), e.ID, e.Type, e.Stream, int64(e.Revision),
		fmtTime(e.OccurredAt), fmtTime(e.RecordedAt), e.Actor, e.CorrelationID, e.CausationID, e.PrevHash, e.Hash,
		string(e.Data), memberID, source, voidTarget(e.Payload))
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

// auditVoidsSQL are the two columns that mark a row of the trail (a) read
// from {p}audit: the id of the event it voided, and the ids of the events
// that voided it, comma-separated, in global order.
//
// A void names, and marks, the first earlier row of its member with the
// source id it voids (the member's own activity, sale or reward: ids are
// unique per member only); rows are only ever appended, so that is the row
// the void found when it was recorded. Both look-ups go through indexes:
// audit_source (a query index) and audit_voids (named: without statistics
// the planner would rather scan the member's later rows through
// audit_member).
const auditVoidsSQL = `CASE WHEN a.voids_source = '' THEN '' ELSE coalesce((SELECT o.event_id FROM {p}audit o
		WHERE o.source_id = a.voids_source AND o.source_id <> '' AND o.member_id = a.member_id
		AND (o.position_commit, o.position_prepare) < (a.position_commit, a.position_prepare)
		ORDER BY o.position_commit, o.position_prepare LIMIT 1), '') END,
	CASE WHEN a.source_id = '' THEN '' ELSE coalesce((SELECT group_concat(v.event_id, ',' ORDER BY v.position_commit, v.position_prepare)
		FROM {p}audit v INDEXED BY {p}audit_voids WHERE v.voids_source = a.source_id AND v.voids_source <> ''
		AND v.member_id = a.member_id AND (v.position_commit, v.position_prepare) > (a.position_commit, a.position_prepare)
		AND NOT EXISTS (SELECT 1 FROM {p}audit o WHERE o.source_id = a.source_id AND o.source_id <> ''
			AND o.member_id = a.member_id AND (o.position_commit, o.position_prepare) < (a.position_commit, a.position_prepare))), '') END`

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
		// With a stream, member or actor too, their index reads fewer rows
		// than the type's (a member's activities against every member's):
		// the unary plus keeps SQLite, which has no statistics, from
		// choosing the type's.
		typ := auditBaseType
		if q.Stream != "" || q.MemberID != "" || q.Actor != "" {
			typ = "+(" + typ + ")"
		}
		where, args = append(where, typ+" = ?"), append(args, baseType(q.Type))
		if strings.Contains(q.Type, ".") {
			eq("type", q.Type)
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
		correlation_id, causation_id, prev_hash, hash, data, member_id, ` + auditVoidsSQL + ` FROM {p}audit a`
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
