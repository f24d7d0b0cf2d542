package httpapi

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"perfledger/domain"
	"perfledger/projections"
)

// TestPromotionRecordForHR: issue 6 point 5. A promotion goes through its
// whole life (nomination, eligibility with observed values, an override
// approval with its justification, effect, rescission) and both promotion
// routes give HR the full record, in JSON and CSV, filtered by dates and team.
func TestPromotionRecordForHR(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, "manager", "POST", "/v1/promotions", `{"member_id":"rui","to_role":"sales_supervisor","justification":"leads the north-1 visits","proposed_effective_on":"2026-12-03"}`, nil)
	if res.status != http.StatusCreated {
		t.Fatalf("nominate: %d %s", res.status, res.body)
	}
	var w writeReply
	res.decode(t, &w)
	id := w.ID
	criteria := []domain.Criterion{{Code: "E1", Required: ">= 12 months", Observed: "34 months", Passed: true}, {Code: "E2", Required: ">= 100", Observed: "96.5", Passed: false}}
	e.exec(t, domain.RecordEligibility{PromotionID: id, RulesVersion: 1, Eligible: false, Criteria: criteria})
	for _, step := range []struct{ path, body string }{
		{"/approve", `{"exception_justification":"covered the region alone for 3 months"}`},
		{"/effect", `{}`},
		{"/rescind", `{"reason":"the region was merged"}`},
	} {
		res := e.do(t, "hr", "POST", "/v1/promotions/"+id+step.path, step.body, nil)
		if res.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", step.path, res.status, res.body)
		}
		res.decode(t, &w)
	}
	want := projections.PromotionRecord{
		PromotionID: id, MemberID: "rui", FromRole: "salesperson", ToRole: "sales_supervisor", Status: "rescinded",
		NominatedBy: "mara", Justification: "leads the north-1 visits", ProposedEffectiveOn: "2026-12-03",
		RulesVersion: 1, Criteria: criteria, Decision: "approved", ApproverID: "hana", Override: true,
		ExceptionJustification: "covered the region alone for 3 months", EffectiveOn: "2026-12-03",
		RescissionReason: "the region was merged", RescindedBy: "hana",
	}
	ignore := cmpopts.IgnoreFields(projections.PromotionRecord{}, "NominatedAt", "DecidedAt", "RescindedAt", "Events", "Eligible", "DecisionComment")
	check := func(t *testing.T, path string) {
		t.Helper()
		res := e.do(t, "hr", "GET", path+"&min_position="+w.Position, nil, nil)
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.status, res.body)
		}
		var p Page[projections.PromotionRecord]
		res.decode(t, &p)
		if len(p.Items) != 1 {
			t.Fatalf("%s: %d records: %s", path, len(p.Items), res.body)
		}
		got := p.Items[0]
		if diff := cmp.Diff(want, got, ignore); diff != "" {
			t.Errorf("%s (-want +got):\n%s", path, diff)
		}
		if got.Eligible == nil || *got.Eligible || got.NominatedAt == "" || got.DecidedAt == "" || got.RescindedAt == "" || len(got.Events) < 5 {
			t.Errorf("%s: eligible %v, nominated %q, decided %q, rescinded %q, %d steps", path, got.Eligible, got.NominatedAt, got.DecidedAt, got.RescindedAt, len(got.Events))
		}
	}
	t.Run("member_route", func(t *testing.T) { check(t, "/v1/members/rui/promotions?from=2026-01-01") })
	t.Run("register_filtered_by_dates_and_team", func(t *testing.T) {
		check(t, "/v1/promotions?from=2026-01-01&to=2027-12-31&team="+teamNorth)
		for _, q := range []string{"?team=" + teamSouth, "?from=2027-01-01", "?to=2025-12-31"} {
			var p Page[projections.PromotionRecord]
			res := e.do(t, "hr", "GET", "/v1/promotions"+q, nil, nil)
			res.decode(t, &p)
			if res.status != http.StatusOK || len(p.Items) != 0 {
				t.Errorf("%s: %d, %d records, want none", q, res.status, len(p.Items))
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		res := e.do(t, "hr", "GET", "/v1/promotions?team="+teamNorth, nil, map[string]string{"Accept": "text/csv"})
		if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("%d %s %s", res.status, res.header.Get("Content-Type"), res.body)
		}
		rows, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("%d rows, %v: %s", len(rows), err, res.body)
		}
		rec := map[string]string{}
		for i, h := range rows[0] {
			rec[h] = rows[1][i]
		}
		for col, v := range map[string]string{"promotion_id": id, "override": "true", "exception_justification": want.ExceptionJustification,
			"effective_on": "2026-12-03", "rescission_reason": want.RescissionReason, "nominated_by": "mara"} {
			if rec[col] != v {
				t.Errorf("CSV column %s = %q, want %q (header %v)", col, rec[col], v, rows[0])
			}
		}
		if !strings.Contains(rec["criteria"], "96.5") {
			t.Errorf("CSV criteria %q lack the observed values", rec["criteria"])
		}
	})
}
