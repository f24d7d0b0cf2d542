package httpapi

import (
	"perfledger/domain"
	"perfledger/projections"
)

// weekCard is a weekly scorecard that also renders as CSV: one row per KPI,
// each carrying the week's totals (Q, q, W) so that a spreadsheet can pivot it.
type weekCard struct{ projections.ScorecardWeek }

type weekCardRow struct {
	MemberID     string        `json:"member_id"`
	Week         string        `json:"week"`
	KPI          string        `json:"kpi"`
	Actual       string        `json:"actual"`
	Target       domain.Fixed  `json:"target"`
	TargetSet    bool          `json:"target_set"`
	Attainment   domain.Fixed  `json:"attainment"`
	Weight       domain.Fixed  `json:"weight"`
	Contribution domain.Fixed  `json:"contribution"`
	Quantity     domain.Fixed  `json:"quantity_score"`
	Quality      *domain.Fixed `json:"quality_score"`
	Total        domain.Fixed  `json:"weekly_total"`
	Events       []string      `json:"events"`
}

func (w weekCard) rows() any {
	out := make([]weekCardRow, 0, len(w.KPIs))
	for _, k := range w.KPIs {
		out = append(out, weekCardRow{MemberID: w.MemberID, Week: w.Week, KPI: k.KPI, Actual: k.ActualText,
			Target: k.Target, TargetSet: k.TargetSet, Attainment: k.Attainment, Weight: k.Weight,
			Contribution: k.Contribution, Quantity: w.Quantity, Quality: w.Quality, Total: w.Total, Events: k.Events})
	}
	return out
}
func (w weekCard) cursor() string   { return "" }
func (w weekCard) position() string { return w.Position }

// monthCard is a monthly scorecard that also renders as a one-row CSV.
type monthCard struct{ projections.ScorecardMonth }

func (m monthCard) rows() any        { return []projections.ScorecardMonth{m.ScorecardMonth} }
func (m monthCard) cursor() string   { return "" }
func (m monthCard) position() string { return m.Position }
