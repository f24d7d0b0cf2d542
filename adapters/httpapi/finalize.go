package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"perfledger/domain"
	"perfledger/projections"
)

// Evaluations computes what finalizing a member's month locks: the
// provisional evaluation the scorecard shows now (components, score, band,
// rules version and a digest of the inputs). FinalizedBy is set by the API.
// An unknown member or a month without any component is an error wrapping
// domain.ErrNotFound or domain.ErrRuleViolated.
type Evaluations interface {
	Provisional(ctx context.Context, memberID, month string) (domain.FinalizeEvaluation, error)
}

// EvaluationsFunc adapts a function to Evaluations.
type EvaluationsFunc func(ctx context.Context, memberID, month string) (domain.FinalizeEvaluation, error)

// Provisional calls f.
func (f EvaluationsFunc) Provisional(ctx context.Context, memberID, month string) (domain.FinalizeEvaluation, error) {
	return f(ctx, memberID, month)
}

var _ Evaluations = EvaluationsFunc(nil)

// finalizeCommand builds the FinalizeEvaluation of member for month from
// what the scorecard shows now: the locked snapshot.
func (s *Server) finalizeCommand(c *call, member, month string) (domain.Command, error) {
	ev := s.cfg.Evaluations
	if ev == nil {
		ev = scorecardEvaluations{s.cfg.ReadModels}
	}
	q := c.query()
	if min := q.position("min_position"); q.err != nil {
		return nil, q.err
	} else if !min.IsZero() {
		if err := s.waitFor(c, min); err != nil {
			return nil, err
		}
	}
	cmd, err := ev.Provisional(c.ctx, member, month)
	if err != nil {
		return nil, err
	}
	cmd.MemberID, cmd.Month, cmd.FinalizedBy = member, month, c.self()
	return cmd, nil
}

// scorecardEvaluations reads the provisional evaluation from the scorecard
// read model: the default Evaluations.
type scorecardEvaluations struct{ rm ReadModels }

// Provisional implements Evaluations. The inputs digest is the SHA-256 of
// the month's scorecard as shown (every figure and the ids of the events
// behind it), so a finalized evaluation can be traced to its inputs.
func (e scorecardEvaluations) Provisional(ctx context.Context, member, month string) (domain.FinalizeEvaluation, error) {
	p := e.rm.Current("leaderboard")
	lb, ok := p.(*projections.Leaderboard)
	if !ok {
		return domain.FinalizeEvaluation{}, errors.New("the leaderboard read model (which keeps the scorecards) is not registered")
	}
	card, err := lb.Scorecard().Month(ctx, e.rm.DB(), projections.ScorecardQuery{MemberID: member, Period: month})
	if errors.Is(err, domain.ErrNotFound) {
		return domain.FinalizeEvaluation{}, fmt.Errorf("%w: nothing is recorded for member %q in %s: there is no evaluation to finalize", domain.ErrRuleViolated, member, month)
	}
	if err != nil {
		return domain.FinalizeEvaluation{}, err
	}
	if card.Evaluation == nil {
		return domain.FinalizeEvaluation{}, fmt.Errorf("%w: member %q has no evaluation component for %s yet (no revenue, weekly score or manager rating)", domain.ErrRuleViolated, member, month)
	}
	card.Position = "" // the digest covers the inputs, not how far the read model was
	raw, err := json.Marshal(card)
	if err != nil {
		return domain.FinalizeEvaluation{}, err
	}
	sum := sha256.Sum256(raw)
	return domain.FinalizeEvaluation{
		Components:   domain.EvaluationComponents{Objective: card.Objective, Rollup: card.Rollup, Manager: card.Manager},
		Score:        *card.Evaluation,
		Band:         card.Band,
		BandLabel:    card.BandLabel,
		RulesVersion: card.RulesVersion,
		InputsDigest: "sha256:" + hex.EncodeToString(sum[:]),
	}, nil
}
