// Package demo generates a realistic organisation and months of its work as
// domain commands, deterministically from a seed: teams in regions and
// departments, members on the ladder, activities, sales, quality and manager
// ratings, targets, finalized evaluations scored with domain/scoring, voids
// and reversals, praise, suggestions, meetings, promotions and rewards.
//
// # Steps, clocks and parallelism
//
// The simulation advances in steps. Before the commands of a step are
// emitted, Config.Step (when set) is called with the step's business time;
// steps come in non-decreasing time order. A caller executing the commands
// through a domain.Service must run each command with the service clock at
// its step's time (the Clock type does this): rules such as "an evaluation is
// finalized only after its month ended" and "a promotion is effected on its
// effective date, never before its approval" are checked against that
// clock, and the events' recorded_at follows the simulated timeline.
//
// Within one step, commands with different Key values never depend on each
// other: a caller may execute them concurrently and in any order, provided
// commands with the same Key run in the order they were emitted and every
// command of a step has completed before the next step begins (Step may
// block until then). Run does all of this with a pool of workers; a
// sequential caller needs none of it. On a durable store, executing with
// many workers lets concurrent appends share commits: that is what makes a
// year of a 200-member organisation (about 200 000 commands) load quickly.
//
// The generator plays the ledger's policies itself: it records promotion
// eligibility (actor "policy:eligibility"), grants goal bonuses (actor
// "policy:goal_bonus") from the evaluations it finalizes and claws back the
// share of reversed sales (actor "policy:clawback"), so its output is meant
// for a ledger whose policy handlers are not running while it is loaded.
// Those commands carry the command id, reward id, causation and correlation
// the policies of package projections would give them, so that a policy
// later reacting to the same trigger issues the same command id (and, for a
// goal bonus, the same reward id, which the domain refuses twice) rather than
// a fresh command.
// Other commands carry the acting member's id, "admin" or "hr-01" as actor.
//
// Ids are readable and fixed (teams "t-mad-1", members "m0001", activities
// "act-000001" …) and command ids are UUIDs derived from the seed and the
// command's rank: generate into an empty ledger; a second run into the same
// one is refused by the domain (the members already joined).
//
// RecordProfile commands carry personal data: the service needs a KeyStore.
package demo

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"perfledger/domain"
)

// Config configures a generation.
type Config struct {
	// Members is the number of members (at least MinMembers).
	Members int
	// Months is the number of calendar months simulated (1 to 120).
	Months int
	// Seed makes the generation deterministic: the same Config gives the same
	// commands, ids and times.
	Seed int64
	// Start lies in the first simulated month; the simulation starts on the
	// first day of that month (UTC). Members joined before it.
	Start time.Time
	// Step, when set, is called at the start of every step with the step's
	// business time (see the package documentation). An error stops the
	// generation and is returned.
	Step func(now time.Time) error
}

// MinMembers is the smallest organisation the generator builds: a general
// manager, a regional director, a supervisor and a few staff.
const MinMembers = 6

// Validate reports whether the configuration can be generated.
func (c Config) Validate() error {
	var errs []error
	if c.Members < MinMembers || c.Members > 100_000 {
		errs = append(errs, fmt.Errorf("members %d: want %d to 100000", c.Members, MinMembers))
	}
	if c.Months < 1 || c.Months > 120 {
		errs = append(errs, fmt.Errorf("months %d: want 1 to 120", c.Months))
	}
	if c.Start.IsZero() {
		errs = append(errs, errors.New("start is required"))
	}
	return errors.Join(errs...)
}

// DefaultStart returns the first day of a month such that a simulation of
// that many months, and the finalization of its last month (up to a week
// after that month), lies before now: months calendar months before now's
// month, or one more when now is in the first week of its month.
func DefaultStart(now time.Time, months int) time.Time {
	now = now.UTC()
	y, m, d := now.Date()
	if d <= 7 {
		months++
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).AddDate(0, -months, 0)
}

// Clock is a settable clock for a domain.Service running a generation: pass
// c.Now as the service clock and c.Set from Config.Step. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Now returns the time last set (the zero time before any Set).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Key returns the partition key of a command within a step: commands of one
// step with different keys are independent (see the package documentation).
// It is the kind and id of the aggregate the command writes to, or of the
// promotion for EffectPromotion and RescindPromotion.
func Key(cmd domain.Command) string {
	switch c := cmd.(type) {
	case domain.FormTeam:
		return "team:" + c.TeamID
	case domain.HoldMeeting:
		return "team:" + c.TeamID
	case domain.JoinMember:
		return "member:" + c.MemberID
	case domain.TransferMember:
		return "member:" + c.MemberID
	case domain.RecordLeave:
		return "member:" + c.MemberID
	case domain.RecordProfile:
		return "member:" + c.MemberID
	case domain.ForgetMember:
		return "member:" + c.MemberID
	case domain.LogActivity:
		return "member:" + c.MemberID
	case domain.CloseSale:
		return "member:" + c.MemberID
	case domain.VoidActivity:
		return "member:" + c.MemberID
	case domain.ReverseSale:
		return "member:" + c.MemberID
	case domain.AssessQuality:
		return "member:" + c.MemberID
	case domain.RecordManagerRating:
		return "member:" + c.MemberID
	case domain.FinalizeEvaluation:
		return "member:" + c.MemberID
	case domain.GivePraise:
		return "member:" + c.ToID
	case domain.GrantReward:
		return "member:" + c.MemberID
	case domain.RevokeReward:
		return "member:" + c.MemberID
	case domain.PublicizeAchievement:
		return c.SubjectKind + ":" + c.SubjectID
	case domain.SetTarget:
		return "target:" + c.TargetID
	case domain.ReviseTarget:
		return "target:" + c.TargetID
	case domain.SubmitSuggestion:
		return "suggestion:" + c.SuggestionID
	case domain.ReviewSuggestion:
		return "suggestion:" + c.SuggestionID
	case domain.NominatePromotion:
		return "promotion:" + c.PromotionID
	case domain.RecordEligibility:
		return "promotion:" + c.PromotionID
	case domain.ApprovePromotion:
		return "promotion:" + c.PromotionID
	case domain.RejectPromotion:
		return "promotion:" + c.PromotionID
	case domain.EffectPromotion:
		return "promotion:" + c.PromotionID
	case domain.RescindPromotion:
		return "promotion:" + c.PromotionID
	}
	return "org"
}

// Generate runs the simulation of cfg and hands every command to emit, in
// order, with its meta (a deterministic command id, the actor, and the
// command id as correlation id). It stops at the first error of emit or
// Config.Step and returns it, wrapped with the command it concerned.
func Generate(cfg Config, emit func(cmd domain.Command, meta domain.CommandMeta) error) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if emit == nil {
		return errors.New("demo: no emit function")
	}
	g := newGen(cfg, emit)
	return g.run()
}
