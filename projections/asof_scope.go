package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"perfledger/domain"
)

// LeaderboardScope is the as-of scope (AsOfScope) of the leaderboard's
// queries about one period: its boards for that period (every metric and
// scope) and the members' weekly or monthly cards of it. An auditor's
// as-of board of one month then replays the few events that can change it
// instead of the whole log up to the time asked.
//
// What a period's rows are made of: the activities and sales that occurred
// in it, and for the cards the whole weeks it overlaps (a monthly card reads
// the weekly totals of those weeks); the ratings, targets and finalized
// evaluations of periods that overlap those weeks; and every other event the
// leaderboard reads (the organisation, rule sets, voids, promotions), kept
// whatever its time. So the scope keeps everything but:
//   - activities and sales that occurred outside the weeks overlapping the
//     period, judged by the envelope's OccurredAt (the service stamps an
//     activity's or sale's envelope with its occurred_at; nothing is
//     decoded to skip them);
//   - quality assessments, manager ratings, targets and finalized
//     evaluations of periods that do not overlap those weeks.
//
// A void of an activity the scope skipped finds nothing to void, as in a
// full replay a void of an unknown id. TestLeaderboardScopeAnswersAsAFullReplay
// checks every board and card of every period of a demo log against a full
// replay.
func LeaderboardScope(period string) (AsOfScope, error) {
	return leaderboardScope(period, "", nil)
}

// boardDrops are, for each metric's boards, the event types (base names)
// that can change none of its rows, and that LeaderboardBoardScope skips
// whatever their time:
//   - revenue rows are made of sales and their reversals, credited by the
//     organisation and the rule set's currency;
//   - attainment rows of the same, the revenue targets and the default
//     targets (rule sets, and roles: promotions);
//   - activity points of activities and their voids, with the rule set's
//     points;
//   - evaluation rows of the finalized evaluations.
//
// The weekly and monthly cards, and the boards of their scores, read
// everything LeaderboardScope keeps.
var boardDrops = map[string][]string{
	MetricRevenue: {domain.TypeActivityLogged, domain.TypeActivityVoided, domain.TypeQualityAssessed,
		domain.TypeManagerRatingRecorded, domain.TypeTargetSet, domain.TypeTargetRevised, domain.TypeEvaluationFinalized},
	MetricAttainment: {domain.TypeActivityLogged, domain.TypeActivityVoided, domain.TypeQualityAssessed,
		domain.TypeManagerRatingRecorded, domain.TypeEvaluationFinalized},
	MetricActivityPoints: {domain.TypeSaleClosed, domain.TypeSaleReversed, domain.TypeQualityAssessed,
		domain.TypeManagerRatingRecorded, domain.TypeTargetSet, domain.TypeTargetRevised, domain.TypeEvaluationFinalized},
	MetricEvaluation: {domain.TypeActivityLogged, domain.TypeActivityVoided, domain.TypeSaleClosed, domain.TypeSaleReversed,
		domain.TypeQualityAssessed, domain.TypeManagerRatingRecorded, domain.TypeTargetSet, domain.TypeTargetRevised},
}

// LeaderboardBoardScope is the as-of scope of one metric's boards of one
// period (every scope of them): LeaderboardScope(period) without the event
// types that cannot change that metric's rows (boardDrops), replayed into a
// leaderboard that keeps that metric's rows alone (the scores, cards and
// other recomputed rows are left out). An as-of revenue board then replays
// the sales of the period's weeks and what is kept whatever its time, about
// a fifth of what the period's scope replays.
// Metrics without a narrower scope (the weekly and monthly scores) get
// LeaderboardScope(period). TestLeaderboardScopeAnswersAsAFullReplay
// checks every metric's boards against a full replay.
func LeaderboardBoardScope(metric, period string) (AsOfScope, error) {
	drops, ok := boardDrops[metric]
	if !ok {
		return LeaderboardScope(period)
	}
	drop := map[string]bool{}
	for _, t := range drops {
		drop[baseType(t)] = true
	}
	scope, err := leaderboardScope(period, metric+" "+canonicalPeriod(period), drop)
	if err != nil {
		return AsOfScope{}, err
	}
	scope.Models = []Factory{boardLeaderboard(metric, canonicalPeriod(period))}
	scope.Types = func(typ string) bool { return !drop[baseType(typ)] }
	return scope, err
}

