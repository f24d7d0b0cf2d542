package domain

import (
	"encoding/json"
	"fmt"
)

// EncodePayload returns p's stored type name (p.EventType()) and its JSON
// encoding. p may be a struct or a pointer to one. It fails for a payload
// whose type is not registered (a programming error).
func EncodePayload(p Payload) (typ string, data []byte, err error) {
	if p == nil {
		return "", nil, fmt.Errorf("encode payload: nil payload")
	}
	typ = p.EventType()
	if _, ok := decoders[typ]; !ok {
		return "", nil, fmt.Errorf("encode payload: %w %q", ErrUnknownEventType, typ)
	}
	data, err = json.Marshal(p)
	if err != nil {
		return "", nil, fmt.Errorf("encode payload %s: %w", typ, err)
	}
	return typ, data, nil
}

// DecodePayload decodes a stored payload of type typ into its CURRENT
// struct and returns a POINTER to it (e.g. *ActivityLogged for
// "ActivityLogged.v1", *SaleClosed for both "SaleClosed.v1" and
// "SaleClosed.v2"). Old versions are first upcast (see upcast.go). An unknown
// type gives an error wrapping ErrUnknownEventType; malformed JSON gives an
// error naming the type. Unknown JSON fields are ignored (forward
// compatibility). Safe for concurrent use.
func DecodePayload(typ string, data []byte) (Payload, error) {
	if dec, ok := decoders[typ]; ok {
		return dec(typ, data)
	}
	up, ok := upcasters[typ]
	if !ok {
		return nil, fmt.Errorf("decode payload: %w %q", ErrUnknownEventType, typ)
	}
	// Follow the chain of upcasters to the current version.
	for range 16 {
		var err error
		data, err = up.fn(data)
		if err != nil {
			return nil, fmt.Errorf("decode payload: upcast %s to %s: %w", typ, up.to, err)
		}
		if dec, ok := decoders[up.to]; ok {
			return dec(up.to, data)
		}
		next, ok := upcasters[up.to]
		if !ok {
			return nil, fmt.Errorf("decode payload: %w %q (upcast from %q)", ErrUnknownEventType, up.to, typ)
		}
		up = next
	}
	return nil, fmt.Errorf("decode payload: upcaster chain from %q too long", typ)
}

// EventTypes returns the current stored names of every event type.
func EventTypes() []string {
	out := make([]string, 0, len(decoders))
	for _, p := range AllPayloads() {
		out = append(out, p.EventType())
	}
	return out
}

// AllPayloads returns a zero pointer of every current event struct, in the
// order of DOMAIN.md §2 (useful for tests and documentation).
func AllPayloads() []Payload {
	return []Payload{
		&TeamFormed{}, &MemberJoined{}, &MemberTransferred{}, &MemberLeft{},
		&MemberProfileRecorded{}, &MemberForgotten{}, &RoleLadderDefined{},
		&ScoringRulesPublished{}, &TargetSet{}, &TargetRevised{},
		&ActivityLogged{}, &SaleClosed{}, &ActivityVoided{}, &SaleReversed{},
		&QualityAssessed{}, &ManagerRatingRecorded{}, &EvaluationFinalized{},
		&PraiseGiven{}, &AchievementPublicized{}, &MeetingHeld{},
		&SuggestionSubmitted{}, &SuggestionReviewed{}, &PromotionNominated{},
		&PromotionEligibilityEvaluated{}, &PromotionApproved{}, &PromotionRejected{},
		&PromotionEffected{}, &PromotionRescinded{}, &RewardGranted{}, &RewardRevoked{},
	}
}

type decodeFunc func(typ string, data []byte) (Payload, error)

// decodeInto decodes into a fresh *T.
func decodeInto[T any, PT interface {
	*T
	Payload
}](typ string, data []byte) (Payload, error) {
	p := PT(new(T))
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("decode payload %s: %w", typ, err)
	}
	return p, nil
}

// decoders maps each CURRENT stored name to its decoder.
var decoders = map[string]decodeFunc{
	TypeTeamFormed:                    decodeInto[TeamFormed],
	TypeMemberJoined:                  decodeInto[MemberJoined],
	TypeMemberTransferred:             decodeInto[MemberTransferred],
	TypeMemberLeft:                    decodeInto[MemberLeft],
	TypeMemberProfileRecorded:         decodeInto[MemberProfileRecorded],
	TypeMemberForgotten:               decodeInto[MemberForgotten],
	TypeRoleLadderDefined:             decodeInto[RoleLadderDefined],
	TypeScoringRulesPublished:         decodeInto[ScoringRulesPublished],
	TypeTargetSet:                     decodeInto[TargetSet],
	TypeTargetRevised:                 decodeInto[TargetRevised],
	TypeActivityLogged:                decodeActivityLogged, // codec_fast.go
	TypeSaleClosed:                    decodeSaleClosed,     // codec_fast.go
	TypeActivityVoided:                decodeInto[ActivityVoided],
	TypeSaleReversed:                  decodeInto[SaleReversed],
	TypeQualityAssessed:               decodeInto[QualityAssessed],
	TypeManagerRatingRecorded:         decodeInto[ManagerRatingRecorded],
	TypeEvaluationFinalized:           decodeInto[EvaluationFinalized],
	TypePraiseGiven:                   decodeInto[PraiseGiven],
	TypeAchievementPublicized:         decodeInto[AchievementPublicized],
	TypeMeetingHeld:                   decodeInto[MeetingHeld],
	TypeSuggestionSubmitted:           decodeInto[SuggestionSubmitted],
	TypeSuggestionReviewed:            decodeInto[SuggestionReviewed],
	TypePromotionNominated:            decodeInto[PromotionNominated],
	TypePromotionEligibilityEvaluated: decodeInto[PromotionEligibilityEvaluated],
	TypePromotionApproved:             decodeInto[PromotionApproved],
	TypePromotionRejected:             decodeInto[PromotionRejected],
	TypePromotionEffected:             decodeInto[PromotionEffected],
	TypePromotionRescinded:            decodeInto[PromotionRescinded],
	TypeRewardGranted:                 decodeInto[RewardGranted],
	TypeRewardRevoked:                 decodeInto[RewardRevoked],
}
