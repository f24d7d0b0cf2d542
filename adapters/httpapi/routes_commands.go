package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"perfledger/domain"
)

// Role sets of the write routes (DOMAIN.md §7).
var (
	members   = []Role{RoleRep, RoleManager} // reps and managers acting for themselves
	managers  = []Role{RoleManager}
	hrOnly    = []Role{RoleHR}
	adminOnly = []Role{RoleAdmin}
)

// newID derives the n-th id a command creates from the command id, so that
// a request replayed with the same Idempotency-Key creates the same ids (and
// so the same events, which the store recognises).
func (c *call) newID(n int) string { return domain.EventID(c.commandID, 1<<20+n) }

// orNew returns id, or a derived one when the client sent none.
func (c *call) orNew(id string, n int) string {
	if id != "" {
		return id
	}
	return c.newID(n)
}

// self is the principal's identity as a decision records it (nominated_by,
// approver_id, assessor_id …): its member id, or its actor string for tokens
// without one.
func (c *call) self() string {
	if c.p.MemberID != "" {
		return c.p.MemberID
	}
	return c.p.Actor()
}

// Request bodies. Ids in the path are not repeated in the body; the acting
// member (assessor, nominator, approver …) is always the principal, never
// taken from the body.

type formTeamRequest struct {
	TeamID       string `json:"team_id,omitempty"`
	Name         string `json:"name"`
	Department   string `json:"department"`
	Region       string `json:"region"`
	ParentTeamID string `json:"parent_team_id,omitempty"`
}

