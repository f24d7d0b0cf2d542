package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"perfledger/domain"
	"perfledger/domain/demo"
)

// remoteDemo sends the demo's commands to a running `ledger serve` over its
// HTTP API instead of executing them into a data folder.
//
// How the simulation meets a server that runs on its real clock and its own
// policies (decided here, reported at the end of the run):
//
//   - Every command is sent with its generated command id as Idempotency-Key;
//     the server uses that key as the command id, so the events get the same
//     ids as a direct load, and a re-run appends nothing: a key the server
//     already holds is answered with its stored response (same token and
//     body) or with 409 "already used" (a new token of a re-run); both count
//     as done. Any other 409 is a refusal and fails the run.
//   - Commands the generator issues in the place of the ledger's policies
//     (actor "policy:…": eligibility, goal bonus, clawback) are skipped: the
//     server's policies issue them themselves, with the same command ids.
//     RecordEligibility has no route at all.
//   - An approval waits (bounded) until the server's eligibility policy has
//     evaluated the nomination, and always carries the generator's exception
//     justification: the server judges eligibility from its own evaluations
//     and may disagree with the generator; the domain drops the
//     justification of an eligible nomination.
//   - FinalizeEvaluation goes to the finalize route with min_position set to
//     the last position the run has seen: the server locks what its
//     scorecard shows, not the generator's figures.
//   - The server stamps decisions with today's date, so a promotion whose
//     simulated effective date precedes the (real) approval is refused with
//     422 "effective_on … is before the approval": such refusals are counted
//     and reported, not fatal. Every other refusal stops the run with the
//     command and the server's message.
//   - 429 and 503 are retried after Retry-After.
//
// Tokens: the admin token forms teams and members; other commands run with
// tokens created on the fly (POST /v1/tokens) and cached per role and
// member: a rep token for a member's own work, a manager token bound to the
// acting member (its current team) for assessments, targets, rewards …, an
// HR token for profiles and promotion decisions. A transfer drops the moved
// member's cached tokens, whose team binding is stale.
type remoteDemo struct {
	base   string
	admin  string
	client *http.Client

	mu     sync.Mutex
	tokens map[tokenKey]string
	last   domain.Position

	sent, skipped, replayed, effectRefused atomic.Int64
}

type tokenKey struct{ role, member string }

// remoteError is a refusal by the server.
type remoteError struct {
	Status  int
	Code    string
	Message string
}

func (e *remoteError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func newRemoteDemo(server, admin string) (*remoteDemo, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("--server %q: want a URL such as http://127.0.0.1:8080", server)
	}
	if admin == "" {
		return nil, usageErr("--server needs an admin token: --token or LEDGER_TOKEN")
	}
	return &remoteDemo{
		base:   strings.TrimRight(server, "/"),
		admin:  admin,
		client: &http.Client{Timeout: 60 * time.Second},
		tokens: map[tokenKey]string{},
	}, nil
}

// check makes sure the server answers and the token is an admin's.
func (r *remoteDemo) check(ctx context.Context) error {
	var out json.RawMessage
	if _, err := r.do(ctx, r.admin, http.MethodGet, "/v1/tokens?limit=1", "", nil, &out); err != nil {
		var re *remoteError
		if errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) {
			return fmt.Errorf("server %s refused the token (want an admin token, e.g. the one in DATA/admin.token): %w", r.base, err)
		}
		return fmt.Errorf("server %s: %w", r.base, err)
	}
	return nil
}

// do sends one request and decodes a 2xx answer into out. It retries 429 and
// 503 after their Retry-After.
func (r *remoteDemo) do(ctx context.Context, token, method, path, idemKey string, body, out any) (int, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if raw != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if raw != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		res, err := r.client.Do(req)
		if err != nil {
			return 0, err
		}
		data, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		if res.StatusCode/100 == 2 {
			if out != nil {
				if err := json.Unmarshal(data, out); err != nil {
					return res.StatusCode, fmt.Errorf("%s %s: undecodable answer: %w", method, path, err)
				}
			}
			return res.StatusCode, nil
		}
		if (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) && attempt < 20 {
			wait := time.Second
			if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = time.Duration(s) * time.Second
			}
			if err := sleepCtx(ctx, wait); err != nil {
				return 0, err
			}
			continue
		}
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		re := &remoteError{Status: res.StatusCode}
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			re.Code, re.Message = eb.Error.Code, eb.Error.Message
		} else {
			re.Message = strings.TrimSpace(string(data))
			if len(re.Message) > 200 {
				re.Message = re.Message[:200] + "…"
			}
		}
		return res.StatusCode, re
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// token returns a token of role (bound to member for reps and managers),
// creating and caching it on first use.
func (r *remoteDemo) token(ctx context.Context, role, member string) (string, error) {
	k := tokenKey{role, member}
	r.mu.Lock()
	s, ok := r.tokens[k]
	r.mu.Unlock()
	if ok {
		return s, nil
	}
	var out struct {
		Token string `json:"token"`
	}
	req := map[string]string{"role": role, "label": "ledger demo"}
	if member != "" {
		req["member_id"] = member
	}
	if _, err := r.do(ctx, r.admin, http.MethodPost, "/v1/tokens", "", req, &out); err != nil {
		return "", fmt.Errorf("creating a %s token for %q: %w", role, member, err)
	}
	r.mu.Lock()
	r.tokens[k] = out.Token
	r.mu.Unlock()
	return out.Token, nil
}

