package domain

import "time"

// Command is a request to change the ledger. Every command is a plain struct
// (below) handled by Service.Execute, which loads the state of the stream the
// command writes to plus the facts it needs from other streams, calls the
// command's pure Decide, and appends the events.
//
// Decide(state, facts) is pure: it reads the state of the command's own
// stream and the Facts the Service loaded (the time and snapshots of other
// streams), and returns the events to append or a domain error (ErrInvalid,
// ErrNotFound, ErrRuleViolated, ErrAlreadyExists, ErrForbidden). state is
// the concrete state of the command's stream kind (*MemberState,
// *TeamState, …); passing another kind is a programming error that returns
// an error.
//
// Commands cannot be implemented outside this package.
type Command interface {
	// CommandName is the command's name ("LogActivity"), for logs and metrics.
	CommandName() string
	// Decide is the command's pure decision function.
	Decide(state State, f Facts) ([]Payload, error)

	// refs lists what the Service must load from other streams.
	refs() refs
	// target returns the stream the command writes to.
	target(f Facts) (string, error)
}

// refs names the other streams a decision looks at.
type refs struct {
	org        bool
	members    []string
	teams      []string
	promotions []string
}

// ---- Organisation and people -------------------------------------------------

// FormTeam forms a team. ParentTeamID, if set, must name an existing team.
type FormTeam struct {
	TeamID       string `json:"team_id"`
	Name         string `json:"name"`
	Department   string `json:"department"`
	Region       string `json:"region"`
	ParentTeamID string `json:"parent_team_id,omitempty"`
}

// JoinMember adds a member to an existing team with a role of the ladder.
type JoinMember struct {
	MemberID    string `json:"member_id"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
	TeamID      string `json:"team_id"`
	JoinedOn    string `json:"joined_on"` // YYYY-MM-DD
}

// TransferMember moves an active member to another existing team.
type TransferMember struct {
	MemberID    string `json:"member_id"`
	ToTeamID    string `json:"to_team_id"`
	EffectiveOn string `json:"effective_on"` // YYYY-MM-DD
}

// RecordLeave records that a member left.
type RecordLeave struct {
	MemberID string `json:"member_id"`
	LeftOn   string `json:"left_on"` // YYYY-MM-DD
	Reason   string `json:"reason"`
}

// RecordProfile records a member's personal data; the Service encrypts it
// with the member's key (see SealProfile) before it is stored.
type RecordProfile struct {
	MemberID string  `json:"member_id"`
	Profile  Profile `json:"profile"`
}

// ForgetMember destroys a member's key (crypto-shredding). The Service
// destroys the key once the MemberForgotten event is stored.
type ForgetMember struct {
	MemberID    string `json:"member_id"`
	RequestedBy string `json:"requested_by"`
	Reason      string `json:"reason"`
}

// DefineRoleLadder replaces the role ladder (lowest first).
type DefineRoleLadder struct {
	Roles []string `json:"roles"`
}

// PublishScoringRules publishes a new rule set; Version must be greater than
// the current one (the default rule set is version 1).
type PublishScoringRules struct {
	Rules ScoringRulesPublished `json:"rules"`
}

// ---- Plans and targets ---------------------------------------------------------

// SetTarget sets a target for a member or a team, a KPI of the current rule
// set and a period.
type SetTarget struct {
	TargetID    string `json:"target_id"`
	SubjectKind string `json:"subject_kind"` // member or team
	SubjectID   string `json:"subject_id"`
	KPI         string `json:"kpi"`
	Period      string `json:"period"`
	Value       Fixed  `json:"value"`
}

// ReviseTarget changes an existing target's value.
type ReviseTarget struct {
	TargetID   string `json:"target_id"`
	NewValue   Fixed  `json:"new_value"`
	Reason     string `json:"reason"`
	ApprovedBy string `json:"approved_by"`
}

// ---- Daily work ----------------------------------------------------------------

// LogActivity logs an activity of an active member.
type LogActivity struct {
	ActivityID string    `json:"activity_id"`
	MemberID   string    `json:"member_id"`
	Kind       string    `json:"kind"`
	Quantity   int64     `json:"quantity"`
	Customer   string    `json:"customer,omitempty"`
	Notes      string    `json:"notes,omitempty"`
	OccurredAt time.Time `json:"occurred_at"` // zero: now
}

// CloseSale records a sale of an active member in the rule set's currency.
type CloseSale struct {
	SaleID      string    `json:"sale_id"`
	MemberID    string    `json:"member_id"`
	Customer    string    `json:"customer"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	OccurredAt  time.Time `json:"occurred_at"` // zero: now
}

