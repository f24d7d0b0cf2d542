package demo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

// team is a simulated team.
type team struct {
	id, name, dept, region string
	parent                 *team
	lead                   *member // supervisor; the regional director of a region team; the GM of HQ
	members                []*member
}

// member is a simulated member and what the generator knows of them.
type member struct {
	id, name  string
	role      string
	roleSince time.Time
	joinedOn  time.Time
	team      *team
	roles     []roleSpan // role history, oldest first

	skill        float64 // performance multiplier around 1
	quality      float64 // mean quality rating, 1–5
	targetFactor float64 // personal revenue target against the role norm

	pending bool // an open or approved, not yet effected, promotion

	weeks         map[domain.Period]map[string]int64 // KPI actuals by ISO week (net of voids and reversals)
	ratings       map[domain.Period][]int            // quality ratings by ISO week
	managerRating map[domain.Period]int              // by month
	monthRevenue  map[domain.Period]int64            // net revenue by month, minor units
	targets       map[scoring.TargetKey]domain.Fixed // known targets (TargetSet, revisions applied)
	targetIDs     map[domain.Period]string           // the month's revenue target id
	bonuses       map[domain.Period]*bonus           // goal bonuses by month
	evals         []domain.Fixed                     // finalized evaluation scores, oldest first
	adopted       []time.Time                        // when a suggestion of theirs was adopted
	chaired       []time.Time                        // when they chaired an experience-sharing meeting
}

type roleSpan struct {
	from time.Time
	role string
}

type bonus struct {
	rewardID  string
	role      string
	remaining int64 // minor units still granted
	revenue   int64 // the month's revenue still counted
	target    domain.Fixed
}

// works reports whether the role logs daily work and is evaluated monthly.
func works(role string) bool {
	switch role {
	case scoring.RoleSalesAssistant, scoring.RoleCustomerService, scoring.RoleSalesperson, scoring.RoleSalesSupervisor:
		return true
	}
	return false
}

// roleAt returns the member's role at t.
func (m *member) roleAt(t time.Time) string {
	r := m.roles[0].role
	for _, s := range m.roles {
		if !s.from.After(t) {
			r = s.role
		}
	}
	return r
}

func (m *member) setRole(role string, from time.Time) {
	m.role, m.roleSince = role, from
	m.roles = append(m.roles, roleSpan{from: from, role: role})
}

func (m *member) addActual(week domain.Period, kpi string, n int64) {
	w := m.weeks[week]
	if w == nil {
		w = map[string]int64{}
		m.weeks[week] = w
	}
	w[kpi] += n
}

var regions = []struct{ code, name string }{
	{"mad", "Madrid"}, {"bcn", "Barcelona"}, {"vlc", "Valencia"}, {"svq", "Sevilla"},
}

var firstNames = []string{
	"Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Leo", "María", "Pablo", "Julia", "Daniel",
	"Paula", "Álvaro", "Valeria", "Adrián", "Emma", "Manuel", "Carmen", "Javier", "Elena", "Diego",
	"Ana", "Sergio", "Laura", "Marcos", "Irene", "Jorge", "Claudia", "Iván", "Noa", "Rubén",
	"Alba", "Carlos", "Sara", "Raúl", "Marta", "Óscar", "Nerea", "Andrés", "Inés", "Tomás",
}

var lastNames = []string{
	"García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez",
	"Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
	"Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos",
	"Gil", "Ramírez", "Serrano", "Blanco", "Molina", "Morales", "Suárez", "Ortega", "Delgado",
}

var hobbies = []string{
	"cycling", "chess", "flamenco guitar", "running", "photography", "cooking", "padel",
	"hiking", "reading", "football", "painting", "sailing", "gardening", "theatre",
}