// forget drops the cached tokens of member.
func (r *remoteDemo) forget(member string) {
	r.mu.Lock()
	for k := range r.tokens {
		if k.member == member {
			delete(r.tokens, k)
		}
	}
	r.mu.Unlock()
}

func (r *remoteDemo) position() domain.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// request is one command as the API takes it.
type request struct {
	role, member string // the principal: admin, hr, or a rep or manager bound to member
	path         string
	body         any
}

// route maps a command to its route, body and principal. The acting member
// of a manager command is the generator's actor (meta.Actor): the assessor,
// rater, reviewer, nominator, granter …
func (r *remoteDemo) route(cmd domain.Command, meta domain.CommandMeta) (request, error) {
	const admin, hr, rep, mgr = "admin", "hr", "rep", "manager"
	esc := url.PathEscape
	actor := meta.Actor
	switch c := cmd.(type) {
	case domain.FormTeam:
		return request{admin, "", "/v1/teams", map[string]any{"team_id": c.TeamID, "name": c.Name, "department": c.Department,
			"region": c.Region, "parent_team_id": c.ParentTeamID}}, nil
	case domain.JoinMember:
		return request{admin, "", "/v1/members", map[string]any{"member_id": c.MemberID, "display_name": c.DisplayName,
			"role": c.Role, "team_id": c.TeamID, "joined_on": c.JoinedOn}}, nil
	case domain.TransferMember:
		return request{admin, "", "/v1/members/" + esc(c.MemberID) + "/transfer", map[string]any{"to_team_id": c.ToTeamID, "effective_on": c.EffectiveOn}}, nil
	case domain.RecordLeave:
		return request{admin, "", "/v1/members/" + esc(c.MemberID) + "/leave", map[string]any{"left_on": c.LeftOn, "reason": c.Reason}}, nil
	case domain.DefineRoleLadder:
		return request{admin, "", "/v1/role-ladder", map[string]any{"roles": c.Roles}}, nil
	case domain.PublishScoringRules:
		return request{admin, "", "/v1/rule-sets", c.Rules}, nil
	case domain.RecordProfile:
		return request{hr, "", "/v1/members/" + esc(c.MemberID) + "/profile", c.Profile}, nil
	case domain.ForgetMember:
		return request{hr, "", "/v1/members/" + esc(c.MemberID) + "/forget", map[string]any{"reason": c.Reason}}, nil

	case domain.SetTarget:
		return request{mgr, actor, "/v1/targets", map[string]any{"target_id": c.TargetID, "subject_kind": c.SubjectKind,
			"subject_id": c.SubjectID, "kpi": c.KPI, "period": c.Period, "value": c.Value}}, nil
	case domain.ReviseTarget:
		return request{mgr, actor, "/v1/targets/" + esc(c.TargetID) + "/revise", map[string]any{"new_value": c.NewValue, "reason": c.Reason}}, nil

	case domain.LogActivity:
		return request{rep, c.MemberID, "/v1/members/" + esc(c.MemberID) + "/activities", activityBody(c)}, nil
	case domain.CloseSale:
		b := map[string]any{"sale_id": c.SaleID, "customer": c.Customer, "amount_minor": c.AmountMinor, "currency": c.Currency}
		if !c.OccurredAt.IsZero() {
			b["occurred_at"] = c.OccurredAt
		}
		return request{rep, c.MemberID, "/v1/members/" + esc(c.MemberID) + "/sales", b}, nil
	case domain.VoidActivity:
		return request{mgr, actor, "/v1/members/" + esc(c.MemberID) + "/activities/" + esc(c.ActivityID) + "/void", map[string]any{"reason": c.Reason}}, nil
	case domain.ReverseSale:
		return request{mgr, actor, "/v1/members/" + esc(c.MemberID) + "/sales/" + esc(c.SaleID) + "/reverse", map[string]any{"reason": c.Reason}}, nil

	case domain.AssessQuality:
		return request{mgr, c.AssessorID, "/v1/members/" + esc(c.MemberID) + "/quality", map[string]any{"week": c.Week, "day": c.Day,
			"rating": c.Rating, "comment": c.Comment}}, nil
	case domain.RecordManagerRating:
		return request{mgr, c.RaterID, "/v1/members/" + esc(c.MemberID) + "/ratings", map[string]any{"month": c.Month,
			"rating": c.Rating, "comment": c.Comment}}, nil
	case domain.FinalizeEvaluation:
		path := "/v1/members/" + esc(c.MemberID) + "/evaluations/" + esc(c.Month) + "/finalize"
		if p := r.position(); !p.IsZero() {
			path += "?min_position=" + url.QueryEscape(p.String())
		}
		by := c.FinalizedBy
		if by == "" {
			by = actor
		}
		return request{mgr, by, path, nil}, nil

	case domain.GivePraise:
		return request{rep, c.FromID, "/v1/praise", map[string]any{"to_id": c.ToID, "reason": c.Reason, "linked_event_id": c.LinkedEventID}}, nil
	case domain.PublicizeAchievement:
		return request{mgr, actor, "/v1/achievements", map[string]any{"subject_kind": c.SubjectKind, "subject_id": c.SubjectID,
			"headline": c.Headline, "evidence_event_ids": c.EvidenceEventIDs, "audience": c.Audience}}, nil
	case domain.HoldMeeting:
		b := map[string]any{"meeting_id": c.MeetingID, "team_id": c.TeamID, "kind": c.Kind, "chair_id": c.ChairID,
			"attendee_ids": c.AttendeeIDs, "topics": c.Topics}
		if !c.HeldAt.IsZero() {
			b["held_at"] = c.HeldAt
		}
		return request{mgr, actor, "/v1/meetings", b}, nil
	case domain.SubmitSuggestion:
		return request{rep, c.AuthorID, "/v1/suggestions", map[string]any{"suggestion_id": c.SuggestionID, "title": c.Title,
			"body": c.Body, "category": c.Category}}, nil
	case domain.ReviewSuggestion:
		return request{mgr, c.ReviewerID, "/v1/suggestions/" + esc(c.SuggestionID) + "/review", map[string]any{"decision": c.Decision, "rationale": c.Rationale}}, nil

	case domain.NominatePromotion:
		return request{mgr, c.NominatedBy, "/v1/promotions", map[string]any{"promotion_id": c.PromotionID, "member_id": c.MemberID,
			"to_role": c.ToRole, "justification": c.Justification, "proposed_effective_on": c.ProposedEffectiveOn}}, nil
	case domain.ApprovePromotion:
		just := c.ExceptionJustification
		if just == "" {
			just = "Approved by the demo; the generator judged the nomination eligible."
		}
		return request{hr, "", "/v1/promotions/" + esc(c.PromotionID) + "/approve", map[string]any{"comment": c.Comment, "exception_justification": just}}, nil
	case domain.RejectPromotion:
		return request{hr, "", "/v1/promotions/" + esc(c.PromotionID) + "/reject", map[string]any{"comment": c.Comment}}, nil
	case domain.EffectPromotion:
		return request{hr, "", "/v1/promotions/" + esc(c.PromotionID) + "/effect", map[string]any{"effective_on": c.EffectiveOn}}, nil
	case domain.RescindPromotion:
		return request{hr, "", "/v1/promotions/" + esc(c.PromotionID) + "/rescind", map[string]any{"reason": c.Reason}}, nil

	case domain.GrantReward:
		by := c.GrantedBy
		if by == "" {
			by = actor
		}
		return request{mgr, by, "/v1/members/" + esc(c.MemberID) + "/rewards", map[string]any{"reward_id": c.RewardID, "kind": c.Kind,
			"amount_minor": c.AmountMinor, "currency": c.Currency, "reason": c.Reason, "basis": c.Basis}}, nil
	case domain.RevokeReward:
		return request{mgr, actor, "/v1/members/" + esc(c.MemberID) + "/rewards/" + esc(c.RewardID) + "/revoke", map[string]any{"reason": c.Reason,
			"amount_minor": c.AmountMinor, "note": c.Note}}, nil
	}
	return request{}, fmt.Errorf("the API has no route for %s", cmd.CommandName())
}

