package demo

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"perfledger/domain"
	"perfledger/domain/scoring"
)

const (
	hrID          = "hr-01"
	actorAdmin    = "admin"
	actorBonus    = "policy:goal_bonus"
	actorElig     = "policy:eligibility"
	actorClawback = "policy:clawback"
	day           = 24 * time.Hour

	// Command-id indexes of the ledger's policies (projections/policies.go):
	// a command the generator issues in a policy's place gets the id that
	// policy would give it, domain.EventID(trigger event id, index).
	goalBonusIndex   = 1_000
	eligibilityIndex = 1_001
	clawbackIndex    = 1_002
)

type activity struct {
	m    *member
	id   string
	kpi  string // "" when the kind feeds no KPI
	qty  int64
	week domain.Period
}

type sale struct {
	m      *member
	id     string
	amount int64
	month  domain.Period
	week   domain.Period
	at     time.Time
}

type suggestion struct {
	id     string
	author *member
}

type promotion struct {
	id          string
	m           *member
	to          string
	nominator   *member
	eligible    bool
	effectiveOn time.Time
}

// gen is one run of the simulation.
type gen struct {
	cfg   Config
	emit  func(domain.Command, domain.CommandMeta) error
	rnd   *rand.Rand
	rules scoring.Rules
	elig  scoring.EligibilityRules

	ns       string // command id namespace
	n        int    // commands emitted
	stepAt   time.Time
	stepDone bool
	lastTime time.Time

	start, end time.Time // simulated months [start, end)
	hq         *team
	gm         *member
	regions    []*team
	teams      []*team
	members    []*member

	seq       map[string]int
	voids     map[time.Time][]activity
	reversals map[time.Time][]sale
	reviews   map[time.Time][]suggestion
	decisions map[time.Time][]*promotion
	effects   map[time.Time][]*promotion
	// workers are the members who worked at the start of each month: they
	// are evaluated for it.
	workers map[domain.Period][]*member
}

func newGen(cfg Config, emit func(domain.Command, domain.CommandMeta) error) *gen {
	s := cfg.Start.UTC()
	start := time.Date(s.Year(), s.Month(), 1, 0, 0, 0, 0, time.UTC)
	return &gen{
		cfg:       cfg,
		emit:      emit,
		rnd:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed_de30)), //nolint:gosec // a seeded simulation must be reproducible
		rules:     scoring.DefaultRules(),
		elig:      scoring.DefaultEligibility(),
		ns:        "perfledger-demo-" + strconv.FormatInt(cfg.Seed, 10),
		start:     start,
		end:       start.AddDate(0, cfg.Months, 0),
		seq:       map[string]int{},
		voids:     map[time.Time][]activity{},
		reversals: map[time.Time][]sale{},
		reviews:   map[time.Time][]suggestion{},
		decisions: map[time.Time][]*promotion{},
		effects:   map[time.Time][]*promotion{},
		workers:   map[domain.Period][]*member{},
	}
}

// step opens a step at t; the Step hook runs when its first command is emitted.
func (g *gen) step(t time.Time) {
	if t.Before(g.lastTime) {
		t = g.lastTime
	}
	g.stepAt, g.stepDone = t, false
}

// do emits one command and returns its command id.
func (g *gen) do(actor string, cmd domain.Command) (string, error) {
	id := domain.EventID(g.ns, g.n)
	g.n++
	return id, g.doAs(domain.CommandMeta{CommandID: id, Actor: actor, CorrelationID: id}, cmd)
}

// react emits a command in the place of a policy reacting to the first event
// of the trigger command, with the id, causation and correlation the policy
// would give it.
func (g *gen) react(trigger string, index int, actor string, cmd domain.Command) error {
	ev := domain.EventID(trigger, 0)
	return g.doAs(domain.CommandMeta{CommandID: domain.EventID(ev, index), Actor: actor, CorrelationID: trigger, CausationID: ev}, cmd)
}

func (g *gen) doAs(meta domain.CommandMeta, cmd domain.Command) error {
	if !g.stepDone {
		g.stepDone, g.lastTime = true, g.stepAt
		if g.cfg.Step != nil {
			if err := g.cfg.Step(g.stepAt); err != nil {
				return fmt.Errorf("demo: step at %s: %w", g.stepAt.Format(time.RFC3339), err)
			}
		}
	}
	if err := g.emit(cmd, meta); err != nil {
		return fmt.Errorf("demo: %s (%s) at %s: %w", cmd.CommandName(), Key(cmd), g.stepAt.Format(time.RFC3339), err)
	}
	return nil
}

func (g *gen) next(prefix string) string {
	g.seq[prefix]++
	return fmt.Sprintf("%s-%06d", prefix, g.seq[prefix])
}

func (g *gen) run() error {
	g.buildOrg()
	if err := g.setup(); err != nil {
		return err
	}
	last := finalizeDay(domain.PeriodOf(domain.PeriodMonth, g.end.AddDate(0, 0, -1)))
	for d := g.start; !d.After(last); d = d.Add(day) {
		if err := g.simulateDay(d); err != nil {
			return err
		}
	}
	return nil
}

