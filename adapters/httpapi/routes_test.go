package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"perfledger/domain"
)

var seq atomic.Int64

// fresh returns a new unique id with a readable prefix.
func fresh(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// sampleFunc prepares, for one route and one calling role, a request that
// is within that role's scope (its own member, its team subtree) and valid:
// it may set up what the request needs (a member to transfer, a nomination
// to approve …) through the service. It returns the concrete path and body.
type sampleFunc func(tb testing.TB, e *env, caller string) (path string, body any)

// memberOf is the member a fixture principal speaks for ("rui" for the rep,
// "mara" for the manager).
func (e *env) memberOf(caller string) string { return e.who[caller].MemberID }

// freshMember joins a new salesperson in north-1 (inside the manager's
// subtree) and returns its id.
func (e *env) freshMember(tb testing.TB) string {
	id := fresh("m")
	e.exec(tb, domain.JoinMember{MemberID: id, DisplayName: "Member " + id, Role: "salesperson", TeamID: teamNorth1, JoinedOn: "2024-01-08"})
	return id
}

// nomination nominates rui's colleague for supervisor (by mara) and records
// its eligibility; approved and effected say how far to take it.
func (e *env) nomination(tb testing.TB, approved bool, effectiveOn string) string {
	m := e.freshMember(tb)
	id := fresh("p")
	e.exec(tb, domain.NominatePromotion{PromotionID: id, MemberID: m, ToRole: "sales_supervisor", NominatedBy: "mara",
		Justification: "leads by example", ProposedEffectiveOn: effectiveOn})
	e.exec(tb, domain.RecordEligibility{PromotionID: id, RulesVersion: 1, Eligible: true,
		Criteria: []domain.Criterion{{Code: "E1", Required: ">= 12 months", Observed: "34 months", Passed: true}}})
	if approved {
		e.exec(tb, domain.ApprovePromotion{PromotionID: id, ApproverID: "hana", ApproverRole: domain.RoleHR})
	}
	return id
}

// ratedMember joins a member whose November has a manager rating (so it
// has an evaluation to finalize) and returns it with the rating's position.
func (e *env) ratedMember(tb testing.TB) (string, domain.Position) {
	m := e.freshMember(tb)
	res := e.exec(tb, domain.RecordManagerRating{MemberID: m, Month: "2026-11", Rating: 4, RaterID: "mara"})
	return m, res.Position
}

var rulesVersion atomic.Int64

func init() { rulesVersion.Store(1) }

// samples holds one sampleFunc per route of the route table, by
// "METHOD pattern". TestRouteRoleTable fails if a route has none, so a new
// route cannot be left out.
var samples = map[string]sampleFunc{
	"POST /v1/teams": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/teams", map[string]any{"name": "East", "department": "sales", "region": "east", "parent_team_id": teamNorth}
	},
	"POST /v1/members": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members", map[string]any{"display_name": "Nuno", "role": "salesperson", "team_id": teamNorth1, "joined_on": "2026-11-02"}
	},
	"POST /v1/members/{member_id}/transfer": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/" + e.freshMember(tb) + "/transfer", map[string]any{"to_team_id": teamSouth, "effective_on": "2026-12-01"}
	},
	"POST /v1/members/{member_id}/leave": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/" + e.freshMember(tb) + "/leave", map[string]any{"left_on": "2026-12-01", "reason": "moved abroad"}
	},
	"POST /v1/members/{member_id}/profile": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/" + e.freshMember(tb) + "/profile", map[string]any{"birthday": "1990-04-01", "hobbies": []string{"chess"}, "email": "x@example.org"}
	},
	"POST /v1/members/{member_id}/forget": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/" + e.freshMember(tb) + "/forget", map[string]any{"reason": "erasure request"}
	},
	"POST /v1/role-ladder": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/role-ladder", map[string]any{"roles": domain.DefaultLadder()}
	},
	"POST /v1/rule-sets": func(tb testing.TB, e *env, caller string) (string, any) {
		r := domain.DefaultScoringRules()
		r.Version = int(rulesVersion.Load()) + 1
		if caller == "admin" {
			rulesVersion.Add(1)
		}
		return "/v1/rule-sets", r
	},
	"POST /v1/targets": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/targets", map[string]any{"subject_kind": "member", "subject_id": "rui", "kpi": "visits", "period": "2026-W50", "value": "18"}
	},
	"POST /v1/targets/{target_id}/revise": func(tb testing.TB, e *env, _ string) (string, any) {
		id := fresh("t")
		e.exec(tb, domain.SetTarget{TargetID: id, SubjectKind: "member", SubjectID: "rui", KPI: "visits", Period: "2026-W51", Value: domain.FixedFromInt(15)})
		return "/v1/targets/" + id + "/revise", map[string]any{"new_value": "12", "reason": "holidays"}
	},
	"POST /v1/members/{member_id}/activities": func(tb testing.TB, e *env, caller string) (string, any) {
		return "/v1/members/" + e.memberOfOr(caller, "rui") + "/activities", map[string]any{"kind": "visit", "quantity": 2, "customer": "ACME", "occurred_at": "2026-12-02T10:00:00Z"}
	},
	"POST /v1/members/{member_id}/sales": func(tb testing.TB, e *env, caller string) (string, any) {
		return "/v1/members/" + e.memberOfOr(caller, "rui") + "/sales", map[string]any{"customer": "ACME", "amount_minor": 125000, "currency": "EUR", "occurred_at": "2026-12-02T11:00:00Z"}
	},
	"POST /v1/members/{member_id}/activities/{activity_id}/void": func(tb testing.TB, e *env, _ string) (string, any) {
		id := fresh("a")
		e.exec(tb, domain.LogActivity{ActivityID: id, MemberID: "rui", Kind: "call", Quantity: 3})
		return "/v1/members/rui/activities/" + id + "/void", map[string]any{"reason": "logged twice"}
	},
	"POST /v1/members/{member_id}/sales/{sale_id}/reverse": func(tb testing.TB, e *env, _ string) (string, any) {
		id := fresh("s")
		e.exec(tb, domain.CloseSale{SaleID: id, MemberID: "rui", Customer: "ACME", AmountMinor: 5000, Currency: "EUR"})
		return "/v1/members/rui/sales/" + id + "/reverse", map[string]any{"reason": "order cancelled"}
	},
	"POST /v1/members/{member_id}/quality": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/rui/quality", map[string]any{"week": "2026-W48", "rating": 4, "comment": "tidy quotes"}
	},
	"POST /v1/members/{member_id}/ratings": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/" + e.freshMember(tb) + "/ratings", map[string]any{"month": "2026-11", "rating": 4}
	},
	"POST /v1/members/{member_id}/evaluations/{month}/finalize": func(tb testing.TB, e *env, _ string) (string, any) {
		m, pos := e.ratedMember(tb)
		return "/v1/members/" + m + "/evaluations/2026-11/finalize?min_position=" + pos.String(), nil
	},
	"POST /v1/praise": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/praise", map[string]any{"to_id": "rita", "reason": "great demo"}
	},
	"POST /v1/achievements": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/achievements", map[string]any{"subject_kind": "member", "subject_id": "rui", "headline": "Top visits", "audience": "company"}
	},
	"POST /v1/meetings": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/meetings", map[string]any{"team_id": teamNorth, "kind": "experience_sharing", "attendee_ids": []string{"rui", "rita"}, "held_at": "2026-12-01T09:00:00Z"}
	},
	"POST /v1/suggestions": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/suggestions", map[string]any{"title": "Shared CRM notes", "body": "Keep visit notes in one place", "category": "process"}
	},
	"POST /v1/suggestions/{suggestion_id}/review": func(tb testing.TB, e *env, _ string) (string, any) {
		id := fresh("sg")
		e.exec(tb, domain.SubmitSuggestion{SuggestionID: id, AuthorID: "rui", Title: "Idea", Body: "Do it"})
		return "/v1/suggestions/" + id + "/review", map[string]any{"decision": "adopt", "rationale": "cheap and useful"}
	},
	"POST /v1/promotions": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions", map[string]any{"member_id": e.freshMember(tb), "to_role": "sales_supervisor", "justification": "ready", "proposed_effective_on": "2027-01-01"}
	},
	"POST /v1/promotions/{promotion_id}/approve": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions/" + e.nomination(tb, false, "2027-01-01") + "/approve", map[string]any{"comment": "well earned"}
	},
	"POST /v1/promotions/{promotion_id}/reject": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions/" + e.nomination(tb, false, "2027-01-01") + "/reject", map[string]any{"comment": "not yet"}
	},
	"POST /v1/promotions/{promotion_id}/effect": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions/" + e.nomination(tb, true, "2026-12-03") + "/effect", nil
	},
	"POST /v1/promotions/{promotion_id}/rescind": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions/" + e.nomination(tb, true, "2027-01-01") + "/rescind", map[string]any{"reason": "approved by mistake"}
	},
	"POST /v1/members/{member_id}/rewards": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/rui/rewards", map[string]any{"kind": "spot_award", "amount_minor": 5000, "currency": "EUR", "reason": "saved a key account"}
	},
	"POST /v1/members/{member_id}/rewards/{reward_id}/revoke": func(tb testing.TB, e *env, _ string) (string, any) {
		id := fresh("r")
		e.exec(tb, domain.GrantReward{RewardID: id, MemberID: "rui", Kind: "badge", Reason: "first sale", GrantedBy: "mara"})
		return "/v1/members/rui/rewards/" + id + "/revoke", map[string]any{"reason": "correction"}
	},
	"GET /v1/leaderboards/{metric}": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/leaderboards/revenue?period=2026-11", nil
	},
	"POST /v1/tokens": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/tokens", map[string]any{"role": "rep", "member_id": "rita", "team_id": teamNorth1, "label": "Rita's phone"}
	},
	"GET /v1/tokens": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/tokens?limit=2", nil
	},
	"POST /v1/tokens/{id}/revoke": func(tb testing.TB, e *env, _ string) (string, any) {
		info, _, err := e.api.Tokens().Create(tb.Context(), NewToken{Role: RoleAuditor, Label: "temp"})
		if err != nil {
			tb.Fatal(err)
		}
		return "/v1/tokens/" + info.TokenID + "/revoke", nil
	},
	"GET /v1/members/{member_id}/history": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/rui/history?limit=5", nil
	},
	"GET /v1/members/{member_id}/scorecards/weeks/{week}": func(tb testing.TB, e *env, _ string) (string, any) {
		e.settle(tb)
		return "/v1/members/rui/scorecards/weeks/2026-W48", nil
	},
	"GET /v1/members/{member_id}/scorecards/months/{month}": func(tb testing.TB, e *env, _ string) (string, any) {
		e.settle(tb)
		return "/v1/members/rui/scorecards/months/2026-11", nil
	},
	"GET /v1/evaluations": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/evaluations?month=2026-11", nil
	},
	"GET /v1/promotions": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/promotions?member_id=rui&from=2026-01-01", nil
	},
	"GET /v1/members/{member_id}/promotions": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/rui/promotions", nil
	},
	"GET /v1/members/{member_id}/rewards": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/members/rui/rewards?period=2026", nil
	},
	"GET /v1/rewards": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/rewards?period=2026-12", nil
	},
	"GET /v1/audit/events": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/audit/events?member_id=rui&type=SaleClosed", nil
	},
	"GET /v1/honour-roll": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/honour-roll?audience=company", nil
	},
	"GET /v1/suggestions": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/suggestions?status=open", nil
	},
	"GET /v1/directory": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/directory?as_of=2026-12-01&team_id=" + teamNorth1, nil
	},
	"GET /v1/audit/verify": func(tb testing.TB, e *env, _ string) (string, any) {
		return "/v1/audit/verify", nil
	},
}