func activityBody(c domain.LogActivity) map[string]any {
	b := map[string]any{"activity_id": c.ActivityID, "kind": c.Kind, "quantity": c.Quantity, "customer": c.Customer, "notes": c.Notes}
	if !c.OccurredAt.IsZero() {
		b["occurred_at"] = c.OccurredAt
	}
	return b
}

// Refusals the run tolerates, recognised by the server's message (the API's
// error codes do not tell them apart).
const (
	msgKeyUsed       = "Idempotency-Key was already used"
	msgBeforeApprove = "is before the approval"
	msgNotEvaluated  = "eligibility has not been evaluated yet"
)

// exec is the demo.Exec of a remote run.
func (r *remoteDemo) exec(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) error {
	if strings.HasPrefix(meta.Actor, "policy:") {
		r.skipped.Add(1) // the server's own policies issue these
		return nil
	}
	if _, ok := cmd.(domain.RecordEligibility); ok {
		r.skipped.Add(1)
		return nil
	}
	rq, err := r.route(cmd, meta)
	if err != nil {
		return err
	}
	tok := r.admin
	if rq.role != "admin" {
		if tok, err = r.token(ctx, rq.role, rq.member); err != nil {
			return err
		}
	}
	var reply struct {
		Position string `json:"position"`
	}
	const notEvaluatedWait = 20 * time.Second
	waitUntil := time.Now().Add(notEvaluatedWait)
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		_, err = r.do(ctx, tok, http.MethodPost, rq.path, meta.CommandID, rq.body, &reply)
		var re *remoteError
		if errors.As(err, &re) && re.Status == http.StatusUnprocessableEntity &&
			strings.Contains(re.Message, msgNotEvaluated) && time.Now().Before(waitUntil) {
			// The server's eligibility policy has not reacted to the
			// nomination yet.
			if err := sleepCtx(ctx, pause); err != nil {
				return err
			}
			continue
		}
		break
	}
	var re *remoteError
	switch {
	case err == nil:
	case errors.As(err, &re) && re.Status == http.StatusConflict && strings.Contains(re.Message, msgKeyUsed):
		r.replayed.Add(1) // sent by an earlier run
		return nil
	case errors.As(err, &re) && re.Status == http.StatusUnprocessableEntity && strings.Contains(re.Message, msgBeforeApprove):
		if _, ok := cmd.(domain.EffectPromotion); ok {
			r.effectRefused.Add(1)
			return nil
		}
		return fmt.Errorf("POST %s: %w", rq.path, err)
	default:
		return fmt.Errorf("POST %s: %w", rq.path, err)
	}
	r.sent.Add(1)
	if c, ok := cmd.(domain.TransferMember); ok {
		r.forget(c.MemberID)
	}
	if reply.Position != "" {
		p, err := domain.ParsePosition(reply.Position)
		if err != nil {
			return fmt.Errorf("POST %s: %w", rq.path, err)
		}
		r.mu.Lock()
		if r.last.Less(p) {
			r.last = p
		}
		r.mu.Unlock()
	}
	return nil
}

