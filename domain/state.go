package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"time"
)

// State is the decided state of one stream: what decisions need to know,
// folded from the stream's events in revision order. Apply must accept every
// event type of its stream and ignore others; it never fails (a replay never
// breaks). occurredAt is the event envelope's OccurredAt.
type State interface {
	Apply(p Payload, occurredAt time.Time)
}

// NewState returns the empty state of the stream's kind, by its name prefix
// (see MemberStream): *MemberState, *TeamState, *PromotionState,
// *SuggestionState, *TargetState or *OrgState. It returns nil for a stream
// name of no known kind.
func NewState(stream string) State {
	switch {
	case stream == OrgStream():
		return NewOrgState()
	case strings.HasPrefix(stream, "member-"):
		return NewMemberState()
	case strings.HasPrefix(stream, "team-"):
		return &TeamState{Meetings: map[string]bool{}}
	case strings.HasPrefix(stream, "promotion-"):
		return &PromotionState{}
	case strings.HasPrefix(stream, "suggestion-"):
		return &SuggestionState{}
	case strings.HasPrefix(stream, "target-"):
		return &TargetState{}
	}
	return nil
}

// ---- member ----------------------------------------------------------------------

// Promotion statuses as seen from the member's stream.
const (
	PromotionStatusEffected  = "effected"
	PromotionStatusRescinded = "rescinded"
)

// RewardState is what a member's stream knows of one reward.
type RewardState struct {
	Kind         string
	AmountMinor  int64
	Currency     string
	RevokedMinor int64
	Revoked      bool // a non-money reward revoked, or a money one fully revoked
	// Revocations holds the revocation ids already applied, so that a
	// redelivered clawback can never revoke twice.
	Revocations map[string]bool
}

// MemberState is the state of a member stream.
type MemberState struct {
	MemberID        string
	Joined          bool
	Left            bool
	Forgotten       bool
	ProfileRecorded bool
	DisplayName     string
	Role            string
	RoleSince       string // YYYY-MM-DD: joined_on or the last promotion's effective_on
	TeamID          string
	JoinedOn        string
	LeftOn          string
	Activities      IDSet           // activity ids → voided
	Sales           IDSet           // sale ids → reversed
	Finalized       map[string]bool // month ("2026-11") → finalized
	Rewards         map[string]RewardState
	Promotions      map[string]string // promotion id → PromotionStatus*
}

// NewMemberState returns the state of a member stream with no event.
func NewMemberState() *MemberState {
	return &MemberState{
		Activities: IDSet{},
		Sales:      IDSet{},
		Finalized:  map[string]bool{},
		Rewards:    map[string]RewardState{},
		Promotions: map[string]string{},
	}
}

// Active reports whether the member has joined and not left.
func (s *MemberState) Active() bool { return s.Joined && !s.Left }

// Apply folds one event of the member's stream.
func (s *MemberState) Apply(p Payload, _ time.Time) {
	switch e := p.(type) {
	case *MemberJoined:
		s.MemberID, s.Joined = e.MemberID, true
		s.DisplayName, s.Role, s.TeamID = e.DisplayName, e.Role, e.TeamID
		s.JoinedOn, s.RoleSince = e.JoinedOn, e.JoinedOn
	case *MemberTransferred:
		s.TeamID = e.ToTeamID
	case *MemberLeft:
		s.Left, s.LeftOn = true, e.LeftOn
	case *MemberProfileRecorded:
		s.ProfileRecorded = true
	case *MemberForgotten:
		s.Forgotten = true
	case *ActivityLogged:
		s.Activities.Set(e.ActivityID, false)
	case *ActivityVoided:
		s.Activities.Set(e.ActivityID, true)
	case *SaleClosed:
		s.Sales.Set(e.SaleID, false)
	case *SaleReversed:
		s.Sales.Set(e.SaleID, true)
	case *EvaluationFinalized:
		s.Finalized[e.Month] = true
	case *RewardGranted:
		s.Rewards[e.RewardID] = RewardState{Kind: e.Kind, AmountMinor: e.AmountMinor, Currency: e.Currency}
	case *RewardRevoked:
		r := s.Rewards[e.RewardID]
		r.RevokedMinor += e.AmountMinor
		r.Revoked = r.AmountMinor == 0 || r.RevokedMinor >= r.AmountMinor
		if e.RevocationID != "" {
			r.Revocations = maps.Clone(r.Revocations)
			if r.Revocations == nil {
				r.Revocations = map[string]bool{}
			}
			r.Revocations[e.RevocationID] = true
		}
		s.Rewards[e.RewardID] = r
	case *PromotionEffected:
		s.Promotions[e.PromotionID] = PromotionStatusEffected
		s.Role, s.RoleSince = e.ToRole, e.EffectiveOn
	case *PromotionRescinded:
		if s.Promotions[e.PromotionID] == PromotionStatusEffected && s.Role == e.ToRole {
			s.Role = e.FromRole
		}
		s.Promotions[e.PromotionID] = PromotionStatusRescinded
	}
}

// Facts returns the snapshot other streams' decisions may use.
func (s *MemberState) Facts() MemberFacts {
	return MemberFacts{Joined: s.Joined, Left: s.Left, Forgotten: s.Forgotten, Role: s.Role,
		RoleSince: s.RoleSince, TeamID: s.TeamID, JoinedOn: s.JoinedOn, LeftOn: s.LeftOn}
}

// ---- team ------------------------------------------------------------------------

// TeamState is the state of a team stream.
type TeamState struct {
	TeamID       string
	Formed       bool
	Name         string
	Department   string
	Region       string
	ParentTeamID string
	Meetings     map[string]bool // meeting ids held
}

// Apply folds one event of the team's stream.
func (s *TeamState) Apply(p Payload, _ time.Time) {
	switch e := p.(type) {
	case *TeamFormed:
		s.TeamID, s.Formed, s.Name = e.TeamID, true, e.Name
		s.Department, s.Region, s.ParentTeamID = e.Department, e.Region, e.ParentTeamID
	case *MeetingHeld:
		s.Meetings[e.MeetingID] = true
	}
}

// Facts returns the snapshot other streams' decisions may use.
func (s *TeamState) Facts() TeamFacts {
	return TeamFacts{Formed: s.Formed, Name: s.Name, Department: s.Department, Region: s.Region, ParentTeamID: s.ParentTeamID}
}

// ---- organisation ----------------------------------------------------------------

// DefaultLadder is the role ladder of DOMAIN.md §1, lowest first, in force
// until a RoleLadderDefined replaces it.
func DefaultLadder() []string {
	return []string{"sales_assistant", "customer_service", "salesperson", "sales_supervisor",
		"regional_director", "sales_director", "sales_manager", "general_manager"}
}

// ManagerRole is the lowest role that counts as a manager (DOMAIN.md §7).
const ManagerRole = "sales_supervisor"

// DefaultScoringRules is rule set v1 of DOMAIN.md §3 in its stored form, in
// force until a ScoringRulesPublished replaces it. (The formulas live in
// domain/scoring; the domain only needs the version, the KPI names and the
// reporting currency.)
func DefaultScoringRules() ScoringRulesPublished {
	f := func(s string) Fixed { v, _ := ParseFixed(s); return v }
	return ScoringRulesPublished{
		Version: 1,
		KPIs: []KPIRule{
			{KPI: "visits", Direction: DirectionHigher, Weight: f("0.2"), Cap: f("1.5"), WeeklyNorm: f("15")},
			{KPI: "calls", Direction: DirectionHigher, Weight: f("0.1"), Cap: f("1.5"), WeeklyNorm: f("60")},
			{KPI: "quotes", Direction: DirectionHigher, Weight: f("0.2"), Cap: f("1.5"), WeeklyNorm: f("5")},
			{KPI: "revenue", Direction: DirectionHigher, Weight: f("0.5"), Cap: f("1.5"), WeeklyNorm: f("20000")},
		},
		Alpha:             f("0.7"),
		EvaluationWeights: EvaluationWeights{Objective: f("0.5"), Rollup: f("0.4"), Manager: f("0.1")},
		Bands: []Band{
			{Min: f("120"), Band: 5, Label: "outstanding"},
			{Min: f("105"), Band: 4, Label: "exceeds"},
			{Min: f("90"), Band: 3, Label: "meets"},
			{Min: f("75"), Band: 2, Label: "partially meets"},
			{Min: 0, Band: 1, Label: "below"},
		},
		Currency:      "EUR",
		EffectiveFrom: "1970-01-01",
	}
}

// OrgState is the state of the organisation stream: the ladder and the rule
// set in force. Its slices are replaced, never modified in place, so a copy
// of the struct is a safe snapshot.
type OrgState struct {
	Roles []string
	Rules ScoringRulesPublished
}

// NewOrgState returns the organisation before any event: the default ladder
// and rule set v1.
func NewOrgState() *OrgState {
	return &OrgState{Roles: DefaultLadder(), Rules: DefaultScoringRules()}
}

