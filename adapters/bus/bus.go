package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"perfledger/domain"
	"perfledger/projections"
)

// Topic prefixes: a projector's subscription is "projection:<name>", a
// policy's "policy:<name>".
const (
	projectionTopic = "projection:"
	policyTopic     = "policy:"
)

// Runner is what the bus needs of projections.Runner.
type Runner interface {
	Names() []string
	Checkpoint(name string) (domain.Position, error)
	Apply(ctx context.Context, name string, events []domain.Event) error
	Handles(name, eventType string) bool
	MarkStuck(name string, at domain.Position, err error)
	PolicyCheckpoint(ctx context.Context, policy string) (domain.Position, error)
	SavePolicyCheckpoint(ctx context.Context, policy string, pos domain.Position) error
}

var _ Runner = (*projections.Runner)(nil)

// Config configures a Bus.
type Config struct {
	Log    Log
	Runner Runner
	// Policies react to events by issuing commands through Executor.
	Policies []projections.Policy
	Executor Executor // required when Policies is not empty
	// Decode decodes payloads for the policies; nil means domain.DecodePayload.
	Decode func(typ string, data []byte) (domain.Payload, error)

	// MaxBatch is the most events a projector commits in one transaction;
	// 0 means DefaultMaxBatch. A projector that keeps up commits what is
	// waiting, a few events; one that fell behind catches up in batches of
	// up to MaxBatch, which cost the leaderboard far less per event.
	MaxBatch int
	// Retries is how many times a failing handler is retried (with
	// exponential backoff from RetryInterval to RetryMaxInterval) before the
	// message is nacked and the consumer reported stuck; 0 means 3, negative
	// means none.
	Retries                         int
	RetryInterval, RetryMaxInterval time.Duration // 0: 100 ms, 2 s
	// ResumeMin and ResumeMax bound the backoff before a subscription
	// resumes from the checkpoint after a nack or a dropped store
	// subscription; 0 means 50 ms and 5 s.
	ResumeMin, ResumeMax time.Duration
	// CloseTimeout bounds how long Close waits for handlers; 0 means 10 s.
	CloseTimeout time.Duration
	Logger       *slog.Logger // nil: slog.Default()
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Log == nil:
		return errors.New("bus: config: Log is nil")
	case c.Runner == nil:
		return errors.New("bus: config: Runner is nil")
	case len(c.Policies) > 0 && c.Executor == nil:
		return errors.New("bus: config: policies need an Executor")
	case c.MaxBatch < 0:
		return errors.New("bus: config: negative MaxBatch")
	}
	return nil
}

// Bus runs every projector and policy as a handler of one Watermill router,
// each on its own subscription to the log.
type Bus struct {
	cfg    Config
	router *message.Router
	sub    *Subscriber // the projectors'
	psub   *Subscriber // the policies'
	tail   *Tail       // what both read the log through
	// policies by name, for the policies' subscriber's Skip.
	policies map[string]projections.Policy

	log   *slog.Logger
	stack []message.HandlerMiddleware // every handler's middleware
}