// finalizeDay is the day a month's evaluations are finalized: the Monday
// after the last ISO week with a working day in the month.
func finalizeDay(month domain.Period) time.Time {
	ws := scoring.MonthWeeks(month)
	return ws[len(ws)-1].Week.End()
}

// setup forms the teams, lets the members join and records their profiles.
func (g *gen) setup() error {
	g.step(g.start.Add(7 * time.Hour))
	if _, err := g.do(actorAdmin, domain.FormTeam{TeamID: g.hq.id, Name: g.hq.name, Department: g.hq.dept, Region: g.hq.region}); err != nil {
		return err
	}
	g.step(g.start.Add(7*time.Hour + 5*time.Minute))
	for _, t := range g.regions {
		if _, err := g.do(actorAdmin, domain.FormTeam{TeamID: t.id, Name: t.name, Department: t.dept, Region: t.region, ParentTeamID: t.parent.id}); err != nil {
			return err
		}
	}
	g.step(g.start.Add(7*time.Hour + 10*time.Minute))
	for _, t := range g.teams {
		if _, err := g.do(actorAdmin, domain.FormTeam{TeamID: t.id, Name: t.name, Department: t.dept, Region: t.region, ParentTeamID: t.parent.id}); err != nil {
			return err
		}
	}
	g.step(g.start.Add(7*time.Hour + 15*time.Minute))
	for _, m := range g.members {
		if _, err := g.do(actorAdmin, domain.JoinMember{MemberID: m.id, DisplayName: m.name, Role: m.role,
			TeamID: m.team.id, JoinedOn: dateOf(m.joinedOn)}); err != nil {
			return err
		}
		birth := g.start.AddDate(-22-g.rnd.IntN(35), -g.rnd.IntN(12), -g.rnd.IntN(28))
		p := domain.Profile{
			Birthday: dateOf(birth),
			Hobbies:  []string{pick(g.rnd, hobbies), pick(g.rnd, hobbies)},
			Email:    m.id + "@example.com",
			Phone:    fmt.Sprintf("+34 6%02d %03d %03d", g.rnd.IntN(100), g.rnd.IntN(1000), g.rnd.IntN(1000)),
		}
		if p.Hobbies[0] == p.Hobbies[1] {
			p.Hobbies = p.Hobbies[:1]
		}
		if _, err := g.do(actorAdmin, domain.RecordProfile{MemberID: m.id, Profile: p}); err != nil {
			return err
		}
	}
	return nil
}

func dateOf(t time.Time) string { return t.UTC().Format(domain.DateLayout) }

func isWorkday(d time.Time) bool { return d.Weekday() != time.Saturday && d.Weekday() != time.Sunday }

// lastWorkday reports whether d is the month's last working day.
func lastWorkday(d time.Time) bool {
	if !isWorkday(d) {
		return false
	}
	for n := d.Add(day); n.Month() == d.Month(); n = n.Add(day) {
		if isWorkday(n) {
			return false
		}
	}
	return true
}

// firstWorkdayFrom15 reports whether d is the month's first working day on
// or after the 15th.
func firstWorkdayFrom15(d time.Time) bool {
	if !isWorkday(d) || d.Day() < 15 {
		return false
	}
	for x := d.Add(-day); x.Day() >= 15; x = x.Add(-day) {
		if isWorkday(x) {
			return false
		}
	}
	return true
}

// season scales the month's activity: a quiet August, a slower December.
func season(d time.Time) float64 {
	switch d.Month() {
	case time.August:
		return 0.8
	case time.December:
		return 0.85
	case time.March, time.October:
		return 1.08
	}
	return 1
}

// simulateDay emits the commands of one calendar day, in one step at 18:00.
func (g *gen) simulateDay(d time.Time) error {
	g.step(d.Add(18 * time.Hour))
	month := domain.PeriodOf(domain.PeriodMonth, d)
	inRange := d.Before(g.end)
	if d.Day() == 1 {
		if err := g.effectPromotions(d); err != nil {
			return err
		}
		if inRange {
			if err := g.setTargets(month); err != nil {
				return err
			}
		}
	}
	if inRange && isWorkday(d) {
		if err := g.workday(d, month); err != nil {
			return err
		}
	}
	if err := g.dueCorrections(d); err != nil {
		return err
	}
	if err := g.dueReviews(d); err != nil {
		return err
	}
	if inRange && d.Day() == 10 {
		if err := g.reviseTargets(month); err != nil {
			return err
		}
	}
	if inRange && firstWorkdayFrom15(d) {
		if err := g.transfer(d); err != nil {
			return err
		}
	}
	if inRange && d.Weekday() == time.Friday {
		if err := g.assessWeek(d); err != nil {
			return err
		}
	}
	if inRange && lastWorkday(d) {
		if err := g.rateMonth(month); err != nil {
			return err
		}
	}
	prev := domain.PeriodOf(domain.PeriodMonth, d.AddDate(0, 0, -7))
	for _, p := range []domain.Period{prev, month} {
		if finalizeDay(p).Equal(d) && !p.Start().Before(g.start) && p.Start().Before(g.end) {
			if err := g.finalizeMonth(p, d); err != nil {
				return err
			}
		}
	}
	return g.duePromotionDecisions(d)
}