// runRemoteDemo is `ledger demo --server URL`: it generates cfg and sends it
// to the server, then reports what was sent, skipped, already there and
// refused.
func runRemoteDemo(ctx context.Context, env *environment, cfg demo.Config, workers int, server, token string, start time.Time) error {
	r, err := newRemoteDemo(server, strings.TrimSpace(token))
	if err != nil {
		return err
	}
	if err := r.check(ctx); err != nil {
		return err
	}
	stats, err := demo.Run(ctx, cfg, workers, nil, r.exec)
	if err != nil {
		return fmt.Errorf("after %d commands: %w", stats.Commands, err)
	}
	took := time.Since(start)
	fmt.Fprintf(env.stdout, "demo: %d members, %d months (from %s), seed %d: %d commands in %s to %s: %d accepted (new, or replayed by the server), %d already there, %d left to the server's policies",
		cfg.Members, cfg.Months, cfg.Start.Format("2006-01"), cfg.Seed, stats.Commands, took.Round(time.Millisecond), r.base,
		r.sent.Load(), r.replayed.Load(), r.skipped.Load())
	if n := r.effectRefused.Load(); n > 0 {
		fmt.Fprintf(env.stdout, ", %d promotions not effected (their simulated effective date precedes the server's approval date)", n)
	}
	fmt.Fprintf(env.stdout, "; highest position answered %s\n", r.position())
	return nil
}