// New wires the router: one handler per projection and per policy, with the
// middleware CorrelationID, Recoverer (panics become errors) and Retry.
func New(cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 100 * time.Millisecond
	}
	if cfg.RetryMaxInterval == 0 {
		cfg.RetryMaxInterval = 2 * time.Second
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 10 * time.Second
	}
	if cfg.Decode == nil {
		cfg.Decode = domain.DecodePayload
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Bus{cfg: cfg, log: cfg.Logger, policies: map[string]projections.Policy{}}
	for _, p := range cfg.Policies {
		b.policies[p.Name()] = p
	}
	// Every subscription that has reached the head reads the new events
	// from one shared store subscription (Tail) instead of its own.
	b.tail = NewTail(cfg.Log, 0)
	// The projectors read far ahead, so that one that fell behind catches
	// up in large batches; the policies, which handle one message at a
	// time and skip most types, need little read-ahead (each event held
	// ahead costs memory).
	sub, err := NewSubscriber(SubscriberConfig{
		Log:        b.tail,
		From:       b.from,
		Skip:       b.skip,
		ReadAhead:  cfg.MaxBatch + cfg.MaxBatch/4,
		MinBackoff: cfg.ResumeMin,
		MaxBackoff: cfg.ResumeMax,
		Logger:     cfg.Logger,
	})
	if err != nil {
		b.tail.Close()
		return nil, err
	}
	psub, err := NewSubscriber(SubscriberConfig{
		Log:        b.tail,
		From:       b.from,
		Skip:       b.skip,
		ReadAhead:  policyReadAhead,
		MinBackoff: cfg.ResumeMin,
		MaxBackoff: cfg.ResumeMax,
		Logger:     cfg.Logger,
	})
	if err != nil {
		_ = sub.Close()
		b.tail.Close()
		return nil, err
	}
	b.sub, b.psub = sub, psub
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, newRouterLogger(cfg.Logger.With("component", "bus")))
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      cfg.Retries,
		InitialInterval: cfg.RetryInterval,
		MaxInterval:     cfg.RetryMaxInterval,
		Multiplier:      2,
	}
	// Middleware added first runs outermost. The retry wraps the recoverer,
	// so a panicking handler is retried like a failing one; reportStuck sees
	// only what the retries could not fix. (All are added per handler: the
	// router puts handler-level middleware inside router-level middleware.)
	b.stack = []message.HandlerMiddleware{middleware.CorrelationID, retry.Middleware, middleware.Recoverer}
	for _, name := range cfg.Runner.Names() {
		h := &projectorHandler{name: name, runner: cfg.Runner, max: cfg.MaxBatch}
		router.AddConsumerHandler("projection-"+name, projectionTopic+name, sub, h.handle).
			AddMiddleware(append([]message.HandlerMiddleware{h.reportStuck}, b.stack...)...)
	}
	b.addPolicies(router, psub)
	b.router = router
	return b, nil
}

// skip passes each consumer only the event types it handles. A policy
// reacts to a few types among the thirty, and a read model that declares its
// types (projections.TypeFilter) to some: under a load of activities, six of
// the nine read models have nothing to do with them, and turning every event
// into a message for each of them was most of the bus's work and of the
// garbage it made. The last event read before the head is still delivered,
// so every checkpoint reaches the head.
func (b *Bus) skip(topic, eventType string) bool {
	if name, ok := strings.CutPrefix(topic, projectionTopic); ok {
		return !b.cfg.Runner.Handles(name, eventType)
	}
	name, ok := strings.CutPrefix(topic, policyTopic)
	if !ok {
		return false
	}
	p := b.policies[name]
	return p != nil && !p.Handles(eventType)
}

// from is the Subscriber's checkpoint lookup.
func (b *Bus) from(ctx context.Context, topic string) (domain.Position, error) {
	if name, ok := strings.CutPrefix(topic, projectionTopic); ok {
		return b.cfg.Runner.Checkpoint(name)
	}
	if name, ok := strings.CutPrefix(topic, policyTopic); ok {
		return b.cfg.Runner.PolicyCheckpoint(ctx, name)
	}
	return domain.Position{}, fmt.Errorf("bus: unknown topic %q", topic)
}