// memberOfOr is the caller's member, or def for callers without one.
func (e *env) memberOfOr(caller, def string) string {
	if m := e.memberOf(caller); m != "" {
		return m
	}
	return def
}

// pending lists routes whose success path needs a read model that is not
// wired yet; the table still checks their refusals.
var pending = map[string]bool{}

// TestRouteRoleTable calls every route of the route table as every role
// (and anonymously): a role the route allows gets 2xx, any other 403, no
// token 401; a refused request appends nothing.
func TestRouteRoleTable(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.api.routes {
		key := rt.method + " " + rt.path
		sample, ok := samples[key]
		if !ok {
			t.Errorf("%s: no sample request in the route × role table", key)
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			path, body := sample(t, e, "")
			before := e.events(t)
			res := e.do(t, "", rt.method, path, body, nil)
			if res.status != http.StatusUnauthorized || res.errorCode() != "unauthenticated" {
				t.Errorf("anonymous: %d %s, want 401 unauthenticated", res.status, res.body)
			}
			if n := e.events(t) - before; n != 0 {
				t.Errorf("anonymous: %d events appended, want none", n)
			}
			for _, role := range Roles {
				caller := roleToken[role]
				path, body := sample(t, e, caller)
				before = e.events(t)
				res := e.do(t, caller, rt.method, path, body, nil)
				after := e.events(t)
				switch {
				case !rt.allows(role):
					if res.status != http.StatusForbidden {
						t.Errorf("%s: %d %s, want 403", role, res.status, res.body)
					}
					if after != before {
						t.Errorf("%s: refused, but %d events were appended", role, after-before)
					}
				case pending[key]:
				default:
					want := http.StatusOK
					if rt.write {
						want = http.StatusCreated
					}
					if res.status != want {
						t.Errorf("%s: %d %s, want %d", role, res.status, res.body, want)
					}
				}
			}
		})
	}
}

