package domain

import (
	"fmt"
	"time"
)

// Payload is the data of one event. Every event struct below implements it;
// EventType returns the event's CURRENT stored name with its version (for
// example "ActivityLogged.v1"), an explicit constant that never follows the
// Go type name. Older stored versions are turned into the current struct by
// the upcasters of upcast.go when decoded.
//
// Conventions of every payload:
//   - JSON field names are snake_case, as in DOMAIN.md §2.
//   - Money is AmountMinor (int64, minor units such as cents) with an ISO 4217
//     Currency; scores, weights, caps and rates are Fixed (exact decimals,
//     encoded as strings); binary floats are never stored.
//   - Instants (occurred_at, held_at) are time.Time in UTC (RFC 3339 in JSON).
//   - Pure dates (joined_on, left_on, effective_on, birthday …) are strings
//     "YYYY-MM-DD" (see ParseDate).
//   - Periods are canonical Period strings: "2026-W47", "2026-11", "2026-Q4",
//     "2026".
//
// DecodePayload always returns a POINTER to the struct (*ActivityLogged …),
// so consumers type-switch on pointer types. EncodePayload accepts either.
type Payload interface {
	EventType() string
}

// Stored names of the current version of every event. Consumers that match
// on names (filters, golden files) should use these constants.
const (
	TypeTeamFormed                    = "TeamFormed.v1"
	TypeMemberJoined                  = "MemberJoined.v1"
	TypeMemberTransferred             = "MemberTransferred.v1"
	TypeMemberLeft                    = "MemberLeft.v1"
	TypeMemberProfileRecorded         = "MemberProfileRecorded.v1"
	TypeMemberForgotten               = "MemberForgotten.v1"
	TypeRoleLadderDefined             = "RoleLadderDefined.v1"
	TypeScoringRulesPublished         = "ScoringRulesPublished.v1"
	TypeTargetSet                     = "TargetSet.v1"
	TypeTargetRevised                 = "TargetRevised.v1"
	TypeActivityLogged                = "ActivityLogged.v1"
	TypeSaleClosed                    = "SaleClosed.v2"
	TypeActivityVoided                = "ActivityVoided.v1"
	TypeSaleReversed                  = "SaleReversed.v1"
	TypeQualityAssessed               = "QualityAssessed.v1"
	TypeManagerRatingRecorded         = "ManagerRatingRecorded.v1"
	TypeEvaluationFinalized           = "EvaluationFinalized.v1"
	TypePraiseGiven                   = "PraiseGiven.v1"
	TypeAchievementPublicized         = "AchievementPublicized.v1"
	TypeMeetingHeld                   = "MeetingHeld.v1"
	TypeSuggestionSubmitted           = "SuggestionSubmitted.v1"
	TypeSuggestionReviewed            = "SuggestionReviewed.v1"
	TypePromotionNominated            = "PromotionNominated.v1"
	TypePromotionEligibilityEvaluated = "PromotionEligibilityEvaluated.v1"
	TypePromotionApproved             = "PromotionApproved.v1"
	TypePromotionRejected             = "PromotionRejected.v1"
	TypePromotionEffected             = "PromotionEffected.v1"
	TypePromotionRescinded            = "PromotionRescinded.v1"
	TypeRewardGranted                 = "RewardGranted.v1"
	TypeRewardRevoked                 = "RewardRevoked.v1"
)

// ---- Organisation and people ------------------------------------------------

// Departments of DOMAIN.md §1.
const (
	DepartmentSales      = "sales"
	DepartmentOperations = "operations"
	DepartmentCommercial = "commercial"
)

// TeamFormed: a team exists from now on. Stream: TeamStream(TeamID).
type TeamFormed struct {
	TeamID       string `json:"team_id"`
	Name         string `json:"name"`
	Department   string `json:"department"` // sales, operations or commercial
	Region       string `json:"region"`
	ParentTeamID string `json:"parent_team_id,omitempty"`
}

// MemberJoined: a person joins a team with a role of the ladder.
// Stream: MemberStream(MemberID).
type MemberJoined struct {
	MemberID    string `json:"member_id"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"` // a ladder role code, e.g. "salesperson"
	TeamID      string `json:"team_id"`
	JoinedOn    string `json:"joined_on"` // YYYY-MM-DD
}

