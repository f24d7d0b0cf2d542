package domain

import (
	"slices"
)

// Decide replaces the ladder.
func (c DefineRoleLadder) Decide(st State, _ Facts) ([]Payload, error) {
	if _, err := stateOf[*OrgState](st, c.CommandName()); err != nil {
		return nil, err
	}
	if len(c.Roles) < 2 {
		return nil, invalidf("roles: a ladder needs at least two roles, lowest first")
	}
	if len(c.Roles) > 50 {
		return nil, invalidf("roles: at most 50")
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		if err := requireID("role", r); err != nil {
			return nil, err
		}
		if seen[r] {
			return nil, invalidf("role %q appears twice on the ladder", r)
		}
		seen[r] = true
	}
	return []Payload{&RoleLadderDefined{Roles: slices.Clone(c.Roles)}}, nil
}

// Decide publishes the rule set.
func (c PublishScoringRules) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*OrgState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	r := c.Rules
	if r.Version <= s.Rules.Version {
		return nil, violatedf("version %d: the rule set in force is v%d; publish v%d or later", r.Version, s.Rules.Version, s.Rules.Version+1)
	}
	if len(r.KPIs) == 0 {
		return nil, invalidf("kpis: at least one KPI is required")
	}
	var sum Fixed
	seen := map[string]bool{}
	for _, k := range r.KPIs {
		if err := requireID("kpi", k.KPI); err != nil {
			return nil, err
		}
		if seen[k.KPI] {
			return nil, invalidf("kpi %q appears twice", k.KPI)
		}
		seen[k.KPI] = true
		if k.Direction != DirectionHigher && k.Direction != DirectionLower {
			return nil, invalidf("kpi %q: direction %q, want higher or lower", k.KPI, k.Direction)
		}
		if k.Weight <= 0 {
			return nil, invalidf("kpi %q: weight %s, want > 0", k.KPI, k.Weight)
		}
		if k.Cap <= 0 {
			return nil, invalidf("kpi %q: cap %s, want > 0", k.KPI, k.Cap)
		}
		if k.WeeklyNorm < 0 {
			return nil, invalidf("kpi %q: weekly_norm %s, want ≥ 0", k.KPI, k.WeeklyNorm)
		}
		sum += k.Weight
	}
	if sum != FixedScale {
		return nil, invalidf("kpi weights add up to %s; they must add up to 1", sum)
	}
	if r.Alpha < 0 || r.Alpha > FixedScale {
		return nil, invalidf("alpha %s: want 0 to 1", r.Alpha)
	}
	w := r.EvaluationWeights
	if w.Objective < 0 || w.Rollup < 0 || w.Manager < 0 || w.Objective+w.Rollup+w.Manager != FixedScale {
		return nil, invalidf("evaluation_weights must be ≥ 0 and add up to 1")
	}
	if len(r.Bands) == 0 {
		return nil, invalidf("bands: at least one band is required")
	}
	for i, b := range r.Bands {
		if i > 0 && b.Min >= r.Bands[i-1].Min {
			return nil, invalidf("bands must be listed from the highest min down")
		}
		if err := requireText("band label", b.Label, maxName); err != nil {
			return nil, err
		}
	}
	if !IsCurrency(r.Currency) {
		return nil, invalidf("currency %q is not an ISO 4217 code", r.Currency)
	}
	if _, err := requireDate("effective_from", r.EffectiveFrom); err != nil {
		return nil, err
	}
	for role, b := range r.BonusBaseMinor {
		if b < 0 {
			return nil, invalidf("bonus_base_minor[%s] %d: want ≥ 0", role, b)
		}
	}
	out := r
	out.KPIs = slices.Clone(r.KPIs)
	out.Bands = slices.Clone(r.Bands)
	return []Payload{&out}, nil
}

// Decide sets the target.
func (c SetTarget) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*TargetState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := requireID("target_id", c.TargetID); err != nil {
		return nil, err
	}
	if s.Set {
		return nil, existsf("target %q was already set; revise it instead", c.TargetID)
	}
	switch c.SubjectKind {
	case SubjectMember:
		if _, err := f.activeMember("subject_id", c.SubjectID); err != nil {
			return nil, err
		}
	case SubjectTeam:
		if err := requireID("subject_id", c.SubjectID); err != nil {
			return nil, err
		}
		if !f.Teams[c.SubjectID].Formed {
			return nil, notFoundf("team %q does not exist", c.SubjectID)
		}
	default:
		return nil, invalidf("subject_kind %q: want member or team", c.SubjectKind)
	}
	if !f.Org.HasKPI(c.KPI) {
		return nil, invalidf("kpi %q is not in rule set v%d", c.KPI, f.Org.Rules.Version)
	}
	p, err := requirePeriod("period", c.Period, 0)
	if err != nil {
		return nil, err
	}
	if c.Value <= 0 {
		return nil, invalidf("value %s: want a positive target", c.Value)
	}
	return []Payload{&TargetSet{TargetID: c.TargetID, SubjectKind: c.SubjectKind, SubjectID: c.SubjectID,
		KPI: c.KPI, Period: p.String(), Value: c.Value}}, nil
}

