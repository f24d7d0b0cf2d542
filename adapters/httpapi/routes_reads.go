package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"perfledger/domain"
	"perfledger/projections"
)

// ownFilter applies the read scope of DOMAIN.md §7 to a list filtered by
// member: a rep always reads their own (an empty filter becomes them), a
// manager must name a member of their subtree, and HR, auditors and admins
// may leave it empty (everyone).
func (c *call) ownFilter(member string) (string, error) {
	switch c.p.Role {
	case RoleRep:
		if member == "" {
			return c.p.MemberID, nil
		}
	case RoleManager:
		if member == "" {
			return "", errInvalid("member_id: name a member of your team subtree")
		}
	}
	if member != "" {
		if err := c.allowMember(member); err != nil {
			return "", err
		}
	}
	return member, nil
}

// listPage is the API shape of a read-model page.
func listPage[T any](items []T, next, position string) Page[T] {
	if items == nil {
		items = []T{}
	}
	return Page[T]{Items: items, NextCursor: next, Position: position}
}

// rewardPage is the reward ledger: its lines (the table) and totals.
type rewardPage struct {
	Totals     []projections.RewardTotal `json:"totals"`
	Items      []projections.RewardEntry `json:"items"`
	NextCursor string                    `json:"next_cursor,omitempty"`
	Position   string                    `json:"position"`
}

func (p rewardPage) rows() any        { return p.Items }
func (p rewardPage) cursor() string   { return p.NextCursor }
func (p rewardPage) position() string { return p.Position }

// directoryPage is the organisation chart on a date; its table is the
// members.
type directoryPage struct {
	AsOf       string                        `json:"as_of"`
	Teams      []projections.DirectoryTeam   `json:"teams"`
	Items      []projections.DirectoryMember `json:"items"`
	NextCursor string                        `json:"next_cursor,omitempty"`
	Position   string                        `json:"position"`
}

func (p directoryPage) rows() any        { return p.Items }
func (p directoryPage) cursor() string   { return p.NextCursor }
func (p directoryPage) position() string { return p.Position }

// pageParams reads limit and cursor; check q.err after reading the rest.
func pageParams(c *call) (limit int, cursor string, q *params) {
	q = c.query()
	return q.limit(), q.str("cursor"), q
}