// setTargets sets each worker's revenue target for the month and each
// team's, and remembers who is evaluated for the month.
func (g *gen) setTargets(month domain.Period) error {
	var ws []*member
	for _, t := range g.teams {
		var sum domain.Fixed
		for _, m := range t.members {
			if !works(m.role) {
				continue
			}
			ws = append(ws, m)
			norm, err := g.rules.TargetFor(m.role, scoring.KPIRevenue, month, nil)
			if err != nil {
				return err
			}
			// Personal targets are rounded to 100.00.
			v := domain.FixedFromInt(int64(math.Round(norm.Value.Float64()*m.targetFactor/100)) * 100)
			id := g.next("tg")
			if _, err := g.do(g.manager(m).id, domain.SetTarget{TargetID: id, SubjectKind: domain.SubjectMember, SubjectID: m.id,
				KPI: scoring.KPIRevenue, Period: month.String(), Value: v}); err != nil {
				return err
			}
			m.targets[scoring.TargetKey{KPI: scoring.KPIRevenue, Period: month}] = v
			m.targetIDs[month] = id
			sum += v
		}
		if sum > 0 {
			if _, err := g.do(t.parent.lead.id, domain.SetTarget{TargetID: g.next("tg"), SubjectKind: domain.SubjectTeam, SubjectID: t.id,
				KPI: scoring.KPIRevenue, Period: month.String(), Value: sum}); err != nil {
				return err
			}
		}
	}
	g.workers[month] = ws
	return nil
}

// reviseTargets lowers a few of the month's personal revenue targets by a
// tenth (a lost key account, a long sick leave).
func (g *gen) reviseTargets(month domain.Period) error {
	key := scoring.TargetKey{KPI: scoring.KPIRevenue, Period: month}
	for _, m := range g.workers[month] {
		id, ok := m.targetIDs[month]
		if !ok || g.rnd.Float64() >= 0.02 {
			continue
		}
		v := m.targets[key] / 10 * 9
		if _, err := g.do(m.team.parent.lead.id, domain.ReviseTarget{TargetID: id, NewValue: v,
			Reason: pick(g.rnd, reviseReasons), ApprovedBy: m.team.parent.lead.id}); err != nil {
			return err
		}
		m.targets[key] = v
	}
	return nil
}

var reviseReasons = []string{"key account lost to a competitor", "long sick leave", "territory reduced"}

var otherKinds = []string{domain.ActivityDemo, domain.ActivityMarketResearch, domain.ActivityEmailCampaign,
	domain.ActivityReport, domain.ActivityTraining, domain.ActivityMeeting, domain.ActivityDemo, domain.ActivityExpo}

var customers = []string{
	"Ferretería López", "Hostal Miramar", "Talleres Ruiz", "Clínica Dental Sonrisa", "Bodegas Altamira",
	"Construcciones Ebro", "Panadería La Espiga", "Farmacia Central", "Hotel Costa Azul", "Gimnasio Atlas",
	"Librería Cervantes", "Autoescuela Vía", "Distribuciones Norte", "Agrícola del Sur", "Óptica Visión",
	"Restaurante El Faro", "Inmobiliaria Sol", "Transportes Rápidos", "Colegio San Jorge", "Muebles Roble",
}

func (g *gen) customer() string {
	return fmt.Sprintf("%s %d", pick(g.rnd, customers), 1+g.rnd.IntN(40))
}

