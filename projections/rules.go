package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// rulesSchema keeps every published rule set a read model has seen.
const rulesSchema = `CREATE TABLE IF NOT EXISTS {p}rules (
	position INTEGER PRIMARY KEY,
	effective_from TEXT NOT NULL,
	payload TEXT NOT NULL
)`

// rulesBook holds the scoring rule sets in force over time: rule set v1
// (scoring.DefaultRules) from the beginning, then each ScoringRulesPublished
// from its effective day. A read model loads it at the start of an Apply.
type rulesBook struct {
	from  []string // effective days, ascending; "" for the default
	rules []scoring.Rules
	// defaults remembers the default targets (no TargetSet) of a role and
	// period under the rule set in force at the period's start: a batch
	// scores thousands of member-weeks with a handful of roles, each target
	// an exact computation. Inserting a rule set forgets them.
	defaults map[defaultsKey]map[string]domain.Fixed
}

type defaultsKey struct {
	role string
	per  domain.Period
}

func loadRules(ctx context.Context, s *stmts) (*rulesBook, error) {
	b := &rulesBook{from: []string{""}, rules: []scoring.Rules{scoring.DefaultRules()}}
	rows, err := s.query(ctx, `SELECT effective_from, payload FROM {p}rules ORDER BY effective_from, position`)
	if err != nil {
		return nil, fmt.Errorf("load rules: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var from, payload string
		if err := rows.Scan(&from, &payload); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		var ev domain.ScoringRulesPublished
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		b.insert(from, scoring.FromPublished(ev))
	}
	return b, rows.Err()
}

func (b *rulesBook) insert(from string, r scoring.Rules) {
	clear(b.defaults) // a period may now start under this one
	i := sort.Search(len(b.from), func(i int) bool { return b.from[i] > from })
	b.from = append(b.from[:i], append([]string{from}, b.from[i:]...)...)
	b.rules = append(b.rules[:i], append([]scoring.Rules{r}, b.rules[i:]...)...)
}

// add records a published rule set; ok is false (and nothing is recorded)
// when the rule set is unusable, which the domain refuses anyway.
func (b *rulesBook) add(ctx context.Context, s *stmts, e Envelope, ev *domain.ScoringRulesPublished) (ok bool, err error) {
	r := scoring.FromPublished(*ev)
	if r.Validate() != nil {
		return false, nil
	}
	if _, err := domain.ParseDate(ev.EffectiveFrom); err != nil {
		return false, nil
	}
	if err := s.exec(ctx, `INSERT OR IGNORE INTO {p}rules (position, effective_from, payload) VALUES (?, ?, ?)`,
		int64(e.Position.Commit), ev.EffectiveFrom, jsonText(ev)); err != nil {
		return false, err
	}
	b.insert(ev.EffectiveFrom, r)
	return true, nil
}

// at returns the rule set in force on day t.
func (b *rulesBook) at(t time.Time) scoring.Rules {
	day := fmtDay(t)
	i := sort.Search(len(b.from), func(i int) bool { return b.from[i] > day })
	return b.rules[i-1]
}

// defaultTargets returns the targets of every KPI for a role and period
// under the rule set in force at the period's start when no TargetSet
// applies (Rules.Targets without any). Callers must not modify the map.
func (b *rulesBook) defaultTargets(role string, per domain.Period) (map[string]domain.Fixed, error) {
	k := defaultsKey{role: role, per: per}
	if t, ok := b.defaults[k]; ok {
		return t, nil
	}
	t, err := b.at(per.Start()).Targets(role, per, nil)
	if err != nil {
		return nil, err
	}
	if b.defaults == nil {
		b.defaults = map[defaultsKey]map[string]domain.Fixed{}
	}
	b.defaults[k] = t
	return t, nil
}