// Decide revises the target.
func (c ReviseTarget) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*TargetState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if !s.Set {
		return nil, notFoundf("target %q does not exist", c.TargetID)
	}
	if c.NewValue <= 0 {
		return nil, invalidf("new_value %s: want a positive target", c.NewValue)
	}
	if c.NewValue == s.Value {
		return nil, violatedf("target %q is already %s", c.TargetID, s.Value)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	if err := requireID("approved_by", c.ApprovedBy); err != nil {
		return nil, err
	}
	return []Payload{&TargetRevised{TargetID: c.TargetID, NewValue: c.NewValue, Reason: c.Reason, ApprovedBy: c.ApprovedBy}}, nil
}

// Decide records the meeting.
func (c HoldMeeting) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*TeamState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if !s.Formed {
		return nil, notFoundf("team %q does not exist", c.TeamID)
	}
	if err := requireID("meeting_id", c.MeetingID); err != nil {
		return nil, err
	}
	if s.Meetings[c.MeetingID] {
		return nil, existsf("meeting %q was already recorded", c.MeetingID)
	}
	switch c.Kind {
	case MeetingSales, MeetingExperienceSharing, MeetingGuidance, MeetingSummary:
	default:
		return nil, invalidf("kind %q: want sales_meeting, experience_sharing, guidance or summary", c.Kind)
	}
	if _, err := f.activeMember("chair_id", c.ChairID); err != nil {
		return nil, err
	}
	if len(c.AttendeeIDs) == 0 {
		return nil, invalidf("attendee_ids: at least one attendee is required")
	}
	if len(c.AttendeeIDs) > maxList {
		return nil, invalidf("attendee_ids: at most %d", maxList)
	}
	seen := map[string]bool{}
	for _, id := range c.AttendeeIDs {
		if seen[id] {
			return nil, invalidf("attendee %q is listed twice", id)
		}
		seen[id] = true
		if _, err := f.activeMember("attendee", id); err != nil {
			return nil, err
		}
	}
	if len(c.Topics) > maxList {
		return nil, invalidf("topics: at most %d", maxList)
	}
	for _, t := range c.Topics {
		if err := requireText("topic", t, maxName); err != nil {
			return nil, err
		}
	}
	at, err := businessTime("held_at", c.HeldAt, f.Now)
	if err != nil {
		return nil, err
	}
	return []Payload{&MeetingHeld{MeetingID: c.MeetingID, TeamID: c.TeamID, Kind: c.Kind, ChairID: c.ChairID,
		AttendeeIDs: slices.Clone(c.AttendeeIDs), HeldAt: at, Topics: slices.Clone(c.Topics)}}, nil
}

// Decide records the suggestion.
func (c SubmitSuggestion) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*SuggestionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if s.Submitted {
		return nil, existsf("suggestion %q was already submitted", c.SuggestionID)
	}
	if _, err := f.activeMember("author_id", c.AuthorID); err != nil {
		return nil, err
	}
	if err := requireText("title", c.Title, maxName); err != nil {
		return nil, err
	}
	if err := requireText("body", c.Body, maxText); err != nil {
		return nil, err
	}
	if err := optText("category", c.Category, maxName); err != nil {
		return nil, err
	}
	return []Payload{&SuggestionSubmitted{SuggestionID: c.SuggestionID, AuthorID: c.AuthorID, Title: c.Title,
		Body: c.Body, Category: c.Category}}, nil
}

// Decide records the review.
func (c ReviewSuggestion) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*SuggestionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if !s.Submitted {
		return nil, notFoundf("suggestion %q does not exist", c.SuggestionID)
	}
	if s.Reviewed {
		return nil, existsf("suggestion %q was already reviewed (%s)", c.SuggestionID, s.Decision)
	}
	if c.ReviewerID == s.AuthorID {
		return nil, forbiddenf("%q cannot review their own suggestion", c.ReviewerID)
	}
	if _, err := f.activeMember("reviewer_id", c.ReviewerID); err != nil {
		return nil, err
	}
	if c.Decision != DecisionAdopt && c.Decision != DecisionReject {
		return nil, invalidf("decision %q: want adopt or reject", c.Decision)
	}
	if err := requireText("rationale", c.Rationale, maxText); err != nil {
		return nil, err
	}
	return []Payload{&SuggestionReviewed{SuggestionID: c.SuggestionID, ReviewerID: c.ReviewerID,
		Decision: c.Decision, Rationale: c.Rationale}}, nil
}
