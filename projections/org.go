package projections

import (
	"context"
	"fmt"
	"time"

	"perfledger/domain"
)

// orgSchema is the organisation as a projection sees it: teams, members and
// each member's team history (stints), so that a contribution can be credited
// to the team the member was in when it occurred. Every projection that needs
// it keeps its own copy under its own prefix.
const orgSchema = `
CREATE TABLE IF NOT EXISTS {p}org_teams (
	team_id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	department TEXT NOT NULL,
	region TEXT NOT NULL,
	parent_team_id TEXT NOT NULL,
	formed_on TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS {p}org_members (
	member_id TEXT PRIMARY KEY,
	display_name TEXT NOT NULL,
	role TEXT NOT NULL,
	team_id TEXT NOT NULL,
	joined_on TEXT NOT NULL,
	left_on TEXT NOT NULL DEFAULT '',
	forgotten INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {p}org_stints (
	member_id TEXT NOT NULL,
	from_day TEXT NOT NULL,
	team_id TEXT NOT NULL,
	PRIMARY KEY (member_id, from_day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {p}org_roles (
	member_id TEXT NOT NULL,
	from_day TEXT NOT NULL,
	seq INTEGER NOT NULL,
	role TEXT NOT NULL,
	PRIMARY KEY (member_id, from_day, seq)
) WITHOUT ROWID
`

// teamInfo is a team as credited with a contribution.
type teamInfo struct {
	ID, Name, Department, Region string
}

// applyOrg folds the organisation events; it reports whether e was one.
func applyOrg(ctx context.Context, s *stmts, e Envelope) (bool, error) {
	switch p := e.Payload.(type) {
	case *domain.TeamFormed:
		return true, s.exec(ctx, `INSERT INTO {p}org_teams (team_id, name, department, region, parent_team_id, formed_on)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (team_id) DO UPDATE SET name = excluded.name,
			department = excluded.department, region = excluded.region, parent_team_id = excluded.parent_team_id`,
			p.TeamID, p.Name, p.Department, p.Region, p.ParentTeamID, fmtDay(e.OccurredAt))
	case *domain.MemberJoined:
		if err := s.exec(ctx, `INSERT INTO {p}org_members (member_id, display_name, role, team_id, joined_on)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id) DO UPDATE SET display_name = excluded.display_name,
			role = excluded.role, team_id = excluded.team_id, joined_on = excluded.joined_on, left_on = ''`,
			p.MemberID, p.DisplayName, p.Role, p.TeamID, p.JoinedOn); err != nil {
			return true, err
		}
		// The first stint starts at the beginning of time so that an activity
		// back-dated before the joining day is still credited to a team.
		if err := s.exec(ctx, `INSERT OR REPLACE INTO {p}org_stints (member_id, from_day, team_id) VALUES (?, '', ?)`,
			p.MemberID, p.TeamID); err != nil {
			return true, err
		}
		return true, s.exec(ctx, `INSERT OR REPLACE INTO {p}org_roles (member_id, from_day, seq, role) VALUES (?, '', ?, ?)`,
			p.MemberID, int64(e.Position.Commit), p.Role)
	case *domain.MemberTransferred:
		if err := s.exec(ctx, `UPDATE {p}org_members SET team_id = ? WHERE member_id = ?`, p.ToTeamID, p.MemberID); err != nil {
			return true, err
		}
		return true, s.exec(ctx, `INSERT OR REPLACE INTO {p}org_stints (member_id, from_day, team_id) VALUES (?, ?, ?)`,
			p.MemberID, p.EffectiveOn, p.ToTeamID)
	case *domain.MemberLeft:
		return true, s.exec(ctx, `UPDATE {p}org_members SET left_on = ? WHERE member_id = ?`, p.LeftOn, p.MemberID)
	case *domain.MemberForgotten:
		return true, s.exec(ctx, `UPDATE {p}org_members SET forgotten = 1 WHERE member_id = ?`, p.MemberID)
	case *domain.PromotionEffected:
		if err := s.exec(ctx, `UPDATE {p}org_members SET role = ? WHERE member_id = ?`, p.ToRole, p.MemberID); err != nil {
			return true, err
		}
		return true, s.exec(ctx, `INSERT OR REPLACE INTO {p}org_roles (member_id, from_day, seq, role) VALUES (?, ?, ?, ?)`,
			p.MemberID, p.EffectiveOn, int64(e.Position.Commit), p.ToRole)
	case *domain.PromotionRescinded:
		// The role returns to FromRole from the rescission on (only if the
		// promotion had been effected, i.e. the member holds ToRole).
		if err := s.exec(ctx, `UPDATE {p}org_members SET role = ? WHERE member_id = ? AND role = ?`,
			p.FromRole, p.MemberID, p.ToRole); err != nil {
			return true, err
		}
		var cur string
		found, err := s.row(ctx, `SELECT role FROM {p}org_members WHERE member_id = ?`, []any{p.MemberID}, &cur)
		if err != nil || !found {
			return true, err
		}
		return true, s.exec(ctx, `INSERT OR REPLACE INTO {p}org_roles (member_id, from_day, seq, role) VALUES (?, ?, ?, ?)`,
			p.MemberID, fmtDay(e.OccurredAt), int64(e.Position.Commit), cur)
	}
	return false, nil
}