// buildOrg lays out the organisation: a general manager in HQ, one regional
// director per region, and teams of about eight (a supervisor and staff) in
// each region.
func (g *gen) buildOrg() {
	n := g.cfg.Members
	nRegions := min(max(n/50, 1), len(regions))
	g.hq = &team{id: "t-hq", name: "Dirección general", dept: domain.DepartmentCommercial, region: "España"}
	g.gm = g.newMember(scoring.RoleGeneralManager, g.hq, 8, 15)
	g.hq.lead = g.gm

	staff := n - 1 - nRegions
	for r := range nRegions {
		reg := regions[r]
		rt := &team{id: "t-" + reg.code, name: "Región " + reg.name, dept: domain.DepartmentSales, region: reg.name, parent: g.hq}
		g.regions = append(g.regions, rt)
		rd := g.newMember(scoring.RoleRegionalDirector, rt, 5, 12)
		rt.lead = rd
		// This region's share of the staff, the last region takes the rest.
		share := staff / nRegions
		if r == nRegions-1 {
			share = staff - share*(nRegions-1)
		}
		nTeams := max(1, int(math.Round(float64(share)/8)))
		for t := range nTeams {
			size := share / nTeams
			if t < share%nTeams {
				size++
			}
			dept := domain.DepartmentSales
			switch {
			case t == 1 && share >= 16:
				dept = domain.DepartmentOperations
			case t == 2 && share >= 32:
				dept = domain.DepartmentCommercial
			}
			tm := &team{id: fmt.Sprintf("t-%s-%d", reg.code, t+1), dept: dept, region: reg.name, parent: rt}
			tm.name = fmt.Sprintf("%s %s %d", reg.name, deptName[dept], t+1)
			g.teams = append(g.teams, tm)
			tm.lead = g.newMember(scoring.RoleSalesSupervisor, tm, 2, 8)
			for range size - 1 {
				g.newMember(g.staffRole(dept), tm, 0, 6)
			}
		}
	}
}

var deptName = map[string]string{
	domain.DepartmentSales: "Ventas", domain.DepartmentOperations: "Atención al cliente", domain.DepartmentCommercial: "Comercial",
}

func (g *gen) staffRole(dept string) string {
	x := g.rnd.Float64()
	switch dept {
	case domain.DepartmentOperations:
		if x < 0.7 {
			return scoring.RoleCustomerService
		}
	case domain.DepartmentCommercial:
		if x < 0.5 {
			return scoring.RoleSalesAssistant
		}
	default:
		if x < 0.2 {
			return scoring.RoleSalesAssistant
		}
	}
	return scoring.RoleSalesperson
}

// newMember creates a member of tm who joined between minYears and
// maxYears before the start (a tenth of the staff joined only months
// before).
func (g *gen) newMember(role string, tm *team, minYears, maxYears float64) *member {
	id := fmt.Sprintf("m%04d", len(g.members)+1)
	years := minYears + g.rnd.Float64()*(maxYears-minYears)
	if maxYears <= 6 && g.rnd.Float64() < 0.1 {
		years = 0.1 + g.rnd.Float64()*0.4
	}
	joined := g.start.AddDate(0, 0, -int(years*365)-1)
	m := &member{
		id:            id,
		name:          firstNames[g.rnd.IntN(len(firstNames))] + " " + lastNames[g.rnd.IntN(len(lastNames))] + " " + lastNames[g.rnd.IntN(len(lastNames))],
		joinedOn:      joined,
		team:          tm,
		skill:         clampF(1+0.16*g.rnd.NormFloat64(), 0.65, 1.4),
		quality:       clampF(3.9+0.5*g.rnd.NormFloat64(), 2.5, 4.8),
		targetFactor:  clampF(1+0.08*g.rnd.NormFloat64(), 0.85, 1.2),
		weeks:         map[domain.Period]map[string]int64{},
		ratings:       map[domain.Period][]int{},
		managerRating: map[domain.Period]int{},
		monthRevenue:  map[domain.Period]int64{},
		targets:       map[scoring.TargetKey]domain.Fixed{},
		targetIDs:     map[domain.Period]string{},
		bonuses:       map[domain.Period]*bonus{},
	}
	m.setRole(role, joined)
	tm.members = append(tm.members, m)
	g.members = append(g.members, m)
	return m
}

// manager returns who rates, assesses and finalizes m: the team's
// supervisor for staff, the regional director for a team's lead, the
// general manager for a regional director.
func (g *gen) manager(m *member) *member {
	switch {
	case m == g.gm:
		return nil
	case m.team.lead != nil && m.team.lead != m && g.rank(m.team.lead.role) > g.rank(m.role):
		return m.team.lead
	case m.team.parent != nil && m.team.parent.lead != nil && m.team.parent.lead != m:
		return m.team.parent.lead
	}
	return g.gm
}

func (g *gen) rank(role string) int {
	for i, r := range domain.DefaultLadder() {
		if r == role {
			return i
		}
	}
	return -1
}

func clampF(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// poisson draws from a Poisson distribution of mean lambda (Knuth; lambda is small).
func poisson(r *rand.Rand, lambda float64) int64 {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), int64(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }
