package domain

import (
	"slices"
	"time"
)

// Decide forms the team.
func (c FormTeam) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*TeamState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := requireID("team_id", c.TeamID); err != nil {
		return nil, err
	}
	if s.Formed {
		return nil, existsf("team %q was already formed", c.TeamID)
	}
	if err := requireText("name", c.Name, maxName); err != nil {
		return nil, err
	}
	switch c.Department {
	case DepartmentSales, DepartmentOperations, DepartmentCommercial:
	default:
		return nil, invalidf("department %q: want sales, operations or commercial", c.Department)
	}
	if err := requireText("region", c.Region, maxName); err != nil {
		return nil, err
	}
	if c.ParentTeamID != "" {
		if c.ParentTeamID == c.TeamID {
			return nil, violatedf("team %q cannot be its own parent", c.TeamID)
		}
		if !f.Teams[c.ParentTeamID].Formed {
			return nil, notFoundf("parent team %q does not exist", c.ParentTeamID)
		}
	}
	return []Payload{&TeamFormed{TeamID: c.TeamID, Name: c.Name, Department: c.Department,
		Region: c.Region, ParentTeamID: c.ParentTeamID}}, nil
}

// Decide admits the member.
func (c JoinMember) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := requireID("member_id", c.MemberID); err != nil {
		return nil, err
	}
	if s.Joined {
		return nil, existsf("member %q already joined on %s", c.MemberID, s.JoinedOn)
	}
	if err := requireText("display_name", c.DisplayName, maxName); err != nil {
		return nil, err
	}
	if f.Org.Rank(c.Role) < 0 {
		return nil, invalidf("role %q is not on the ladder %v", c.Role, f.Org.Roles)
	}
	if err := requireID("team_id", c.TeamID); err != nil {
		return nil, err
	}
	if !f.Teams[c.TeamID].Formed {
		return nil, notFoundf("team %q does not exist", c.TeamID)
	}
	if _, err := requireDate("joined_on", c.JoinedOn); err != nil {
		return nil, err
	}
	return []Payload{&MemberJoined{MemberID: c.MemberID, DisplayName: c.DisplayName, Role: c.Role,
		TeamID: c.TeamID, JoinedOn: c.JoinedOn}}, nil
}

// Decide moves the member to another team.
func (c TransferMember) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if err := requireID("to_team_id", c.ToTeamID); err != nil {
		return nil, err
	}
	if !f.Teams[c.ToTeamID].Formed {
		return nil, notFoundf("team %q does not exist", c.ToTeamID)
	}
	if c.ToTeamID == s.TeamID {
		return nil, violatedf("member %q is already in team %q", c.MemberID, c.ToTeamID)
	}
	if _, err := requireDate("effective_on", c.EffectiveOn); err != nil {
		return nil, err
	}
	if c.EffectiveOn < s.JoinedOn {
		return nil, violatedf("effective_on %s is before the member joined (%s)", c.EffectiveOn, s.JoinedOn)
	}
	return []Payload{&MemberTransferred{MemberID: c.MemberID, FromTeamID: s.TeamID, ToTeamID: c.ToTeamID,
		EffectiveOn: c.EffectiveOn}}, nil
}

// Decide records the leave.
func (c RecordLeave) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if s.Joined && s.Left {
		return nil, existsf("member %q already left on %s", c.MemberID, s.LeftOn)
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if _, err := requireDate("left_on", c.LeftOn); err != nil {
		return nil, err
	}
	if c.LeftOn < s.JoinedOn {
		return nil, violatedf("left_on %s is before the member joined (%s)", c.LeftOn, s.JoinedOn)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	return []Payload{&MemberLeft{MemberID: c.MemberID, LeftOn: c.LeftOn, Reason: c.Reason}}, nil
}

// Decide validates the profile; the returned event holds no ciphertext yet:
// the Service seals the profile with the member's key (SealProfile).
func (c RecordProfile) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if s.Forgotten {
		return nil, violatedf("member %q was forgotten; no personal data may be recorded", c.MemberID)
	}
	if err := c.Profile.Validate(); err != nil {
		return nil, err
	}
	return []Payload{&MemberProfileRecorded{MemberID: c.MemberID, Alg: ProfileAlg}}, nil
}

// Decide forgets the member (the Service then destroys the key).
func (c ForgetMember) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := joinedSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if s.Forgotten {
		return nil, existsf("member %q was already forgotten", c.MemberID)
	}
	if err := requireID("requested_by", c.RequestedBy); err != nil {
		return nil, err
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	return []Payload{&MemberForgotten{MemberID: c.MemberID, RequestedBy: c.RequestedBy, Reason: c.Reason}}, nil
}