// workday emits one working day: every worker's activities and sales,
// meetings, praise and suggestions.
func (g *gen) workday(d time.Time, month domain.Period) error {
	week := domain.PeriodOf(domain.PeriodWeek, d)
	absent := 0.04
	if d.Month() == time.August {
		absent = 0.2
	}
	for _, m := range g.members {
		if !works(m.role) || g.rnd.Float64() < absent {
			continue
		}
		mult, err := g.rules.NormMultiplier(m.role)
		if err != nil {
			return err
		}
		f := mult.Float64() * m.skill * season(d) * clampF(1+0.15*g.rnd.NormFloat64(), 0.5, 1.5)
		visits, calls := 3.2*f, 12.5*f
		if m.role == scoring.RoleCustomerService {
			visits, calls = visits*0.3, calls*1.5
		}
		counts := []struct {
			kind, kpi string
			n         int64
		}{
			{domain.ActivityVisit, scoring.KPIVisits, poisson(g.rnd, visits)},
			{domain.ActivityCall, scoring.KPICalls, poisson(g.rnd, calls)},
			{domain.ActivityQuote, scoring.KPIQuotes, poisson(g.rnd, 1.05*f)},
		}
		if g.rnd.Float64() < 0.25 {
			counts = append(counts, struct {
				kind, kpi string
				n         int64
			}{pick(g.rnd, otherKinds), "", 1 + int64(g.rnd.IntN(3))})
		}
		for _, c := range counts {
			if c.n == 0 {
				continue
			}
			id := g.next("act")
			cmd := domain.LogActivity{ActivityID: id, MemberID: m.id, Kind: c.kind, Quantity: c.n,
				OccurredAt: d.Add(9*time.Hour + time.Duration(g.rnd.IntN(8*60))*time.Minute)}
			if c.kind == domain.ActivityVisit || c.kind == domain.ActivityQuote || c.kind == domain.ActivityDemo {
				cmd.Customer = g.customer()
			}
			if _, err := g.do(m.id, cmd); err != nil {
				return err
			}
			if c.kpi != "" {
				m.addActual(week, c.kpi, c.n)
			}
			if g.rnd.Float64() < 0.01 {
				due := d.Add(time.Duration(1+g.rnd.IntN(3)) * day)
				g.voids[due] = append(g.voids[due], activity{m: m, id: id, kpi: c.kpi, qty: c.n, week: week})
			}
		}
		// Sales: about 4 200.00 a day at the norm, in a few sales of varying size.
		lambda := 0.9 * math.Sqrt(mult.Float64())
		expected := 4200 * f
		for range poisson(g.rnd, lambda) {
			amount := int64(math.Round(expected / lambda * math.Exp(0.6*g.rnd.NormFloat64()-0.18) * 100))
			amount = max(amount, 5000)
			id := g.next("sale")
			at := d.Add(9*time.Hour + time.Duration(g.rnd.IntN(8*60))*time.Minute)
			if _, err := g.do(m.id, domain.CloseSale{SaleID: id, MemberID: m.id, Customer: g.customer(),
				AmountMinor: amount, Currency: g.rules.Currency, OccurredAt: at}); err != nil {
				return err
			}
			m.addActual(week, scoring.KPIRevenue, amount)
			m.monthRevenue[month] += amount
			if g.rnd.Float64() < 0.025 {
				due := d.Add(time.Duration(3+g.rnd.IntN(70)) * day)
				g.reversals[due] = append(g.reversals[due], sale{m: m, id: id, amount: amount, month: month, week: week, at: at})
			}
		}
		if err := g.culture(d, m); err != nil {
			return err
		}
	}
	return g.meetings(d)
}

var praiseReasons = []string{
	"Closed a difficult renewal with great patience", "Helped the team prepare the quarterly offer",
	"Covered a colleague's visits during sick leave", "Excellent presentation at the customer demo",
	"Shared useful leads with the whole team", "Solved a customer complaint the same day",
}

var suggestionTitles = []struct{ title, body, category string }{
	{"Shared calendar for visits", "Put every planned visit in one shared calendar so that two of us never visit the same customer in one week.", "process"},
	{"Quote templates by sector", "Prepare quote templates for the sectors we sell to most, to answer faster.", "sales"},
	{"Follow-up call after delivery", "Call each customer a week after delivery; it finds problems early and brings repeat sales.", "customer"},
	{"Monthly product training", "One hour a month on a product line, given by whoever knows it best.", "training"},
	{"Route planning by postcode", "Group visits by postcode to cut driving time.", "process"},
	{"Customer satisfaction survey", "A three-question survey after each sale, reviewed in the monthly meeting.", "customer"},
}

// culture emits the day's praise and suggestions of a worker.
func (g *gen) culture(d time.Time, m *member) error {
	if g.rnd.Float64() < 0.04 {
		from := g.manager(m)
		if mates := m.team.members; len(mates) > 1 && g.rnd.Float64() < 0.6 {
			if c := pick(g.rnd, mates); c != m {
				from = c
			}
		}
		if from != nil && from != m {
			if _, err := g.do(from.id, domain.GivePraise{FromID: from.id, ToID: m.id, Reason: pick(g.rnd, praiseReasons)}); err != nil {
				return err
			}
		}
	}
	if g.rnd.Float64() < 0.006 {
		s := pick(g.rnd, suggestionTitles)
		id := g.next("sug")
		if _, err := g.do(m.id, domain.SubmitSuggestion{SuggestionID: id, AuthorID: m.id, Title: s.title, Body: s.body, Category: s.category}); err != nil {
			return err
		}
		due := d.Add(time.Duration(3+g.rnd.IntN(8)) * day)
		g.reviews[due] = append(g.reviews[due], suggestion{id: id, author: m})
	}
	return nil
}

var meetingTopics = map[string][]string{
	domain.MeetingSales:             {"Pipeline review", "Targets of the week", "Open quotes", "Customer visits plan"},
	domain.MeetingExperienceSharing: {"How I won back a lost customer", "Handling price objections", "A good first visit", "Using references"},
	domain.MeetingGuidance:          {"Coaching the new colleagues", "Reading the scorecards", "Quality of quotes"},
	domain.MeetingSummary:           {"Month results by region", "Promotions and rewards", "Next month's priorities"},
}