// VoidActivity voids a logged activity that is not voided yet.
type VoidActivity struct {
	MemberID   string `json:"member_id"`
	ActivityID string `json:"activity_id"`
	Reason     string `json:"reason"`
}

// ReverseSale reverses a closed sale that is not reversed yet.
type ReverseSale struct {
	MemberID string `json:"member_id"`
	SaleID   string `json:"sale_id"`
	Reason   string `json:"reason"`
}

// ---- Evaluation ----------------------------------------------------------------

// AssessQuality rates a member's work quality (1–5) for an ISO week or a
// day: exactly one of Week ("2026-W47") and Day ("2026-11-20").
type AssessQuality struct {
	MemberID   string `json:"member_id"`
	Week       string `json:"week,omitempty"`
	Day        string `json:"day,omitempty"`
	Rating     int    `json:"rating"`
	AssessorID string `json:"assessor_id"`
	Comment    string `json:"comment,omitempty"`
}

// RecordManagerRating records a manager's rating (1–5) of a member for a
// month ("2026-11").
type RecordManagerRating struct {
	MemberID string `json:"member_id"`
	Month    string `json:"month"`
	Rating   int    `json:"rating"`
	RaterID  string `json:"rater_id"`
	Comment  string `json:"comment,omitempty"`
}

// FinalizeEvaluation locks a member's monthly evaluation as computed by the
// scoring of the read model. Once per member and month, after the month.
type FinalizeEvaluation struct {
	MemberID     string               `json:"member_id"`
	Month        string               `json:"month"`
	Components   EvaluationComponents `json:"components"`
	Score        Fixed                `json:"score"`
	Band         int                  `json:"band"`
	BandLabel    string               `json:"band_label,omitempty"`
	RulesVersion int                  `json:"rules_version"`
	InputsDigest string               `json:"inputs_digest"`
	FinalizedBy  string               `json:"finalized_by"`
}

// ---- Recognition and culture ---------------------------------------------------

// GivePraise: one active member praises another.
type GivePraise struct {
	FromID        string `json:"from_id"`
	ToID          string `json:"to_id"`
	Reason        string `json:"reason"`
	LinkedEventID string `json:"linked_event_id,omitempty"`
}

// PublicizeAchievement makes an achievement of a member or team public.
type PublicizeAchievement struct {
	SubjectKind      string   `json:"subject_kind"` // member or team
	SubjectID        string   `json:"subject_id"`
	Headline         string   `json:"headline"`
	EvidenceEventIDs []string `json:"evidence_event_ids,omitempty"`
	Audience         string   `json:"audience"`
	PublicizedBy     string   `json:"publicized_by,omitempty"`
}

// HoldMeeting records a team meeting; chair and attendees must be active
// members.
type HoldMeeting struct {
	MeetingID   string    `json:"meeting_id"`
	TeamID      string    `json:"team_id"`
	Kind        string    `json:"kind"`
	ChairID     string    `json:"chair_id"`
	AttendeeIDs []string  `json:"attendee_ids"`
	HeldAt      time.Time `json:"held_at"` // zero: now
	Topics      []string  `json:"topics,omitempty"`
}

// SubmitSuggestion: an active member submits a suggestion.
type SubmitSuggestion struct {
	SuggestionID string `json:"suggestion_id"`
	AuthorID     string `json:"author_id"`
	Title        string `json:"title"`
	Body         string `json:"body"`
	Category     string `json:"category,omitempty"`
}

// ReviewSuggestion adopts or rejects a suggestion, once; never by its author.
type ReviewSuggestion struct {
	SuggestionID string `json:"suggestion_id"`
	ReviewerID   string `json:"reviewer_id"`
	Decision     string `json:"decision"`
	Rationale    string `json:"rationale"`
}

// ---- Promotions ------------------------------------------------------------------

// RoleHR is the principal role that may approve, reject and rescind
// promotions (DOMAIN.md §5, §7). Promotion decisions carry the approver's
// role, set by the authenticating layer from the principal.
const RoleHR = "hr"

