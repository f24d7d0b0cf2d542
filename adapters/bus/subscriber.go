// Package bus runs the projections and policies on Watermill: the event
// store's global log as a message.Subscriber, and a message.Router that runs
// every projector and policy as a handler with middleware.
//
// Wiring (cmd/ledger):
//
//	r, err := projections.NewRunner(ctx, projections.RunnerConfig{DB: views,
//		Projections: append(projections.All(), projections.PolicyFacts)})
//	// Fast catch-up (direct replay, one decode per event) before going live;
//	// needed after a version change (r.Reset()) or a long stop.
//	err = r.CatchUp(ctx, store)
//	policies, err := projections.NewPolicies(r)
//	b, err := bus.New(bus.Config{Log: store, Runner: r, Policies: policies, Executor: service})
//	go b.Run(ctx)      // live: one subscription per projection and policy
//	...
//	r.WaitFor(ctx, pos) // read-your-writes; r.Positions() for /readyz and metrics
//	r.Rebuild(ctx, store, names...) // `ledger rebuild`
//	b.Close()           // drains within Config.CloseTimeout
//
// The bus gives its subscribers a Tail of the store: every subscription that
// has reached the head reads the new events from one shared store
// subscription, and one that is behind reads the store itself until it
// catches up.
//
// Live flow and rebuilds differ on purpose: the live flow goes through
// Watermill, one message per event, batched by the projector handler (see
// Subscriber and MetaMore); rebuilds and catch-up read the log straight into
// projections.Runner in large batches, decoding each event once for all
// projections, which Watermill's per-message, per-subscription model cannot
// match at the required speed.
package bus

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"perfledger/domain"
)

// Metadata keys of the messages the Subscriber produces. The message UUID is
// the event id and the payload is the event's data.
const (
	MetaType          = "type"
	MetaStream        = "stream"
	MetaRevision      = "revision"
	MetaPosition      = "position" // domain.Position.String()
	MetaOccurredAt    = "occurred_at"
	MetaRecordedAt    = "recorded_at"
	MetaActor         = "actor"
	MetaCorrelationID = "correlation_id" // the key Watermill's CorrelationID middleware uses
	MetaCausationID   = "causation_id"
	MetaPrevHash      = "prev_hash"
	MetaHash          = "hash"
	// MetaMore is "1" when the subscriber already holds the next event of the
	// subscription: a handler may then keep the message in an open batch and
	// commit it with a later one (see Subscriber).
	MetaMore = "more"
)

// Log is the part of the event store the Subscriber reads.
type Log interface {
	Subscribe(ctx context.Context, after domain.Position) iter.Seq2[domain.Event, error]
}

var _ Log = domain.EventStore(nil)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	Log Log
	// From returns where a topic's subscription starts, and resumes after a
	// nack or a dropped store subscription: the checkpoint of the topic's
	// consumer (events strictly after it are delivered).
	From func(ctx context.Context, topic string) (domain.Position, error)
	// Skip, when set, reports the events of a topic that its consumer has
	// no use for: while more events are waiting they are read past without
	// becoming messages; the last one read before the subscription catches
	// up is always delivered, so that the consumer's checkpoint reaches the
	// head. Only for a consumer that needs no message per event to account
	// for its position: a policy, or a projector for the types it does not
	// read (projections.TypeFilter).
	Skip func(topic, eventType string) bool
	// MaxSkipped bounds a run of skipped events: the next one is delivered,
	// flagged as the last waiting (no MetaMore), so that the consumer's
	// checkpoint keeps up with a log that grows faster than it is read; 0
	// means DefaultMaxSkipped.
	MaxSkipped int
	// MinBackoff and MaxBackoff bound the exponential pause before a
	// subscription resumes; 0 means 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// ReadAhead is how many events a subscription buffers from the store;
	// 0 means 8192 (with the bus's MaxBatch, what lets a projector that fell
	// behind catch up in large, cheap batches).
	ReadAhead int
	Logger    *slog.Logger // nil: slog.Default()
}

// Validate reports a configuration that cannot work.
func (c SubscriberConfig) Validate() error {
	switch {
	case c.Log == nil:
		return errors.New("bus: subscriber config: Log is nil")
	case c.From == nil:
		return errors.New("bus: subscriber config: From is nil")
	case c.MinBackoff < 0 || c.MaxBackoff < 0 || c.ReadAhead < 0 || c.MaxSkipped < 0:
		return errors.New("bus: subscriber config: negative backoff, read-ahead or MaxSkipped")
	}
	return nil
}

// Subscriber is the event store's global log as a Watermill subscriber. Each
// Subscribe call opens one store subscription, from the topic's checkpoint
// (SubscriberConfig.From), and delivers its events in global order, ONE AT A
// TIME: the next message is sent only once the current one is acked.
//
// A nacked message, and a store subscription that drops, make the
// subscription resume from the topic's checkpoint after a backoff (doubling
// from MinBackoff to MaxBackoff, reset by every ack): nothing is skipped, and
// events after the checkpoint may be delivered again, which consumers
// tolerate by comparing positions. A consumer may therefore ack a message it
// has only buffered, as long as it nacks (or fails) when the batch holding it
// cannot be committed.
//
// The channel closes when ctx ends or Close is called.
type Subscriber struct {
	cfg     SubscriberConfig
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.MaxSkipped == 0 {
		cfg.MaxSkipped = DefaultMaxSkipped
	}
	if cfg.ReadAhead == 0 {
		cfg.ReadAhead = 8192
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Subscriber{cfg: cfg, closing: make(chan struct{})}, nil
}

// Subscribe starts delivering the log to topic's consumer; see Subscriber.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("bus: subscriber closed")
	default:
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.run(ctx, topic, out)
	}()
	return out, nil
}

