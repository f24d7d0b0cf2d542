package projections

import (
	"context"
	"database/sql"
	"fmt"

	"perfledger/domain"
)

const directorySchema = `
CREATE TABLE IF NOT EXISTS {p}profiles (
	member_id TEXT NOT NULL,
	position INTEGER NOT NULL,
	day TEXT NOT NULL,
	alg TEXT NOT NULL,
	nonce BLOB NOT NULL,
	ciphertext BLOB NOT NULL,
	event_id TEXT NOT NULL,
	PRIMARY KEY (member_id, position)
) WITHOUT ROWID
`

// Directory is the organisation chart: teams with their department, region
// and parent, and members with the team and role they held on any date. It
// stores personal data only as the ciphertext of MemberProfileRecorded; its
// query decrypts it with the KeyStore it is given, and a forgotten member's
// data reads as erased.
type Directory struct{ prefix string }

var _ Projector = (*Directory)(nil)

// NewDirectory is the Factory of the directory.
func NewDirectory(prefix string) Projector { return &Directory{prefix: prefix} }

// Name implements Projector.
func (*Directory) Name() string { return "directory" }

// Version implements Projector.
func (*Directory) Version() int { return 1 }

// Setup implements Projector.
func (p *Directory) Setup(ctx context.Context, tx *sql.Tx) error {
	return execAll(ctx, tx, p.prefix, metaSchema+";"+orgSchema+";"+directorySchema)
}

// Apply implements Projector.
func (p *Directory) Apply(ctx context.Context, tx *sql.Tx, batch []Envelope) error {
	return applyEach(ctx, tx, p.prefix, "directory", batch, p.apply)
}

