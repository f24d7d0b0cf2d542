package projections

import "perfledger/domain"

// TypeFilter is implemented by a projector that reads only some event types:
// the events of every other type change nothing in its tables, so a live
// subscription need not hand them over one by one (the bus reads past them;
// the projector's checkpoint still passes them). Types are compared without
// their version suffix ("ActivityLogged", not "ActivityLogged.v1"), so that
// a new version of a type reaches the projectors of the old one.
//
// A projector's list must name every type its Apply reacts to; when a case
// is added to an Apply, its type goes into the list too.
// TestTypeFiltersLoseNothing replays the golden and demo logs with and
// without the filters and compares every table.
type TypeFilter interface {
	Handles(eventType string) bool
}

// Handles reports whether p reads events of type eventType: always, unless
// p is a TypeFilter.
func Handles(p Projector, eventType string) bool {
	f, ok := p.(TypeFilter)
	return !ok || f.Handles(eventType)
}

// typeSet is a set of event types, by their names without version.
type typeSet map[string]bool

func newTypeSet(sets ...[]string) typeSet {
	s := typeSet{}
	for _, types := range sets {
		for _, t := range types {
			s[baseType(t)] = true
		}
	}
	return s
}

func (s typeSet) has(eventType string) bool { return s[baseType(eventType)] }

// orgTypes are the events applyOrg folds.
var orgTypes = []string{domain.TypeTeamFormed, domain.TypeMemberJoined, domain.TypeMemberTransferred,
	domain.TypeMemberLeft, domain.TypeMemberForgotten, domain.TypePromotionEffected, domain.TypePromotionRescinded}

var (
	leaderboardTypes = newTypeSet(orgTypes, []string{domain.TypeActivityLogged, domain.TypeSaleClosed,
		domain.TypeActivityVoided, domain.TypeSaleReversed, domain.TypeTargetSet, domain.TypeTargetRevised,
		domain.TypeEvaluationFinalized, domain.TypeQualityAssessed, domain.TypeManagerRatingRecorded,
		domain.TypeScoringRulesPublished})
	evaluationTypes = newTypeSet(orgTypes, []string{domain.TypeEvaluationFinalized})
	promotionTypes  = newTypeSet([]string{domain.TypePromotionNominated, domain.TypePromotionEligibilityEvaluated,
		domain.TypePromotionApproved, domain.TypePromotionRejected, domain.TypePromotionEffected, domain.TypePromotionRescinded})
	rewardTypes     = newTypeSet([]string{domain.TypeRewardGranted, domain.TypeRewardRevoked})
	honourTypes     = newTypeSet(orgTypes, []string{domain.TypePraiseGiven, domain.TypeAchievementPublicized})
	suggestionTypes = newTypeSet(orgTypes, []string{domain.TypeSuggestionSubmitted, domain.TypeSuggestionReviewed})
	directoryTypes  = newTypeSet(orgTypes, []string{domain.TypeMemberProfileRecorded})
	factTypes       = newTypeSet([]string{domain.TypeScoringRulesPublished, domain.TypeMemberJoined,
		domain.TypeMemberTransferred, domain.TypePromotionEffected, domain.TypePromotionRescinded, domain.TypeSaleClosed,
		domain.TypeSaleReversed, domain.TypeTargetSet, domain.TypeTargetRevised, domain.TypeEvaluationFinalized,
		domain.TypeRewardGranted, domain.TypeRewardRevoked, domain.TypeSuggestionSubmitted,
		domain.TypeSuggestionReviewed, domain.TypeMeetingHeld})
)

// Handles implements TypeFilter.
func (*Leaderboard) Handles(t string) bool { return leaderboardTypes.has(t) }

// Handles implements TypeFilter.
func (*Evaluations) Handles(t string) bool { return evaluationTypes.has(t) }

// Handles implements TypeFilter.
func (*Promotions) Handles(t string) bool { return promotionTypes.has(t) }

// Handles implements TypeFilter.
func (*Rewards) Handles(t string) bool { return rewardTypes.has(t) }

// Handles implements TypeFilter.
func (*Honour) Handles(t string) bool { return honourTypes.has(t) }

// Handles implements TypeFilter.
func (*Suggestions) Handles(t string) bool { return suggestionTypes.has(t) }

// Handles implements TypeFilter.
func (*Directory) Handles(t string) bool { return directoryTypes.has(t) }

// Handles implements TypeFilter.
func (*facts) Handles(t string) bool { return factTypes.has(t) }