// Decide logs the activity.
func (c LogActivity) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if err := requireID("activity_id", c.ActivityID); err != nil {
		return nil, err
	}
	if _, dup := s.Activities.Get(c.ActivityID); dup {
		return nil, existsf("activity %q was already logged", c.ActivityID)
	}
	if !slices.Contains(ActivityKinds, c.Kind) {
		return nil, invalidf("kind %q: want one of %v", c.Kind, ActivityKinds)
	}
	if c.Quantity <= 0 {
		return nil, invalidf("quantity %d: want a positive number", c.Quantity)
	}
	if c.Quantity > 1_000_000 {
		return nil, invalidf("quantity %d is implausibly large", c.Quantity)
	}
	if err := optText("customer", c.Customer, maxName); err != nil {
		return nil, err
	}
	if err := optText("notes", c.Notes, maxText); err != nil {
		return nil, err
	}
	at, err := businessTime("occurred_at", c.OccurredAt, f.Now)
	if err != nil {
		return nil, err
	}
	if dateOf(at) < s.JoinedOn {
		return nil, violatedf("occurred_at %s is before member %q joined (%s)", dateOf(at), c.MemberID, s.JoinedOn)
	}
	return []Payload{&ActivityLogged{ActivityID: c.ActivityID, MemberID: c.MemberID, Kind: c.Kind,
		Quantity: c.Quantity, Customer: c.Customer, Notes: c.Notes, OccurredAt: at}}, nil
}

// Decide records the sale.
func (c CloseSale) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if err := requireID("sale_id", c.SaleID); err != nil {
		return nil, err
	}
	if _, dup := s.Sales.Get(c.SaleID); dup {
		return nil, existsf("sale %q was already recorded", c.SaleID)
	}
	if err := requireText("customer", c.Customer, maxName); err != nil {
		return nil, err
	}
	if c.AmountMinor <= 0 {
		return nil, invalidf("amount_minor %d: want a positive amount in minor units", c.AmountMinor)
	}
	if !IsCurrency(c.Currency) {
		return nil, invalidf("currency %q is not an ISO 4217 code", c.Currency)
	}
	if want := f.Org.Rules.Currency; c.Currency != want {
		return nil, violatedf("currency %s: rule set v%d reports in %s only; convert the sale to %s",
			c.Currency, f.Org.Rules.Version, want, want)
	}
	at, err := businessTime("occurred_at", c.OccurredAt, f.Now)
	if err != nil {
		return nil, err
	}
	if dateOf(at) < s.JoinedOn {
		return nil, violatedf("occurred_at %s is before member %q joined (%s)", dateOf(at), c.MemberID, s.JoinedOn)
	}
	return []Payload{&SaleClosed{SaleID: c.SaleID, MemberID: c.MemberID, Customer: c.Customer,
		AmountMinor: c.AmountMinor, Currency: c.Currency, OccurredAt: at}}, nil
}

// Decide voids the activity.
func (c VoidActivity) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := joinedSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	voided, ok := s.Activities.Get(c.ActivityID)
	switch {
	case !ok:
		return nil, notFoundf("member %q has no activity %q", c.MemberID, c.ActivityID)
	case voided:
		return nil, existsf("activity %q is already voided", c.ActivityID)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	return []Payload{&ActivityVoided{ActivityID: c.ActivityID, MemberID: c.MemberID, Reason: c.Reason}}, nil
}

// Decide reverses the sale.
func (c ReverseSale) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := joinedSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	reversed, ok := s.Sales.Get(c.SaleID)
	switch {
	case !ok:
		return nil, notFoundf("member %q has no sale %q", c.MemberID, c.SaleID)
	case reversed:
		return nil, existsf("sale %q is already reversed", c.SaleID)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	return []Payload{&SaleReversed{SaleID: c.SaleID, MemberID: c.MemberID, Reason: c.Reason}}, nil
}

// Decide records the quality rating.
func (c AssessQuality) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	switch {
	case c.Week != "" && c.Day != "":
		return nil, invalidf("give either week or day, not both")
	case c.Week != "":
		if _, err := requirePeriod("week", c.Week, PeriodWeek); err != nil {
			return nil, err
		}
	case c.Day != "":
		if _, err := requireDate("day", c.Day); err != nil {
			return nil, err
		}
	default:
		return nil, invalidf("week (e.g. 2026-W47) or day (YYYY-MM-DD) is required")
	}
	if err := requireRating(c.Rating); err != nil {
		return nil, err
	}
	if c.AssessorID == c.MemberID {
		return nil, forbiddenf("member %q cannot assess their own quality", c.MemberID)
	}
	if _, err := f.activeMember("assessor_id", c.AssessorID); err != nil {
		return nil, err
	}
	if err := optText("comment", c.Comment, maxText); err != nil {
		return nil, err
	}
	return []Payload{&QualityAssessed{MemberID: c.MemberID, Week: c.Week, Day: c.Day, Rating: c.Rating,
		AssessorID: c.AssessorID, Comment: c.Comment}}, nil
}