// meetings emits the regular meetings of the day: the Monday sales meeting
// of every team, the monthly experience sharing (first Wednesday), the
// regional guidance meeting (second Tuesday) and the company summary (last
// working day).
func (g *gen) meetings(d time.Time) error {
	hold := func(t *team, kind string, chair *member, attendees []*member, hour int) error {
		ids := make([]string, 0, len(attendees))
		for _, a := range attendees {
			ids = append(ids, a.id)
		}
		if len(ids) == 0 {
			return nil
		}
		topics := meetingTopics[kind]
		_, err := g.do(chair.id, domain.HoldMeeting{MeetingID: g.next("mtg"), TeamID: t.id, Kind: kind, ChairID: chair.id,
			AttendeeIDs: ids, HeldAt: d.Add(time.Duration(hour) * time.Hour), Topics: []string{pick(g.rnd, topics)}})
		return err
	}
	switch {
	case d.Weekday() == time.Monday:
		for _, t := range g.teams {
			if err := hold(t, domain.MeetingSales, t.lead, t.members, 9); err != nil {
				return err
			}
		}
	case d.Weekday() == time.Wednesday && d.Day() <= 7:
		for _, t := range g.teams {
			var staff []*member
			for _, m := range t.members {
				if m != t.lead && works(m.role) {
					staff = append(staff, m)
				}
			}
			if len(staff) == 0 {
				continue
			}
			chair := pick(g.rnd, staff)
			if err := hold(t, domain.MeetingExperienceSharing, chair, t.members, 16); err != nil {
				return err
			}
			chair.chaired = append(chair.chaired, d)
		}
	case d.Weekday() == time.Tuesday && d.Day() > 7 && d.Day() <= 14:
		for _, r := range g.regions {
			var leads []*member
			for _, t := range g.teams {
				if t.parent == r {
					leads = append(leads, t.lead)
				}
			}
			if err := hold(r, domain.MeetingGuidance, r.lead, leads, 10); err != nil {
				return err
			}
		}
	}
	if lastWorkday(d) {
		var rds []*member
		for _, r := range g.regions {
			rds = append(rds, r.lead)
		}
		if err := hold(g.hq, domain.MeetingSummary, g.gm, rds, 12); err != nil {
			return err
		}
	}
	return nil
}

var voidReasons = []string{"logged twice", "wrong member", "visit was cancelled", "entered on the wrong day"}
var reverseReasons = []string{"customer cancelled the order", "credit note issued", "payment never received", "goods returned"}

// dueCorrections voids activities and reverses sales due today; a reversal
// of a sale whose month already paid a goal bonus claws back its share.
func (g *gen) dueCorrections(d time.Time) error {
	for _, a := range g.voids[d] {
		if _, err := g.do(g.manager(a.m).id, domain.VoidActivity{MemberID: a.m.id, ActivityID: a.id, Reason: pick(g.rnd, voidReasons)}); err != nil {
			return err
		}
		if a.kpi != "" {
			a.m.addActual(a.week, a.kpi, -a.qty)
		}
	}
	delete(g.voids, d)
	for _, s := range g.reversals[d] {
		rev, err := g.do(g.manager(s.m).id, domain.ReverseSale{MemberID: s.m.id, SaleID: s.id, Reason: pick(g.rnd, reverseReasons)})
		if err != nil {
			return err
		}
		s.m.addActual(s.week, scoring.KPIRevenue, -s.amount)
		s.m.monthRevenue[s.month] -= s.amount
		b := s.m.bonuses[s.month]
		if b == nil || b.remaining == 0 || !g.rules.ClawbackApplies(s.at, d.Add(18*time.Hour)) {
			continue
		}
		share, err := g.rules.Clawback(b.role, b.remaining, b.revenue, b.target, s.amount)
		if err != nil {
			return err
		}
		b.revenue = max(b.revenue-s.amount, 0)
		if share == 0 {
			continue
		}
		if err := g.react(rev, clawbackIndex, actorClawback, domain.RevokeReward{MemberID: s.m.id, RewardID: b.rewardID, Reason: domain.RevokeClawback,
			RevocationID: "clawback:" + s.id, AmountMinor: share, Note: fmt.Sprintf("sale %s reversed (event %s)", s.id, domain.EventID(rev, 0))}); err != nil {
			return err
		}
		b.remaining -= share
	}
	delete(g.reversals, d)
	return nil
}

// dueReviews reviews the suggestions due today; an adopted one earns its
// author a suggestion award.
func (g *gen) dueReviews(d time.Time) error {
	for _, s := range g.reviews[d] {
		reviewer := g.manager(s.author)
		decision, rationale := domain.DecisionReject, "Good thought, but not a priority this quarter."
		if g.rnd.Float64() < 0.4 {
			decision, rationale = domain.DecisionAdopt, "Adopted: we start with it next month."
		}
		if _, err := g.do(reviewer.id, domain.ReviewSuggestion{SuggestionID: s.id, ReviewerID: reviewer.id, Decision: decision, Rationale: rationale}); err != nil {
			return err
		}
		if decision != domain.DecisionAdopt {
			continue
		}
		s.author.adopted = append(s.author.adopted, d)
		if _, err := g.do(reviewer.id, domain.GrantReward{RewardID: g.next("rw"), MemberID: s.author.id, Kind: domain.RewardSuggestionAward,
			AmountMinor: 10_000, Currency: g.rules.Currency, Reason: "Suggestion adopted",
			Basis:     domain.RewardBasis{RuleID: "suggestion_award.v1", Inputs: map[string]string{"suggestion_id": s.id}},
			GrantedBy: reviewer.id}); err != nil {
			return err
		}
	}
	delete(g.reviews, d)
	return nil
}

