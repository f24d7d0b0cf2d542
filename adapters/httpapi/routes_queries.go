package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"perfledger/domain"
	"perfledger/projections"
)

// Role sets of the read routes (DOMAIN.md §7). Auditors read everything;
// scope rules (own data, team subtree) are applied per request.
var (
	readers       = []Role{RoleRep, RoleManager, RoleHR, RoleAuditor, RoleAdmin} // public boards
	memberReaders = []Role{RoleRep, RoleManager, RoleHR, RoleAuditor}            // a member's own files
	hrReaders     = []Role{RoleHR, RoleAuditor}
	auditors      = []Role{RoleAuditor}
)

// readModel returns the serving instance of the named projection as its
// concrete type.
func readModel[T projections.Projector](c *call, name string) (T, error) {
	var zero T
	if c.checking {
		return zero, errChecked
	}
	p := c.models().Current(name)
	if p == nil {
		return zero, fmt.Errorf("read model %q is not registered", name)
	}
	t, ok := p.(T)
	if !ok {
		return zero, fmt.Errorf("read model %q is a %T", name, p)
	}
	return t, nil
}

// setPosition records the position a read reflects, as the read model
// reported it.
func (c *call) setPosition(s string) {
	if p, err := domain.ParsePosition(s); err == nil {
		c.position = p
	}
}

// queryErr translates a read-model error: a bad query is the client's.
func queryErr(err error) error {
	if errors.Is(err, projections.ErrInvalidQuery) {
		return errInvalid(err.Error())
	}
	return err
}

// boardPage is a leaderboard page as the API shows it.
type boardPage struct {
	Metric     string                 `json:"metric"`
	Period     string                 `json:"period"`
	Scope      string                 `json:"scope"`
	ScopeID    string                 `json:"scope_id,omitempty"`
	Unit       string                 `json:"unit"`
	Items      []projections.BoardRow `json:"items"`
	NextCursor string                 `json:"next_cursor,omitempty"`
	Position   string                 `json:"position"`
}

func (p boardPage) rows() any        { return p.Items }
func (p boardPage) cursor() string   { return p.NextCursor }
func (p boardPage) position() string { return p.Position }

// boardMetric is the metric of a leaderboard route, or the error refusing it.
func boardMetric(c *call) (string, error) {
	metric := c.param("metric")
	if !slices.Contains(projections.BoardMetrics, metric) {
		return "", errInvalid(fmt.Sprintf("metric %q: want revenue, activity_points, attainment or evaluation", metric))
	}
	return metric, nil
}

func (s *Server) queryRoutes() []route {
	get := http.MethodGet
	return []route{
		{
			method: get, path: "/v1/leaderboards/{metric}", tag: "boards", roles: readers, list: true, model: "leaderboard", reads: leaderboardOnly,
			asOfScope: boardScope,
			summary:   "A leaderboard: metric revenue, activity_points, attainment or evaluation; ranked 1, 2, 2, 4 on exact values",
			query: []queryParam{
				{name: "period", desc: `week "2026-W47", month "2026-11", quarter "2026-Q4" or year "2026"`, required: true},
				{name: "scope", desc: "company (default), department, region, team, or teams (team-vs-team)"},
				{name: "scope_id", desc: "the department, region or team id for those scopes"},
			},
			resp: boardPage{},
			handle: func(c *call) (any, error) {
				q := c.query()
				metric, err := boardMetric(c)
				if err != nil {
					return nil, err
				}
				period := q.period("period", true)
				scope := q.oneOf("scope", projections.ScopeCompany, projections.ScopeCompany, projections.ScopeDepartment,
					projections.ScopeRegion, projections.ScopeTeam, projections.ScopeTeams)
				scopeID := q.str("scope_id")
				limit, cursor := q.limit(), q.str("cursor")
				if q.err != nil {
					return nil, q.err
				}
				switch {
				case scope == projections.ScopeCompany || scope == projections.ScopeTeams:
					if scopeID != "" {
						return nil, errInvalid(fmt.Sprintf("scope_id: the %s scope takes none", scope))
					}
				case scopeID == "":
					return nil, errInvalid(fmt.Sprintf("scope_id: the %s scope needs one", scope))
				}
				lb, err := readModel[*projections.Leaderboard](c, "leaderboard")
				if err != nil {
					return nil, err
				}
				b, err := lb.Board(c.ctx, c.models().DB(), projections.BoardQuery{
					Metric: metric, Period: period, Scope: scope, ScopeID: scopeID, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(b.Position)
				rows := b.Rows
				if rows == nil {
					rows = []projections.BoardRow{}
				}
				return boardPage{Metric: b.Metric, Period: b.Period, Scope: b.Scope, ScopeID: b.ScopeID, Unit: b.Unit,
					Items: rows, NextCursor: b.Next, Position: b.Position}, nil
			},
		},
	}
}