// Run runs the router until ctx ends or Close is called; it returns once
// every handler has stopped.
func (b *Bus) Run(ctx context.Context) error {
	if err := b.router.Run(ctx); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// Running is closed once every handler runs.
func (b *Bus) Running() chan struct{} { return b.router.Running() }

// Close stops the subscriptions and waits, at most CloseTimeout, for the
// handlers to finish the message in hand. Events applied but not yet
// committed are redelivered from the checkpoints at the next start.
func (b *Bus) Close() error {
	err := b.router.Close()
	if cerr := b.sub.Close(); err == nil {
		err = cerr
	}
	if cerr := b.psub.Close(); err == nil {
		err = cerr
	}
	b.tail.Close()
	if err != nil {
		return fmt.Errorf("bus: close: %w", err)
	}
	return nil
}

// projectorHandler feeds one projection. Messages come one at a time (the
// Subscriber waits for each ack), so its state needs no lock.
//
// Batching: a message flagged MetaMore (the next event is already waiting) is
// kept in pending and acked at once; the batch is committed, in one
// transaction with the checkpoint, with the first message not so flagged or
// when it reaches max events. If the commit fails, the handler fails that
// message: Retry calls it again with the same message (pending is kept), and
// once retries are exhausted the router nacks it and the Subscriber resumes
// from the checkpoint, that is from the first event of the failed batch,
// which is delivered again. Redelivered events replace the pending ones at and
// after their position, so nothing is applied twice or skipped.
//
// When a batch fails, the handler commits its events one per transaction to
// find the event that fails, and keeps committing one by one until it has
// passed the failed batch, so the position it reports when stuck is exact.
type projectorHandler struct {
	name   string
	runner Runner
	max    int

	pending []domain.Event
	narrow  domain.Position // commit one by one up to here
	failed  domain.Position // position of the event that failed last
}

func (h *projectorHandler) handle(msg *message.Message) error {
	ev, err := EventOf(msg)
	if err != nil {
		return err
	}
	// A redelivery (retry, nack, resumed subscription) restarts at ev.
	for n := len(h.pending); n > 0 && !h.pending[n-1].Position.Less(ev.Position); n = len(h.pending) {
		h.pending = h.pending[:n-1]
	}
	h.pending = append(h.pending, ev)
	single := !h.narrow.Less(ev.Position)
	if !single && msg.Metadata.Get(MetaMore) != "" && len(h.pending) < h.max {
		return nil
	}
	ctx := msg.Context()
	if err := h.runner.Apply(ctx, h.name, h.pending); err != nil {
		if len(h.pending) > 1 {
			// Find the event that fails, committing those before it.
			h.narrow = h.pending[len(h.pending)-1].Position
			for len(h.pending) > 0 {
				if err = h.runner.Apply(ctx, h.name, h.pending[:1]); err != nil {
					break
				}
				h.pending = h.pending[1:]
			}
			if len(h.pending) == 0 {
				return nil // the failure did not recur
			}
		}
		h.failed = h.pending[0].Position
		return err
	}
	h.pending = h.pending[:0]
	return nil
}

// reportStuck runs outside Retry: an error here means the retries are spent.
func (h *projectorHandler) reportStuck(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := next(msg)
		if err != nil && !errors.Is(err, context.Canceled) {
			h.runner.MarkStuck(h.name, h.failed, err)
		}
		return out, err
	}
}

// DefaultMaxBatch is Config.MaxBatch's default. With 64 writers appending
// flat out it keeps every projection within a second of the head, where
// batches of 1,000 fell behind by seconds (BENCHMARKS.md "Live lag"); 8,000
// kept them no closer (LiveLag p99 0.56–0.61 s either way) and held twice
// the events, and `ledger serve`'s POST p99 was 97–103 ms with 4,000
// against 140–169 ms with 8,000.
const DefaultMaxBatch = 4000

// policyReadAhead is the read-ahead of the policies' subscriptions.
const policyReadAhead = 256

// routerLogger is the Router's logger: Watermill's info messages are logged
// at debug level, and its debug and trace messages, written for every
// message handled, are dropped before their fields are built unless the
// logger wants them (building them cost ≈ 4 % of the CPU of the live
// projections).
type routerLogger struct {
	watermill.LoggerAdapter
	l *slog.Logger
}

func newRouterLogger(l *slog.Logger) watermill.LoggerAdapter {
	return routerLogger{
		LoggerAdapter: watermill.NewSlogLoggerWithLevelMapping(l, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
		l:             l,
	}
}

func (r routerLogger) Info(msg string, fields watermill.LogFields) {
	if r.l.Enabled(context.Background(), slog.LevelDebug) {
		r.LoggerAdapter.Info(msg, fields)
	}
}

func (r routerLogger) Debug(msg string, fields watermill.LogFields) {
	if r.l.Enabled(context.Background(), slog.LevelDebug) {
		r.LoggerAdapter.Debug(msg, fields)
	}
}

func (r routerLogger) Trace(msg string, fields watermill.LogFields) {
	if r.l.Enabled(context.Background(), watermill.LevelTrace) {
		r.LoggerAdapter.Trace(msg, fields)
	}
}

func (r routerLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return routerLogger{LoggerAdapter: r.LoggerAdapter.With(fields), l: r.l}
}