// NominatePromotion nominates an active member for a higher role. The
// nominator must be an active manager (sales supervisor or up) above the
// member on the ladder, and never the member.
type NominatePromotion struct {
	PromotionID         string `json:"promotion_id"`
	MemberID            string `json:"member_id"`
	ToRole              string `json:"to_role"`
	NominatedBy         string `json:"nominated_by"`
	Justification       string `json:"justification"`
	ProposedEffectiveOn string `json:"proposed_effective_on"` // YYYY-MM-DD
}

// RecordEligibility records the ledger's eligibility evaluation of an open
// nomination (issued by the eligibility policy). Eligible must be true
// exactly when there is at least one criterion and every one passed.
type RecordEligibility struct {
	PromotionID  string      `json:"promotion_id"`
	RulesVersion int         `json:"rules_version"`
	Criteria     []Criterion `json:"criteria"`
	Eligible     bool        `json:"eligible"`
}

// ApprovePromotion: HR approves an evaluated nomination. An ineligible one
// needs ExceptionJustification.
type ApprovePromotion struct {
	PromotionID            string `json:"promotion_id"`
	ApproverID             string `json:"approver_id"`
	ApproverRole           string `json:"approver_role"` // must be RoleHR
	Comment                string `json:"comment,omitempty"`
	ExceptionJustification string `json:"exception_justification,omitempty"`
}

// RejectPromotion: HR rejects a nomination.
type RejectPromotion struct {
	PromotionID  string `json:"promotion_id"`
	ApproverID   string `json:"approver_id"`
	ApproverRole string `json:"approver_role"` // must be RoleHR
	Comment      string `json:"comment,omitempty"`
}

// EffectPromotion changes the member's role on the effective date (empty:
// the proposed one), never before the approval and never recorded before the
// date itself.
type EffectPromotion struct {
	PromotionID string `json:"promotion_id"`
	EffectiveOn string `json:"effective_on,omitempty"` // YYYY-MM-DD
}

// RescindPromotion withdraws an approved promotion (HR only); an effected
// one returns the member to the former role.
type RescindPromotion struct {
	PromotionID  string `json:"promotion_id"`
	Reason       string `json:"reason"`
	ApprovedBy   string `json:"approved_by"`
	ApproverRole string `json:"approver_role"` // must be RoleHR
}

// ---- Rewards -----------------------------------------------------------------------

// GrantReward grants a reward to an active member. Money kinds (goal_bonus,
// suggestion_award, spot_award) need a positive amount in the rule set's
// currency; praise and badge carry none.
type GrantReward struct {
	RewardID    string      `json:"reward_id"`
	MemberID    string      `json:"member_id"`
	Kind        string      `json:"kind"`
	AmountMinor int64       `json:"amount_minor,omitempty"`
	Currency    string      `json:"currency,omitempty"`
	Reason      string      `json:"reason"`
	Basis       RewardBasis `json:"basis"`
	GrantedBy   string      `json:"granted_by"`
}

// RevokeReward revokes AmountMinor of a money reward (0: all that remains),
// or a non-money reward entirely.
type RevokeReward struct {
	MemberID    string `json:"member_id"`
	RewardID    string `json:"reward_id"`
	Reason      string `json:"reason"` // correction or clawback
	AmountMinor int64  `json:"amount_minor,omitempty"`
	Note        string `json:"note,omitempty"`
	// RevocationID, when set, makes the revocation happen at most once:
	// a second RevokeReward with the same id is refused (ErrAlreadyExists).
	// The clawback policy sets "clawback:<sale_id>".
	RevocationID string `json:"revocation_id,omitempty"`
}

// ---- names, refs and targets ------------------------------------------------------