// Close stops every subscription and waits for them to end. Unacked
// messages are abandoned; they are delivered again from the checkpoint next
// time.
func (s *Subscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// item is what a subscription's read-ahead buffer holds: a pointer, so that
// an empty buffer of thousands of slots costs next to nothing.
type item struct {
	ev  *domain.Event
	err error
}

// run delivers topic's log until ctx ends or the subscriber closes.
func (s *Subscriber) run(ctx context.Context, topic string, out chan<- *message.Message) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := s.cfg.Logger.With("topic", topic)
	backoff := s.cfg.MinBackoff
	for {
		acked, why := s.session(ctx, topic, out)
		if ctx.Err() != nil {
			return
		}
		if acked {
			backoff = s.cfg.MinBackoff
		}
		log.Warn("subscription resumes from the checkpoint", "reason", why, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// session runs one store subscription from the topic's checkpoint until a
// nack, a store error or ctx's end. It reports whether any message was acked
// and why it ended.
func (s *Subscriber) session(ctx context.Context, topic string, out chan<- *message.Message) (acked bool, why error) {
	from, err := s.cfg.From(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("read checkpoint: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	buf := make(chan item, s.cfg.ReadAhead)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(buf)
		for ev, err := range s.cfg.Log.Subscribe(sctx, from) {
			select {
			case buf <- item{&ev, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()

	skipped := 0
	for it := range buf {
		if it.err != nil {
			return acked, fmt.Errorf("store subscription dropped: %w", it.err)
		}
		more := len(buf) > 0
		if s.cfg.Skip != nil && more && s.cfg.Skip(topic, it.ev.Type) {
			if skipped < s.cfg.MaxSkipped {
				skipped++
				continue
			}
			more = false // a checkpoint, however long the run of skipped events
		}
		skipped = 0
		msg := toMessage(*it.ev, more)
		msg.SetContext(ctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			return acked, ctx.Err()
		}
		select {
		case <-msg.Acked():
			acked = true
		case <-msg.Nacked():
			return acked, fmt.Errorf("message %s at %s nacked", it.ev.ID, it.ev.Position)
		case <-ctx.Done():
			return acked, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return acked, err
	}
	return acked, errors.New("store subscription ended")
}

// DefaultMaxSkipped is SubscriberConfig.MaxSkipped's default: with 64
// clients posting flat out to `ledger serve`, about two thirds of a second
// of events. With 2,048, the six read models that skip activities committed
// a checkpoint four times as often, each waiting its turn while its
// read-ahead filled: POST p99 23–25 ms and 240–248 MB instead of 19–20 ms
// and 223–235 MB (BENCHMARKS.md); BenchmarkLiveLag's p99, which waits for
// every read model, stays near half a second either way.
const DefaultMaxSkipped = 8192

// toMessage turns an event into a message; see the Meta… keys.
func toMessage(e domain.Event, more bool) *message.Message {
	msg := message.NewMessage(e.ID, e.Data)
	// Sized for every key at once: growing the map as keys were set took
	// two thirds of this function, run once per event per subscription.
	msg.Metadata = make(message.Metadata, metaKeys)
	md := msg.Metadata
	md.Set(MetaType, e.Type)
	md.Set(MetaStream, e.Stream)
	md.Set(MetaRevision, strconv.FormatUint(e.Revision, 10))
	md.Set(MetaPosition, e.Position.String())
	md.Set(MetaOccurredAt, e.OccurredAt.UTC().Format(time.RFC3339Nano))
	md.Set(MetaRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	md.Set(MetaActor, e.Actor)
	md.Set(MetaCorrelationID, e.CorrelationID)
	md.Set(MetaCausationID, e.CausationID)
	md.Set(MetaPrevHash, e.PrevHash)
	md.Set(MetaHash, e.Hash)
	if more {
		md.Set(MetaMore, "1")
	}
	return msg
}

// metaKeys is how many metadata keys toMessage sets at most.
const metaKeys = 12

// EventOf rebuilds the stored event a Subscriber message carries.
func EventOf(msg *message.Message) (domain.Event, error) {
	md := msg.Metadata
	rev, err := strconv.ParseUint(md.Get(MetaRevision), 10, 64)
	if err != nil {
		return domain.Event{}, fmt.Errorf("bus: message %s: revision: %w", msg.UUID, err)
	}
	pos, err := domain.ParsePosition(md.Get(MetaPosition))
	if err != nil {
		return domain.Event{}, fmt.Errorf("bus: message %s: %w", msg.UUID, err)
	}
	occurred, err := time.Parse(time.RFC3339Nano, md.Get(MetaOccurredAt))
	if err != nil {
		return domain.Event{}, fmt.Errorf("bus: message %s: occurred_at: %w", msg.UUID, err)
	}
	recorded, err := time.Parse(time.RFC3339Nano, md.Get(MetaRecordedAt))
	if err != nil {
		return domain.Event{}, fmt.Errorf("bus: message %s: recorded_at: %w", msg.UUID, err)
	}
	return domain.Event{
		ID:            msg.UUID,
		Type:          md.Get(MetaType),
		Stream:        md.Get(MetaStream),
		Revision:      rev,
		Position:      pos,
		Data:          msg.Payload,
		OccurredAt:    occurred.UTC(),
		RecordedAt:    recorded.UTC(),
		Actor:         md.Get(MetaActor),
		CorrelationID: md.Get(MetaCorrelationID),
		CausationID:   md.Get(MetaCausationID),
		PrevHash:      md.Get(MetaPrevHash),
		Hash:          md.Get(MetaHash),
	}, nil
}
