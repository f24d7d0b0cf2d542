package scoring

import (
	"maps"
	"strings"

	"perfledger/domain"
)

// kpiSources are the sources of the KPI codes of rule set v1.
var kpiSources = map[string]string{
	KPIVisits: "visit", KPICalls: "call", KPIQuotes: "quote", KPIRevenue: SourceSale,
}

// SourceOf returns the source that feeds a KPI code in a published rule set,
// which names KPIs only: the v1 codes map to their activity kind or to
// sales; any other code is read as an activity kind in the plural
// ("demos" → "demo") or, without a trailing s, as the kind itself.
func SourceOf(kpi string) string {
	if s, ok := kpiSources[kpi]; ok {
		return s
	}
	return strings.TrimSuffix(kpi, "s")
}

// FromPublished returns the rule set carried by a ScoringRulesPublished
// event. The maps the event leaves out (role norm multipliers, activity
// points, goal-bonus bases) and the clawback window are those of
// DefaultRules. The result is not validated: call Validate.
func FromPublished(e domain.ScoringRulesPublished) Rules {
	r := DefaultRules()
	r.Version, r.Currency, r.Alpha = e.Version, e.Currency, e.Alpha
	r.Weights = EvaluationWeights(e.EvaluationWeights)
	r.KPIs = make([]KPI, 0, len(e.KPIs))
	for _, k := range e.KPIs {
		r.KPIs = append(r.KPIs, KPI{
			Code: k.KPI, Source: SourceOf(k.KPI), Direction: Direction(k.Direction),
			Weight: k.Weight, Cap: k.Cap, WeeklyNorm: k.WeeklyNorm,
		})
	}
	r.Bands = make([]Band, 0, len(e.Bands))
	for _, b := range e.Bands {
		r.Bands = append(r.Bands, Band{Min: b.Min, Level: b.Band, Label: b.Label})
	}
	if e.RoleNormMultipliers != nil {
		r.NormMultipliers = maps.Clone(e.RoleNormMultipliers)
	}
	if e.ActivityPoints != nil {
		r.ActivityPoints = maps.Clone(e.ActivityPoints)
	}
	if e.BonusBaseMinor != nil {
		r.GoalBonusBase = maps.Clone(e.BonusBaseMinor)
	}
	return r
}

// Published returns r as the payload of a ScoringRulesPublished event
// effective from a date (YYYY-MM-DD). FromPublished(r.Published(d)) gives r
// back when r's KPI sources follow SourceOf and its clawback window is the
// default one.
func (r Rules) Published(effectiveFrom string) domain.ScoringRulesPublished {
	e := domain.ScoringRulesPublished{
		Version: r.Version, Currency: r.Currency, Alpha: r.Alpha,
		EvaluationWeights:   domain.EvaluationWeights(r.Weights),
		RoleNormMultipliers: maps.Clone(r.NormMultipliers),
		ActivityPoints:      maps.Clone(r.ActivityPoints),
		BonusBaseMinor:      maps.Clone(r.GoalBonusBase),
		EffectiveFrom:       effectiveFrom,
	}
	for _, k := range r.KPIs {
		e.KPIs = append(e.KPIs, domain.KPIRule{
			KPI: k.Code, Direction: string(k.Direction), Weight: k.Weight, Cap: k.Cap, WeeklyNorm: k.WeeklyNorm,
		})
	}
	for _, b := range r.Bands {
		e.Bands = append(e.Bands, domain.Band{Min: b.Min, Band: b.Level, Label: b.Label})
	}
	return e
}

// Records returns criteria as PromotionEligibilityEvaluated stores them.
func Records(cs []Criterion) []domain.Criterion {
	out := make([]domain.Criterion, len(cs))
	for i, c := range cs {
		out[i] = domain.Criterion{Code: c.Code, Required: c.Required, Observed: c.Observed, Passed: c.Passed}
	}
	return out
}