func (FormTeam) CommandName() string             { return "FormTeam" }
func (JoinMember) CommandName() string           { return "JoinMember" }
func (TransferMember) CommandName() string       { return "TransferMember" }
func (RecordLeave) CommandName() string          { return "RecordLeave" }
func (RecordProfile) CommandName() string        { return "RecordProfile" }
func (ForgetMember) CommandName() string         { return "ForgetMember" }
func (DefineRoleLadder) CommandName() string     { return "DefineRoleLadder" }
func (PublishScoringRules) CommandName() string  { return "PublishScoringRules" }
func (SetTarget) CommandName() string            { return "SetTarget" }
func (ReviseTarget) CommandName() string         { return "ReviseTarget" }
func (LogActivity) CommandName() string          { return "LogActivity" }
func (CloseSale) CommandName() string            { return "CloseSale" }
func (VoidActivity) CommandName() string         { return "VoidActivity" }
func (ReverseSale) CommandName() string          { return "ReverseSale" }
func (AssessQuality) CommandName() string        { return "AssessQuality" }
func (RecordManagerRating) CommandName() string  { return "RecordManagerRating" }
func (FinalizeEvaluation) CommandName() string   { return "FinalizeEvaluation" }
func (GivePraise) CommandName() string           { return "GivePraise" }
func (PublicizeAchievement) CommandName() string { return "PublicizeAchievement" }
func (HoldMeeting) CommandName() string          { return "HoldMeeting" }
func (SubmitSuggestion) CommandName() string     { return "SubmitSuggestion" }
func (ReviewSuggestion) CommandName() string     { return "ReviewSuggestion" }
func (NominatePromotion) CommandName() string    { return "NominatePromotion" }
func (RecordEligibility) CommandName() string    { return "RecordEligibility" }
func (ApprovePromotion) CommandName() string     { return "ApprovePromotion" }
func (RejectPromotion) CommandName() string      { return "RejectPromotion" }
func (EffectPromotion) CommandName() string      { return "EffectPromotion" }
func (RescindPromotion) CommandName() string     { return "RescindPromotion" }
func (GrantReward) CommandName() string          { return "GrantReward" }
func (RevokeReward) CommandName() string         { return "RevokeReward" }

func (c FormTeam) refs() refs {
	if c.ParentTeamID != "" {
		return refs{teams: []string{c.ParentTeamID}}
	}
	return refs{}
}
func (c JoinMember) refs() refs          { return refs{org: true, teams: []string{c.TeamID}} }
func (c TransferMember) refs() refs      { return refs{teams: []string{c.ToTeamID}} }
func (RecordLeave) refs() refs           { return refs{} }
func (RecordProfile) refs() refs         { return refs{} }
func (ForgetMember) refs() refs          { return refs{} }
func (DefineRoleLadder) refs() refs      { return refs{} }
func (PublishScoringRules) refs() refs   { return refs{} }
func (ReviseTarget) refs() refs          { return refs{} }
func (LogActivity) refs() refs           { return refs{} }
func (CloseSale) refs() refs             { return refs{org: true} }
func (VoidActivity) refs() refs          { return refs{} }
func (ReverseSale) refs() refs           { return refs{} }
func (c AssessQuality) refs() refs       { return refs{members: []string{c.AssessorID}} }
func (c RecordManagerRating) refs() refs { return refs{members: []string{c.RaterID}} }
func (FinalizeEvaluation) refs() refs    { return refs{} }
func (c GivePraise) refs() refs          { return refs{members: []string{c.FromID}} }
func (PublicizeAchievement) refs() refs  { return refs{} }
func (c SubmitSuggestion) refs() refs    { return refs{members: []string{c.AuthorID}} }
func (c ReviewSuggestion) refs() refs    { return refs{members: []string{c.ReviewerID}} }
func (RecordEligibility) refs() refs     { return refs{} }
func (ApprovePromotion) refs() refs      { return refs{} }
func (RejectPromotion) refs() refs       { return refs{} }
func (c EffectPromotion) refs() refs     { return refs{promotions: []string{c.PromotionID}} }
func (c RescindPromotion) refs() refs    { return refs{promotions: []string{c.PromotionID}} }
func (GrantReward) refs() refs           { return refs{org: true} }
func (RevokeReward) refs() refs          { return refs{} }
func (c NominatePromotion) refs() refs {
	return refs{org: true, members: []string{c.MemberID, c.NominatedBy}}
}
func (c HoldMeeting) refs() refs { return refs{members: append([]string{c.ChairID}, c.AttendeeIDs...)} }
func (c SetTarget) refs() refs {
	switch c.SubjectKind {
	case SubjectMember:
		return refs{org: true, members: []string{c.SubjectID}}
	case SubjectTeam:
		return refs{org: true, teams: []string{c.SubjectID}}
	}
	return refs{org: true}
}

// requireID returns ErrInvalid unless id is a usable identifier.
func requireID(field, id string) error {
	if id == "" {
		return invalidf("%s is required", field)
	}
	if len(id) > 128 {
		return invalidf("%s is longer than 128 bytes", field)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f {
			return invalidf("%s %q must not contain spaces or control characters", field, id)
		}
	}
	return nil
}