type joinMemberRequest struct {
	MemberID    string `json:"member_id,omitempty"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	TeamID      string `json:"team_id"`
	JoinedOn    string `json:"joined_on"`
}

type transferRequest struct {
	ToTeamID    string `json:"to_team_id"`
	EffectiveOn string `json:"effective_on"`
}

type leaveRequest struct {
	LeftOn string `json:"left_on"`
	Reason string `json:"reason"`
}

type forgetRequest struct {
	Reason string `json:"reason"`
}

type ladderRequest struct {
	Roles []string `json:"roles"`
}

type setTargetRequest struct {
	TargetID    string       `json:"target_id,omitempty"`
	SubjectKind string       `json:"subject_kind"`
	SubjectID   string       `json:"subject_id"`
	KPI         string       `json:"kpi"`
	Period      string       `json:"period"`
	Value       domain.Fixed `json:"value"`
}

type reviseTargetRequest struct {
	NewValue domain.Fixed `json:"new_value"`
	Reason   string       `json:"reason"`
}

type activityRequest struct {
	ActivityID string    `json:"activity_id,omitempty"`
	Kind       string    `json:"kind"`
	Quantity   int64     `json:"quantity"`
	Customer   string    `json:"customer,omitempty"`
	Notes      string    `json:"notes,omitempty"`
	OccurredAt time.Time `json:"occurred_at,omitzero"`
}

type saleRequest struct {
	SaleID      string    `json:"sale_id,omitempty"`
	Customer    string    `json:"customer"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	OccurredAt  time.Time `json:"occurred_at,omitzero"`
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

type qualityRequest struct {
	Week    string `json:"week,omitempty"`
	Day     string `json:"day,omitempty"`
	Rating  int    `json:"rating"`
	Comment string `json:"comment,omitempty"`
}

type ratingRequest struct {
	Month   string `json:"month"`
	Rating  int    `json:"rating"`
	Comment string `json:"comment,omitempty"`
}

type praiseRequest struct {
	ToID          string `json:"to_id"`
	Reason        string `json:"reason"`
	LinkedEventID string `json:"linked_event_id,omitempty"`
}

type achievementRequest struct {
	SubjectKind      string   `json:"subject_kind"`
	SubjectID        string   `json:"subject_id"`
	Headline         string   `json:"headline"`
	EvidenceEventIDs []string `json:"evidence_event_ids,omitempty"`
	Audience         string   `json:"audience"`
}

type meetingRequest struct {
	MeetingID   string    `json:"meeting_id,omitempty"`
	TeamID      string    `json:"team_id"`
	Kind        string    `json:"kind"`
	ChairID     string    `json:"chair_id,omitempty"` // default: the caller
	AttendeeIDs []string  `json:"attendee_ids"`
	HeldAt      time.Time `json:"held_at,omitzero"`
	Topics      []string  `json:"topics,omitempty"`
}

type suggestionRequest struct {
	SuggestionID string `json:"suggestion_id,omitempty"`
	Title        string `json:"title"`
	Body         string `json:"body"`
	Category     string `json:"category,omitempty"`
}

type reviewRequest struct {
	Decision  string `json:"decision"`
	Rationale string `json:"rationale"`
}

type nominateRequest struct {
	PromotionID         string `json:"promotion_id,omitempty"`
	MemberID            string `json:"member_id"`
	ToRole              string `json:"to_role"`
	Justification       string `json:"justification"`
	ProposedEffectiveOn string `json:"proposed_effective_on"`
}

type approveRequest struct {
	Comment                string `json:"comment,omitempty"`
	ExceptionJustification string `json:"exception_justification,omitempty"`
}

type commentRequest struct {
	Comment string `json:"comment,omitempty"`
}

type effectRequest struct {
	EffectiveOn string `json:"effective_on,omitempty"`
}

type grantRequest struct {
	RewardID    string             `json:"reward_id,omitempty"`
	Kind        string             `json:"kind"`
	AmountMinor int64              `json:"amount_minor,omitempty"`
	Currency    string             `json:"currency,omitempty"`
	Reason      string             `json:"reason"`
	Basis       domain.RewardBasis `json:"basis,omitzero"`
}

type revokeRequest struct {
	Reason      string `json:"reason"`
	AmountMinor int64  `json:"amount_minor,omitempty"`
	Note        string `json:"note,omitempty"`
}

type finalizeRequest struct {
	Comment string `json:"comment,omitempty"`
}

// decodeBody decodes the body of a write strictly into a T. An empty body is
// accepted as {} for requests whose fields are all optional.
func decodeBody[T any](c *call, emptyOK bool) (T, error) {
	var v T
	if emptyOK && len(c.body) == 0 {
		return v, nil
	}
	return v, c.decode(&v)
}

// command declares a write route in one expression: decode the body into
// Req, build the command (checking scope), execute it.
func command[Req any](method, path, tag, summary string, roles []Role, emptyOK bool,
	build func(c *call, req Req) (domain.Command, string, error)) route {
	var zero Req
	return route{
		method: method, path: path, tag: tag, summary: summary, roles: roles, write: true,
		body: zero, bodyOptional: emptyOK, resp: writeReply{},
		handle: func(c *call) (any, error) {
			req, err := decodeBody[Req](c, emptyOK)
			if err != nil {
				return nil, err
			}
			cmd, id, err := build(c, req)
			if err != nil {
				return nil, err
			}
			return c.exec(cmd, id)
		},
	}
}

func (s *Server) commandRoutes() []route {
	post := http.MethodPost
	return []route{
		// Organisation (admin).
		command(post, "/v1/teams", "organisation", "Form a team", adminOnly, false,
			func(c *call, r formTeamRequest) (domain.Command, string, error) {
				id := c.orNew(r.TeamID, 0)
				return domain.FormTeam{TeamID: id, Name: r.Name, Department: r.Department, Region: r.Region, ParentTeamID: r.ParentTeamID}, id, nil
			}),
		command(post, "/v1/members", "organisation", "A member joins a team with a role of the ladder", adminOnly, false,
			func(c *call, r joinMemberRequest) (domain.Command, string, error) {
				id := c.orNew(r.MemberID, 0)
				return domain.JoinMember{MemberID: id, DisplayName: r.DisplayName, Role: r.Role, TeamID: r.TeamID, JoinedOn: r.JoinedOn}, id, nil
			}),
		command(post, "/v1/members/{member_id}/transfer", "organisation", "Transfer a member to another team", adminOnly, false,
			func(c *call, r transferRequest) (domain.Command, string, error) {
				id := c.param("member_id")
				return domain.TransferMember{MemberID: id, ToTeamID: r.ToTeamID, EffectiveOn: r.EffectiveOn}, id, nil
			}),
		command(post, "/v1/members/{member_id}/leave", "organisation", "Record that a member left", adminOnly, false,
			func(c *call, r leaveRequest) (domain.Command, string, error) {
				id := c.param("member_id")
				return domain.RecordLeave{MemberID: id, LeftOn: r.LeftOn, Reason: r.Reason}, id, nil
			}),
		command(post, "/v1/members/{member_id}/profile", "people", "Record a member's personal data (stored encrypted with the member's key)", hrOnly, false,
			func(c *call, r domain.Profile) (domain.Command, string, error) {
				id := c.param("member_id")
				return domain.RecordProfile{MemberID: id, Profile: r}, id, nil
			}),
		command(post, "/v1/members/{member_id}/forget", "people", "Forget a member: destroy their key (crypto-shredding); history stays", hrOnly, false,
			func(c *call, r forgetRequest) (domain.Command, string, error) {
				id := c.param("member_id")
				return domain.ForgetMember{MemberID: id, RequestedBy: c.self(), Reason: r.Reason}, id, nil
			}),
		command(post, "/v1/role-ladder", "organisation", "Replace the role ladder (lowest first)", adminOnly, false,
			func(c *call, r ladderRequest) (domain.Command, string, error) {
				return domain.DefineRoleLadder{Roles: r.Roles}, "", nil
			}),
		command(post, "/v1/rule-sets", "organisation", "Publish a scoring rule set (version greater than the current one)", adminOnly, false,
			func(c *call, r domain.ScoringRulesPublished) (domain.Command, string, error) {
				return domain.PublishScoringRules{Rules: r}, fmt.Sprint(r.Version), nil
			}),

		// Targets (managers, for their subtree).
		command(post, "/v1/targets", "targets", "Set a target for a member or team, KPI and period", managers, false,
			func(c *call, r setTargetRequest) (domain.Command, string, error) {
				switch r.SubjectKind {
				case domain.SubjectMember:
					if err := c.allowOther(r.SubjectID); err != nil {
						return nil, "", err
					}
				case domain.SubjectTeam:
					if err := c.allowTeam(r.SubjectID); err != nil {
						return nil, "", err
					}
				default:
					return nil, "", errInvalid(`subject_kind: want "member" or "team"`)
				}
				id := c.orNew(r.TargetID, 0)
				return domain.SetTarget{TargetID: id, SubjectKind: r.SubjectKind, SubjectID: r.SubjectID, KPI: r.KPI, Period: r.Period, Value: r.Value}, id, nil
			}),
		command(post, "/v1/targets/{target_id}/revise", "targets", "Revise a target's value", managers, false,
			func(c *call, r reviseTargetRequest) (domain.Command, string, error) {
				id := c.param("target_id")
				return domain.ReviseTarget{TargetID: id, NewValue: r.NewValue, Reason: r.Reason, ApprovedBy: c.self()}, id, nil
			}),

		// Daily work.
		command(post, "/v1/members/{member_id}/activities", "work", "Log one of your own activities", members, false,
			func(c *call, r activityRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if m != c.p.MemberID {
					return nil, "", errForbidden("you may only log your own activities")
				}
				id := c.orNew(r.ActivityID, 0)
				return domain.LogActivity{ActivityID: id, MemberID: m, Kind: r.Kind, Quantity: r.Quantity, Customer: r.Customer, Notes: r.Notes, OccurredAt: r.OccurredAt}, id, nil
			}),
		command(post, "/v1/members/{member_id}/sales", "work", "Record one of your own closed sales", members, false,
			func(c *call, r saleRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if m != c.p.MemberID {
					return nil, "", errForbidden("you may only record your own sales")
				}
				id := c.orNew(r.SaleID, 0)
				return domain.CloseSale{SaleID: id, MemberID: m, Customer: r.Customer, AmountMinor: r.AmountMinor, Currency: r.Currency, OccurredAt: r.OccurredAt}, id, nil
			}),
		command(post, "/v1/members/{member_id}/activities/{activity_id}/void", "work", "Void an activity (it stays visible to auditors)", managers, false,
			func(c *call, r reasonRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				id := c.param("activity_id")
				return domain.VoidActivity{MemberID: m, ActivityID: id, Reason: r.Reason}, id, nil
			}),
		command(post, "/v1/members/{member_id}/sales/{sale_id}/reverse", "work", "Reverse a sale (it stays visible to auditors)", managers, false,
			func(c *call, r reasonRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				id := c.param("sale_id")
				return domain.ReverseSale{MemberID: m, SaleID: id, Reason: r.Reason}, id, nil
			}),

		// Evaluation (managers, for their subtree).
		command(post, "/v1/members/{member_id}/quality", "evaluation", "Assess a member's work quality (1–5) for a week or a day", managers, false,
			func(c *call, r qualityRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				return domain.AssessQuality{MemberID: m, Week: r.Week, Day: r.Day, Rating: r.Rating, AssessorID: c.self(), Comment: r.Comment}, m, nil
			}),
		command(post, "/v1/members/{member_id}/ratings", "evaluation", "Record a manager rating (1–5) for a month", managers, false,
			func(c *call, r ratingRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				return domain.RecordManagerRating{MemberID: m, Month: r.Month, Rating: r.Rating, RaterID: c.self(), Comment: r.Comment}, m, nil
			}),
		command(post, "/v1/members/{member_id}/evaluations/{month}/finalize", "evaluation",
			"Finalize a member's monthly evaluation: lock what the scorecard shows now", managers, true,
			func(c *call, r finalizeRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				month := c.param("month")
				per, err := domain.ParsePeriod(month)
				if err != nil || per.Kind != domain.PeriodMonth {
					return nil, "", errInvalid(fmt.Sprintf("month %q: want a month such as 2026-11", month))
				}
				cmd, err := c.s.finalizeCommand(c, m, per.String())
				if err != nil {
					return nil, "", err
				}
				return cmd, m, nil
			}),

		// Recognition and culture.
		command(post, "/v1/praise", "culture", "Praise a colleague", members, false,
			func(c *call, r praiseRequest) (domain.Command, string, error) {
				return domain.GivePraise{FromID: c.p.MemberID, ToID: r.ToID, Reason: r.Reason, LinkedEventID: r.LinkedEventID}, "", nil
			}),
		command(post, "/v1/achievements", "culture", "Publicize an achievement of a member or team", managers, false,
			func(c *call, r achievementRequest) (domain.Command, string, error) {
				switch r.SubjectKind {
				case domain.SubjectMember:
					if err := c.allowMember(r.SubjectID); err != nil {
						return nil, "", err
					}
				case domain.SubjectTeam:
					if err := c.allowTeam(r.SubjectID); err != nil {
						return nil, "", err
					}
				default:
					return nil, "", errInvalid(`subject_kind: want "member" or "team"`)
				}
				return domain.PublicizeAchievement{SubjectKind: r.SubjectKind, SubjectID: r.SubjectID, Headline: r.Headline,
					EvidenceEventIDs: r.EvidenceEventIDs, Audience: r.Audience, PublicizedBy: c.self()}, "", nil
			}),
		command(post, "/v1/meetings", "culture", "Record a team meeting (sales meeting, experience sharing, guidance, summary)", managers, false,
			func(c *call, r meetingRequest) (domain.Command, string, error) {
				if err := c.allowTeam(r.TeamID); err != nil {
					return nil, "", err
				}
				id := c.orNew(r.MeetingID, 0)
				chair := r.ChairID
				if chair == "" {
					chair = c.p.MemberID
				}
				return domain.HoldMeeting{MeetingID: id, TeamID: r.TeamID, Kind: r.Kind, ChairID: chair, AttendeeIDs: r.AttendeeIDs, HeldAt: r.HeldAt, Topics: r.Topics}, id, nil
			}),
		command(post, "/v1/suggestions", "culture", "Submit a suggestion", members, false,
			func(c *call, r suggestionRequest) (domain.Command, string, error) {
				id := c.orNew(r.SuggestionID, 0)
				return domain.SubmitSuggestion{SuggestionID: id, AuthorID: c.p.MemberID, Title: r.Title, Body: r.Body, Category: r.Category}, id, nil
			}),
		command(post, "/v1/suggestions/{suggestion_id}/review", "culture", "Adopt or reject a suggestion", managers, false,
			func(c *call, r reviewRequest) (domain.Command, string, error) {
				id := c.param("suggestion_id")
				return domain.ReviewSuggestion{SuggestionID: id, ReviewerID: c.self(), Decision: r.Decision, Rationale: r.Rationale}, id, nil
			}),

		// Promotions.
		command(post, "/v1/promotions", "promotions", "Nominate a member of your subtree for a higher role", managers, false,
			func(c *call, r nominateRequest) (domain.Command, string, error) {
				if err := c.allowOther(r.MemberID); err != nil {
					return nil, "", err
				}
				id := c.orNew(r.PromotionID, 0)
				return domain.NominatePromotion{PromotionID: id, MemberID: r.MemberID, ToRole: r.ToRole, NominatedBy: c.self(),
					Justification: r.Justification, ProposedEffectiveOn: r.ProposedEffectiveOn}, id, nil
			}),
		command(post, "/v1/promotions/{promotion_id}/approve", "promotions", "Approve a nomination (HR); an ineligible one needs exception_justification", hrOnly, false,
			func(c *call, r approveRequest) (domain.Command, string, error) {
				id := c.param("promotion_id")
				return domain.ApprovePromotion{PromotionID: id, ApproverID: c.self(), ApproverRole: domain.RoleHR,
					Comment: r.Comment, ExceptionJustification: r.ExceptionJustification}, id, nil
			}),
		command(post, "/v1/promotions/{promotion_id}/reject", "promotions", "Reject a nomination (HR)", hrOnly, true,
			func(c *call, r commentRequest) (domain.Command, string, error) {
				id := c.param("promotion_id")
				return domain.RejectPromotion{PromotionID: id, ApproverID: c.self(), ApproverRole: domain.RoleHR, Comment: r.Comment}, id, nil
			}),
		command(post, "/v1/promotions/{promotion_id}/effect", "promotions", "Effect an approved promotion on its effective date (HR)", hrOnly, true,
			func(c *call, r effectRequest) (domain.Command, string, error) {
				id := c.param("promotion_id")
				return domain.EffectPromotion{PromotionID: id, EffectiveOn: r.EffectiveOn}, id, nil
			}),
		command(post, "/v1/promotions/{promotion_id}/rescind", "promotions", "Rescind an approved promotion (HR)", hrOnly, false,
			func(c *call, r reasonRequest) (domain.Command, string, error) {
				id := c.param("promotion_id")
				return domain.RescindPromotion{PromotionID: id, Reason: r.Reason, ApprovedBy: c.self(), ApproverRole: domain.RoleHR}, id, nil
			}),

		// Rewards (managers, for their subtree).
		command(post, "/v1/members/{member_id}/rewards", "rewards", "Grant a reward (praise, badge, spot award …)", managers, false,
			func(c *call, r grantRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				id := c.orNew(r.RewardID, 0)
				return domain.GrantReward{RewardID: id, MemberID: m, Kind: r.Kind, AmountMinor: r.AmountMinor, Currency: r.Currency,
					Reason: r.Reason, Basis: r.Basis, GrantedBy: c.self()}, id, nil
			}),
		command(post, "/v1/members/{member_id}/rewards/{reward_id}/revoke", "rewards", "Revoke a reward, all or part (correction or clawback)", managers, false,
			func(c *call, r revokeRequest) (domain.Command, string, error) {
				m := c.param("member_id")
				if err := c.allowOther(m); err != nil {
					return nil, "", err
				}
				id := c.param("reward_id")
				return domain.RevokeReward{MemberID: m, RewardID: id, Reason: r.Reason, AmountMinor: r.AmountMinor, Note: r.Note}, id, nil
			}),
	}
}