// leaderboardScope is LeaderboardScope(period) that also skips the types
// in drop (base names); name tells the scope's key apart.
func leaderboardScope(period, name string, drop map[string]bool) (AsOfScope, error) {
	per, err := domain.ParsePeriod(period)
	if err != nil {
		return AsOfScope{}, err
	}
	from := domain.PeriodOf(domain.PeriodWeek, per.Start()).Start()
	to := domain.PeriodOf(domain.PeriodWeek, per.End().Add(-time.Nanosecond)).End()
	overlaps := func(p string) bool {
		q, err := domain.ParsePeriod(p)
		return err != nil || (q.Start().Before(to) && from.Before(q.End())) // unreadable: the projection decides
	}
	activity, sale := baseType(domain.TypeActivityLogged), baseType(domain.TypeSaleClosed)
	periodic := map[string]bool{}
	for _, t := range []string{domain.TypeQualityAssessed, domain.TypeManagerRatingRecorded, domain.TypeTargetSet, domain.TypeEvaluationFinalized} {
		periodic[baseType(t)] = true
	}
	keep := func(e domain.Event) bool {
		switch name := baseType(e.Type); {
		case drop[name]:
			return false
		case name == activity || name == sale:
			return !e.OccurredAt.Before(from) && e.OccurredAt.Before(to)
		case periodic[name]:
			p, err := domain.DecodePayload(e.Type, e.Data)
			if err != nil {
				return true // the replay reports it
			}
			switch ev := p.(type) {
			case *domain.QualityAssessed:
				if d, err := domain.ParseDate(ev.Day); ev.Day != "" && err == nil {
					return !d.Before(from) && d.Before(to)
				}
				return overlaps(ev.Week)
			case *domain.ManagerRatingRecorded:
				return overlaps(ev.Month)
			case *domain.TargetSet:
				return overlaps(ev.Period)
			case *domain.EvaluationFinalized:
				return overlaps(ev.Month)
			}
		}
		return true
	}
	key := "weeks " + from.Format(time.DateOnly) + "/" + to.Format(time.DateOnly)
	if name != "" {
		key += " board " + name
	}
	occurred := func(typ string) (time.Time, time.Time) {
		if name := baseType(typ); name == activity || name == sale {
			return from, to
		}
		return time.Time{}, time.Time{}
	}
	return AsOfScope{Key: key, Keep: keep, Occurred: occurred}, nil
}

// baseType is an event type's name without its version ("SaleClosed" for
// "SaleClosed.v1" and "SaleClosed.v2").
func baseType(t string) string {
	name, _, _ := strings.Cut(t, ".")
	return name
}

// cardMemberTypes are the event types of one member's performance that a
// card of another member never reads.
var cardMemberTypes = newTypeSet([]string{domain.TypeActivityLogged, domain.TypeSaleClosed, domain.TypeActivityVoided,
	domain.TypeSaleReversed, domain.TypeQualityAssessed, domain.TypeManagerRatingRecorded, domain.TypeEvaluationFinalized})

// LeaderboardCardScope is the as-of scope of one member's weekly or monthly
// card of one period: LeaderboardScope(period) without the activities,
// sales, voids, ratings and finalized evaluations of the other members (a
// card is computed from its member's rows, the organisation and the rules).
// Those are told apart without decoding when they do not mention the id.
func LeaderboardCardScope(memberID, period string) (AsOfScope, error) {
	if memberID == "" {
		return AsOfScope{}, errors.New("projections: card scope: no member id")
	}
	scope, err := LeaderboardScope(period)
	if err != nil {
		return AsOfScope{}, err
	}
	mine := memberEvents(memberID)
	inPeriod := scope.Keep
	scope.Keep = func(e domain.Event) bool {
		return inPeriod(e) && (!cardMemberTypes.has(e.Type) || mine(e))
	}
	scope.Key += " card of " + strconv.Quote(memberID)
	return scope, nil
}

// memberEvents returns whether an event is about the member (subjectOf):
// those that do not mention the id are refused without being decoded.
func memberEvents(memberID string) func(domain.Event) bool {
	// The id as the event's JSON spells it, when no character of it is
	// escaped there; else every event is decoded.
	var needle []byte
	if quoted, err := json.Marshal(memberID); err == nil && string(quoted) == `"`+memberID+`"` {
		needle = quoted
	}
	return func(e domain.Event) bool {
		if needle != nil && !bytes.Contains(e.Data, needle) {
			return false
		}
		p, err := domain.DecodePayload(e.Type, e.Data)
		if err != nil {
			return true // the replay reports it, or skips a type it does not know
		}
		member, _ := subjectOf(p)
		return member == memberID
	}
}

// auditPartners are the event types whose rows in the audit trail mark
// each other: a void names the event it voided, which names what voided it.
var auditPartners = func() map[string]string {
	m := map[string]string{}
	for _, p := range [][2]string{{domain.TypeActivityLogged, domain.TypeActivityVoided},
		{domain.TypeSaleClosed, domain.TypeSaleReversed}, {domain.TypeRewardGranted, domain.TypeRewardRevoked}} {
		a, b := baseType(p[0]), baseType(p[1])
		m[a], m[b] = b, a
	}
	return m
}()

// AuditScope is the as-of scope of the audit trail's queries with q's
// member and type filters (the others, and paging, do not narrow it):
//   - about one member (MemberID), the events whose member is that one
//     (subjectOf); what marks such a row as voided, and what a void of it
//     names, are that member's events too. Events that do not mention the
//     id are skipped without being decoded;
//   - of one type (Type, with or without its version), the events of that
//     type and of the type whose rows mark them (a void's and its target's).
//
// With neither filter it is the zero scope: the whole trail.
func AuditScope(q AuditQuery) AsOfScope {
	var keeps []func(domain.Event) bool
	var key []string
	var types func(string) bool
	if q.Type != "" { // first: it decodes nothing
		base := baseType(q.Type)
		partner := auditPartners[base]
		types = func(typ string) bool {
			t := baseType(typ)
			return t == base || partner != "" && t == partner
		}
		keeps = append(keeps, func(e domain.Event) bool { return types(e.Type) })
		key = append(key, "type "+strconv.Quote(base))
	}
	if q.MemberID != "" {
		keeps = append(keeps, memberEvents(q.MemberID))
		key = append(key, "member "+strconv.Quote(q.MemberID))
	}
	if len(keeps) == 0 {
		return AsOfScope{}
	}
	return AsOfScope{Key: "audit " + strings.Join(key, ", "), Types: types, Keep: func(e domain.Event) bool {
		for _, keep := range keeps {
			if !keep(e) {
				return false
			}
		}
		return true
	}}
}