// transfer moves one salesperson to another sales team of the same region,
// now and then.
func (g *gen) transfer(d time.Time) error {
	if g.rnd.Float64() > 0.6 {
		return nil
	}
	from := pick(g.rnd, g.teams)
	var cands []*member
	for _, m := range from.members {
		if m.role == scoring.RoleSalesperson && !m.pending {
			cands = append(cands, m)
		}
	}
	var tos []*team
	for _, t := range g.teams {
		if t != from && t.parent == from.parent && t.dept == from.dept {
			tos = append(tos, t)
		}
	}
	if len(cands) < 2 || len(tos) == 0 {
		return nil
	}
	m, to := pick(g.rnd, cands), pick(g.rnd, tos)
	if _, err := g.do(actorAdmin, domain.TransferMember{MemberID: m.id, ToTeamID: to.id, EffectiveOn: dateOf(d)}); err != nil {
		return err
	}
	from.members = slices.DeleteFunc(from.members, func(x *member) bool { return x == m })
	to.members = append(to.members, m)
	m.team = to
	return nil
}

func (g *gen) rating(mean, spread float64) int {
	return int(clampF(math.Round(mean+spread*g.rnd.NormFloat64()), 1, 5))
}

// assessWeek rates the quality of most workers' week (some weeks go unrated).
func (g *gen) assessWeek(d time.Time) error {
	week := domain.PeriodOf(domain.PeriodWeek, d)
	for _, m := range g.members {
		if !works(m.role) || g.rnd.Float64() < 0.1 {
			continue
		}
		r := g.rating(m.quality, 0.6)
		a := g.manager(m)
		if _, err := g.do(a.id, domain.AssessQuality{MemberID: m.id, Week: week.String(), Rating: r, AssessorID: a.id}); err != nil {
			return err
		}
		m.ratings[week] = append(m.ratings[week], r)
	}
	return nil
}

// rateMonth records most workers' manager rating on the month's last working day.
func (g *gen) rateMonth(month domain.Period) error {
	for _, m := range g.members {
		if !works(m.role) || g.rnd.Float64() < 0.05 {
			continue
		}
		r := g.rating(m.quality+(m.skill-1)*3, 0.5)
		a := g.manager(m)
		if _, err := g.do(a.id, domain.RecordManagerRating{MemberID: m.id, Month: month.String(), Rating: r, RaterID: a.id}); err != nil {
			return err
		}
		m.managerRating[month] = r
	}
	return nil
}

