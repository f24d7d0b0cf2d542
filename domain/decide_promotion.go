package domain

import (
	"slices"
	"strings"
)

// Decide opens the nomination. Separation of duties: nobody nominates
// themselves; the nominator is an active manager (ManagerRole or above on
// the ladder) ranked above the member. The promotion goes upward only.
func (c NominatePromotion) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*PromotionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if s.Nominated {
		return nil, existsf("promotion %q was already nominated", c.PromotionID)
	}
	if c.NominatedBy == c.MemberID {
		return nil, forbiddenf("member %q cannot nominate themselves", c.MemberID)
	}
	m, err := f.activeMember("member_id", c.MemberID)
	if err != nil {
		return nil, err
	}
	n, err := f.activeMember("nominated_by", c.NominatedBy)
	if err != nil {
		return nil, err
	}
	from, to := f.Org.Rank(m.Role), f.Org.Rank(c.ToRole)
	if to < 0 {
		return nil, invalidf("to_role %q is not on the ladder %v", c.ToRole, f.Org.Roles)
	}
	if to <= from {
		return nil, violatedf("promotion from %s to %s is not upward on the ladder", m.Role, c.ToRole)
	}
	nr := f.Org.Rank(n.Role)
	if mr := f.Org.Rank(ManagerRole); mr >= 0 && nr < mr {
		return nil, forbiddenf("nominator %q is a %s; only managers (%s and above) nominate", c.NominatedBy, n.Role, ManagerRole)
	}
	if nr <= from {
		return nil, forbiddenf("nominator %q (%s) is not above member %q (%s) on the ladder", c.NominatedBy, n.Role, c.MemberID, m.Role)
	}
	if err := requireText("justification", c.Justification, maxText); err != nil {
		return nil, err
	}
	if _, err := requireDate("proposed_effective_on", c.ProposedEffectiveOn); err != nil {
		return nil, err
	}
	return []Payload{&PromotionNominated{PromotionID: c.PromotionID, MemberID: c.MemberID, FromRole: m.Role,
		ToRole: c.ToRole, NominatedBy: c.NominatedBy, Justification: c.Justification,
		ProposedEffectiveOn: c.ProposedEffectiveOn}}, nil
}

func openPromotion(s *PromotionState, id string) error {
	if !s.Nominated {
		return notFoundf("promotion %q does not exist", id)
	}
	if s.Status != PromotionStatusOpen {
		return existsf("promotion %q was already %s", id, s.Status)
	}
	return nil
}

// Decide records the eligibility evaluation of an open nomination.
func (c RecordEligibility) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*PromotionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := openPromotion(s, c.PromotionID); err != nil {
		return nil, err
	}
	if c.RulesVersion < 1 {
		return nil, invalidf("rules_version %d: want the eligibility rules version (≥ 1)", c.RulesVersion)
	}
	if len(c.Criteria) > 50 {
		return nil, invalidf("criteria: at most 50")
	}
	all := len(c.Criteria) > 0
	for _, k := range c.Criteria {
		if err := requireID("criterion code", k.Code); err != nil {
			return nil, err
		}
		if err := optText("required", k.Required, maxName); err != nil {
			return nil, err
		}
		if err := optText("observed", k.Observed, maxName); err != nil {
			return nil, err
		}
		all = all && k.Passed
	}
	if c.Eligible != all {
		return nil, invalidf("eligible must be true exactly when there are criteria and every one passed")
	}
	return []Payload{&PromotionEligibilityEvaluated{PromotionID: c.PromotionID, MemberID: s.MemberID,
		RulesVersion: c.RulesVersion, Criteria: slices.Clone(c.Criteria), Eligible: c.Eligible}}, nil
}

// hrDecider checks the separation of duties of a promotion decision.
func hrDecider(s *PromotionState, approver, role string) error {
	if err := requireID("approver_id", approver); err != nil {
		return err
	}
	if role != RoleHR {
		return forbiddenf("only HR decides promotions (approver role %q)", role)
	}
	if approver == s.NominatedBy {
		return forbiddenf("%q nominated this promotion and cannot decide it", approver)
	}
	if approver == s.MemberID {
		return forbiddenf("%q cannot decide their own promotion", approver)
	}
	return nil
}

// Decide approves the nomination; an ineligible one needs a written
// exception justification.
func (c ApprovePromotion) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*PromotionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := openPromotion(s, c.PromotionID); err != nil {
		return nil, err
	}
	if err := hrDecider(s, c.ApproverID, c.ApproverRole); err != nil {
		return nil, err
	}
	if !s.Evaluated {
		return nil, violatedf("promotion %q: eligibility has not been evaluated yet", c.PromotionID)
	}
	if err := optText("comment", c.Comment, maxText); err != nil {
		return nil, err
	}
	if err := optText("exception_justification", c.ExceptionJustification, maxText); err != nil {
		return nil, err
	}
	just := c.ExceptionJustification
	if !s.Eligible && strings.TrimSpace(just) == "" {
		return nil, violatedf("promotion %q is not eligible; approving it needs an exception_justification", c.PromotionID)
	}
	if s.Eligible {
		just = "" // nothing to except
	}
	return []Payload{&PromotionApproved{PromotionID: c.PromotionID, MemberID: s.MemberID, ApproverID: c.ApproverID,
		Comment: c.Comment, ExceptionJustification: just}}, nil
}