// Apply folds one event of the organisation stream.
func (s *OrgState) Apply(p Payload, _ time.Time) {
	switch e := p.(type) {
	case *RoleLadderDefined:
		s.Roles = slices.Clone(e.Roles)
	case *ScoringRulesPublished:
		s.Rules = *e
		s.Rules.KPIs = slices.Clone(e.KPIs)
		s.Rules.Bands = slices.Clone(e.Bands)
	}
}

// Rank returns the role's index on the ladder (0 lowest), or -1.
func (s OrgState) Rank(role string) int { return slices.Index(s.Roles, role) }

// HasKPI reports whether the rule set in force has the KPI.
func (s OrgState) HasKPI(kpi string) bool {
	return slices.ContainsFunc(s.Rules.KPIs, func(k KPIRule) bool { return k.KPI == kpi })
}

// ---- promotion -------------------------------------------------------------------

// Promotion decisions.
const (
	PromotionStatusOpen     = "nominated"
	PromotionStatusApproved = "approved"
	PromotionStatusRejected = "rejected"
)

// PromotionState is the state of a promotion stream. (Effecting and
// rescinding are recorded in the member's stream.)
type PromotionState struct {
	PromotionID         string
	Nominated           bool
	MemberID            string
	FromRole            string
	ToRole              string
	NominatedBy         string
	ProposedEffectiveOn string
	Evaluated           bool
	Eligible            bool
	Status              string // PromotionStatusOpen, …Approved or …Rejected
	ApproverID          string
	DecidedOn           string // YYYY-MM-DD (UTC) of the approval or rejection
	Exception           bool   // approved despite ineligibility
}

// Apply folds one event of the promotion's stream.
func (s *PromotionState) Apply(p Payload, at time.Time) {
	switch e := p.(type) {
	case *PromotionNominated:
		s.PromotionID, s.Nominated, s.Status = e.PromotionID, true, PromotionStatusOpen
		s.MemberID, s.FromRole, s.ToRole = e.MemberID, e.FromRole, e.ToRole
		s.NominatedBy, s.ProposedEffectiveOn = e.NominatedBy, e.ProposedEffectiveOn
	case *PromotionEligibilityEvaluated:
		s.Evaluated, s.Eligible = true, e.Eligible
	case *PromotionApproved:
		s.Status, s.ApproverID = PromotionStatusApproved, e.ApproverID
		s.DecidedOn = at.UTC().Format(DateLayout)
		s.Exception = e.ExceptionJustification != ""
	case *PromotionRejected:
		s.Status, s.ApproverID = PromotionStatusRejected, e.ApproverID
		s.DecidedOn = at.UTC().Format(DateLayout)
	}
}

// ---- suggestion and target --------------------------------------------------------

// SuggestionState is the state of a suggestion stream.
type SuggestionState struct {
	SuggestionID string
	Submitted    bool
	AuthorID     string
	Reviewed     bool
	Decision     string
	ReviewerID   string
}

// Apply folds one event of the suggestion's stream.
func (s *SuggestionState) Apply(p Payload, _ time.Time) {
	switch e := p.(type) {
	case *SuggestionSubmitted:
		s.SuggestionID, s.Submitted, s.AuthorID = e.SuggestionID, true, e.AuthorID
	case *SuggestionReviewed:
		s.Reviewed, s.Decision, s.ReviewerID = true, e.Decision, e.ReviewerID
	}
}

// TargetState is the state of a target stream.
type TargetState struct {
	TargetID    string
	Set         bool
	SubjectKind string
	SubjectID   string
	KPI         string
	Period      string
	Value       Fixed
	Revisions   int
}

// Apply folds one event of the target's stream.
func (s *TargetState) Apply(p Payload, _ time.Time) {
	switch e := p.(type) {
	case *TargetSet:
		s.TargetID, s.Set, s.SubjectKind, s.SubjectID = e.TargetID, true, e.SubjectKind, e.SubjectID
		s.KPI, s.Period, s.Value = e.KPI, e.Period, e.Value
	case *TargetRevised:
		s.Value = e.NewValue
		s.Revisions++
	}
}

// ---- facts -------------------------------------------------------------------------

// MemberFacts is a snapshot of a member stream for other streams' decisions.
type MemberFacts struct {
	Joined, Left, Forgotten bool
	Role, RoleSince         string
	TeamID                  string
	JoinedOn, LeftOn        string
}

// TeamFacts is a snapshot of a team stream for other streams' decisions.
type TeamFacts struct {
	Formed                                 bool
	Name, Department, Region, ParentTeamID string
}