func (p *Directory) apply(ctx context.Context, s *stmts, e Envelope) error {
	if ok, err := applyOrg(ctx, s, e); ok || err != nil {
		return err
	}
	if ev, ok := e.Payload.(*domain.MemberProfileRecorded); ok {
		return s.exec(ctx, `INSERT OR REPLACE INTO {p}profiles (member_id, position, day, alg, nonce, ciphertext, event_id)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, ev.MemberID, int64(e.Position.Commit), fmtDay(e.OccurredAt), ev.Alg,
			nonNilBytes(ev.Nonce), nonNilBytes(ev.Ciphertext), e.ID)
	}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// DirectoryQuery asks for the organisation as of a date (AsOf "YYYY-MM-DD",
// required), optionally one team's members (TeamID). Members are paginated,
// ordered by id; the teams come with every page.
type DirectoryQuery struct {
	AsOf   string
	TeamID string
	Limit  int
	Cursor string
}

// DirectoryTeam is a team that existed on the date.
type DirectoryTeam struct {
	TeamID       string `json:"team_id"`
	Name         string `json:"name"`
	Department   string `json:"department"`
	Region       string `json:"region"`
	ParentTeamID string `json:"parent_team_id,omitempty"`
}

// DirectoryMember is a member on the date, with the team and role held then. Profile is the decrypted personal
// data of the latest profile recorded by then (nil when none was recorded or
// no KeyStore was given); Erased is true when the member was forgotten, and
// the data can never be read again.
type DirectoryMember struct {
	MemberID    string          `json:"member_id"`
	DisplayName string          `json:"display_name"`
	Role        string          `json:"role"`
	TeamID      string          `json:"team_id"`
	JoinedOn    string          `json:"joined_on"`
	LeftOn      string          `json:"left_on,omitempty"`
	Profile     *domain.Profile `json:"profile,omitempty"`
	Erased      bool            `json:"erased"`
}

// DirectoryPage is the organisation chart on a date, one page of members.
type DirectoryPage struct {
	Position string            `json:"position"`
	AsOf     string            `json:"as_of"`
	Teams    []DirectoryTeam   `json:"teams"`
	Members  []DirectoryMember `json:"members"`
	Next     string            `json:"next,omitempty"`
}

// Directory returns the organisation chart as of q.AsOf, decrypting personal
// data with keys (nil: profiles are left out). Errors caused by q wrap
// ErrInvalidQuery; a key store failure other than a destroyed key is returned.
func (p *Directory) Directory(ctx context.Context, db Queryer, keys domain.KeyStore, q DirectoryQuery) (DirectoryPage, error) {
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return DirectoryPage{}, err
	}
	if _, err := domain.ParseDate(q.AsOf); err != nil {
		return DirectoryPage{}, fmt.Errorf("%w: as_of: %w", ErrInvalidQuery, err)
	}
	var after string
	if q.Cursor != "" {
		var c keyCursor
		if err := decodeCursor(q.Cursor, &c); err != nil {
			return DirectoryPage{}, err
		}
		after = c.A
	}
	pos, err := loadPosition(ctx, db, p.prefix)
	if err != nil {
		return DirectoryPage{}, err
	}
	page := DirectoryPage{Position: pos.String(), AsOf: q.AsOf, Teams: []DirectoryTeam{}, Members: []DirectoryMember{}}
	trows, err := db.QueryContext(ctx, withPrefix(p.prefix, `SELECT team_id, name, department, region, parent_team_id
		FROM {p}org_teams WHERE formed_on <= ? ORDER BY team_id`), q.AsOf)
	if err != nil {
		return DirectoryPage{}, fmt.Errorf("directory: %w", err)
	}
	for trows.Next() {
		var t DirectoryTeam
		if err := trows.Scan(&t.TeamID, &t.Name, &t.Department, &t.Region, &t.ParentTeamID); err != nil {
			trows.Close()
			return DirectoryPage{}, fmt.Errorf("directory: %w", err)
		}
		page.Teams = append(page.Teams, t)
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return DirectoryPage{}, fmt.Errorf("directory: %w", err)
	}
	rows, err := db.QueryContext(ctx, withPrefix(p.prefix, `SELECT * FROM (
		SELECT m.member_id, m.display_name, m.joined_on, m.left_on, m.forgotten,
			COALESCE((SELECT s.team_id FROM {p}org_stints s WHERE s.member_id = m.member_id AND s.from_day <= ?1
				ORDER BY s.from_day DESC LIMIT 1), '') AS team_id,
			COALESCE((SELECT r.role FROM {p}org_roles r WHERE r.member_id = m.member_id AND r.from_day <= ?1
				ORDER BY r.from_day DESC, r.seq DESC LIMIT 1), '') AS role,
			(SELECT pr.alg FROM {p}profiles pr WHERE pr.member_id = m.member_id AND pr.day <= ?1 ORDER BY pr.position DESC LIMIT 1),
			(SELECT pr.nonce FROM {p}profiles pr WHERE pr.member_id = m.member_id AND pr.day <= ?1 ORDER BY pr.position DESC LIMIT 1),
			(SELECT pr.ciphertext FROM {p}profiles pr WHERE pr.member_id = m.member_id AND pr.day <= ?1 ORDER BY pr.position DESC LIMIT 1)
		FROM {p}org_members m
		WHERE m.joined_on <= ?1 AND (m.left_on = '' OR m.left_on > ?1) AND m.member_id > ?2
	) WHERE ?3 = '' OR team_id = ?3 ORDER BY member_id LIMIT ?4`), q.AsOf, after, q.TeamID, limit+1)
	if err != nil {
		return DirectoryPage{}, fmt.Errorf("directory: %w", err)
	}
	type raw struct {
		m          DirectoryMember
		alg        sql.NullString
		nonce, box []byte
	}
	var list []raw
	for rows.Next() {
		var r raw
		if err := rows.Scan(&r.m.MemberID, &r.m.DisplayName, &r.m.JoinedOn, &r.m.LeftOn, &r.m.Erased, &r.m.TeamID, &r.m.Role,
			&r.alg, &r.nonce, &r.box); err != nil {
			rows.Close()
			return DirectoryPage{}, fmt.Errorf("directory: %w", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return DirectoryPage{}, fmt.Errorf("directory: %w", err)
	}
	if len(list) > limit {
		list = list[:limit]
		page.Next = encodeCursor(keyCursor{A: list[limit-1].m.MemberID})
	}
	for _, r := range list {
		m := r.m
		if m.LeftOn > q.AsOf {
			m.LeftOn = "" // not yet known to have left on that date
		}
		if !m.Erased && keys != nil && r.alg.Valid {
			prof, erased, err := domain.OpenProfile(ctx, keys, &domain.MemberProfileRecorded{
				MemberID: m.MemberID, Alg: r.alg.String, Nonce: r.nonce, Ciphertext: r.box})
			if err != nil {
				return DirectoryPage{}, fmt.Errorf("directory: %w", err)
			}
			if erased {
				m.Erased = true
			} else {
				m.Profile = &prof
			}
		}
		page.Members = append(page.Members, m)
	}
	return page, nil
}
