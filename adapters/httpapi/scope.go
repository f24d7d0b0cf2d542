package httpapi

import (
	"context"
	"fmt"
)

// Org answers the organisation questions the role rules of DOMAIN.md §7
// need. Implementations read the current organisation (the command
// service's state or the directory read model).
type Org interface {
	// MemberTeam returns the team the member is in now. An unknown member is
	// an error wrapping domain.ErrNotFound.
	MemberTeam(ctx context.Context, memberID string) (string, error)
	// TeamWithin reports whether team is root or lies below root in the team
	// tree. An unknown team is false, not an error.
	TeamWithin(ctx context.Context, team, root string) (bool, error)
}

// allowMember checks that the principal may read or act on memberID: a rep
// only on itself, a manager on members of its team subtree (itself
// included), the other roles on anyone the route lets them reach.
func (c *call) allowMember(memberID string) error {
	switch c.p.Role {
	case RoleRep:
		if memberID != c.p.MemberID {
			return errForbidden("a rep may only act on or read their own data")
		}
		return nil
	case RoleManager:
		if memberID == c.p.MemberID {
			return nil
		}
		team, err := c.s.cfg.Org.MemberTeam(c.ctx, memberID)
		if err != nil {
			return err
		}
		ok, err := c.s.cfg.Org.TeamWithin(c.ctx, team, c.p.TeamID)
		if err != nil {
			return err
		}
		if !ok {
			return errForbidden(fmt.Sprintf("member %s is not in your team subtree", memberID))
		}
		return nil
	}
	return nil
}

// allowOther is allowMember for acts a manager may not do to themselves
// (assess, rate, finalize, void, reverse, reward, set targets): separation
// of duties.
func (c *call) allowOther(memberID string) error {
	if memberID == c.p.MemberID {
		return errForbidden("you may not do this for yourself; another manager must")
	}
	return c.allowMember(memberID)
}

// allowTeam checks that the principal may read or act on team: a manager on
// its subtree, a rep on its own team, others on any.
func (c *call) allowTeam(team string) error {
	switch c.p.Role {
	case RoleRep:
		if team != c.p.TeamID {
			return errForbidden("a rep may only read their own team")
		}
	case RoleManager:
		ok, err := c.s.cfg.Org.TeamWithin(c.ctx, team, c.p.TeamID)
		if err != nil {
			return err
		}
		if !ok {
			return errForbidden(fmt.Sprintf("team %s is not in your team subtree", team))
		}
	}
	return nil
}