// teamAt returns the team member was in on day t (its stint covering t).
// A member the projection does not know gives a zero teamInfo.
func teamAt(ctx context.Context, s *stmts, memberID string, t time.Time) (teamInfo, error) {
	var ti teamInfo
	found, err := s.row(ctx, `SELECT t.team_id, COALESCE(tm.name, ''), COALESCE(tm.department, ''), COALESCE(tm.region, '')
		FROM {p}org_stints t LEFT JOIN {p}org_teams tm ON tm.team_id = t.team_id
		WHERE t.member_id = ? AND t.from_day <= ? ORDER BY t.from_day DESC LIMIT 1`,
		[]any{memberID, fmtDay(t)}, &ti.ID, &ti.Name, &ti.Department, &ti.Region)
	if err != nil {
		return teamInfo{}, fmt.Errorf("team of %s at %s: %w", memberID, fmtDay(t), err)
	}
	if !found {
		return teamInfo{}, nil
	}
	return ti, nil
}

// team returns a team by id (zero when unknown).
func team(ctx context.Context, s *stmts, teamID string) (teamInfo, error) {
	ti := teamInfo{ID: teamID}
	_, err := s.row(ctx, `SELECT name, department, region FROM {p}org_teams WHERE team_id = ?`,
		[]any{teamID}, &ti.Name, &ti.Department, &ti.Region)
	return ti, err
}

// memberInfo is what projections need of a member.
type memberInfo struct {
	ID, Name, Role, TeamID string
	Known                  bool
}

func member(ctx context.Context, s *stmts, id string) (memberInfo, error) {
	m := memberInfo{ID: id}
	found, err := s.row(ctx, `SELECT display_name, role, team_id FROM {p}org_members WHERE member_id = ?`,
		[]any{id}, &m.Name, &m.Role, &m.TeamID)
	m.Known = found
	return m, err
}

// orgCache memoizes member, stint and team lookups within one Apply. Any
// organisation event clears it, so it never serves a stale answer.
type orgCache struct {
	members map[string]memberInfo
	stints  map[string][]stint     // member → stints by from_day ascending
	roles   map[string][]roleStint // member → roles by (from_day, seq) ascending
	teams   map[string]teamInfo
	// lastDay is the day (Unix days) whose string dayStr is: events come
	// mostly in the order of their days, so a day is formatted once for many.
	lastDay int64
	dayStr  string
	// changed are the members and teams whose organisation events were
	// applied since the last settle (all: any), whose entries may have been
	// read from tables that were then not committed.
	changedMembers, changedTeams []string
	changedAll                   bool
}

type stint struct{ from, teamID string }

type roleStint struct{ from, role string }