// MemberTransferred: the member moves to another team from EffectiveOn.
// Stream: MemberStream(MemberID).
type MemberTransferred struct {
	MemberID    string `json:"member_id"`
	FromTeamID  string `json:"from_team_id"`
	ToTeamID    string `json:"to_team_id"`
	EffectiveOn string `json:"effective_on"` // YYYY-MM-DD
}

// MemberLeft: the member left the organisation. Stream: MemberStream(MemberID).
type MemberLeft struct {
	MemberID string `json:"member_id"`
	LeftOn   string `json:"left_on"` // YYYY-MM-DD
	Reason   string `json:"reason"`
}

// MemberProfileRecorded holds a member's personal data (Profile) encrypted
// with the member's AES-256-GCM key from the KeyStore: Ciphertext is the
// GCM output (with tag) of the JSON Profile, sealed with Nonce and the member
// id as additional data. Use SealProfile and OpenProfile; never read the
// bytes directly. Stream: MemberStream(MemberID).
type MemberProfileRecorded struct {
	MemberID   string `json:"member_id"`
	Alg        string `json:"alg"` // "AES-256-GCM"
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// MemberForgotten: the member asked to be forgotten; their key is destroyed
// so their personal data can never be read again (crypto-shredding).
// Stream: MemberStream(MemberID).
type MemberForgotten struct {
	MemberID    string `json:"member_id"`
	RequestedBy string `json:"requested_by"`
	Reason      string `json:"reason"`
}

// RoleLadderDefined replaces the role ladder, lowest role first.
// Stream: OrgStream().
type RoleLadderDefined struct {
	Roles []string `json:"roles"`
}

// ---- Plans and targets --------------------------------------------------------

// KPI directions.
const (
	DirectionHigher = "higher"
	DirectionLower  = "lower"
)

// KPIRule is one KPI of a rule set. WeeklyNorm is the salesperson's weekly
// norm (in units; for revenue, in major currency units, e.g. 20000.0000).
type KPIRule struct {
	KPI        string `json:"kpi"`
	Direction  string `json:"direction"` // higher or lower
	Weight     Fixed  `json:"weight"`
	Cap        Fixed  `json:"cap"`
	WeeklyNorm Fixed  `json:"weekly_norm,omitempty"`
}

// EvaluationWeights are the weights of the monthly evaluation components.
type EvaluationWeights struct {
	Objective Fixed `json:"objective"`
	Rollup    Fixed `json:"rollup"`
	Manager   Fixed `json:"manager"`
}

// Band is one evaluation band: a score ≥ Min earns it (bands listed from the
// highest Min down).
type Band struct {
	Min   Fixed  `json:"min"`
	Band  int    `json:"band"`  // 5 … 1
	Label string `json:"label"` // "outstanding" …
}

// ScoringRulesPublished publishes a new rule set (scoring formulas are
// versioned by it). Maps are optional refinements of the default rule set:
// role norm multipliers, activity points per kind, goal-bonus base per role
// (minor units of Currency). Stream: OrgStream().
type ScoringRulesPublished struct {
	Version             int               `json:"version"`
	KPIs                []KPIRule         `json:"kpis"`
	Alpha               Fixed             `json:"alpha"`
	EvaluationWeights   EvaluationWeights `json:"evaluation_weights"`
	Bands               []Band            `json:"bands"`
	Currency            string            `json:"currency"`
	RoleNormMultipliers map[string]Fixed  `json:"role_norm_multipliers,omitempty"`
	ActivityPoints      map[string]Fixed  `json:"activity_points,omitempty"`
	BonusBaseMinor      map[string]int64  `json:"bonus_base_minor,omitempty"`
	EffectiveFrom       string            `json:"effective_from"` // YYYY-MM-DD
}

// Target subjects.
const (
	SubjectMember = "member"
	SubjectTeam   = "team"
)

// TargetSet sets a target of a member or team for one KPI and period. Value
// is in the KPI's unit (revenue: major currency units, e.g. "80000.0000").
// Stream: TargetStream(TargetID).
type TargetSet struct {
	TargetID    string `json:"target_id"`
	SubjectKind string `json:"subject_kind"` // member or team
	SubjectID   string `json:"subject_id"`
	KPI         string `json:"kpi"`
	Period      string `json:"period"`
	Value       Fixed  `json:"value"`
}

// TargetRevised changes a target's value. Stream: TargetStream(TargetID).
type TargetRevised struct {
	TargetID   string `json:"target_id"`
	NewValue   Fixed  `json:"new_value"`
	Reason     string `json:"reason"`
	ApprovedBy string `json:"approved_by"`
}

// ---- Daily work ---------------------------------------------------------------

// Activity kinds of DOMAIN.md §2.
const (
	ActivityVisit          = "visit"
	ActivityCall           = "call"
	ActivityQuote          = "quote"
	ActivityDemo           = "demo"
	ActivityMarketResearch = "market_research"
	ActivityExpo           = "expo"
	ActivityEmailCampaign  = "email_campaign"
	ActivityReport         = "report"
	ActivityTraining       = "training"
	ActivityMeeting        = "meeting"
)

// ActivityKinds lists every activity kind.
var ActivityKinds = []string{ActivityVisit, ActivityCall, ActivityQuote, ActivityDemo,
	ActivityMarketResearch, ActivityExpo, ActivityEmailCampaign, ActivityReport,
	ActivityTraining, ActivityMeeting}

// ActivityLogged: a member did Quantity units of an activity at OccurredAt.
// Stream: MemberStream(MemberID).
type ActivityLogged struct {
	ActivityID string    `json:"activity_id"`
	MemberID   string    `json:"member_id"`
	Kind       string    `json:"kind"`
	Quantity   int64     `json:"quantity"`
	Customer   string    `json:"customer,omitempty"`
	Notes      string    `json:"notes,omitempty"`
	OccurredAt time.Time `json:"occurred_at"`
}

// SaleClosed: a member closed a sale of AmountMinor minor units of Currency.
// Stored version 2 (version 1 carried a float "amount"; see upcast.go).
// Stream: MemberStream(MemberID).
type SaleClosed struct {
	SaleID      string    `json:"sale_id"`
	MemberID    string    `json:"member_id"`
	Customer    string    `json:"customer"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	OccurredAt  time.Time `json:"occurred_at"`
}

// ActivityVoided: the activity stops counting from now on; the original stays.
// Stream: MemberStream(MemberID).
type ActivityVoided struct {
	ActivityID string `json:"activity_id"`
	MemberID   string `json:"member_id"`
	Reason     string `json:"reason"`
}

// SaleReversed: the sale stops counting from now on; the original stays.
// Stream: MemberStream(MemberID).
type SaleReversed struct {
	SaleID   string `json:"sale_id"`
	MemberID string `json:"member_id"`
	Reason   string `json:"reason"`
}

// ---- Evaluation ---------------------------------------------------------------

// QualityAssessed: a quality rating (1–5) of a member for an ISO week
// ("2026-W47") or a day ("2026-11-20"); exactly one of Week and Day is set.
// Stream: MemberStream(MemberID).
type QualityAssessed struct {
	MemberID   string `json:"member_id"`
	Week       string `json:"week,omitempty"`
	Day        string `json:"day,omitempty"`
	Rating     int    `json:"rating"`
	AssessorID string `json:"assessor_id"`
	Comment    string `json:"comment,omitempty"`
}

// ManagerRatingRecorded: a manager's rating (1–5) of a member for a month
// ("2026-11"). Stream: MemberStream(MemberID).
type ManagerRatingRecorded struct {
	MemberID string `json:"member_id"`
	Month    string `json:"month"`
	Rating   int    `json:"rating"`
	RaterID  string `json:"rater_id"`
	Comment  string `json:"comment,omitempty"`
}

// EvaluationComponents are the monthly components; a nil one was missing
// and was left out (weights renormalised).
type EvaluationComponents struct {
	Objective *Fixed `json:"objective,omitempty"`
	Rollup    *Fixed `json:"rollup,omitempty"`
	Manager   *Fixed `json:"manager,omitempty"`
}

// EvaluationFinalized locks a member's monthly evaluation: a snapshot of what
// the projection showed. Once per member and month.
// Stream: MemberStream(MemberID).
type EvaluationFinalized struct {
	MemberID     string               `json:"member_id"`
	Month        string               `json:"month"`
	Components   EvaluationComponents `json:"components"`
	Score        Fixed                `json:"score"`
	Band         int                  `json:"band"` // 1 … 5
	BandLabel    string               `json:"band_label,omitempty"`
	RulesVersion int                  `json:"rules_version"`
	InputsDigest string               `json:"inputs_digest"`
	FinalizedBy  string               `json:"finalized_by"`
}

// ---- Recognition and culture ------------------------------------------------

// PraiseGiven: one member praises another. Stream: MemberStream(ToID).
type PraiseGiven struct {
	FromID        string `json:"from_id"`
	ToID          string `json:"to_id"`
	Reason        string `json:"reason"`
	LinkedEventID string `json:"linked_event_id,omitempty"`
}

// Audiences of an achievement.
const (
	AudienceTeam    = "team"
	AudienceRegion  = "region"
	AudienceCompany = "company"
)

// AchievementPublicized: an achievement of a member or team is made public.
// Stream: MemberStream(SubjectID) for a member, TeamStream(SubjectID) for a team.
type AchievementPublicized struct {
	SubjectKind      string   `json:"subject_kind"` // member or team
	SubjectID        string   `json:"subject_id"`
	Headline         string   `json:"headline"`
	EvidenceEventIDs []string `json:"evidence_event_ids,omitempty"`
	Audience         string   `json:"audience"` // team, region or company
	PublicizedBy     string   `json:"publicized_by,omitempty"`
}

// Meeting kinds.
const (
	MeetingSales             = "sales_meeting"
	MeetingExperienceSharing = "experience_sharing"
	MeetingGuidance          = "guidance"
	MeetingSummary           = "summary"
)

// MeetingHeld: a team meeting where everyone may speak.
// Stream: TeamStream(TeamID).
type MeetingHeld struct {
	MeetingID   string    `json:"meeting_id"`
	TeamID      string    `json:"team_id"`
	Kind        string    `json:"kind"`
	ChairID     string    `json:"chair_id"`
	AttendeeIDs []string  `json:"attendee_ids"`
	HeldAt      time.Time `json:"held_at"`
	Topics      []string  `json:"topics,omitempty"`
}

// SuggestionSubmitted: a member submits a suggestion.
// Stream: SuggestionStream(SuggestionID).
type SuggestionSubmitted struct {
	SuggestionID string `json:"suggestion_id"`
	AuthorID     string `json:"author_id"`
	Title        string `json:"title"`
	Body         string `json:"body"`
	Category     string `json:"category,omitempty"`
}

// Suggestion review decisions.
const (
	DecisionAdopt  = "adopt"
	DecisionReject = "reject"
)

// SuggestionReviewed: a manager adopts or rejects a suggestion.
// Stream: SuggestionStream(SuggestionID).
type SuggestionReviewed struct {
	SuggestionID string `json:"suggestion_id"`
	ReviewerID   string `json:"reviewer_id"`
	Decision     string `json:"decision"` // adopt or reject
	Rationale    string `json:"rationale"`
}

// ---- Promotions ---------------------------------------------------------------

// PromotionNominated opens a promotion. Stream: PromotionStream(PromotionID).
type PromotionNominated struct {
	PromotionID         string `json:"promotion_id"`
	MemberID            string `json:"member_id"`
	FromRole            string `json:"from_role"`
	ToRole              string `json:"to_role"`
	NominatedBy         string `json:"nominated_by"`
	Justification       string `json:"justification"`
	ProposedEffectiveOn string `json:"proposed_effective_on"` // YYYY-MM-DD
}

// Criterion is one eligibility criterion as evaluated (DOMAIN.md §5).
type Criterion struct {
	Code     string `json:"code"` // E1 … E4
	Required string `json:"required"`
	Observed string `json:"observed"`
	Passed   bool   `json:"passed"`
}

// PromotionEligibilityEvaluated records the ledger's eligibility check.
// Stream: PromotionStream(PromotionID).
type PromotionEligibilityEvaluated struct {
	PromotionID  string      `json:"promotion_id"`
	MemberID     string      `json:"member_id"`
	RulesVersion int         `json:"rules_version"`
	Criteria     []Criterion `json:"criteria"`
	Eligible     bool        `json:"eligible"`
}

// PromotionApproved: HR approves. ExceptionJustification is set when the
// nomination was not eligible (the HR record flags it).
// Stream: PromotionStream(PromotionID).
type PromotionApproved struct {
	PromotionID            string `json:"promotion_id"`
	MemberID               string `json:"member_id"`
	ApproverID             string `json:"approver_id"`
	Comment                string `json:"comment,omitempty"`
	ExceptionJustification string `json:"exception_justification,omitempty"`
}

// PromotionRejected: HR rejects. Stream: PromotionStream(PromotionID).
type PromotionRejected struct {
	PromotionID string `json:"promotion_id"`
	MemberID    string `json:"member_id"`
	ApproverID  string `json:"approver_id"`
	Comment     string `json:"comment,omitempty"`
}

// PromotionEffected: the member's role changes from FromRole to ToRole from
// EffectiveOn. It is stored in the MEMBER's stream (MemberStream(MemberID)),
// because it changes what the member is.
type PromotionEffected struct {
	PromotionID string `json:"promotion_id"`
	MemberID    string `json:"member_id"`
	FromRole    string `json:"from_role"`
	ToRole      string `json:"to_role"`
	EffectiveOn string `json:"effective_on"` // YYYY-MM-DD
}

// PromotionRescinded: an approved promotion is withdrawn; if it was
// effected, the member's role returns to FromRole. Stored in the MEMBER's
// stream (MemberStream(MemberID)).
type PromotionRescinded struct {
	PromotionID string `json:"promotion_id"`
	MemberID    string `json:"member_id"`
	FromRole    string `json:"from_role"`
	ToRole      string `json:"to_role"`
	Reason      string `json:"reason"`
	ApprovedBy  string `json:"approved_by"`
}

// ---- Rewards ------------------------------------------------------------------

// Reward kinds.
const (
	RewardPraise          = "praise"
	RewardBadge           = "badge"
	RewardGoalBonus       = "goal_bonus"
	RewardSuggestionAward = "suggestion_award"
	RewardSpotAward       = "spot_award"
)

// RewardBasis says why a reward was granted: a rule id and its inputs, or
// the linked event.
type RewardBasis struct {
	RuleID        string            `json:"rule_id,omitempty"`
	Inputs        map[string]string `json:"inputs,omitempty"`
	LinkedEventID string            `json:"linked_event_id,omitempty"`
}

// RewardGranted: a reward to a member; praise and badges carry no money
// (AmountMinor 0, Currency ""). Stream: MemberStream(MemberID).
type RewardGranted struct {
	RewardID    string      `json:"reward_id"`
	MemberID    string      `json:"member_id"`
	Kind        string      `json:"kind"`
	AmountMinor int64       `json:"amount_minor,omitempty"`
	Currency    string      `json:"currency,omitempty"`
	Reason      string      `json:"reason"`
	Basis       RewardBasis `json:"basis"`
	GrantedBy   string      `json:"granted_by"`
}

// Revocation reasons.
const (
	RevokeCorrection = "correction"
	RevokeClawback   = "clawback"
)

// RewardRevoked revokes AmountMinor of a reward (all of it, or a clawback
// share); the original grant stays visible. Stream: MemberStream(MemberID).
type RewardRevoked struct {
	RewardID    string `json:"reward_id"`
	MemberID    string `json:"member_id"`
	Reason      string `json:"reason"` // correction or clawback
	AmountMinor int64  `json:"amount_minor,omitempty"`
	Currency    string `json:"currency,omitempty"`
	Note        string `json:"note,omitempty"`
	// RevocationID names this revocation (e.g. "clawback:<sale_id>"); a
	// reward is never revoked twice under one id. Optional: absent in
	// revocations recorded before it existed.
	RevocationID string `json:"revocation_id,omitempty"`
}

// ---- EventType ----------------------------------------------------------------

func (TeamFormed) EventType() string                    { return TypeTeamFormed }
func (MemberJoined) EventType() string                  { return TypeMemberJoined }
func (MemberTransferred) EventType() string             { return TypeMemberTransferred }
func (MemberLeft) EventType() string                    { return TypeMemberLeft }
func (MemberProfileRecorded) EventType() string         { return TypeMemberProfileRecorded }
func (MemberForgotten) EventType() string               { return TypeMemberForgotten }
func (RoleLadderDefined) EventType() string             { return TypeRoleLadderDefined }
func (ScoringRulesPublished) EventType() string         { return TypeScoringRulesPublished }
func (TargetSet) EventType() string                     { return TypeTargetSet }
func (TargetRevised) EventType() string                 { return TypeTargetRevised }
func (ActivityLogged) EventType() string                { return TypeActivityLogged }
func (SaleClosed) EventType() string                    { return TypeSaleClosed }
func (ActivityVoided) EventType() string                { return TypeActivityVoided }
func (SaleReversed) EventType() string                  { return TypeSaleReversed }
func (QualityAssessed) EventType() string               { return TypeQualityAssessed }
func (ManagerRatingRecorded) EventType() string         { return TypeManagerRatingRecorded }
func (EvaluationFinalized) EventType() string           { return TypeEvaluationFinalized }
func (PraiseGiven) EventType() string                   { return TypePraiseGiven }
func (AchievementPublicized) EventType() string         { return TypeAchievementPublicized }
func (MeetingHeld) EventType() string                   { return TypeMeetingHeld }
func (SuggestionSubmitted) EventType() string           { return TypeSuggestionSubmitted }
func (SuggestionReviewed) EventType() string            { return TypeSuggestionReviewed }
func (PromotionNominated) EventType() string            { return TypePromotionNominated }
func (PromotionEligibilityEvaluated) EventType() string { return TypePromotionEligibilityEvaluated }
func (PromotionApproved) EventType() string             { return TypePromotionApproved }
func (PromotionRejected) EventType() string             { return TypePromotionRejected }
func (PromotionEffected) EventType() string             { return TypePromotionEffected }
func (PromotionRescinded) EventType() string            { return TypePromotionRescinded }
func (RewardGranted) EventType() string                 { return TypeRewardGranted }
func (RewardRevoked) EventType() string                 { return TypeRewardRevoked }

// ---- Streams ------------------------------------------------------------------

// Stream names. Which event goes where:
//
//	MemberStream("m1") = "member-m1": MemberJoined, MemberTransferred,
//	    MemberLeft, MemberProfileRecorded, MemberForgotten, ActivityLogged,
//	    SaleClosed, ActivityVoided, SaleReversed, QualityAssessed,
//	    ManagerRatingRecorded, EvaluationFinalized, PraiseGiven (to_id),
//	    AchievementPublicized (member subject), PromotionEffected,
//	    PromotionRescinded, RewardGranted, RewardRevoked
//	TeamStream("t1") = "team-t1": TeamFormed, MeetingHeld,
//	    AchievementPublicized (team subject)
//	PromotionStream("p1") = "promotion-p1": PromotionNominated,
//	    PromotionEligibilityEvaluated, PromotionApproved, PromotionRejected
//	SuggestionStream("s1") = "suggestion-s1": SuggestionSubmitted,
//	    SuggestionReviewed
//	TargetStream("g1") = "target-g1": TargetSet, TargetRevised
//	OrgStream() = "org": RoleLadderDefined, ScoringRulesPublished
func MemberStream(id string) string { return "member-" + id }

// TeamStream is the stream of a team; see MemberStream.
func TeamStream(id string) string { return "team-" + id }

// PromotionStream is the stream of a promotion; see MemberStream.
func PromotionStream(id string) string { return "promotion-" + id }

// SuggestionStream is the stream of a suggestion; see MemberStream.
func SuggestionStream(id string) string { return "suggestion-" + id }

// TargetStream is the stream of a target; see MemberStream.
func TargetStream(id string) string { return "target-" + id }

// OrgStream is the organisation-wide stream (ladder, rule sets); see MemberStream.
func OrgStream() string { return "org" }

// DateLayout is the layout of pure dates ("2026-11-20").
const DateLayout = "2006-01-02"

// ParseDate reads a pure date "YYYY-MM-DD" as midnight UTC. The error
// wraps ErrInvalid.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrInvalid, s)
	}
	return t, nil
}