// Decide records the manager rating.
func (c RecordManagerRating) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if _, err := requirePeriod("month", c.Month, PeriodMonth); err != nil {
		return nil, err
	}
	if err := requireRating(c.Rating); err != nil {
		return nil, err
	}
	if c.RaterID == c.MemberID {
		return nil, forbiddenf("member %q cannot rate themselves", c.MemberID)
	}
	if _, err := f.activeMember("rater_id", c.RaterID); err != nil {
		return nil, err
	}
	if err := optText("comment", c.Comment, maxText); err != nil {
		return nil, err
	}
	return []Payload{&ManagerRatingRecorded{MemberID: c.MemberID, Month: c.Month, Rating: c.Rating,
		RaterID: c.RaterID, Comment: c.Comment}}, nil
}

// Decide finalizes the month's evaluation: once per member and month, only
// after the month has ended. A member who left may still be finalized for a
// month that began before they left.
func (c FinalizeEvaluation) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := joinedSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	month, err := requirePeriod("month", c.Month, PeriodMonth)
	if err != nil {
		return nil, err
	}
	if s.Left && dateOf(month.Start()) > s.LeftOn {
		return nil, violatedf("member %q left on %s, before %s began", c.MemberID, s.LeftOn, c.Month)
	}
	if s.Finalized[month.String()] {
		return nil, existsf("the evaluation of member %q for %s is already finalized", c.MemberID, c.Month)
	}
	if f.Now.Before(month.End()) {
		return nil, violatedf("month %s has not ended yet; finalize from %s", c.Month, dateOf(month.End()))
	}
	if !month.End().After(firstDate(s.JoinedOn)) {
		return nil, violatedf("month %s ended before member %q joined (%s)", c.Month, c.MemberID, s.JoinedOn)
	}
	comp := c.Components
	if comp.Objective == nil && comp.Rollup == nil && comp.Manager == nil {
		return nil, invalidf("components: at least one of objective, rollup, manager is required")
	}
	for _, v := range []*Fixed{comp.Objective, comp.Rollup, comp.Manager, &c.Score} {
		if v != nil && *v < 0 {
			return nil, invalidf("scores must not be negative (got %s)", *v)
		}
	}
	if c.Band < 1 || c.Band > 5 {
		return nil, invalidf("band %d: want 1 to 5", c.Band)
	}
	if c.RulesVersion < 1 {
		return nil, invalidf("rules_version %d: want the version of the rule set used (≥ 1)", c.RulesVersion)
	}
	if err := optText("inputs_digest", c.InputsDigest, maxName); err != nil {
		return nil, err
	}
	if err := requireID("finalized_by", c.FinalizedBy); err != nil {
		return nil, err
	}
	if c.FinalizedBy == c.MemberID {
		return nil, forbiddenf("member %q cannot finalize their own evaluation", c.MemberID)
	}
	return []Payload{&EvaluationFinalized{MemberID: c.MemberID, Month: month.String(), Components: comp,
		Score: c.Score, Band: c.Band, BandLabel: c.BandLabel, RulesVersion: c.RulesVersion,
		InputsDigest: c.InputsDigest, FinalizedBy: c.FinalizedBy}}, nil
}

// Decide records the praise, in the receiver's stream.
func (c GivePraise) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.ToID); err != nil {
		return nil, err
	}
	if c.FromID == c.ToID {
		return nil, violatedf("member %q cannot praise themselves", c.FromID)
	}
	if _, err := f.activeMember("from_id", c.FromID); err != nil {
		return nil, err
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	if err := optText("linked_event_id", c.LinkedEventID, maxName); err != nil {
		return nil, err
	}
	return []Payload{&PraiseGiven{FromID: c.FromID, ToID: c.ToID, Reason: c.Reason, LinkedEventID: c.LinkedEventID}}, nil
}

// Decide publicizes the achievement in the member's or team's stream.
func (c PublicizeAchievement) Decide(st State, _ Facts) ([]Payload, error) {
	switch s := st.(type) {
	case *MemberState:
		if c.SubjectKind != SubjectMember {
			return nil, invalidf("subject_kind %q does not match a member stream", c.SubjectKind)
		}
		if err := activeSelf(s, c.SubjectID); err != nil {
			return nil, err
		}
	case *TeamState:
		if c.SubjectKind != SubjectTeam {
			return nil, invalidf("subject_kind %q does not match a team stream", c.SubjectKind)
		}
		if !s.Formed {
			return nil, notFoundf("team %q does not exist", c.SubjectID)
		}
	default:
		return nil, invalidf("subject_kind %q: want member or team", c.SubjectKind)
	}
	if err := requireText("headline", c.Headline, maxName); err != nil {
		return nil, err
	}
	switch c.Audience {
	case AudienceTeam, AudienceRegion, AudienceCompany:
	default:
		return nil, invalidf("audience %q: want team, region or company", c.Audience)
	}
	if len(c.EvidenceEventIDs) > maxList {
		return nil, invalidf("evidence_event_ids: at most %d", maxList)
	}
	for _, id := range c.EvidenceEventIDs {
		if err := requireID("evidence_event_ids", id); err != nil {
			return nil, err
		}
	}
	return []Payload{&AchievementPublicized{SubjectKind: c.SubjectKind, SubjectID: c.SubjectID,
		Headline: c.Headline, EvidenceEventIDs: slices.Clone(c.EvidenceEventIDs), Audience: c.Audience,
		PublicizedBy: c.PublicizedBy}}, nil
}