func (c FormTeam) target(Facts) (string, error) {
	return TeamStream(c.TeamID), requireID("team_id", c.TeamID)
}
func (c JoinMember) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c TransferMember) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c RecordLeave) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c RecordProfile) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c ForgetMember) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (DefineRoleLadder) target(Facts) (string, error)    { return OrgStream(), nil }
func (PublishScoringRules) target(Facts) (string, error) { return OrgStream(), nil }
func (c SetTarget) target(Facts) (string, error) {
	return TargetStream(c.TargetID), requireID("target_id", c.TargetID)
}
func (c ReviseTarget) target(Facts) (string, error) {
	return TargetStream(c.TargetID), requireID("target_id", c.TargetID)
}
func (c LogActivity) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c CloseSale) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c VoidActivity) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c ReverseSale) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c AssessQuality) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c RecordManagerRating) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c FinalizeEvaluation) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c GivePraise) target(Facts) (string, error) {
	return MemberStream(c.ToID), requireID("to_id", c.ToID)
}
func (c PublicizeAchievement) target(Facts) (string, error) {
	if err := requireID("subject_id", c.SubjectID); err != nil {
		return "", err
	}
	switch c.SubjectKind {
	case SubjectMember:
		return MemberStream(c.SubjectID), nil
	case SubjectTeam:
		return TeamStream(c.SubjectID), nil
	}
	return "", invalidf("subject_kind %q: want member or team", c.SubjectKind)
}
func (c HoldMeeting) target(Facts) (string, error) {
	return TeamStream(c.TeamID), requireID("team_id", c.TeamID)
}
func (c SubmitSuggestion) target(Facts) (string, error) {
	return SuggestionStream(c.SuggestionID), requireID("suggestion_id", c.SuggestionID)
}
func (c ReviewSuggestion) target(Facts) (string, error) {
	return SuggestionStream(c.SuggestionID), requireID("suggestion_id", c.SuggestionID)
}
func (c NominatePromotion) target(Facts) (string, error) {
	return PromotionStream(c.PromotionID), requireID("promotion_id", c.PromotionID)
}
func (c RecordEligibility) target(Facts) (string, error) {
	return PromotionStream(c.PromotionID), requireID("promotion_id", c.PromotionID)
}
func (c ApprovePromotion) target(Facts) (string, error) {
	return PromotionStream(c.PromotionID), requireID("promotion_id", c.PromotionID)
}
func (c RejectPromotion) target(Facts) (string, error) {
	return PromotionStream(c.PromotionID), requireID("promotion_id", c.PromotionID)
}

// promotionMemberStream is the member stream of a nominated promotion.
func promotionMemberStream(f Facts, id string) (string, error) {
	if err := requireID("promotion_id", id); err != nil {
		return "", err
	}
	p, ok := f.Promotions[id]
	if !ok || !p.Nominated {
		return "", notFoundf("promotion %q does not exist", id)
	}
	return MemberStream(p.MemberID), nil
}

func (c EffectPromotion) target(f Facts) (string, error) {
	return promotionMemberStream(f, c.PromotionID)
}
func (c RescindPromotion) target(f Facts) (string, error) {
	return promotionMemberStream(f, c.PromotionID)
}
func (c GrantReward) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}
func (c RevokeReward) target(Facts) (string, error) {
	return MemberStream(c.MemberID), requireID("member_id", c.MemberID)
}

// Compile-time checks that every command implements Command.
var (
	_ Command = FormTeam{}
	_ Command = JoinMember{}
	_ Command = TransferMember{}
	_ Command = RecordLeave{}
	_ Command = RecordProfile{}
	_ Command = ForgetMember{}
	_ Command = DefineRoleLadder{}
	_ Command = PublishScoringRules{}
	_ Command = SetTarget{}
	_ Command = ReviseTarget{}
	_ Command = LogActivity{}
	_ Command = CloseSale{}
	_ Command = VoidActivity{}
	_ Command = ReverseSale{}
	_ Command = AssessQuality{}
	_ Command = RecordManagerRating{}
	_ Command = FinalizeEvaluation{}
	_ Command = GivePraise{}
	_ Command = PublicizeAchievement{}
	_ Command = HoldMeeting{}
	_ Command = SubmitSuggestion{}
	_ Command = ReviewSuggestion{}
	_ Command = NominatePromotion{}
	_ Command = RecordEligibility{}
	_ Command = ApprovePromotion{}
	_ Command = RejectPromotion{}
	_ Command = EffectPromotion{}
	_ Command = RescindPromotion{}
	_ Command = GrantReward{}
	_ Command = RevokeReward{}
)