// evaluate scores a member's month with the rule set, as the scorecard
// projection does: weekly totals of the ISO weeks touching the month
// weighted by their working days inside it, the objective against the
// month's revenue target, and the manager rating.
func (g *gen) evaluate(m *member, month domain.Period) (scoring.Components, domain.Fixed, error) {
	var weeks []scoring.WeightedScore
	for _, s := range scoring.MonthWeeks(month) {
		targets, err := g.rules.Targets(m.roleAt(s.Week.Start()), s.Week, m.targets)
		if err != nil {
			return scoring.Components{}, 0, err
		}
		w, err := g.rules.Week(m.weeks[s.Week], targets, m.ratings[s.Week])
		if err != nil {
			return scoring.Components{}, 0, err
		}
		weeks = append(weeks, scoring.WeightedScore{Score: w.Total, WorkingDays: s.WorkingDays})
	}
	var c scoring.Components
	if r, ok := scoring.Rollup(weeks); ok {
		c.Rollup = &r
	}
	if t, ok := m.targets[scoring.TargetKey{KPI: scoring.KPIRevenue, Period: month}]; ok {
		o, err := g.rules.Objective(m.monthRevenue[month], t)
		if err != nil {
			return scoring.Components{}, 0, err
		}
		c.Objective = &o
	}
	if r, ok := m.managerRating[month]; ok {
		v, err := scoring.ManagerScore(r)
		if err != nil {
			return scoring.Components{}, 0, err
		}
		c.Manager = &v
	}
	e, _ := g.rules.Evaluation(c)
	return c, e, nil
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func fixedOrDash(f *domain.Fixed) string {
	if f == nil {
		return "-"
	}
	return f.String()
}

// finalizeMonth finalizes the month's evaluations, grants goal bonuses,
// publicizes the best, and opens a few promotions.
func (g *gen) finalizeMonth(month domain.Period, d time.Time) error {
	type result struct {
		m     *member
		score domain.Fixed
		event string
	}
	var results []result
	for _, m := range g.workers[month] {
		c, e, err := g.evaluate(m, month)
		if err != nil {
			return err
		}
		band := g.rules.Band(e)
		by := g.manager(m)
		role := m.roleAt(month.Start())
		cmdID, err := g.do(by.id, domain.FinalizeEvaluation{MemberID: m.id, Month: month.String(), Components: c,
			Score: e, Band: band.Level, BandLabel: band.Label, RulesVersion: g.rules.Version,
			InputsDigest: digest(m.id, month.String(), fixedOrDash(c.Objective), fixedOrDash(c.Rollup), fixedOrDash(c.Manager)),
			FinalizedBy:  by.id})
		if err != nil {
			return err
		}
		m.evals = append(m.evals, e)
		evID := domain.EventID(cmdID, 0)
		results = append(results, result{m: m, score: e, event: evID})

		target := m.targets[scoring.TargetKey{KPI: scoring.KPIRevenue, Period: month}]
		b, err := g.rules.GoalBonusFor(role, m.monthRevenue[month], target)
		if err != nil {
			return err
		}
		if b.Amount > 0 {
			id := "goal_bonus:" + m.id + ":" + month.String()
			if err := g.react(cmdID, goalBonusIndex, actorBonus, domain.GrantReward{RewardID: id, MemberID: m.id, Kind: domain.RewardGoalBonus,
				AmountMinor: b.Amount, Currency: g.rules.Currency, Reason: fmt.Sprintf("goal bonus %s: revenue attainment %s", month, b.Attainment),
				Basis: domain.RewardBasis{RuleID: fmt.Sprintf("goal_bonus/v%d", g.rules.Version), LinkedEventID: evID, Inputs: map[string]string{
					"month": month.String(), "role": role, "base_minor": strconv.FormatInt(b.Base, 10),
					"revenue_minor": strconv.FormatInt(b.Revenue, 10), "target": b.Target.String(), "attainment": b.Attainment.String(),
				}},
				GrantedBy: actorBonus}); err != nil {
				return err
			}
			m.bonuses[month] = &bonus{rewardID: id, role: role, remaining: b.Amount, revenue: b.Revenue, target: target}
		}
		if band.Level == 5 {
			if _, err := g.do(g.gm.id, domain.GrantReward{RewardID: g.next("rw"), MemberID: m.id, Kind: domain.RewardBadge,
				Reason: "Outstanding " + month.String(), Basis: domain.RewardBasis{LinkedEventID: evID}, GrantedBy: g.gm.id}); err != nil {
				return err
			}
		}
	}
	slices.SortStableFunc(results, func(a, b result) int { return cmp.Compare(b.score, a.score) })
	if len(results) > 0 {
		best := results[0]
		if _, err := g.do(g.gm.id, domain.PublicizeAchievement{SubjectKind: domain.SubjectMember, SubjectID: best.m.id,
			Headline: fmt.Sprintf("Best evaluation of %s: %s", month, best.score.Round2()), EvidenceEventIDs: []string{best.event},
			Audience: domain.AudienceCompany, PublicizedBy: g.gm.id}); err != nil {
			return err
		}
	}
	return g.nominate(month, d, len(results))
}

// nominate opens a few promotions for the strongest workers (and now and
// then a weaker one), with the eligibility the ledger would record.
func (g *gen) nominate(month domain.Period, d time.Time, evaluated int) error {
	if month.Start().Sub(g.start) < 60*day {
		return nil
	}
	// About one nomination a month per 150 evaluated members (one every
	// few months in a small organisation), and never more leaders than the
	// organisation has room for.
	budget := int(poisson(g.rnd, max(float64(evaluated)/150, 0.3)))
	if budget == 0 {
		return nil
	}
	leaders := map[string]int{}
	for _, m := range g.members {
		leaders[m.role]++
	}
	room := map[string]bool{
		scoring.RoleSalesperson:      true,
		scoring.RoleSalesSupervisor:  float64(leaders[scoring.RoleSalesSupervisor]) < 1.3*float64(len(g.teams)),
		scoring.RoleRegionalDirector: leaders[scoring.RoleRegionalDirector] <= len(g.regions),
	}
	type cand struct {
		m    *member
		to   string
		mean float64
	}
	var cands []cand
	for _, m := range g.workers[month] {
		to := ""
		switch m.role {
		case scoring.RoleSalesAssistant, scoring.RoleCustomerService:
			to = scoring.RoleSalesperson
		case scoring.RoleSalesperson:
			to = scoring.RoleSalesSupervisor
		case scoring.RoleSalesSupervisor:
			to = scoring.RoleRegionalDirector
		}
		if to == "" || !room[to] || m.pending || len(m.evals) < 3 {
			continue
		}
		var sum float64
		for _, e := range m.evals[len(m.evals)-3:] {
			sum += e.Float64()
		}
		cands = append(cands, cand{m: m, to: to, mean: sum / 3})
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.mean, a.mean) })
	decideOn := d.Add(5 * day)
	effective := time.Date(decideOn.Year(), decideOn.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	// Managers mostly nominate the strongest of those who meet the rules;
	// now and then someone who does not (HR then rejects, or approves with
	// an exception).
	type choice struct {
		cand
		crit     []scoring.Criterion
		eligible bool
	}
	var chosen []choice
	for _, c := range cands {
		if len(chosen) == budget {
			break
		}
		crit, ok := scoring.Evaluate(g.elig, scoring.Transition{From: c.m.role, To: c.to}, g.observe(c.m, d, effective))
		if ok && g.rnd.Float64() < 0.6 {
			chosen = append(chosen, choice{c, crit, ok})
		}
	}
	if len(cands) > 0 && g.rnd.Float64() < 0.2 {
		c := pick(g.rnd, cands)
		crit, ok := scoring.Evaluate(g.elig, scoring.Transition{From: c.m.role, To: c.to}, g.observe(c.m, d, effective))
		chosen = append(chosen, choice{c, crit, ok})
	}
	for _, c := range chosen {
		if c.m.pending {
			continue
		}
		nominator := g.manager(c.m)
		if c.to == scoring.RoleRegionalDirector {
			nominator = c.m.team.parent.lead
		}
		if nominator == nil || g.rank(nominator.role) <= g.rank(c.m.role) {
			continue
		}
		p := &promotion{id: g.next("promo"), m: c.m, to: c.to, nominator: nominator, effectiveOn: effective}
		nom, err := g.do(nominator.id, domain.NominatePromotion{PromotionID: p.id, MemberID: c.m.id, ToRole: c.to, NominatedBy: nominator.id,
			Justification:       fmt.Sprintf("Consistent results: mean evaluation %.1f over the last three months", c.mean),
			ProposedEffectiveOn: dateOf(effective)})
		if err != nil {
			return err
		}
		if err := g.react(nom, eligibilityIndex, actorElig, domain.RecordEligibility{PromotionID: p.id, RulesVersion: g.elig.Version,
			Criteria: scoring.Records(c.crit), Eligible: c.eligible}); err != nil {
			return err
		}
		p.eligible = c.eligible
		c.m.pending = true
		g.decisions[decideOn] = append(g.decisions[decideOn], p)
	}
	return nil
}