// Decide rejects the nomination.
func (c RejectPromotion) Decide(st State, _ Facts) ([]Payload, error) {
	s, err := stateOf[*PromotionState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	if err := openPromotion(s, c.PromotionID); err != nil {
		return nil, err
	}
	if err := hrDecider(s, c.ApproverID, c.ApproverRole); err != nil {
		return nil, err
	}
	if err := optText("comment", c.Comment, maxText); err != nil {
		return nil, err
	}
	return []Payload{&PromotionRejected{PromotionID: c.PromotionID, MemberID: s.MemberID, ApproverID: c.ApproverID,
		Comment: c.Comment}}, nil
}

// Decide effects an approved promotion in the member's stream: never before
// the approval, never recorded before the effective date, only while the
// member still holds the role the nomination started from.
func (c EffectPromotion) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	p, ok := f.Promotions[c.PromotionID]
	if !ok || !p.Nominated {
		return nil, notFoundf("promotion %q does not exist", c.PromotionID)
	}
	if err := activeSelf(s, p.MemberID); err != nil {
		return nil, err
	}
	switch s.Promotions[c.PromotionID] {
	case PromotionStatusEffected:
		return nil, existsf("promotion %q was already effected", c.PromotionID)
	case PromotionStatusRescinded:
		return nil, violatedf("promotion %q was rescinded", c.PromotionID)
	}
	if p.Status != PromotionStatusApproved {
		return nil, violatedf("promotion %q is %s, not approved", c.PromotionID, p.Status)
	}
	on := c.EffectiveOn
	if on == "" {
		on = p.ProposedEffectiveOn
	}
	if _, err := requireDate("effective_on", on); err != nil {
		return nil, err
	}
	if on < p.DecidedOn {
		return nil, violatedf("effective_on %s is before the approval (%s)", on, p.DecidedOn)
	}
	if today := dateOf(f.Now); on > today {
		return nil, violatedf("promotion %q takes effect on %s; it cannot be recorded before that date (today is %s)", c.PromotionID, on, today)
	}
	if s.Role != p.FromRole {
		return nil, violatedf("member %q is now %s, no longer %s as when nominated", p.MemberID, s.Role, p.FromRole)
	}
	return []Payload{&PromotionEffected{PromotionID: c.PromotionID, MemberID: p.MemberID, FromRole: p.FromRole,
		ToRole: p.ToRole, EffectiveOn: on}}, nil
}

// Decide rescinds an approved promotion (HR only, never by the nominator or
// the member).
func (c RescindPromotion) Decide(st State, f Facts) ([]Payload, error) {
	s, err := stateOf[*MemberState](st, c.CommandName())
	if err != nil {
		return nil, err
	}
	p, ok := f.Promotions[c.PromotionID]
	if !ok || !p.Nominated {
		return nil, notFoundf("promotion %q does not exist", c.PromotionID)
	}
	if err := joinedSelf(s, p.MemberID); err != nil {
		return nil, err
	}
	if s.Promotions[c.PromotionID] == PromotionStatusRescinded {
		return nil, existsf("promotion %q was already rescinded", c.PromotionID)
	}
	if p.Status != PromotionStatusApproved {
		return nil, violatedf("promotion %q is %s; only an approved promotion can be rescinded", c.PromotionID, p.Status)
	}
	if c.ApproverRole != RoleHR {
		return nil, forbiddenf("a rescission needs HR (approver role %q)", c.ApproverRole)
	}
	if err := requireID("approved_by", c.ApprovedBy); err != nil {
		return nil, err
	}
	if c.ApprovedBy == p.MemberID || c.ApprovedBy == p.NominatedBy {
		return nil, forbiddenf("%q cannot rescind a promotion they nominated or received", c.ApprovedBy)
	}
	if s.Promotions[c.PromotionID] == PromotionStatusEffected && s.Role != p.ToRole {
		return nil, violatedf("member %q is now %s; rescinding the promotion to %s would not restore a consistent role", p.MemberID, s.Role, p.ToRole)
	}
	if err := requireText("reason", c.Reason, maxText); err != nil {
		return nil, err
	}
	return []Payload{&PromotionRescinded{PromotionID: c.PromotionID, MemberID: p.MemberID, FromRole: p.FromRole,
		ToRole: p.ToRole, Reason: c.Reason, ApprovedBy: c.ApprovedBy}}, nil
}