// Decide grants the reward.
func (c GrantReward) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := activeSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	if err := requireID("reward_id", c.RewardID); err != nil {
		return nil, err
	}
	if _, dup := s.Rewards[c.RewardID]; dup {
		return nil, existsf("reward %q was already granted", c.RewardID)
	}
	switch c.Kind {
	case RewardPraise, RewardBadge:
		if c.AmountMinor != 0 || c.Currency != "" {
			return nil, invalidf("a %s reward carries no money; leave amount_minor and currency empty", c.Kind)
		}
	case RewardGoalBonus, RewardSuggestionAward, RewardSpotAward:
		if c.AmountMinor <= 0 {
			return nil, invalidf("amount_minor %d: a %s needs a positive amount", c.AmountMinor, c.Kind)
		}
		if !IsCurrency(c.Currency) {
			return nil, invalidf("currency %q is not an ISO 4217 code", c.Currency)
		}
		if want := f.Org.Rules.Currency; c.Currency != want {
			return nil, violatedf("currency %s: rewards are paid in the rule set's currency %s", c.Currency, want)
		}
	default:
		return nil, invalidf("kind %q: want praise, badge, goal_bonus, suggestion_award or spot_award", c.Kind)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	if err := requireID("granted_by", c.GrantedBy); err != nil {
		return nil, err
	}
	if c.GrantedBy == c.MemberID {
		return nil, forbiddenf("member %q cannot grant themselves a reward", c.MemberID)
	}
	basis := c.Basis
	if basis.Inputs != nil {
		basis.Inputs = make(map[string]string, len(c.Basis.Inputs))
		for k, v := range c.Basis.Inputs {
			basis.Inputs[k] = v
		}
	}
	return []Payload{&RewardGranted{RewardID: c.RewardID, MemberID: c.MemberID, Kind: c.Kind,
		AmountMinor: c.AmountMinor, Currency: c.Currency, Reason: c.Reason, Basis: basis, GrantedBy: c.GrantedBy}}, nil
}

// Decide revokes (part of) the reward.
func (c RevokeReward) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := joinedSelf(s, c.MemberID); err != nil {
		return nil, err
	}
	r, ok := s.Rewards[c.RewardID]
	if !ok {
		return nil, notFoundf("member %q has no reward %q", c.MemberID, c.RewardID)
	}
	if c.RevocationID != "" && r.Revocations[c.RevocationID] {
		return nil, existsf("reward %q was already revoked under %q", c.RewardID, c.RevocationID)
	}
	if r.Revoked {
		return nil, existsf("reward %q is already fully revoked", c.RewardID)
	}
	if err := optText("revocation_id", c.RevocationID, 200); err != nil {
		return nil, err
	}
	switch c.Reason {
	case RevokeCorrection, RevokeClawback:
	default:
		return nil, invalidf("reason %q: want correction or clawback", c.Reason)
	}
	if err := optText("note", c.Note, maxText); err != nil {
		return nil, err
	}
	amount := c.AmountMinor
	switch {
	case r.AmountMinor == 0 && amount != 0:
		return nil, invalidf("reward %q carries no money; leave amount_minor empty", c.RewardID)
	case amount < 0:
		return nil, invalidf("amount_minor %d: want a positive amount, or 0 for all that remains", amount)
	case amount == 0:
		amount = r.AmountMinor - r.RevokedMinor
	case amount > r.AmountMinor-r.RevokedMinor:
		return nil, violatedf("amount_minor %d exceeds the %d that remain of reward %q", amount, r.AmountMinor-r.RevokedMinor, c.RewardID)
	}
	return []Payload{&RewardRevoked{RewardID: c.RewardID, MemberID: c.MemberID, Reason: c.Reason,
		AmountMinor: amount, Currency: r.Currency, Note: c.Note, RevocationID: c.RevocationID}}, nil
}

// firstDate parses a stored date, zero if malformed.
func firstDate(s string) time.Time {
	t, _ := ParseDate(s)
	return t
}
