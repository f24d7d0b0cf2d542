package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"perfledger/domain"
	"perfledger/projections"
)

func (b *Bus) addPolicies(router *message.Router, sub *Subscriber) {
	for _, p := range b.cfg.Policies {
		h := &policyHandler{policy: p, runner: b.cfg.Runner, exec: b.cfg.Executor, decode: b.cfg.Decode, log: b.log}
		router.AddConsumerHandler("policy-"+p.Name(), policyTopic+p.Name(), sub, h.handle).AddMiddleware(b.stack...)
	}
}

// Executor executes a command a policy issued; domain.Service implements it.
type Executor interface {
	Execute(ctx context.Context, cmd domain.Command, meta domain.CommandMeta) (domain.Result, error)
}

// policyHandler runs one policy. Its checkpoint is saved when the
// subscription has no further event waiting (and at least every 1000
// events); the commands are idempotent, so one that lags only makes it decide
// again.
type policyHandler struct {
	policy projections.Policy
	runner Runner
	exec   Executor
	decode func(typ string, data []byte) (domain.Payload, error)
	log    *slog.Logger

	mu      sync.Mutex
	done    domain.Position
	unsaved int
}

func (h *policyHandler) handle(msg *message.Message) error {
	ev, err := EventOf(msg)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.done.Less(ev.Position) {
		return nil // redelivered: already handled
	}
	name := h.policy.Name()
	if h.policy.Handles(ev.Type) {
		pl, err := h.decode(ev.Type, ev.Data)
		if err != nil {
			return fmt.Errorf("bus: policy %s: decode %s at %s: %w", name, ev.Type, ev.Position, err)
		}
		issued, err := h.policy.Decide(msg.Context(), projections.Envelope{Event: ev, Payload: pl})
		if err != nil {
			return fmt.Errorf("bus: policy %s at %s: %w", name, ev.Position, err)
		}
		for _, is := range issued {
			meta := domain.CommandMeta{CommandID: is.CommandID, Actor: "policy:" + name,
				CorrelationID: ev.CorrelationID, CausationID: ev.ID}
			_, err := h.exec.Execute(msg.Context(), is.Command, meta)
			switch {
			case err == nil:
			case errors.Is(err, domain.ErrAlreadyExists):
				// Already done (e.g. the reward was granted when the trigger was
				// first handled, or by whoever loaded the log): the idempotency
				// the policy relies on, not a problem.
				h.log.Debug("policy command already applied", "policy", name, "command", is.Command.CommandName(),
					"command_id", is.CommandID, "trigger", ev.ID, "position", ev.Position.String())
			case refused(err):
				// A decision, not a fault: retrying cannot change it.
				h.log.Warn("policy command refused", "policy", name, "command", is.Command.CommandName(),
					"command_id", is.CommandID, "trigger", ev.ID, "position", ev.Position.String(), "error", err)
			default:
				return fmt.Errorf("bus: policy %s at %s: %s: %w", name, ev.Position, is.Command.CommandName(), err)
			}
		}
	}
	h.done = ev.Position
	h.unsaved++
	if msg.Metadata.Get(MetaMore) == "" || h.unsaved >= 1000 {
		if err := h.runner.SavePolicyCheckpoint(msg.Context(), name, h.done); err != nil {
			return err
		}
		h.unsaved = 0
	}
	return nil
}

// refused reports whether err is the domain refusing a command.
func refused(err error) bool {
	for _, target := range []error{domain.ErrInvalid, domain.ErrNotFound, domain.ErrRuleViolated,
		domain.ErrAlreadyExists, domain.ErrForbidden} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