func newOrgCache() *orgCache {
	return &orgCache{members: map[string]memberInfo{}, stints: map[string][]stint{}, roles: map[string][]roleStint{},
		teams: map[string]teamInfo{}}
}

// day is fmtDay(t).
func (c *orgCache) day(t time.Time) string {
	if d := unixDay(t); c.dayStr == "" || d != c.lastDay {
		c.lastDay, c.dayStr = d, fmtDay(t)
	}
	return c.dayStr
}

// forget drops what the organisation event p changes: the entries of its
// team, or of the member it is about (subjectOf), or all of them for
// another event; and remembers them for settle.
func (c *orgCache) forget(p domain.Payload) {
	if t, ok := p.(*domain.TeamFormed); ok {
		delete(c.teams, t.TeamID)
		c.changedTeams = append(c.changedTeams, t.TeamID)
		return
	}
	if member, _ := subjectOf(p); member != "" {
		c.dropMember(member)
		c.changedMembers = append(c.changedMembers, member)
		return
	}
	c.reset()
	c.changedAll = true
}

func (c *orgCache) dropMember(id string) {
	delete(c.members, id)
	delete(c.stints, id)
	delete(c.roles, id)
}

// settle, at the start of a batch, drops the entries of what the
// organisation events of the batches before it changed (forget): those
// batches may not have been committed. The rest of the cache was read from
// tables no batch since has written.
func (c *orgCache) settle() {
	if c.changedAll {
		c.reset()
	}
	for _, id := range c.changedMembers {
		c.dropMember(id)
	}
	for _, id := range c.changedTeams {
		delete(c.teams, id)
	}
	c.changedMembers, c.changedTeams, c.changedAll = c.changedMembers[:0], c.changedTeams[:0], false
}

func (c *orgCache) reset() {
	clear(c.members)
	clear(c.stints)
	clear(c.roles)
	clear(c.teams)
}

// roleAt is the package function roleAt, from the cache: one query per
// member instead of one per lookup.
func (c *orgCache) roleAt(ctx context.Context, s *stmts, memberID string, t time.Time) (string, error) {
	list, ok := c.roles[memberID]
	if !ok {
		rows, err := s.query(ctx, `SELECT from_day, role FROM {p}org_roles WHERE member_id = ? ORDER BY from_day, seq`, memberID)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var r roleStint
			if err := rows.Scan(&r.from, &r.role); err != nil {
				rows.Close()
				return "", err
			}
			list = append(list, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
		c.roles[memberID] = list
	}
	day := c.day(t)
	role := ""
	for _, r := range list {
		if r.from > day {
			break
		}
		role = r.role
	}
	return role, nil
}

func (c *orgCache) member(ctx context.Context, s *stmts, id string) (memberInfo, error) {
	if m, ok := c.members[id]; ok {
		return m, nil
	}
	m, err := member(ctx, s, id)
	if err == nil {
		c.members[id] = m
	}
	return m, err
}

// teamAt is the package function teamAt, from the cache.
func (c *orgCache) teamAt(ctx context.Context, s *stmts, memberID string, t time.Time) (teamInfo, error) {
	list, ok := c.stints[memberID]
	if !ok {
		rows, err := s.query(ctx, `SELECT from_day, team_id FROM {p}org_stints WHERE member_id = ? ORDER BY from_day`, memberID)
		if err != nil {
			return teamInfo{}, err
		}
		for rows.Next() {
			var st stint
			if err := rows.Scan(&st.from, &st.teamID); err != nil {
				rows.Close()
				return teamInfo{}, err
			}
			list = append(list, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return teamInfo{}, err
		}
		c.stints[memberID] = list
	}
	day := c.day(t)
	teamID := ""
	for _, st := range list {
		if st.from > day {
			break
		}
		teamID = st.teamID
	}
	if teamID == "" {
		return teamInfo{}, nil
	}
	if ti, ok := c.teams[teamID]; ok {
		return ti, nil
	}
	ti, err := team(ctx, s, teamID)
	if err == nil {
		c.teams[teamID] = ti
	}
	return ti, err
}