func (s *Server) readRoutes() []route {
	get := http.MethodGet
	db := func(c *call) projections.Queryer { return c.models().DB() }
	return []route{
		{
			method: get, path: "/v1/members/{member_id}/scorecards/weeks/{week}", tag: "scores", roles: memberReaders, reads: leaderboardOnly,
			asOfScope: cardScope("week"),
			summary:   "A member's weekly scorecard: each KPI's actual, target, attainment, weight and contribution, Q, q and W, with the events behind them",
			resp:      projections.ScorecardWeek{},
			handle: scorecardHandler("week", func(c *call, sc *projections.Scorecard, q projections.ScorecardQuery) (any, string, error) {
				card, err := sc.Week(c.ctx, db(c), q)
				return weekCard{card}, card.Position, err
			}),
		},
		{
			method: get, path: "/v1/members/{member_id}/scorecards/months/{month}", tag: "scores", roles: memberReaders, reads: leaderboardOnly,
			asOfScope: cardScope("month"),
			summary:   "A member's monthly scorecard: R, O, M and the provisional evaluation E and band",
			resp:      projections.ScorecardMonth{},
			handle: scorecardHandler("month", func(c *call, sc *projections.Scorecard, q projections.ScorecardQuery) (any, string, error) {
				card, err := sc.Month(c.ctx, db(c), q)
				return monthCard{card}, card.Position, err
			}),
		},
		{
			method: get, path: "/v1/evaluations", tag: "scores", roles: memberReaders, list: true, reads: []string{"evaluations"},
			summary: "The register of finalized evaluations (locked snapshots); reps see their own, managers a member or team of their subtree",
			query: []queryParam{
				{name: "member_id", desc: "one member"}, {name: "team_id", desc: "one team"}, {name: "month", desc: `"2026-11"`},
			},
			resp: Page[projections.Evaluation]{},
			handle: func(c *call) (any, error) {
				limit, cursor, q := pageParams(c)
				member, team, month := q.str("member_id"), q.str("team_id"), q.period("month", false)
				if q.err != nil {
					return nil, q.err
				}
				var err error
				if c.p.Role == RoleManager && member == "" {
					if team == "" {
						team = c.p.TeamID
					}
					err = c.allowTeam(team)
				} else {
					member, err = c.ownFilter(member)
				}
				if err != nil {
					return nil, err
				}
				ev, err := readModel[*projections.Evaluations](c, "evaluations")
				if err != nil {
					return nil, err
				}
				p, err := ev.Evaluations(c.ctx, db(c), projections.EvaluationQuery{MemberID: member, TeamID: team, Month: month, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(p.Position)
				return listPage(p.Items, p.Next, p.Position), nil
			},
		},
		{
			method: get, path: "/v1/promotions", tag: "promotions", roles: memberReaders, list: true, reads: []string{"promotions"},
			summary: "Promotion records: nomination, eligibility criteria with observed values, decision, override flag and justification, effective date, rescission",
			query: []queryParam{
				{name: "member_id", desc: "one member (reps: themselves; managers: required, in their subtree)"},
				{name: "from", desc: "nominated on or after YYYY-MM-DD"}, {name: "to", desc: "nominated on or before YYYY-MM-DD"},
				{name: "team", desc: "only members now in this team or below it (a page may then hold fewer than limit records)"},
			},
			resp:   Page[projections.PromotionRecord]{},
			handle: func(c *call) (any, error) { return promotionList(c, c.query().str("member_id")) },
		},
		{
			method: get, path: "/v1/members/{member_id}/promotions", tag: "promotions", roles: memberReaders, list: true, reads: []string{"promotions"},
			summary: "A member's promotion records",
			query:   []queryParam{{name: "from", desc: "YYYY-MM-DD"}, {name: "to", desc: "YYYY-MM-DD"}},
			resp:    Page[projections.PromotionRecord]{},
			handle:  func(c *call) (any, error) { return promotionList(c, c.param("member_id")) },
		},
		{
			method: get, path: "/v1/members/{member_id}/rewards", tag: "rewards", roles: memberReaders, list: true, reads: []string{"rewards"},
			summary: "A member's reward ledger: grants, revocations and clawbacks, with totals by kind and currency",
			query:   []queryParam{{name: "period", desc: `"2026-W47", "2026-11", "2026-Q4" or "2026"; empty: all time`}},
			resp:    rewardPage{},
			handle:  func(c *call) (any, error) { return rewardList(c, c.param("member_id")) },
		},
		{
			method: get, path: "/v1/rewards", tag: "rewards", roles: hrReaders, list: true, reads: []string{"rewards"},
			summary: "The reward ledger of everyone",
			query:   []queryParam{{name: "period", desc: `"2026-11" …; empty: all time`}},
			resp:    rewardPage{},
			handle:  func(c *call) (any, error) { return rewardList(c, "") },
		},
		{
			method: get, path: "/v1/audit/events", tag: "audit", roles: auditors, list: true, reads: []string{"audit"},
			asOfScope: auditScope,
			summary:   "The audit trail: every stored event with its envelope, voided ones and what voided them included",
			query: []queryParam{
				{name: "stream"}, {name: "member_id"}, {name: "actor"}, {name: "type", desc: `"SaleClosed" or "SaleClosed.v2"`},
				{name: "from", desc: "recorded at or after (RFC 3339 or YYYY-MM-DD)"}, {name: "to", desc: "recorded before"},
			},
			resp: Page[projections.AuditEntry]{},
			handle: func(c *call) (any, error) {
				limit, cursor, q := pageParams(c)
				aq := projections.AuditQuery{Stream: q.str("stream"), MemberID: q.str("member_id"), Actor: q.str("actor"), Type: q.str("type"),
					RecordedFrom: q.date("from"), RecordedTo: q.date("to"), Limit: limit, Cursor: cursor}
				if q.err != nil {
					return nil, q.err
				}
				a, err := readModel[*projections.Audit](c, "audit")
				if err != nil {
					return nil, err
				}
				p, err := a.Trail(c.ctx, db(c), aq)
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(p.Position)
				return listPage(p.Items, p.Next, p.Position), nil
			},
		},
		{
			method: get, path: "/v1/honour-roll", tag: "boards", roles: readers, list: true, model: "honour", reads: []string{"honour"},
			summary: "The honour roll: praise and publicized achievements, newest first",
			query:   []queryParam{{name: "subject_id", desc: "about one member or team"}, {name: "audience", desc: "team, region or company"}},
			resp:    Page[projections.HonourEntry]{},
			handle: func(c *call) (any, error) {
				limit, cursor, q := pageParams(c)
				subject := q.str("subject_id")
				audience := q.oneOf("audience", "", domain.AudienceTeam, domain.AudienceRegion, domain.AudienceCompany)
				if q.err != nil {
					return nil, q.err
				}
				h, err := readModel[*projections.Honour](c, "honour")
				if err != nil {
					return nil, err
				}
				p, err := h.Roll(c.ctx, db(c), projections.HonourQuery{SubjectID: subject, Audience: audience, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(p.Position)
				return listPage(p.Items, p.Next, p.Position), nil
			},
		},
		{
			method: get, path: "/v1/suggestions", tag: "culture", roles: readers, list: true, model: "suggestions", reads: []string{"suggestions"},
			summary: "The suggestion board, newest first",
			query:   []queryParam{{name: "status", desc: "open, adopted or rejected"}, {name: "author_id"}, {name: "category"}},
			resp:    Page[projections.SuggestionItem]{},
			handle: func(c *call) (any, error) {
				limit, cursor, q := pageParams(c)
				status := q.oneOf("status", "", "open", "adopted", "rejected")
				sq := projections.SuggestionQuery{Status: status, AuthorID: q.str("author_id"), Category: q.str("category"), Limit: limit, Cursor: cursor}
				if q.err != nil {
					return nil, q.err
				}
				sg, err := readModel[*projections.Suggestions](c, "suggestions")
				if err != nil {
					return nil, err
				}
				p, err := sg.Board(c.ctx, db(c), sq)
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(p.Position)
				return listPage(p.Items, p.Next, p.Position), nil
			},
		},
		{
			method: get, path: "/v1/directory", tag: "people", roles: readers, list: true, reads: []string{"directory"},
			summary: "The organisation chart as of a date; personal data only for HR and auditors (erased for forgotten members)",
			query:   []queryParam{{name: "as_of", desc: "YYYY-MM-DD: the chart on that day (default: today); an RFC 3339 time: the chart on that day as recorded up to then"}, {name: "team_id", desc: "one team's members"}},
			resp:    directoryPage{},
			handle: func(c *call) (any, error) {
				limit, cursor, q := pageParams(c)
				asOf, team := q.str("as_of"), q.str("team_id")
				if q.err != nil {
					return nil, q.err
				}
				switch {
				case c.view != nil: // a recorded time: the chart on its day, as known then
					asOf = c.asOf.Format(time.DateOnly)
				case asOf == "":
					asOf = c.s.clock().UTC().Format(time.DateOnly)
				}
				var keys domain.KeyStore
				if c.p.Role == RoleHR || c.p.Role == RoleAuditor {
					keys = c.s.cfg.Keys
				}
				d, err := readModel[*projections.Directory](c, "directory")
				if err != nil {
					return nil, err
				}
				p, err := d.Directory(c.ctx, db(c), keys, projections.DirectoryQuery{AsOf: asOf, TeamID: team, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, queryErr(err)
				}
				c.setPosition(p.Position)
				members := p.Members
				if members == nil {
					members = []projections.DirectoryMember{}
				}
				return directoryPage{AsOf: p.AsOf, Teams: p.Teams, Items: members, NextCursor: p.Next, Position: p.Position}, nil
			},
		},
	}
}

func promotionList(c *call, member string) (any, error) {
	limit, cursor, q := pageParams(c)
	from, to := q.str("from"), q.str("to")
	for name, v := range map[string]string{"from": from, "to": to} {
		if v != "" {
			if _, err := domain.ParseDate(v); err != nil {
				return nil, errInvalid(fmt.Sprintf("query parameter %q: want a date YYYY-MM-DD", name))
			}
		}
	}
	if q.err != nil {
		return nil, q.err
	}
	member, err := c.ownFilter(member)
	if err != nil {
		return nil, err
	}
	pr, err := readModel[*projections.Promotions](c, "promotions")
	if err != nil {
		return nil, err
	}
	p, err := pr.Promotions(c.ctx, c.models().DB(), projections.PromotionQuery{MemberID: member, From: from, To: to, Limit: limit, Cursor: cursor})
	if err != nil {
		return nil, queryErr(err)
	}
	c.setPosition(p.Position)
	items := p.Items
	if team := q.str("team"); team != "" {
		items = items[:0:0]
		for _, it := range p.Items {
			mt, err := c.s.cfg.Org.MemberTeam(c.ctx, it.MemberID)
			if err != nil {
				return nil, err
			}
			if ok, err := c.s.cfg.Org.TeamWithin(c.ctx, mt, team); err != nil {
				return nil, err
			} else if ok {
				items = append(items, it)
			}
		}
	}
	return listPage(items, p.Next, p.Position), nil
}

func rewardList(c *call, member string) (any, error) {
	limit, cursor, q := pageParams(c)
	period := q.period("period", false)
	if q.err != nil {
		return nil, q.err
	}
	member, err := c.ownFilter(member)
	if err != nil {
		return nil, err
	}
	rw, err := readModel[*projections.Rewards](c, "rewards")
	if err != nil {
		return nil, err
	}
	p, err := rw.Rewards(c.ctx, c.models().DB(), projections.RewardQuery{MemberID: member, Period: period, Limit: limit, Cursor: cursor})
	if err != nil {
		return nil, queryErr(err)
	}
	c.setPosition(p.Position)
	items, totals := p.Items, p.Totals
	if items == nil {
		items = []projections.RewardEntry{}
	}
	if totals == nil {
		totals = []projections.RewardTotal{}
	}
	return rewardPage{Totals: totals, Items: items, NextCursor: p.Next, Position: p.Position}, nil
}

// leaderboardOnly: the boards and the scorecards are the leaderboard read
// model's alone.
var leaderboardOnly = []string{"leaderboard"}

// scorecardHandler serves one of a member's scorecards: the member must be
// readable by the caller; period names the path parameter of the period.
func scorecardHandler(period string,
	read func(c *call, sc *projections.Scorecard, q projections.ScorecardQuery) (any, string, error)) func(*call) (any, error) {
	return func(c *call) (any, error) {
		m := c.param("member_id")
		if err := c.allowMember(m); err != nil {
			return nil, err
		}
		lb, err := readModel[*projections.Leaderboard](c, "leaderboard")
		if err != nil {
			return nil, err
		}
		card, pos, err := read(c, lb.Scorecard(), projections.ScorecardQuery{MemberID: m, Period: c.param(period)})
		if err != nil {
			return nil, queryErr(err)
		}
		c.setPosition(pos)
		return card, nil
	}
}