// TestAuditorReadsEverythingWritesNothing: issue 6 point 6.
func TestAuditorReadsEverythingWritesNothing(t *testing.T) {
	e := newEnv(t)
	reads, writes := 0, 0
	for _, rt := range e.api.routes {
		key := rt.method + " " + rt.path
		sample, ok := samples[key]
		if !ok {
			continue // reported by TestRouteRoleTable
		}
		path, body := sample(t, e, "auditor")
		before := e.events(t)
		res := e.do(t, "auditor", rt.method, path, body, nil)
		if rt.write {
			writes++
			if res.status != http.StatusForbidden {
				t.Errorf("auditor %s: %d, want 403", key, res.status)
			}
			if n := e.events(t) - before; n != 0 {
				t.Errorf("auditor %s appended %d events", key, n)
			}
			continue
		}
		reads++
		if res.status != http.StatusOK {
			t.Errorf("auditor %s: %d %s, want 200", key, res.status, res.body)
		}
	}
	if reads == 0 || writes == 0 {
		t.Fatalf("reads=%d writes=%d: the table is empty", reads, writes)
	}
	if !strings.Contains(e.logs.String(), "request refused") {
		t.Error("refusals are not logged")
	}
	for _, s := range e.tok {
		if strings.Contains(e.logs.String(), s) {
			t.Fatal("a token secret appears in the log")
		}
	}
}