// Facts is what a decision may know besides its own stream: the time, and
// snapshots of the other streams its command names (loaded by the Service).
// A missing map entry means the stream was not loaded or has no event.
type Facts struct {
	Now        time.Time
	Org        OrgState
	Members    map[string]MemberFacts
	Teams      map[string]TeamFacts
	Promotions map[string]PromotionState
}

// activeMember returns the facts of an active member, or ErrNotFound /
// ErrRuleViolated saying why not. role names the member in messages.
func (f Facts) activeMember(role, id string) (MemberFacts, error) {
	if err := requireID(role, id); err != nil {
		return MemberFacts{}, err
	}
	m, ok := f.Members[id]
	if !ok || !m.Joined {
		return m, notFoundf("%s %q is not a member (never joined)", role, id)
	}
	if m.Left {
		return m, violatedf("%s %q left on %s", role, id, m.LeftOn)
	}
	return m, nil
}

// Compile-time checks.
var (
	_ State = (*MemberState)(nil)
	_ State = (*TeamState)(nil)
	_ State = (*OrgState)(nil)
	_ State = (*PromotionState)(nil)
	_ State = (*SuggestionState)(nil)
	_ State = (*TargetState)(nil)
)

// IDSet maps ids (of a member's activities or sales) to a flag (voided,
// reversed). A member's stream can hold tens of thousands of ids and the
// service keeps the states of the streams in use, so an id is kept as the
// first 64 bits of its SHA-256, in a sorted slice (8 bytes an id; a map took
// about 28), with the ids added since the last merge in a small map. Flags
// are rare and kept apart. Two ids of one set share a digest with a
// probability of about n²/2⁶⁵ (3·10⁻¹⁰ for 100,000 ids); the second would
// then be refused as a duplicate, never counted twice. The zero IDSet is
// empty and ready to use.
type IDSet struct {
	sorted  []uint64            // ascending
	recent  map[uint64]struct{} // added since the last merge into sorted
	flagged map[uint64]struct{} // ids whose flag is true
}

// idMergeAt is how many recent ids an IDSet holds before merging them into
// its sorted slice.
const idMergeAt = 256

func keyOf(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(sum[:8])
}

// Get returns the flag of id and whether id is in the set.
func (s *IDSet) Get(id string) (flag, ok bool) {
	k := keyOf(id)
	if !s.has(k) {
		return false, false
	}
	_, flag = s.flagged[k]
	return flag, true
}

func (s *IDSet) has(k uint64) bool {
	if _, ok := s.recent[k]; ok {
		return true
	}
	_, ok := slices.BinarySearch(s.sorted, k)
	return ok
}

// Set adds id with its flag, or changes its flag.
func (s *IDSet) Set(id string, flag bool) {
	k := keyOf(id)
	if !s.has(k) {
		if s.recent == nil {
			s.recent = map[uint64]struct{}{}
		}
		s.recent[k] = struct{}{}
		if len(s.recent) >= idMergeAt {
			s.merge()
		}
	}
	switch {
	case flag && s.flagged == nil:
		s.flagged = map[uint64]struct{}{k: {}}
	case flag:
		s.flagged[k] = struct{}{}
	default:
		delete(s.flagged, k)
	}
}

// Len returns the number of ids in the set.
func (s *IDSet) Len() int { return len(s.sorted) + len(s.recent) }

// merge moves the recent ids into the sorted slice, in a new array of the
// exact size.
func (s *IDSet) merge() {
	add := make([]uint64, 0, len(s.recent))
	for k := range s.recent {
		add = append(add, k)
	}
	slices.Sort(add)
	out := make([]uint64, 0, len(s.sorted)+len(add))
	i, j := 0, 0
	for i < len(s.sorted) && j < len(add) {
		if s.sorted[i] < add[j] {
			out = append(out, s.sorted[i])
			i++
		} else {
			out = append(out, add[j])
			j++
		}
	}
	out = append(append(out, s.sorted[i:]...), add[j:]...)
	s.sorted = out
	clear(s.recent)
}

// Equal reports whether two sets hold the same ids with the same flags,
// however their ids are split between the sorted slice and the recent ones
// (go-cmp uses it to compare states).
func (s IDSet) Equal(o IDSet) bool {
	if s.Len() != o.Len() || len(s.flagged) != len(o.flagged) {
		return false
	}
	for k := range s.flagged {
		if _, ok := o.flagged[k]; !ok {
			return false
		}
	}
	for _, k := range s.sorted {
		if !o.has(k) {
			return false
		}
	}
	for k := range s.recent {
		if !o.has(k) {
			return false
		}
	}
	return true
}