// observe gathers what the eligibility rules look at, as of day d.
func (g *gen) observe(m *member, d, effective time.Time) scoring.Observed {
	o := scoring.Observed{RoleSince: m.roleSince, EffectiveOn: effective, Evaluations: m.evals}
	from := d.AddDate(-1, 0, 0)
	sum := func(ms []*member) (int64, domain.Fixed) {
		var rev int64
		var tgt domain.Fixed
		for _, x := range ms {
			for p := domain.PeriodOf(domain.PeriodMonth, from); p.End().Before(d) || p.End().Equal(d); p = domain.PeriodOf(domain.PeriodMonth, p.End()) {
				rev += x.monthRevenue[p]
				tgt += x.targets[scoring.TargetKey{KPI: scoring.KPIRevenue, Period: p}]
			}
		}
		return rev, tgt
	}
	o.Revenue, o.RevenueTarget = sum([]*member{m})
	o.TeamRevenue, o.TeamRevenueTarget = sum(m.team.members)
	for _, t := range m.adopted {
		if t.After(from) {
			o.AdoptedSuggestions++
		}
	}
	for _, t := range m.chaired {
		if t.After(from) {
			o.ExperienceSharingChaired++
		}
	}
	return o
}

// duePromotionDecisions lets HR decide the nominations due today.
func (g *gen) duePromotionDecisions(d time.Time) error {
	for _, p := range g.decisions[d] {
		approve := g.rnd.Float64() < 0.85
		exception := ""
		if !p.eligible {
			approve = g.rnd.Float64() < 0.25
			exception = "Exceptional customer feedback and team need; criteria to be met within six months."
		}
		if !approve {
			if _, err := g.do(hrID, domain.RejectPromotion{PromotionID: p.id, ApproverID: hrID, ApproverRole: domain.RoleHR,
				Comment: "Not this round; to be reconsidered next semester."}); err != nil {
				return err
			}
			p.m.pending = false
			continue
		}
		cmd := domain.ApprovePromotion{PromotionID: p.id, ApproverID: hrID, ApproverRole: domain.RoleHR, Comment: "Approved."}
		if !p.eligible {
			cmd.ExceptionJustification = exception
		}
		if _, err := g.do(hrID, cmd); err != nil {
			return err
		}
		g.effects[p.effectiveOn] = append(g.effects[p.effectiveOn], p)
	}
	delete(g.decisions, d)
	return nil
}

// effectPromotions effects the approved promotions taking effect on d.
func (g *gen) effectPromotions(d time.Time) error {
	for _, p := range g.effects[d] {
		if _, err := g.do(hrID, domain.EffectPromotion{PromotionID: p.id}); err != nil {
			return err
		}
		p.m.setRole(p.to, d)
		p.m.pending = false
	}
	delete(g.effects, d)
	return nil
}
