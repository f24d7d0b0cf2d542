package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// adminReader: tokens and the verification are for admins and auditors.
var adminReader = []Role{RoleAdmin, RoleAuditor}

type createTokenRequest struct {
	Role     Role   `json:"role"`
	MemberID string `json:"member_id,omitempty"`
	// TeamID is the team whose subtree a manager may act on (default: the
	// member's own team); it must contain the member's team.
	TeamID string `json:"team_id,omitempty"`
	Label  string `json:"label,omitempty"`
}

type createTokenReply struct {
	TokenInfo
	// Token is the secret, shown once.
	Token string `json:"token"`
}

func (s *Server) adminRoutes() []route {
	return []route{
		{
			method: http.MethodPost, path: "/v1/tokens", tag: "admin", roles: adminOnly,
			summary: "Create an API token bound to a role (and, for reps and managers, a member and team); the secret is returned once",
			body:    createTokenRequest{}, resp: createTokenReply{},
			// Token creation is not a command: it is not idempotent by key and
			// answers 201 with the secret, never stored.
			handle: func(c *call) (any, error) {
				var req createTokenRequest
				if err := decodeStrict(c.body, &req); err != nil {
					return nil, err
				}
				if _, err := ParseRole(string(req.Role)); err != nil {
					return nil, errInvalid(err.Error())
				}
				if req.MemberID != "" {
					team, err := c.s.cfg.Org.MemberTeam(c.ctx, req.MemberID)
					if err != nil {
						return nil, err
					}
					if req.TeamID == "" {
						req.TeamID = team
					}
					ok, err := c.s.cfg.Org.TeamWithin(c.ctx, team, req.TeamID)
					if err != nil {
						return nil, err
					}
					if !ok {
						return nil, errInvalid(fmt.Sprintf("team_id: member %s is in team %s, which is not %s nor below it", req.MemberID, team, req.TeamID))
					}
				}
				info, secret, err := c.s.tokens.Create(c.ctx, NewToken(req))
				if err != nil {
					return nil, err
				}
				return createTokenReply{TokenInfo: info, Token: secret}, nil
			},
			write: true, secret: true,
		},
		{
			method: http.MethodGet, path: "/v1/tokens", tag: "admin", roles: adminReader, list: true,
			summary: "List API tokens (never their secrets)",
			resp:    Page[TokenInfo]{},
			handle: func(c *call) (any, error) {
				q := c.query()
				cursor, limit := q.str("cursor"), q.limit()
				if q.err != nil {
					return nil, q.err
				}
				all, err := c.s.tokens.List(c.ctx)
				if err != nil {
					return nil, err
				}
				items, next, err := paginate(all, cursor, limit)
				if err != nil {
					return nil, err
				}
				return Page[TokenInfo]{Items: items, NextCursor: next}.emptyToSlice(), nil
			},
		},
		{
			method: http.MethodPost, path: "/v1/tokens/{id}/revoke", tag: "admin", roles: adminOnly, write: true, bodyOptional: true,
			summary: "Revoke an API token; it is refused from then on",
			body:    struct{}{}, resp: struct {
				TokenID   string    `json:"token_id"`
				RevokedAt time.Time `json:"revoked_at"`
			}{},
			handle: func(c *call) (any, error) {
				if len(c.body) > 0 {
					var none struct{}
					if err := decodeStrict(c.body, &none); err != nil {
						return nil, err
					}
				}
				id := c.param("id")
				if err := c.s.tokens.Revoke(c.ctx, id); err != nil {
					if errors.Is(err, ErrTokenNotFound) {
						return nil, errNotFound("no token with id " + id)
					}
					return nil, err
				}
				return struct {
					TokenID   string    `json:"token_id"`
					RevokedAt time.Time `json:"revoked_at"`
				}{id, c.s.clock().UTC()}, nil
			},
		},
	}
}
