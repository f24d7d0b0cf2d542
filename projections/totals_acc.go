package projections

import (
	"cmp"
	"slices"
	"time"

	"perfledger/domain"
)

// totalsAcc coalesces the deltas of the leaderboard's totals over a batch.
// A contribution touches about twenty rows (four periods × five scopes), so
// the rows are keyed by small interned numbers: hashing and comparing five
// strings per row cost more than writing the rows.
type totalsAcc struct {
	ids   map[string]uint32 // interned strings: metrics, member, team, department, region and period ids
	names []string          // ids[names[i]] == i
	index map[accKey]int32  // rows[index[k]].key == k
	rows  []accRow          // in the order first touched
	days  map[dayKey][4]uint32
	// credited remembers the rows of a credit (see creditKey): the next
	// credit of that member, team and day's periods finds them with one
	// lookup instead of one per row.
	credited map[creditKey]creditRows
}

// creditKey is what selects the rows of totals a credit adds to: the
// metric, the member, the team with its department and region (0 for
// none: the company's rows alone), and the day's periods.
type creditKey struct {
	metric, subject, team, dept, region uint32
	periods                             [4]uint32
}

// creditRows are the rows of a credit, in credit's order: per period, the
// company's row, then (with a team) the department's, the region's, the
// team's and the team-vs-team row.
type creditRows struct {
	n    int
	rows [20]int32 // len(periodKinds) × len(accScopes)
}

type accKey struct {
	scope                            uint8
	metric, period, scopeID, subject uint32
}

type accRow struct {
	key     accKey
	value   int64
	reached uint64
	name    string
}

type dayKey struct {
	year       int
	month, day uint8
}

// accScopes are the scopes of accKey.scope, in credit's order.
var accScopes = []string{ScopeCompany, ScopeDepartment, ScopeRegion, ScopeTeam, ScopeTeams}

func newTotalsAcc() *totalsAcc {
	return &totalsAcc{ids: map[string]uint32{}, index: map[accKey]int32{}, days: map[dayKey][4]uint32{},
		credited: map[creditKey]creditRows{}}
}

func (a *totalsAcc) intern(s string) uint32 {
	if id, ok := a.ids[s]; ok {
		return id
	}
	id := uint32(len(a.names))
	a.ids[s] = id
	a.names = append(a.names, s)
	return id
}

// periods returns the interned week, month, quarter and year of t's day
// (periodKinds' order).
func (a *totalsAcc) periods(t time.Time) [4]uint32 {
	t = t.UTC()
	y, m, d := t.Date()
	k := dayKey{y, uint8(m), uint8(d)}
	if p, ok := a.days[k]; ok {
		return p
	}
	var p [4]uint32
	for i, kind := range periodKinds {
		p[i] = a.intern(domain.PeriodOf(kind, t).String())
	}
	a.days[k] = p
	return p
}

// add adds amount to a row, reporting whether the row is new to the batch,
// and returns the row's index.
func (a *totalsAcc) add(k accKey, amount int64, pos uint64, name string) (int32, bool) {
	i, ok := a.index[k]
	if !ok {
		i = int32(len(a.rows))
		a.index[k] = i
		a.rows = append(a.rows, accRow{key: k})
	}
	a.addAt(i, amount, pos, name)
	return i, !ok
}

// addAt adds amount to the row at index i.
func (a *totalsAcc) addAt(i int32, amount int64, pos uint64, name string) {
	r := &a.rows[i]
	r.value += amount
	r.name = name
	r.reached = max(r.reached, pos)
}

// totKey returns the strings of a row's key.
func (a *totalsAcc) totKey(k accKey) (metric, period, scope, scopeID, subject string) {
	return a.names[k.metric], a.names[k.period], accScopes[k.scope], a.names[k.scopeID], a.names[k.subject]
}

// sorted returns the indexes of the rows in the order of the primary key of
// totals (metric, period, subject, scope, scope id), so that writing them
// moves through its pages once. The interned strings are ranked once, so
// that sorting compares numbers; the scopes' numbers are already in the
// order of their names.
func (a *totalsAcc) sorted() []int32 {
	order := make([]uint32, len(a.names))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(x, y uint32) int { return cmp.Compare(a.names[x], a.names[y]) })
	rank := make([]uint32, len(a.names))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	out := make([]int32, len(a.rows))
	for i := range out {
		out[i] = int32(i)
	}
	slices.SortFunc(out, func(x, y int32) int {
		p, q := a.rows[x].key, a.rows[y].key
		return cmp.Or(cmp.Compare(rank[p.metric], rank[q.metric]), cmp.Compare(rank[p.period], rank[q.period]),
			cmp.Compare(rank[p.subject], rank[q.subject]), cmp.Compare(p.scope, q.scope), cmp.Compare(rank[p.scopeID], rank[q.scopeID]))
	})
	return out
}
